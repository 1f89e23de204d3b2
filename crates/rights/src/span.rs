//! Lengths of time as the rules state them: "20d" (days), "10wd" (working days), "3m" (months), "5y"
//! (years), and when a period that starts on a day ends.
//!
//! How a period is counted (民法典 arts. 200–203): it starts the day after the event (the day of filing is
//! not counted); a period in months or years ends on the corresponding day of the last month (the month's
//! last day where there is none); for a procedural deadline, a last day that is a rest day moves to the
//! next working day. A period in working days counts working days only.

use crate::calendar::Calendar;
use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    Days(u32),
    WorkingDays(u32),
    Months(u32),
    Years(u32),
}

impl Span {
    pub fn parse(s: &str) -> Result<Span, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (n, unit) = s.split_at(split);
        let n: u32 = n
            .parse()
            .map_err(|_| format!("{s:?}: a number then d, wd, m or y (e.g. 20d)"))?;
        if n > 1200 {
            return Err(format!("{s:?}: too long"));
        }
        match unit {
            "d" => Ok(Span::Days(n)),
            "wd" => Ok(Span::WorkingDays(n)),
            "m" => Ok(Span::Months(n)),
            "y" => Ok(Span::Years(n)),
            _ => Err(format!(
                "{s:?}: the unit is d (days), wd (working days), m (months) or y (years)"
            )),
        }
    }

    /// The last day of a period of this length that starts after `start`. With `deadline`, a last day that
    /// is not a working day moves to the next working day (a deadline for an act); without, it stays (a
    /// window that simply runs out).
    pub fn last_day(self, start: NaiveDate, cal: &Calendar, deadline: bool) -> NaiveDate {
        let end = match self {
            Span::WorkingDays(n) => return cal.add_working_days(start, n),
            Span::Days(n) => start
                .checked_add_days(chrono::Days::new(n as u64))
                .unwrap_or(NaiveDate::MAX),
            Span::Months(n) => start.checked_add_months(Months::new(n)).unwrap_or(NaiveDate::MAX),
            Span::Years(n) => start
                .checked_add_months(Months::new(n.saturating_mul(12)))
                .unwrap_or(NaiveDate::MAX),
        };
        if deadline {
            cal.on_or_after(end)
        } else {
            end
        }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Span::Days(n) => write!(f, "{n}d"),
            Span::WorkingDays(n) => write!(f, "{n}wd"),
            Span::Months(n) => write!(f, "{n}m"),
            Span::Years(n) => write!(f, "{n}y"),
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Span, D::Error> {
        let s = String::deserialize(d)?;
        Span::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn spans_parse_and_print() {
        for s in ["20d", "10wd", "3m", "5y"] {
            assert_eq!(Span::parse(s).unwrap().to_string(), s);
        }
        for bad in ["", "d", "20", "20w", "-3d", "99999d"] {
            assert!(Span::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn periods_end_as_the_civil_code_counts_them() {
        let c = Calendar::builtin();
        // 20 days from Monday 3 March 2025: Sunday 23 March, so the deadline is Monday 24 March.
        assert_eq!(Span::Days(20).last_day(d("2025-03-03"), &c, false), d("2025-03-23"));
        assert_eq!(Span::Days(20).last_day(d("2025-03-03"), &c, true), d("2025-03-24"));
        // A month from 31 January ends on the last day of February.
        assert_eq!(Span::Months(1).last_day(d("2025-01-31"), &c, false), d("2025-02-28"));
        assert_eq!(Span::Years(1).last_day(d("2024-02-29"), &c, false), d("2025-02-28"));
        // 20 days from 20 September 2025 end on 10 October, inside National Day week's make-up: a
        // Friday, worked. From 12 September: 2 October, a holiday, so 9 October.
        assert_eq!(Span::Days(20).last_day(d("2025-09-20"), &c, true), d("2025-10-10"));
        assert_eq!(Span::Days(20).last_day(d("2025-09-12"), &c, true), d("2025-10-09"));
        assert_eq!(
            Span::WorkingDays(3).last_day(d("2025-09-30"), &c, true),
            d("2025-10-11")
        );
    }
}
