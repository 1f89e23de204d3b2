//! Retention and publicity windows as data (`config/windows.toml`): whether a record is shown in a view
//! on a day, when its window opens and closes, and how a granted credit repair shortens it.

use crate::calendar::Calendar;
use crate::span::Span;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The public view (publicity).
    Public,
    /// The credit views: banks' reads and the credit models.
    Credit,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    #[serde(default)]
    pub eq: Option<String>,
    /// The field is one of these texts ...
    #[serde(default)]
    pub one_of: Vec<String>,
    /// ... or, with `or_missing`, the record does not have the field.
    #[serde(default)]
    pub or_missing: bool,
    /// Conditions that must hold as well.
    #[serde(default)]
    pub and: Vec<Condition>,
    #[serde(default)]
    pub gt: Option<f64>,
    #[serde(default)]
    pub ge: Option<f64>,
    #[serde(default)]
    pub lt: Option<f64>,
    #[serde(default)]
    pub le: Option<f64>,
}

impl Condition {
    fn holds(&self, fields: &Map<String, Value>) -> bool {
        self.own(fields) && self.and.iter().all(|c| c.holds(fields))
    }

    fn own(&self, fields: &Map<String, Value>) -> bool {
        let v = fields.get(&self.field).filter(|v| !v.is_null());
        if v.is_none() && self.or_missing {
            return true;
        }
        if let Some(eq) = &self.eq {
            return v.and_then(|v| v.as_str()) == Some(eq.as_str());
        }
        if !self.one_of.is_empty() {
            return v
                .and_then(|v| v.as_str())
                .is_some_and(|x| self.one_of.iter().any(|o| o == x));
        }
        if self.gt.is_none() && self.ge.is_none() && self.lt.is_none() && self.le.is_none() {
            return v.is_some();
        }
        let Some(x) = v.and_then(|v| v.as_f64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))) else {
            return false;
        };
        self.gt.is_none_or(|b| x > b)
            && self.ge.is_none_or(|b| x >= b)
            && self.lt.is_none_or(|b| x < b)
            && self.le.is_none_or(|b| x <= b)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    pub id: String,
    pub view: View,
    pub datasets: Vec<String>,
    #[serde(default)]
    pub any: Vec<Condition>,
    pub from: Vec<String>,
    #[serde(default)]
    pub keep: Option<Span>,
    #[serde(default)]
    pub until_field: Option<String>,
    #[serde(default)]
    pub repair_after: Option<Span>,
}

fn matches(pattern: &str, dataset: &str) -> bool {
    if let Some(p) = pattern.strip_suffix(".*") {
        dataset.strip_prefix(p).is_some_and(|r| r.starts_with('.'))
    } else if let Some(s) = pattern.strip_prefix("*.") {
        dataset.strip_suffix(s).is_some_and(|r| r.ends_with('.'))
    } else if let Some((a, b)) = pattern.split_once(".*.") {
        dataset.starts_with(&format!("{a}.")) && dataset.ends_with(&format!(".{b}"))
    } else {
        pattern == dataset
    }
}

fn date_of(v: Option<&Value>) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(v?.as_str()?.get(..10)?, "%Y-%m-%d").ok()
}

/// The last day of a period "YYYY", "YYYY-MM" or "YYYY-MM-DD".
pub fn period_end(p: &str) -> Option<NaiveDate> {
    let p = p.trim();
    match p.len() {
        4 => NaiveDate::from_ymd_opt(p.parse().ok()?, 12, 31),
        7 => {
            let first = NaiveDate::parse_from_str(&format!("{p}-01"), "%Y-%m-%d").ok()?;
            first.checked_add_months(chrono::Months::new(1))?.pred_opt()
        }
        _ => NaiveDate::parse_from_str(p.get(..10)?, "%Y-%m-%d").ok(),
    }
}

/// A record's window in a view.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shown {
    /// The window that decided.
    pub window: String,
    /// The record's own day (its date, else the last day of its period): it is shown from then.
    pub opens: Option<NaiveDate>,
    /// The day the window is counted from (`from`); none: the event has not ended, the window has no end.
    pub start: Option<NaiveDate>,
    /// The last day it is shown; none: no end.
    pub last_day: Option<NaiveDate>,
    /// The first day a credit repair may end it (none: not repairable).
    pub repairable_from: Option<NaiveDate>,
    /// The last day it would have been shown without the repair, when a repair ended it early.
    pub unrepaired_last_day: Option<NaiveDate>,
}

impl Shown {
    pub fn on(&self, day: NaiveDate) -> bool {
        self.opens.is_none_or(|o| day >= o) && self.last_day.is_none_or(|l| day <= l)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Windows {
    #[serde(rename = "window")]
    pub windows: Vec<Window>,
}

impl Windows {
    pub fn builtin() -> Windows {
        Windows::from_toml(include_str!("../config/windows.toml")).expect("the built-in windows parse (tested)")
    }

    pub fn from_toml(text: &str) -> Result<Windows, String> {
        let w: Windows = toml::from_str(text).map_err(|e| format!("windows: {e}"))?;
        for x in &w.windows {
            if x.from.is_empty() {
                return Err(format!("window {}: `from` names at least one field", x.id));
            }
            if x.keep.is_none() && x.until_field.is_none() {
                return Err(format!("window {}: needs `keep` or `until_field`", x.id));
            }
        }
        Ok(w)
    }

    /// When every window of `view` for `dataset` counts from the record's period alone (`from =
    /// ["period"]`, no end field): the length they keep it. A reader can then tell from the period, without
    /// reading the record, that its window has not ended yet.
    pub fn period_keep(&self, view: View, dataset: &str) -> Option<Span> {
        let mut keep = None;
        for w in self
            .windows
            .iter()
            .filter(|w| w.view == view && w.datasets.iter().any(|p| matches(p, dataset)))
        {
            if w.from != ["period"] || w.until_field.is_some() {
                return None;
            }
            match (keep, w.keep) {
                (None, Some(k)) => keep = Some(k),
                (Some(a), Some(b)) if a == b => {}
                _ => return None,
            }
        }
        keep
    }

    /// Whether any window of `view` could apply to `dataset` (a cheap test before parsing a record).
    pub fn concerns(&self, view: View, dataset: &str) -> bool {
        self.windows
            .iter()
            .any(|w| w.view == view && w.datasets.iter().any(|p| matches(p, dataset)))
    }

    /// The window of a record (`fields`, with its `period`) in `view`; none: shown without end. `repaired`:
    /// the day a credit repair of it was granted.
    pub fn of(
        &self,
        view: View,
        dataset: &str,
        fields: &Map<String, Value>,
        period: Option<&str>,
        repaired: Option<NaiveDate>,
        cal: &Calendar,
    ) -> Option<Shown> {
        let w = self.windows.iter().find(|w| {
            w.view == view
                && w.datasets.iter().any(|p| matches(p, dataset))
                && (w.any.is_empty() || w.any.iter().any(|c| c.holds(fields)))
        })?;
        let start = w.from.iter().find_map(|f| {
            if f == "period" {
                period.and_then(period_end)
            } else {
                date_of(fields.get(f))
            }
        });
        let opens = date_of(fields.get("date")).or_else(|| period.and_then(period_end));
        let own_end = w.until_field.as_ref().and_then(|f| date_of(fields.get(f)));
        let mut last_day = match (own_end, w.keep, start) {
            (Some(e), _, _) => Some(e),
            (None, Some(k), Some(s)) => Some(k.last_day(s, cal, false)),
            // No start date to count from: shown until the authority ends it.
            (None, _, _) => None,
        };
        // A repair may end the window once the minimum period is over: the day after its last day.
        let repairable_from = match (w.repair_after, start) {
            (Some(r), Some(s)) => r.last_day(s, cal, false).succ_opt(),
            _ => None,
        };
        let mut unrepaired = None;
        if let (Some(r), Some(from)) = (repaired, repairable_from) {
            // Shown up to the day before the repair takes effect.
            let ends = r.max(from).pred_opt().unwrap_or(r);
            if last_day.is_none_or(|l| ends < l) {
                unrepaired = Some(last_day);
                last_day = Some(ends);
            }
        }
        Some(Shown {
            window: w.id.clone(),
            opens,
            start,
            last_day,
            repairable_from,
            unrepaired_last_day: unrepaired.flatten(),
        })
    }

    /// Whether a record is shown in `view` on `day`.
    #[allow(clippy::too_many_arguments)]
    pub fn shown_on(
        &self,
        view: View,
        dataset: &str,
        fields: &Map<String, Value>,
        period: Option<&str>,
        repaired: Option<NaiveDate>,
        cal: &Calendar,
        day: NaiveDate,
    ) -> bool {
        self.of(view, dataset, fields, period, repaired, cal)
            .is_none_or(|s| s.last_day.is_none_or(|l| day <= l))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn rec(j: &str) -> Map<String, Value> {
        serde_json::from_str(j).unwrap()
    }

    /// Cases as data: view, dataset, record, period, repaired on, the last day expected (None: no end).
    #[allow(clippy::type_complexity)]
    #[rustfmt::skip]
    const CASES: &[(View, &str, &str, Option<&str>, Option<&str>, Option<&str>)] = &[
        // A warning and a small fine: 3 months; an ordinary fine: 3 years.
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","status":"warning"}"#, None, None, Some("2025-04-15")),
        (View::Public, "fire.penalties", r#"{"date":"2025-01-31","amount":5000}"#, None, None, Some("2025-04-30")),
        (View::Public, "eco.penalties", r#"{"date":"2024-02-29","amount":50000}"#, None, None, Some("2027-02-28")),
        // Serious (a large fine, or an order to suspend business however small the amount): 3 years.
        // Confiscation is not minor, however small; a small fine recorded as a fine is.
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","amount":5000,"status":"suspension"}"#, None, None, Some("2028-01-15")),
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","amount":5000,"status":"confiscation"}"#, None, None, Some("2028-01-15")),
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","amount":5000,"status":"fine"}"#, None, None, Some("2025-04-15")),
        // The authority's own end date wins.
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","amount":50000,"end_date":"2025-07-01"}"#, None, None, Some("2025-07-01")),
        // Repaired on 1 June 2025, 5 months after: shown to 31 May. Repaired after a month: held the full 3
        // months (to 15 April, the minimum's last day).
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","amount":50000}"#, None, Some("2025-06-01"), Some("2025-05-31")),
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","amount":50000}"#, None, Some("2025-02-15"), Some("2025-04-15")),
        // A serious penalty: a repair takes effect after 6 months at the earliest.
        (View::Public, "amr.penalties", r#"{"date":"2025-01-15","amount":2000000}"#, None, Some("2025-02-15"), Some("2025-07-15")),
        // A list entry: while on it; with no removal date, no end.
        (View::Public, "court.dishonest", r#"{"date":"2024-03-01","end_date":"2025-03-01"}"#, None, None, Some("2025-03-01")),
        (View::Public, "court.dishonest", r#"{"date":"2024-03-01"}"#, None, None, None),
        // Court cases: 5 years after their end; arrears not paid: no end.
        (View::Public, "court.cases", r#"{"date":"2019-05-01","end_date":"2020-06-30"}"#, None, None, Some("2025-06-30")),
        (View::Public, "tax.arrears", r#"{"date":"2010-03-01"}"#, None, None, None),
        // Credit views: 5 years after the event ends; a listing or arrears not ended has no end; a penalty
        // counts from its decision (not from the end of its publicity).
        (View::Credit, "court.dishonest", r#"{"date":"2018-03-01","end_date":"2019-03-01"}"#, None, None, Some("2024-03-01")),
        (View::Credit, "court.dishonest", r#"{"date":"2010-03-01"}"#, None, None, None),
        (View::Credit, "tax.arrears", r#"{"date":"2010-03-01"}"#, None, None, None),
        (View::Credit, "amr.penalties", r#"{"date":"2018-03-01","end_date":"2018-06-01"}"#, None, None, Some("2023-03-01")),
        (View::Credit, "lender.bank.loans", r#"{"overdue_days":95}"#, Some("2020-02"), None, Some("2025-02-28")),
        // Not negative: no window.
        (View::Credit, "lender.bank.loans", r#"{"overdue_days":0}"#, Some("2020-02"), None, None),
        (View::Public, "amr.registration", r#"{"date":"2010-01-01"}"#, None, None, None),
    ];

    #[test]
    fn windows_end_on_the_day_the_rules_say() {
        let (w, cal) = (Windows::builtin(), Calendar::builtin());
        for (view, ds, r, period, repaired, want) in CASES {
            let got = w
                .of(*view, ds, &rec(r), *period, repaired.map(d), &cal)
                .and_then(|s| s.last_day);
            assert_eq!(got, want.map(d), "{view:?} {ds} {r} repaired {repaired:?}");
            if let Some(last) = want.map(d) {
                let shown = |day| w.shown_on(*view, ds, &rec(r), *period, repaired.map(d), &cal, day);
                assert!(shown(last), "shown on its last day");
                assert!(!shown(last.succ_opt().unwrap()), "gone the day after");
            }
        }
    }

    #[test]
    fn patterns_and_bad_files() {
        assert!(matches("*.penalties", "amr.penalties"));
        assert!(!matches("*.penalties", "amrpenalties"));
        assert!(matches("court.*", "court.cases"));
        assert!(matches("lender.*.loans", "lender.bank.loans"));
        assert!(!matches("lender.*.loans", "lender.bank.guarantees"));
        assert!(Windows::from_toml("[[window]]\nid='x'\nview='public'\ndatasets=['a']\nfrom=['date']").is_err());
        assert_eq!(period_end("2024-02"), Some(d("2024-02-29")));
        assert_eq!(period_end("2023"), Some(d("2023-12-31")));
    }
}
