//! Log timestamps → UNIX seconds. `time_local` is hand-parsed (it is on every combined line, so it
//! is the hot path); the rarer JSON forms go through chrono.

use chrono::{DateTime, TimeZone, Utc};

const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// nginx/Apache `time_local`: `18/Jul/2023:13:44:16 +0000`.
pub fn parse_time_local(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let day = num(0..2)?;
    let month = MONTHS.iter().position(|m| &b[3..6] == *m)? as i64 + 1;
    let year = num(7..11)?;
    let (h, m, sec) = (num(12..14)?, num(15..17)?, num(18..20)?);
    if b[14] != b':' || b[17] != b':' || !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return None;
    }
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let offset = sign * (num(22..24)? * 3600 + num(24..26)? * 60);
    Some(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec - offset)
}

/// Days since 1970-01-01 (Howard Hinnant's algorithm), valid for the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Any time form a JSON log carries: epoch seconds (int, float, or their string form, as `msec`
/// logs), ISO-8601/RFC 3339 (`time_iso8601`), or `time_local`.
pub fn parse_any_time(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(t) = parse_time_local(s) {
        return Some(t);
    }
    if let Ok(f) = s.parse::<f64>() {
        return epoch_from_number(f);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp());
    }
    // ISO-8601 without a zone or with a space separator: read as UTC.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&t).timestamp());
        }
    }
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %z")
        .ok()
        .map(|t| t.timestamp())
}

/// Epoch numbers: seconds, or milliseconds when the value is too large to be seconds.
pub fn epoch_from_number(f: f64) -> Option<i64> {
    if !f.is_finite() || f < 0.0 {
        return None;
    }
    let secs = if f > 1e11 { f / 1000.0 } else { f };
    (secs < 253_402_300_800.0).then_some(secs.floor() as i64)
}

/// UNIX seconds → `2023-07-18T13:44:16Z`.
pub fn format_time(t: i64) -> String {
    match Utc.timestamp_opt(t, 0) {
        chrono::LocalResult::Single(d) => d.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        _ => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_local_with_offsets() {
        assert_eq!(
            parse_time_local("18/Jul/2023:13:44:16 +0000"),
            Some(1_689_687_856)
        );
        assert_eq!(
            parse_time_local("22/Dec/2016:16:30:52 +0300"),
            Some(1_482_413_452)
        );
        assert_eq!(
            parse_time_local("25/Oct/2015:04:11:25 +0100"),
            Some(1_445_742_685)
        );
        assert_eq!(
            parse_time_local("29/Feb/2024:00:00:00 -0130"),
            Some(1_709_170_200)
        );
        for bad in [
            "",
            "18/Jux/2023:13:44:16 +0000",
            "18/Jul/2023:25:44:16 +0000",
            "18/Jul/2023:13:44:16 0000",
        ] {
            assert_eq!(parse_time_local(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_time_forms() {
        let t = 1_689_687_856;
        for s in [
            "18/Jul/2023:13:44:16 +0000",
            "1689687856",
            "1689687856.123",
            "1689687856123",
            "2023-07-18T13:44:16+00:00",
            "2023-07-18T15:44:16+02:00",
            "2023-07-18T13:44:16Z",
            "2023-07-18T13:44:16.5Z",
            "2023-07-18T13:44:16",
            "2023-07-18 13:44:16",
        ] {
            assert_eq!(parse_any_time(s), Some(t), "{s}");
        }
        assert_eq!(parse_any_time("yesterday"), None);
        assert_eq!(parse_any_time("-5"), None);
        assert_eq!(format_time(t), "2023-07-18T13:44:16Z");
    }
}
