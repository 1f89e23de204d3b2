//! Lenient, exact parsers for the value styles exports use: dates (ISO, 年月日, compact, slash, Excel
//! serial), periods (month or year) and numbers (full-width digits, thousands separators).

use chrono::{Datelike, Duration, NaiveDate};
use std::fmt;
use xinyong_domain::normalize::fold_width;

/// A month or a year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Month(i32, u32),
    Year(i32),
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Period::Month(y, m) => write!(f, "{y}-{m:02}"),
            Period::Year(y) => write!(f, "{y}"),
        }
    }
}

fn plausible(d: NaiveDate) -> Option<NaiveDate> {
    (1949..=2100).contains(&d.year()).then_some(d)
}

/// Excel's 1900 date system: serial 1 = 1900-01-01, with the fictitious 1900-02-29 (serial 60).
fn from_serial(x: f64) -> Option<NaiveDate> {
    if !(1.0..=80_000.0).contains(&x) || x.fract() != 0.0 {
        return None;
    }
    let base = NaiveDate::from_ymd_opt(1899, 12, 30)?;
    plausible(base + Duration::days(x as i64))
}

fn nums(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Parses a date in any of the styles the registry knows. `None` for anything else.
pub fn parse_date(raw: &str) -> Option<NaiveDate> {
    // Fast path: 2021-03-05.
    let b = raw.as_bytes();
    if b.len() == 10 && b[4] == b'-' && b[7] == b'-' {
        let d = |r: std::ops::Range<usize>| -> Option<u32> {
            b[r].iter()
                .try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u32))
        };
        if let (Some(y), Some(m), Some(dd)) = (d(0..4), d(5..7), d(8..10)) {
            return NaiveDate::from_ymd_opt(y as i32, m, dd).and_then(plausible);
        }
        return None;
    }
    let s = fold_width(raw.trim());
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return match s.len() {
            8 => NaiveDate::parse_from_str(s, "%Y%m%d").ok().and_then(plausible),
            1..=5 => from_serial(s.parse().ok()?),
            _ => None,
        };
    }
    if let Ok(x) = s.parse::<f64>() {
        return from_serial(x);
    }
    // 2021-03-05, 2021/3/5, 2021.3.5, 2021年3月5日, optionally followed by a time.
    let date_part = s.split([' ', 'T']).next().unwrap_or(s);
    let p = nums(date_part);
    let ok_seps = date_part
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.' | '年' | '月' | '日'));
    if p.len() == 3 && p[0].len() == 4 && ok_seps {
        let (y, m, d) = (p[0].parse().ok()?, p[1].parse().ok()?, p[2].parse().ok()?);
        return NaiveDate::from_ymd_opt(y, m, d).and_then(plausible);
    }
    None
}

/// Parses a period: a month (`2021-03`, `2021/03`, `2021年3月`, `202103`, an Excel serial of a day in
/// it, a full date) or a year (`2021`, `2021年`). `expect` is the dataset's period (`month`/`year`).
pub fn parse_period(raw: &str, expect: Option<&str>) -> Option<Period> {
    let s = fold_width(raw.trim());
    let s = s.trim();
    let p = nums(s);
    let year_ok = |y: i32| (1949..=2100).contains(&y);
    let all_digits = s.bytes().all(|b| b.is_ascii_digit());
    let r = if all_digits && s.len() == 4 {
        let y: i32 = s.parse().ok()?;
        year_ok(y).then_some(Period::Year(y))
    } else if all_digits && s.len() == 6 {
        let (y, m) = (s[..4].parse().ok()?, s[4..].parse().ok()?);
        (year_ok(y) && (1..=12).contains(&m)).then_some(Period::Month(y, m))
    } else if s.ends_with('年') && p.len() == 1 {
        let y: i32 = p[0].parse().ok()?;
        year_ok(y).then_some(Period::Year(y))
    } else if p.len() == 2
        && p[0].len() == 4
        && s.chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '-' | '/' | '.' | '年' | '月'))
    {
        let (y, m) = (p[0].parse().ok()?, p[1].parse().ok()?);
        (year_ok(y) && (1..=12).contains(&m)).then_some(Period::Month(y, m))
    } else {
        parse_date(s).map(|d| Period::Month(d.year(), d.month()))
    }?;
    match (r, expect) {
        (Period::Month(y, _), Some("year")) => Some(Period::Year(y)),
        (Period::Year(_), Some("month")) => None,
        _ => Some(r),
    }
}

/// Parses a number: full-width digits folded, `1,234.5` thousands separators accepted only in
/// proper groups of three, a trailing `%` ignored. `None` for anything else.
pub fn parse_number(raw: &str) -> Option<f64> {
    let s = fold_width(raw.trim());
    let s = s.trim().trim_end_matches('%');
    if s.is_empty() {
        return None;
    }
    let plain = |t: &str| -> Option<f64> {
        if !t
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'e' | b'E' | b'+'))
        {
            return None;
        }
        t.parse::<f64>().ok().filter(|x| x.is_finite())
    };
    if !s.contains(',') {
        return plain(s);
    }
    let (int, frac) = s.split_once('.').map(|(a, b)| (a, Some(b))).unwrap_or((s, None));
    let int = int.strip_prefix('-').unwrap_or(int);
    let groups: Vec<&str> = int.split(',').collect();
    let ok = !groups[0].is_empty()
        && groups[0].len() <= 3
        && groups[1..].iter().all(|g| g.len() == 3)
        && groups.iter().all(|g| g.bytes().all(|b| b.is_ascii_digit()));
    if !ok {
        return None;
    }
    let mut c = if s.starts_with('-') {
        "-".to_string()
    } else {
        String::new()
    };
    c.push_str(&groups.concat());
    if let Some(f) = frac {
        c.push('.');
        c.push_str(f);
    }
    plain(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_date(raw: &str, want: Option<&str>) {
        assert_eq!(parse_date(raw).map(|d| d.to_string()).as_deref(), want, "{raw}");
    }

    #[test]
    fn dates() {
        check_date("2021-03-05", Some("2021-03-05"));
        check_date("2021年3月5日", Some("2021-03-05"));
        check_date("20210305", Some("2021-03-05"));
        check_date("2021/3/5", Some("2021-03-05"));
        check_date("44260", Some("2021-03-05"));
        check_date("２０２１－０３－０５", Some("2021-03-05"));
        check_date("2021-13-45", None);
        check_date("0000-00-00", None);
        check_date("20211332", None);
        check_date("无", None);
    }

    #[test]
    fn periods_and_numbers() {
        assert_eq!(parse_period("2021年3月", Some("month")), Some(Period::Month(2021, 3)));
        assert_eq!(parse_period("202103", Some("month")), Some(Period::Month(2021, 3)));
        assert_eq!(parse_period("44256", Some("month")), Some(Period::Month(2021, 3)));
        assert_eq!(parse_period("2021", Some("year")), Some(Period::Year(2021)));
        assert_eq!(parse_period("2021年", Some("year")), Some(Period::Year(2021)));
        assert_eq!(parse_number("1,234.5"), Some(1234.5));
        assert_eq!(parse_number("１２３"), Some(123.0));
        assert_eq!(parse_number("12,3a4"), None);
        assert_eq!(parse_number("1.2.3"), None);
        assert_eq!(parse_number("约5万"), None);
        assert_eq!(parse_number("--"), None);
    }
}
