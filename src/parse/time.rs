//! Log timestamps → UNIX seconds. `time_local` is hand-parsed (it is on every combined line, so it
//! is the hot path); the rarer JSON forms go through chrono.
//!
//! Every accepted time lies in [`MIN_TIME`, `MAX_TIME`): 1970 to the end of 2099. A log time
//! outside that range is a broken line, not a request from the year 10000 — and a time past
//! 9999-12-31 would be written into decisions.json as `+10000-…`, which nothing reads back.
//! Times written without a zone are read in the `--input-tz` offset (UTC by default).

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

/// 1970-01-01T00:00:00Z: the first accepted log time.
pub const MIN_TIME: i64 = 0;
/// 2100-01-01T00:00:00Z: the first log time past the accepted range.
pub const MAX_TIME: i64 = 4_102_444_800;

/// Why a time was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// Not a time bouncer can read.
    Unreadable,
    /// A readable time outside 1970–2099.
    OutOfRange,
}

fn in_range(t: i64) -> Result<i64, TimeError> {
    if (MIN_TIME..MAX_TIME).contains(&t) {
        Ok(t)
    } else {
        Err(TimeError::OutOfRange)
    }
}

/// nginx/Apache `time_local`: `18/Jul/2023:13:44:16 +0000`.
pub fn parse_time_local(s: &str) -> Option<i64> {
    time_local(s, 0).ok()
}

/// `time_local`, also without its zone (`27/Jun/2013:11:55:44`, as some Apache setups and
/// fail2ban's test logs write it; then `offset_secs` east of UTC is assumed) and with a trailing
/// space. Returns whether the zone was in the text.
pub fn time_local(s: &str, offset_secs: i32) -> Result<i64, TimeError> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[2] != b'/'
        || b[6] != b'/'
        || b[11] != b':'
        || b[14] != b':'
        || b[17] != b':'
    {
        return Err(TimeError::Unreadable);
    }
    let bad = TimeError::Unreadable;
    let day = two_digits(b, 0).ok_or(bad)?;
    let month = month_number(&b[3..6]).ok_or(bad)?;
    let year = two_digits(b, 7).ok_or(bad)? * 100 + two_digits(b, 9).ok_or(bad)?;
    let h = two_digits(b, 12).ok_or(bad)?;
    let m = two_digits(b, 15).ok_or(bad)?;
    let sec = two_digits(b, 18).ok_or(bad)?;
    if !(1..=31).contains(&day) || h > 23 || m > 59 || sec > 60 {
        return Err(bad);
    }
    let offset = match &b[20..] {
        [b' ', sign @ (b'+' | b'-'), ..] if b.len() == 26 => {
            let sign = if *sign == b'+' { 1 } else { -1 };
            sign * (two_digits(b, 22).ok_or(bad)? * 3600 + two_digits(b, 24).ok_or(bad)? * 60)
        }
        [] | [b' '] => offset_secs as i64,
        _ => return Err(bad),
    };
    in_range(days_from_civil(year, month, day) * 86_400 + h * 3600 + m * 60 + sec - offset)
}

/// The two ASCII digits at `b[i..i + 2]` (the caller checked the length).
#[inline(always)]
fn two_digits(b: &[u8], i: usize) -> Option<i64> {
    let (hi, lo) = (b[i].wrapping_sub(b'0'), b[i + 1].wrapping_sub(b'0'));
    (hi < 10 && lo < 10).then_some(hi as i64 * 10 + lo as i64)
}

/// `Jan` → 1 … `Dec` → 12 (exact case, as nginx and Apache write them).
#[inline]
fn month_number(m: &[u8]) -> Option<i64> {
    Some(match m {
        b"Jan" => 1,
        b"Feb" => 2,
        b"Mar" => 3,
        b"Apr" => 4,
        b"May" => 5,
        b"Jun" => 6,
        b"Jul" => 7,
        b"Aug" => 8,
        b"Sep" => 9,
        b"Oct" => 10,
        b"Nov" => 11,
        b"Dec" => 12,
        _ => return None,
    })
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
/// logs), ISO-8601/RFC 3339 (`time_iso8601`), or `time_local`. Zone-less forms are read as UTC.
pub fn parse_any_time(s: &str) -> Option<i64> {
    any_time(s, 0).ok()
}

/// [`parse_any_time`], with zone-less times read `offset_secs` east of UTC.
pub fn any_time(s: &str, offset_secs: i32) -> Result<i64, TimeError> {
    let s = s.trim();
    match time_local(s, offset_secs) {
        Err(TimeError::Unreadable) => {}
        done => return done,
    }
    if let Some(t) = iso8601_fast(s.as_bytes()) {
        return t;
    }
    if let Ok(f) = s.parse::<f64>() {
        return epoch_from_number(f);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return in_range(t.timestamp());
    }
    // ISO-8601 without a zone or with a space separator: read in the input zone.
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, fmt) {
            return in_range(Utc.from_utc_datetime(&t).timestamp() - offset_secs as i64);
        }
    }
    DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f %z")
        .map_err(|_| TimeError::Unreadable)
        .and_then(|t| in_range(t.timestamp()))
}

/// nginx's `$time_iso8601` (`2023-07-18T13:44:16+00:00`) without chrono: it is on every line of
/// the JSON format README recommends. `None`: not this exact shape (the caller tries the others).
fn iso8601_fast(b: &[u8]) -> Option<Result<i64, TimeError>> {
    if b.len() != 25 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' || !matches!(b[19], b'+' | b'-') || b[22] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        b[r].iter().try_fold(0i64, |acc, c| {
            c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as i64)
        })
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let (oh, om) = (num(20..22)?, num(23..25)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None; // let chrono say what is wrong
    }
    let sign = if b[19] == b'+' { 1 } else { -1 };
    let t =
        days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - sign * (oh * 3600 + om * 60);
    Some(in_range(t))
}

/// Epoch numbers: seconds, or milliseconds when the value is too large to be seconds.
pub fn epoch_from_number(f: f64) -> Result<i64, TimeError> {
    if !f.is_finite() {
        return Err(TimeError::Unreadable);
    }
    let secs = if f > 1e11 { f / 1000.0 } else { f };
    if !(MIN_TIME as f64..MAX_TIME as f64).contains(&secs) {
        return Err(TimeError::OutOfRange);
    }
    Ok(secs.floor() as i64)
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

    /// Every month, day boundaries, zones and digit errors agree with chrono's reading.
    #[test]
    fn time_local_agrees_with_chrono() {
        let mut t = 0i64;
        while t < MAX_TIME {
            let zone = chrono::FixedOffset::east_opt(((t / 7) % 50_401 - 25_200) as i32 / 60 * 60)
                .expect("offset in range");
            let text = chrono::DateTime::from_timestamp(t, 0)
                .expect("in range")
                .with_timezone(&zone)
                .format("%d/%b/%Y:%H:%M:%S %z")
                .to_string();
            assert_eq!(parse_time_local(&text), Some(t), "{text}");
            t += 86_400 * 13 + 3_607;
        }
        for bad in [
            "1x/Jul/2023:13:44:16 +0000",
            "18/jul/2023:13:44:16 +0000",
            "18/Jul/2o23:13:44:16 +0000",
            "18/Jul/2023:13:4:16 +0000",
            "18/Jul/2023:13:44:16 +00x0",
            "00/Jul/2023:13:44:16 +0000",
            "18/Jul/2023:13:44:16 +0000 ",
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
