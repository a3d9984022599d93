//! Formatting helpers for the views: sizes, durations and dates.

use chrono::{DateTime, Utc};

/// A size given in megabytes, as a person reads it.
pub fn megabytes(mb: f64) -> String {
    if mb >= 1024.0 {
        format!("{:.1} GB", mb / 1024.0)
    } else if mb >= 10.0 {
        format!("{mb:.0} MB")
    } else {
        format!("{mb:.1} MB")
    }
}

/// A duration in seconds as `3d 4h`, `5h 6m`, `7m 8s` or `9s`.
pub fn duration_seconds(seconds: u64) -> String {
    let (days, hours, minutes, secs) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{secs}s"),
        (0, 0, _) => format!("{minutes}m {secs}s"),
        (0, _, _) => format!("{hours}h {minutes}m"),
        _ => format!("{days}d {hours}h"),
    }
}

/// A timestamp as `2026-11-26 12:00 UTC`.
pub fn timestamp(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_naturally() {
        for (mb, expected) in [(0.5, "0.5 MB"), (12.0, "12 MB"), (2048.0, "2.0 GB")] {
            assert_eq!(megabytes(mb), expected);
        }
    }

    #[test]
    fn durations_read_naturally() {
        let cases = [
            (9, "9s"),
            (68, "1m 8s"),
            (3_720, "1h 2m"),
            (90_000, "1d 1h"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(duration_seconds(seconds), expected);
        }
    }
}
