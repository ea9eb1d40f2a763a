//! The time zone the report shows times in: UTC or a fixed offset (`--tz +02:00`).
//!
//! A fixed offset, not an IANA name: an incident report covers hours or days, and a fixed offset
//! keeps every time in it on one clock, also across a DST change (which an IANA zone would
//! silently shift by an hour mid-plot). The zone's name is printed beside every axis and in the
//! header, so a reader always knows which clock they are looking at.

use chrono::{FixedOffset, TimeZone};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Zone {
    offset: FixedOffset,
}

impl Default for Zone {
    fn default() -> Self {
        Zone::utc()
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            offset: FixedOffset::east_opt(0).expect("zero offset"),
        }
    }

    /// `UTC`, `Z`, `+02:00`, `-0530`, `+2`, `UTC+01:00`.
    pub fn parse(s: &str) -> Result<Zone, String> {
        let t = s.trim();
        let bad = || {
            format!("{s:?}: expected UTC or a fixed offset like +02:00 or -05:30 (IANA names are not supported)")
        };
        let rest = ["UTC", "utc", "GMT", "gmt", "Z", "z"]
            .iter()
            .find_map(|p| t.strip_prefix(p))
            .unwrap_or(t);
        if rest.is_empty() {
            return Ok(Zone::utc());
        }
        let (sign, digits) = match rest.as_bytes()[0] {
            b'+' => (1, &rest[1..]),
            b'-' => (-1, &rest[1..]),
            _ => return Err(bad()),
        };
        let (h, m) = match digits.split_once(':') {
            Some((h, m)) => (h, m),
            None if digits.len() > 2 => digits.split_at(digits.len() - 2),
            None => (digits, "0"),
        };
        let h: i32 = h.parse().map_err(|_| bad())?;
        let m: i32 = m.parse().map_err(|_| bad())?;
        if h > 14 || m > 59 || h.to_string().len() > 2 {
            return Err(bad());
        }
        let offset = FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)?;
        Ok(Zone { offset })
    }

    pub fn offset_secs(&self) -> i32 {
        self.offset.local_minus_utc()
    }

    /// `UTC` or `UTC+02:00`.
    pub fn name(&self) -> String {
        let o = self.offset_secs();
        if o == 0 {
            return "UTC".into();
        }
        let sign = if o < 0 { '-' } else { '+' };
        let a = o.abs();
        format!("UTC{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
    }

    /// `t` (unix secs) in this zone, with a chrono format string.
    pub fn format(&self, t: i64, fmt: &str) -> String {
        match self.offset.timestamp_opt(t, 0) {
            chrono::LocalResult::Single(d) => d.format(fmt).to_string(),
            _ => t.to_string(),
        }
    }

    /// `2015-05-17 20:21:17`.
    pub fn datetime(&self, t: i64) -> String {
        self.format(t, "%Y-%m-%d %H:%M:%S")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_utc_and_fixed_offsets() {
        for s in ["UTC", "Z", "utc", "+00:00", "UTC+0"] {
            assert_eq!(Zone::parse(s).unwrap().offset_secs(), 0, "{s}");
        }
        assert_eq!(Zone::parse("+02:00").unwrap().offset_secs(), 7200);
        assert_eq!(Zone::parse("-0530").unwrap().offset_secs(), -19800);
        assert_eq!(Zone::parse("+2").unwrap().offset_secs(), 7200);
        assert_eq!(Zone::parse("UTC-03:30").unwrap().name(), "UTC-03:30");
        for s in ["Europe/Paris", "+25:00", "+02:61", "2", "+", "+0200x"] {
            assert!(Zone::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn formats_in_the_zone() {
        let z = Zone::parse("+02:00").unwrap();
        assert_eq!(z.datetime(1_431_894_077), "2015-05-17 22:21:17");
        assert_eq!(Zone::utc().datetime(1_431_894_077), "2015-05-17 20:21:17");
    }
}
