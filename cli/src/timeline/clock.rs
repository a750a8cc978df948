//! Times as the timeline reads and prints them: RFC 3339 or unix seconds in, UTC clock times and
//! short spans out.

use std::time::UNIX_EPOCH;

/// RFC 3339 or unix seconds, either with a fraction of a second.
pub fn instant(text: &str) -> Result<f64, String> {
    if let Ok(secs) = text.parse::<f64>() {
        if secs.is_finite() && secs >= 0.0 {
            return Ok(secs);
        }
    }
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
        .ok_or_else(|| {
            format!(
                "{text:?} is neither RFC 3339 (2026-11-25T17:00:00Z) nor unix seconds (1795628876.3)"
            )
        })
}

/// `HH:MM:SS` UTC of unix seconds.
pub fn clock(secs: u64) -> String {
    let s = secs % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `1h02m03s`, `4m05s`, `6s`.
pub fn span(secs: u64) -> String {
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// `HH:MM:SS` UTC, with tenths when the time has them (`16:02:15.3`).
pub fn clock_tenths(secs: f64) -> String {
    let tenths = (secs * 10.0).round() as u64;
    match tenths % 10 {
        0 => clock(tenths / 10),
        d => format!("{}.{d}", clock(tenths / 10)),
    }
}

/// A delay between a mark and a decision: tenths under a minute (`13.7s`), else as `span`.
pub fn delay(secs: f64) -> String {
    let tenths = (secs.max(0.0) * 10.0).round() as u64;
    if !tenths.is_multiple_of(10) && tenths < 600 {
        format!("{}.{}s", tenths / 10, tenths % 10)
    } else {
        span((secs.max(0.0)).round() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::{clock_tenths, delay};

    #[test]
    fn tenths_of_a_second_show_only_when_there_are_some_and_delays_keep_them_under_a_minute() {
        assert_eq!(clock_tenths(1_764_000_135.3), "16:02:15.3");
        assert_eq!(clock_tenths(1_764_000_135.0), "16:02:15");
        assert_eq!(delay(24.7), "24.7s");
        assert_eq!(delay(25.0), "25s");
        assert_eq!(delay(90.4), "1m30s");
    }
}
