//! Debian version numbers: `[epoch:]upstream[-revision]`, compared exactly as dpkg does.

use std::cmp::Ordering;

/// Compares two Debian versions the way `dpkg --compare-versions` does.
///
/// Malformed versions never panic: a missing or non-numeric epoch counts as 0 and the rest
/// is compared character by character with dpkg's ordering (`~` sorts before everything,
/// even the end of the string; letters before other characters).
pub fn compare(left: &str, right: &str) -> Ordering {
    let (left_epoch, left_upstream, left_revision) = split(left);
    let (right_epoch, right_upstream, right_revision) = split(right);
    compare_numeric(left_epoch, right_epoch)
        .then_with(|| compare_part(left_upstream, right_upstream))
        .then_with(|| compare_part(left_revision, right_revision))
}

/// The upstream version without epoch and Debian revision: `1:1.35.0-4+b3` → `1.35.0`.
pub fn upstream(version: &str) -> &str {
    split(version).1
}

/// The version as it appears in a Debian pool file name: without its epoch.
pub fn without_epoch(version: &str) -> &str {
    match version.split_once(':') {
        Some((epoch, rest)) if !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_digit()) => {
            rest
        }
        _ => version,
    }
}

/// Splits into (epoch digits, upstream, revision); absent parts are empty.
fn split(version: &str) -> (&str, &str, &str) {
    let version = version.trim();
    let (epoch, rest) = match version.split_once(':') {
        Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => (epoch, rest),
        _ => ("", version),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    (epoch, upstream, revision)
}

/// Compares two digit strings as numbers of any length (no overflow).
fn compare_numeric(left: &str, right: &str) -> Ordering {
    let left = left.trim_start_matches('0');
    let right = right.trim_start_matches('0');
    left.len().cmp(&right.len()).then_with(|| left.cmp(right))
}

/// dpkg's weight of a non-digit character; `None` is the end of the string.
fn order(byte: Option<u8>) -> i32 {
    match byte {
        None => 0,
        Some(b'~') => -1,
        Some(byte) if byte.is_ascii_digit() => 0,
        Some(byte) if byte.is_ascii_alphabetic() => i32::from(byte),
        Some(byte) => i32::from(byte) + 256,
    }
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs.
fn compare_part(left: &str, right: &str) -> Ordering {
    let (left, right) = (left.as_bytes(), right.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < left.len() || j < right.len() {
        while left.get(i).is_some_and(|b| !b.is_ascii_digit())
            || right.get(j).is_some_and(|b| !b.is_ascii_digit())
        {
            let (a, b) = (order(left.get(i).copied()), order(right.get(j).copied()));
            if a != b {
                return a.cmp(&b);
            }
            i += usize::from(i < left.len());
            j += usize::from(j < right.len());
        }
        let start_i = i;
        while left.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        let start_j = j;
        while right.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        let digits = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        let ordering = compare_numeric(&digits(&left[start_i..i]), &digits(&right[start_j..j]));
        if ordering != Ordering::Equal {
            return ordering;
        }
    }
    Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn versions_compare_like_dpkg() {
        use Ordering::*;
        // Cases checked against `dpkg --compare-versions`.
        let cases = [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0~~", "1.0~", Less),
            ("1.0", "1.0+b1", Less),
            ("1:0.1", "2.0", Greater),
            ("0:1.0", "1.0", Equal),
            ("1.0-1", "1.0-2", Less),
            ("1.0-1", "1.0", Greater),
            ("2.36-9+deb12u10", "2.36-9+deb12u4", Greater),
            ("18.20.4+dfsg-1~deb12u2", "18.20.4+dfsg-1", Less),
            ("1.22.1-9+deb12u9", "1.22.1-9+deb12u11", Less),
            ("1.0a", "1.0-", Greater),
            ("1.0a", "1.0+", Less),
            ("1.001", "1.1", Equal),
            ("99999999999999999999999", "1", Greater),
            ("", "0", Equal),
            ("a:b", "a:b", Equal),
        ];
        for (left, right, expected) in cases {
            assert_eq!(compare(left, right), expected, "{left} vs {right}");
            assert_eq!(
                compare(right, left),
                expected.reverse(),
                "{right} vs {left}"
            );
        }
    }

    #[test]
    fn parts_of_a_version() {
        assert_eq!(upstream("1:1.35.0-4+b3"), "1.35.0");
        assert_eq!(upstream("3.11.2-6"), "3.11.2");
        assert_eq!(upstream("1.2-3-4"), "1.2-3");
        assert_eq!(without_epoch("1:1.35.0-4+b3"), "1.35.0-4+b3");
        assert_eq!(without_epoch("1.0"), "1.0");
    }

    proptest! {
        #[test]
        fn comparison_is_total_and_antisymmetric(a in "[0-9a-z.+~:-]{0,12}", b in "[0-9a-z.+~:-]{0,12}") {
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
            prop_assert_eq!(compare(&a, &a), Ordering::Equal);
        }
    }
}
