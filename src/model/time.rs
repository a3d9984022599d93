//! Dates as other implementations of the seed write them: ISO 8601, read leniently (every
//! `Date` field of the model deserializes through here), always written as RFC 3339.
//!
//! JavaScript's `Date.prototype.toJSON` writes `2026-12-03T07:00:00.000Z`, which RFC 3339
//! covers; other writers use ISO 8601's other forms. Accepted:
//! * RFC 3339, with `Z` or an offset (`+01:00`, or `+0100` as ISO 8601 also allows);
//! * a date and time without an offset, or a date alone: read as UTC (the seed's `Date`
//!   has no zone of its own, and a backup is moved between machines);
//! * the basic format, `20261203T070000Z`;
//! * a space instead of the `T`.
//!
//! Anything else is refused with the text and an example, so a backup's problem list says
//! what was wrong with the date, not only that it was wrong.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Deserializer};

/// Why a text is not a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an ISO 8601 date and time (for example 2026-12-03T07:00:00Z)")]
pub struct DateError {
    pub text: String,
}

/// Reads an ISO 8601 date, or date and time, as UTC.
pub fn parse_iso8601(text: &str) -> Result<DateTime<Utc>, DateError> {
    let trimmed = text.trim();
    let refuse = || DateError {
        text: shorten(text),
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(trimmed) {
        return Ok(at.with_timezone(&Utc));
    }
    const WITH_OFFSET: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f%z",
        "%Y-%m-%dT%H:%M%z",
        "%Y%m%dT%H%M%S%.f%z",
        "%Y%m%dT%H%M%z",
    ];
    const WITHOUT_OFFSET: [&str; 4] = [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y%m%dT%H%M%S%.f",
        "%Y%m%dT%H%M",
    ];
    let normalized = normalize(trimmed);
    for format in WITH_OFFSET {
        if let Ok(at) = DateTime::parse_from_str(&normalized, format) {
            return Ok(at.with_timezone(&Utc));
        }
    }
    let local = normalized.strip_suffix('Z').unwrap_or(&normalized);
    for format in WITHOUT_OFFSET {
        if let Ok(at) = NaiveDateTime::parse_from_str(local, format) {
            return Ok(at.and_utc());
        }
    }
    for format in ["%Y-%m-%d", "%Y%m%d"] {
        if let Ok(day) = NaiveDate::parse_from_str(local, format) {
            return day
                .and_hms_opt(0, 0, 0)
                .map(|at| at.and_utc())
                .ok_or_else(refuse);
        }
    }
    Err(refuse())
}

/// A space or lowercase `t` as the date/time separator, lowercase `z`, and `Z` as `+0000`
/// for the offset formats.
fn normalize(text: &str) -> String {
    let mut normalized: String = text
        .char_indices()
        .map(|(at, character)| match character {
            ' ' | 't' if at == 8 || at == 10 => 'T',
            'z' => 'Z',
            other => other,
        })
        .collect();
    if normalized.ends_with('Z') && normalized.contains('T') {
        normalized.pop();
        normalized.push_str("+0000");
        return normalized;
    }
    normalized
}

/// At most 40 characters of a refused text, so a hostile value can't flood a message.
fn shorten(text: &str) -> String {
    const LIMIT: usize = 40;
    match text.char_indices().nth(LIMIT) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// `#[serde(deserialize_with = "…::required")]` for a `DateTime<Utc>` field.
pub fn required<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_iso8601(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(default, deserialize_with = "…::optional")]` for an `Option<DateTime<Utc>>`
/// field: `null` is `None`.
pub fn optional<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        Some(text) => parse_iso8601(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s)
            .single()
            .expect("valid")
    }

    #[test]
    fn iso8601_forms_table() {
        let cases = [
            ("2026-12-03T07:00:00Z", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03T07:00:00.000Z", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03T08:00:00+01:00", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03T08:00:00+0100", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03 07:00:00Z", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03t07:00:00z", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03T07:00:00", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03T07:00", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03T07:00Z", at(2026, 12, 3, 7, 0, 0)),
            ("2026-12-03", at(2026, 12, 3, 0, 0, 0)),
            ("20261203T070000Z", at(2026, 12, 3, 7, 0, 0)),
            ("20261203T080000+0100", at(2026, 12, 3, 7, 0, 0)),
            ("20261203", at(2026, 12, 3, 0, 0, 0)),
            ("  2026-12-03T07:00:00Z ", at(2026, 12, 3, 7, 0, 0)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_iso8601(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn non_dates_are_refused_with_the_text_table() {
        let cases = [
            "yesterday",
            "",
            "2026-13-03T07:00:00Z",
            "2026-02-30",
            "03/12/2026",
            "2026-12-03T25:00:00Z",
        ];
        for text in cases {
            let error = parse_iso8601(text).expect_err(text);
            assert!(error.to_string().contains(&format!("'{text}'")), "{error}");
            assert!(error.to_string().contains("ISO 8601"), "{error}");
        }
        let long = "9".repeat(1000);
        let message = parse_iso8601(&long).expect_err("long").to_string();
        assert!(message.len() < 160, "{message}");
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Dated {
        #[serde(deserialize_with = "required")]
        at: DateTime<Utc>,
        #[serde(default, deserialize_with = "optional")]
        until: Option<DateTime<Utc>>,
    }

    #[test]
    fn serde_helpers_table() {
        let cases = [
            (
                r#"{"at":"2026-12-03"}"#,
                Some((at(2026, 12, 3, 0, 0, 0), None)),
            ),
            (
                r#"{"at":"2026-12-03","until":null}"#,
                Some((at(2026, 12, 3, 0, 0, 0), None)),
            ),
            (
                r#"{"at":"2026-12-03","until":"2026-12-04T00:00:00Z"}"#,
                Some((at(2026, 12, 3, 0, 0, 0), Some(at(2026, 12, 4, 0, 0, 0)))),
            ),
            (r#"{"at":"soon"}"#, None),
            (r#"{"at":5}"#, None),
            (r#"{"until":"2026-12-03"}"#, None),
        ];
        for (json, expected) in cases {
            let parsed = serde_json::from_str::<Dated>(json)
                .ok()
                .map(|dated| (dated.at, dated.until));
            assert_eq!(parsed, expected, "{json}");
        }
    }
}
