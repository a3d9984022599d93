//! Helpers that turn a mistake into a suggestion: closest known id, URL-safe name.

use crate::model::{AppName, APP_NAME_MAX_LEN, APP_NAME_MIN_LEN};

/// Levenshtein distance between two strings, by characters.
pub fn edit_distance(first: &str, second: &str) -> usize {
    let second: Vec<char> = second.chars().collect();
    let mut previous: Vec<usize> = (0..=second.len()).collect();
    let mut current = vec![0; second.len() + 1];
    for (i, a) in first.chars().enumerate() {
        current[0] = i + 1;
        for (j, b) in second.iter().enumerate() {
            let substitution = previous[j] + usize::from(a != *b);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[second.len()]
}

/// The candidate closest to `target` by edit distance, if it is close enough to be a
/// plausible typo (at most half the target's length, and at least 2 edits allowed).
/// Ties go to the first candidate in the given order.
pub fn closest_match<'c>(
    target: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let limit = (target.chars().count() / 2).max(2);
    let mut best: Option<(usize, &str)> = None;
    for candidate in candidates {
        let distance = edit_distance(target, candidate);
        if distance <= limit && best.is_none_or(|(best_distance, _)| distance < best_distance) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// A valid application name as close to `text` as possible: lowercase, other characters
/// turned into `-`, trimmed to 50, padded or suffixed with `-app` when too short or
/// reserved. `My Blog!` → `my-blog`.
pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for character in text.chars().flat_map(char::to_lowercase) {
        if character.is_ascii_alphanumeric() || matches!(character, '_' | '.') {
            slug.push(character);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug: String = slug
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(APP_NAME_MAX_LEN - 4)
        .collect();
    slug = slug
        .trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned();
    if slug.is_empty() {
        slug.push_str("app");
    } else if slug.len() < APP_NAME_MIN_LEN || AppName::is_reserved(&slug) {
        slug.push_str("-app");
    }
    slug
}

/// `base`, or `base-2`, `base-3`, … whichever is first not `taken` (case-insensitive
/// decision left to `taken`).
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_owned();
    }
    let stem: String = base.chars().take(APP_NAME_MAX_LEN - 5).collect();
    (2u32..)
        .map(|n| format!("{stem}-{n}"))
        .find(|candidate| !taken(candidate))
        .unwrap_or_else(|| stem.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_table() {
        for (a, b, distance) in [
            ("", "", 0),
            ("nodejs", "nodejs", 0),
            ("nodejs-21", "nodejs-20", 1),
            ("pyhton-311", "python-311", 2),
            ("nodejs", "nodejs-20", 3),
            ("", "abc", 3),
            ("kitten", "sitting", 3),
        ] {
            assert_eq!(edit_distance(a, b), distance, "{a} vs {b}");
        }
    }

    #[test]
    fn closest_match_table() {
        let catalog = ["nodejs-18", "nodejs-20", "python-311", "nginx"];
        for (target, expected) in [
            ("nodejs-21", Some("nodejs-20")),
            ("nodejs-2O", Some("nodejs-20")),
            ("pyhton-311", Some("python-311")),
            ("nodejs", Some("nodejs-18")),
            ("ngnix", Some("nginx")),
            ("redis", None),
        ] {
            assert_eq!(closest_match(target, catalog), expected, "{target}");
        }
    }

    #[test]
    fn slugify_table() {
        for (text, expected) in [
            ("My Blog!", "my-blog"),
            ("  --shop--  ", "shop"),
            ("a", "a-app"),
            ("", "app"),
            ("API", "api-app"),
            ("Caf\u{e9} Menu", "caf-menu"),
            ("x".repeat(80).as_str(), "x".repeat(46).as_str()),
        ] {
            let slug = slugify(text);
            assert_eq!(slug, expected, "{text}");
            assert!(AppName::parse(&slug).is_ok(), "{slug}");
        }
    }

    #[test]
    fn unique_name_appends_a_number() {
        let taken = ["blog", "blog-2"];
        assert_eq!(unique_name("blog", |n| taken.contains(&n)), "blog-3");
        assert_eq!(unique_name("shop", |n| taken.contains(&n)), "shop");
    }
}
