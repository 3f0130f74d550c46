//! Calendar arithmetic (UTC and fixed offsets), parsing and formatting of dates and timestamps.
//! Arrow's own string/time zone conversions need chrono-tz for "UTC"; sluice does its own.

use arrow::datatypes::{DataType, TimeUnit};

use crate::error::{Error, Result};

/// Ticks of `unit` per second.
pub fn ticks_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

/// The offset in seconds of a time zone name: UTC or a fixed offset (`+05:30`).
pub fn tz_offset(tz: Option<&str>) -> Result<i64> {
    match tz {
        None | Some("UTC" | "Etc/UTC" | "GMT" | "Etc/GMT" | "Z" | "utc" | "UCT" | "Universal" | "Zulu") => Ok(0),
        Some(z) => parse_offset(z).ok_or_else(|| Error::NotImplemented {
            feature: format!("time zone `{z}` (only UTC and fixed offsets such as '+05:30' are supported)"),
            location: None,
        }),
    }
}

fn parse_offset(z: &str) -> Option<i64> {
    let b = z.as_bytes();
    let sign = match b.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: Vec<i64> = z[1..].bytes().filter(|c| *c != b':').map(|c| (c as i64) - 48).collect();
    if digits.iter().any(|d| !(0..=9).contains(d)) {
        return None;
    }
    let (h, m) = match digits.len() {
        2 => (digits[0] * 10 + digits[1], 0),
        4 => (digits[0] * 10 + digits[1], digits[2] * 10 + digits[3]),
        _ => return None,
    };
    (h <= 14 && m < 60).then_some(sign * (h * 3600 + m * 60))
}

/// The zone offset of a timestamp type (0 for other types).
pub fn type_offset(t: &DataType) -> Result<i64> {
    match t {
        DataType::Timestamp(_, tz) => tz_offset(tz.as_deref()),
        _ => Ok(0),
    }
}

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date (year, month 1-12, day 1-31) of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses `YYYY-MM-DD[( |T)hh:mm[:ss[.fraction]]][Z|±hh[:mm]]` or a number of seconds into
/// ticks of `unit` since the epoch, UTC unless the text has an offset (then `default_offset`
/// seconds are not applied).
pub fn parse_timestamp(s: &str, unit: TimeUnit, default_offset: i64) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.len() != 8 && s.bytes().all(|c| c.is_ascii_digit()) {
        let secs: i64 = s.parse().ok()?;
        return secs.checked_mul(ticks_per_second(unit));
    }
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        if !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let (y, m, d, mut i) = if b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        (num(0, 4)?, num(5, 2)?, num(8, 2)?, 10)
    } else if b.len() >= 8 && b[..8].iter().all(u8::is_ascii_digit) {
        (num(0, 4)?, num(4, 2)?, num(6, 2)?, 8)
    } else {
        return None;
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || d as u32 > days_in_month(y, m as u32) {
        return None;
    }
    let (mut hh, mut mi, mut ss, mut frac_ticks) = (0, 0, 0, 0i64);
    let mut offset = default_offset;
    if i < b.len() && (b[i] == b' ' || b[i] == b'T') {
        i += 1;
        hh = num(i, 2)?;
        if b.get(i + 2) != Some(&b':') {
            return None;
        }
        mi = num(i + 3, 2)?;
        i += 5;
        if b.get(i) == Some(&b':') {
            ss = num(i + 1, 2)?;
            i += 3;
        }
        if b.get(i) == Some(&b'.') {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let digits = &s[start..i];
            if digits.is_empty() {
                return None;
            }
            let tps = ticks_per_second(unit);
            let mut scale = 1_000_000_000i64;
            let mut nanos = 0i64;
            for c in digits.bytes().take(9) {
                scale /= 10;
                nanos += (c - b'0') as i64 * scale;
            }
            frac_ticks = nanos / (1_000_000_000 / tps);
        }
        if hh > 23 || mi > 59 || ss > 60 {
            return None;
        }
    }
    if i < b.len() {
        let rest = s[i..].trim_start();
        offset = if rest == "Z" || rest == "UTC" { 0 } else { parse_offset(rest)? };
    }
    let days = days_from_civil(y, m as u32, d as u32);
    let secs = days * 86_400 + hh * 3600 + mi * 60 + ss - offset;
    secs.checked_mul(ticks_per_second(unit))?.checked_add(frac_ticks)
}

/// Days in a month.
pub fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// Parses `YYYY-MM-DD` (or a timestamp, keeping its date) into days since the epoch.
pub fn parse_date(s: &str) -> Option<i32> {
    let t = parse_timestamp(s, TimeUnit::Second, 0)?;
    i32::try_from(t.div_euclid(86_400)).ok()
}

/// Formats days since the epoch as `YYYY-MM-DD`.
pub fn format_date(days: i64, out: &mut String) {
    use std::fmt::Write;
    let (y, m, d) = civil_from_days(days);
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// Formats a timestamp as ClickHouse does: `YYYY-MM-DD hh:mm:ss[.fff]` with as many fraction
/// digits as the unit has, in local time of `offset` seconds.
pub fn format_timestamp(ticks: i64, unit: TimeUnit, offset: i64, out: &mut String) {
    use std::fmt::Write;
    let tps = ticks_per_second(unit);
    let secs = ticks.div_euclid(tps) + offset;
    let frac = ticks.rem_euclid(tps);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    format_date(days, out);
    let _ = write!(out, " {:02}:{:02}:{:02}", sod / 3600, sod / 60 % 60, sod % 60);
    match unit {
        TimeUnit::Second => {}
        TimeUnit::Millisecond => {
            let _ = write!(out, ".{frac:03}");
        }
        TimeUnit::Microsecond => {
            let _ = write!(out, ".{frac:06}");
        }
        TimeUnit::Nanosecond => {
            let _ = write!(out, ".{frac:09}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for d in [-800_000, -1, 0, 1, 19_723, 60_000, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
    }

    #[test]
    fn parses_and_formats() {
        let ms = parse_timestamp("2024-01-01 12:00:00", TimeUnit::Millisecond, 0);
        assert_eq!(ms, Some(1_704_110_400_000));
        assert_eq!(parse_timestamp("2024-01-01T12:00:00.5Z", TimeUnit::Millisecond, 0), Some(1_704_110_400_500));
        assert_eq!(parse_timestamp("2024-01-01 13:00:00+01:00", TimeUnit::Second, 0), Some(1_704_110_400));
        assert_eq!(parse_timestamp("2024-02-30", TimeUnit::Second, 0), None);
        assert_eq!(parse_timestamp("garbage", TimeUnit::Second, 0), None);
        assert_eq!(parse_date("2024-01-02"), Some(19_724));
        let mut s = String::new();
        format_timestamp(1_704_110_400_123, TimeUnit::Millisecond, 0, &mut s);
        assert_eq!(s, "2024-01-01 12:00:00.123");
        assert_eq!(tz_offset(Some("+05:30")).ok(), Some(19_800));
        assert!(tz_offset(Some("Europe/Berlin")).is_err());
    }
}
