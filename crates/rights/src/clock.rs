//! Objection clocks: regimes as data (`config/objections.toml`) and where an objection stands on a day.

use crate::calendar::Calendar;
use crate::span::Span;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regime {
    pub name_zh: String,
    pub name_en: String,
    pub answer: Span,
    #[serde(default)]
    pub extension: Option<Span>,
    pub remind: Span,
    pub escalate: Span,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Regimes {
    pub default: String,
    pub regimes: BTreeMap<String, Regime>,
}

impl Regimes {
    pub fn builtin() -> Regimes {
        Regimes::from_toml(include_str!("../config/objections.toml")).expect("the built-in regimes parse (tested)")
    }

    pub fn from_toml(text: &str) -> Result<Regimes, String> {
        let r: Regimes = toml::from_str(text).map_err(|e| format!("objection regimes: {e}"))?;
        if !r.regimes.contains_key(&r.default) {
            return Err(format!("objection regimes: the default {:?} is not defined", r.default));
        }
        Ok(r)
    }

    /// A regime by name (the default when `None`).
    pub fn get(&self, name: Option<&str>) -> Option<(&str, &Regime)> {
        let n = name.unwrap_or(&self.default);
        self.regimes.get_key_value(n).map(|(k, v)| (k.as_str(), v))
    }
}

/// An objection's days: received, reminded, escalated, due (and due after an extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub filed: NaiveDate,
    pub remind_on: NaiveDate,
    pub escalate_on: NaiveDate,
    pub due: NaiveDate,
}

/// Where an objection stands on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Within its time, before the reminder.
    Open,
    /// The department has been reminded.
    Reminded,
    /// Escalated to the regulator, still within the deadline.
    Escalated,
    /// Past its deadline, unanswered.
    Overdue,
    /// Answered by the deadline.
    Answered,
    /// Answered after the deadline.
    AnsweredLate,
}

impl Stage {
    pub fn key(self) -> &'static str {
        match self {
            Stage::Open => "open",
            Stage::Reminded => "reminded",
            Stage::Escalated => "escalated",
            Stage::Overdue => "overdue",
            Stage::Answered => "answered",
            Stage::AnsweredLate => "answered_late",
        }
    }
}

impl Regime {
    /// The clock of an objection received on `filed`; `extended`: its extension was granted.
    pub fn clock(&self, filed: NaiveDate, cal: &Calendar, extended: bool) -> Clock {
        // An extension runs from the end of the answering period itself, not from a deadline moved off a
        // rest day.
        let nominal = self.answer.last_day(filed, cal, false);
        let due = match (extended, self.extension) {
            (true, Some(x)) => x.last_day(nominal, cal, true),
            _ => self.answer.last_day(filed, cal, true),
        };
        // Reminders and escalation never come after the deadline.
        let remind_on = self.remind.last_day(filed, cal, false).min(due);
        let escalate_on = self.escalate.last_day(filed, cal, false).min(due).max(remind_on);
        Clock {
            filed,
            remind_on,
            escalate_on,
            due,
        }
    }
}

impl Clock {
    /// The stage on `today`, answered on `answered` (if it has been).
    pub fn stage(&self, today: NaiveDate, answered: Option<NaiveDate>) -> Stage {
        match answered {
            Some(a) if a <= today => {
                if a <= self.due {
                    Stage::Answered
                } else {
                    Stage::AnsweredLate
                }
            }
            _ if today > self.due => Stage::Overdue,
            _ if today >= self.escalate_on => Stage::Escalated,
            _ if today >= self.remind_on => Stage::Reminded,
            _ => Stage::Open,
        }
    }

    /// Calendar days from receipt to `answered` (the turnaround).
    pub fn days_to(&self, answered: NaiveDate) -> i64 {
        (answered - self.filed).num_days()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn the_builtin_regimes_parse_and_a_bad_default_is_refused() {
        let r = Regimes::builtin();
        assert_eq!(r.get(None).unwrap().0, "credit_reporting");
        assert!(r.get(Some("gdpr")).is_some());
        assert!(Regimes::from_toml("default = \"x\"\n[regimes]").is_err());
    }

    #[test]
    fn a_twenty_day_clock_with_its_reminder_escalation_and_stages() {
        let cal = Calendar::builtin();
        let (_, reg) = Regimes::builtin()
            .get(None)
            .map(|(n, r)| (n.to_string(), r.clone()))
            .unwrap();
        // Received Friday 12 September 2025: day 15 is 27 September; day 20 is 2 October, a holiday, so the
        // answer is due Thursday 9 October.
        let c = reg.clock(d("2025-09-12"), &cal, false);
        assert_eq!(
            (c.remind_on, c.escalate_on, c.due),
            (d("2025-09-27"), d("2025-09-27"), d("2025-10-09"))
        );
        assert_eq!(c.stage(d("2025-09-26"), None), Stage::Open);
        assert_eq!(c.stage(d("2025-09-27"), None), Stage::Escalated);
        assert_eq!(c.stage(d("2025-10-09"), None), Stage::Escalated);
        assert_eq!(c.stage(d("2025-10-10"), None), Stage::Overdue);
        assert_eq!(c.stage(d("2025-10-10"), Some(d("2025-10-09"))), Stage::Answered);
        assert_eq!(c.stage(d("2025-10-11"), Some(d("2025-10-10"))), Stage::AnsweredLate);
        // Before its answer day, an answer recorded for later does not count yet.
        assert_eq!(c.stage(d("2025-09-20"), Some(d("2025-09-25"))), Stage::Open);
    }

    #[test]
    fn extensions_and_month_regimes() {
        let cal = Calendar::builtin();
        let r = Regimes::builtin();
        let gdpr = &r.regimes["gdpr"];
        // One month from 31 January 2025 is 28 February (a Friday); two more: 28 April (a Monday).
        assert_eq!(gdpr.clock(d("2025-01-31"), &cal, false).due, d("2025-02-28"));
        assert_eq!(gdpr.clock(d("2025-01-31"), &cal, true).due, d("2025-04-28"));
        let fcra = &r.regimes["fcra"];
        let c = fcra.clock(d("2025-03-03"), &cal, true);
        assert_eq!(c.due, d("2025-04-17"), "30 days: 2 April; 15 more: 17 April");
    }
}
