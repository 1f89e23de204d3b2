//! Working days: the State Council's holiday calendar with its make-up working days (调休), as data
//! (`config/calendar.toml`, replaceable by a deployment), and the day in Asia/Shanghai.
//!
//! China keeps one time zone without daylight saving, so the day in Asia/Shanghai is the UTC instant plus
//! eight hours; no time-zone database is needed for it.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CalendarError {
    #[error("calendar: {0}")]
    Parse(String),
    #[error("calendar {year}: {day} is listed as a make-up working day but is not a Saturday or Sunday")]
    NotWeekend { year: i32, day: NaiveDate },
    #[error("calendar: {day} is listed under year {year}")]
    WrongYear { year: i32, day: NaiveDate },
}

/// The holiday calendar.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Calendar {
    /// Weekdays that are holidays (and any weekend days inside a holiday's range).
    off: BTreeSet<NaiveDate>,
    /// Weekend days that are working days.
    on: BTreeSet<NaiveDate>,
    /// The years whose arrangement is listed.
    years: BTreeSet<i32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    years: BTreeMap<String, Year>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Year {
    #[serde(default)]
    off: Vec<String>,
    #[serde(default)]
    on: Vec<String>,
}

fn day(s: &str) -> Result<NaiveDate, CalendarError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|e| CalendarError::Parse(format!("{s:?}: {e}")))
}

/// "YYYY-MM-DD" or "FROM..TO" (inclusive).
fn days(s: &str) -> Result<Vec<NaiveDate>, CalendarError> {
    match s.split_once("..") {
        None => Ok(vec![day(s)?]),
        Some((a, b)) => {
            let (a, b) = (day(a)?, day(b)?);
            if b < a || (b - a).num_days() > 31 {
                return Err(CalendarError::Parse(format!(
                    "{s:?}: a range of at most a month, in order"
                )));
            }
            Ok(a.iter_days().take_while(|d| *d <= b).collect())
        }
    }
}

fn weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

impl Calendar {
    /// The calendar shipped with the platform.
    pub fn builtin() -> Calendar {
        Calendar::from_toml(include_str!("../config/calendar.toml")).expect("the built-in calendar parses (tested)")
    }

    pub fn from_toml(text: &str) -> Result<Calendar, CalendarError> {
        let f: File = toml::from_str(text).map_err(|e| CalendarError::Parse(e.to_string()))?;
        let mut c = Calendar::default();
        for (y, spec) in f.years {
            let year: i32 = y.parse().map_err(|_| CalendarError::Parse(format!("year {y:?}")))?;
            c.years.insert(year);
            for s in &spec.off {
                for d in days(s)? {
                    if d.year() != year {
                        return Err(CalendarError::WrongYear { year, day: d });
                    }
                    c.off.insert(d);
                }
            }
            for s in &spec.on {
                for d in days(s)? {
                    if d.year() != year {
                        return Err(CalendarError::WrongYear { year, day: d });
                    }
                    if !weekend(d) {
                        return Err(CalendarError::NotWeekend { year, day: d });
                    }
                    c.on.insert(d);
                }
            }
        }
        Ok(c)
    }

    /// Whether the year's arrangement is listed (otherwise only weekends are rest days).
    pub fn knows(&self, year: i32) -> bool {
        self.years.contains(&year)
    }

    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.on.contains(&d) {
            return true;
        }
        !weekend(d) && !self.off.contains(&d)
    }

    /// The first working day on or after `d`.
    pub fn on_or_after(&self, d: NaiveDate) -> NaiveDate {
        let mut x = d;
        while !self.is_working_day(x) {
            x = x.succ_opt().unwrap_or(x);
            if x == NaiveDate::MAX {
                break;
            }
        }
        x
    }

    /// The `n`th working day after `d` (not counting `d`); `n` = 0 is `d` itself.
    pub fn add_working_days(&self, d: NaiveDate, n: u32) -> NaiveDate {
        let mut x = d;
        let mut left = n;
        while left > 0 {
            x = match x.succ_opt() {
                Some(y) => y,
                None => return NaiveDate::MAX,
            };
            if self.is_working_day(x) {
                left -= 1;
            }
        }
        x
    }

    /// Working days after `a` up to and including `b` (0 when `b` ≤ `a`).
    pub fn working_days_between(&self, a: NaiveDate, b: NaiveDate) -> u32 {
        if b <= a {
            return 0;
        }
        a.iter_days()
            .skip(1)
            .take_while(|d| *d <= b)
            .filter(|d| self.is_working_day(*d))
            .count() as u32
    }
}

/// The day in Asia/Shanghai (UTC+8, no daylight saving) at a Unix time.
pub fn shanghai_day(unix_secs: i64) -> NaiveDate {
    chrono::DateTime::from_timestamp(unix_secs + 8 * 3600, 0)
        .map(|t| t.date_naive())
        .unwrap_or(NaiveDate::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        day(s).unwrap()
    }

    #[test]
    fn the_builtin_calendar_has_its_holidays_and_make_up_days() {
        let c = Calendar::builtin();
        // National Day 2025: 1–8 October off; Sunday 28 September and Saturday 11 October worked.
        for x in ["2025-10-01", "2025-10-06", "2025-10-08"] {
            assert!(!c.is_working_day(d(x)), "{x}");
        }
        for x in ["2025-09-28", "2025-10-11", "2025-10-09"] {
            assert!(c.is_working_day(d(x)), "{x}");
        }
        // An ordinary weekend and weekday.
        assert!(!c.is_working_day(d("2025-03-08")));
        assert!(c.is_working_day(d("2025-03-10")));
        assert!(c.knows(2025) && !c.knows(2031));
    }

    #[test]
    fn working_day_arithmetic_skips_holidays_and_counts_make_up_days() {
        let c = Calendar::builtin();
        // Filed Tuesday 30 September 2025: the 3rd working day after is Friday 10 October (1–8 off, 9 on).
        assert_eq!(c.add_working_days(d("2025-09-30"), 1), d("2025-10-09"));
        assert_eq!(c.add_working_days(d("2025-09-30"), 2), d("2025-10-10"));
        assert_eq!(
            c.add_working_days(d("2025-09-30"), 3),
            d("2025-10-11"),
            "Saturday 11 October is worked"
        );
        assert_eq!(c.working_days_between(d("2025-09-30"), d("2025-10-11")), 3);
        assert_eq!(c.on_or_after(d("2025-10-04")), d("2025-10-09"));
        assert_eq!(c.add_working_days(d("2025-09-30"), 0), d("2025-09-30"));
    }

    #[test]
    fn a_bad_calendar_is_refused_with_the_day() {
        assert_eq!(
            Calendar::from_toml("[years.2025]\non = [\"2025-10-09\"]"),
            Err(CalendarError::NotWeekend {
                year: 2025,
                day: d("2025-10-09")
            })
        );
        assert!(matches!(
            Calendar::from_toml("[years.2025]\noff = [\"2024-12-31\"]"),
            Err(CalendarError::WrongYear { .. })
        ));
        assert!(Calendar::from_toml("[years.2025]\noff = [\"2025-13-01\"]").is_err());
    }

    #[test]
    fn the_day_in_shanghai_turns_at_16_utc() {
        // 2025-12-31T15:59:59Z is 23:59:59 in Shanghai; a second later it is 1 January.
        assert_eq!(shanghai_day(1_767_196_799), d("2025-12-31"));
        assert_eq!(shanghai_day(1_767_196_800), d("2026-01-01"));
    }
}
