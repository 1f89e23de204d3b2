//! The live state of a firm between full runs, and the events a change of it makes (the real-time path:
//! pushed records → the firm rescored → each change of its warnings, colour or grade an event). The kinds are
//! the full run's (`run::CreditEvent`): warning_raised, warning_cleared, warning_colour, colour, grade.

use crate::run::CreditEvent;
use crate::score::FirmScore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// What subscribers are told about: a firm's warnings (rule → colour), colour, grade and PD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub warnings: BTreeMap<u32, String>,
    pub colour: Option<String>,
    pub grade: String,
    pub pd: f64,
}

impl LiveState {
    pub fn of(s: &FirmScore) -> LiveState {
        LiveState {
            warnings: s
                .warnings
                .iter()
                .map(|w| (w.rule, w.colour.key().to_string()))
                .collect(),
            colour: s.colour.map(|c| c.key().to_string()),
            grade: s.grade.clone(),
            pd: s.pd,
        }
    }
}

/// A stable event id: the same change from the same cause (a pushed batch) is the same event, so a recompute
/// repeated after a crash makes no new ids.
pub fn event_id(uscc: &str, cause: &str, kind: &str, rule: Option<u32>, before: &str, after: &str) -> String {
    let h = Sha256::digest(format!(
        "{uscc}\u{1f}{cause}\u{1f}{kind}\u{1f}{rule:?}\u{1f}{before}\u{1f}{after}"
    ));
    h[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The events from `before` to `after` of `uscc`, dated `date`, caused by `cause`; none when nothing changed.
pub fn transitions(uscc: &str, date: &str, cause: &str, before: &LiveState, after: &LiveState) -> Vec<CreditEvent> {
    let mut out = Vec::new();
    let mut ev = |kind: &str, rule: Option<u32>, b: &str, a: &str| {
        out.push(CreditEvent {
            id: event_id(uscc, cause, kind, rule, b, a),
            uscc: uscc.to_string(),
            date: date.to_string(),
            kind: kind.to_string(),
            rule,
            before: b.to_string(),
            after: a.to_string(),
        })
    };
    for (rule, c) in &before.warnings {
        match after.warnings.get(rule) {
            None => ev("warning_cleared", Some(*rule), c, ""),
            Some(n) if n != c => ev("warning_colour", Some(*rule), c, n),
            _ => {}
        }
    }
    for (rule, c) in &after.warnings {
        if !before.warnings.contains_key(rule) {
            ev("warning_raised", Some(*rule), "", c);
        }
    }
    if before.colour != after.colour {
        let k = |c: &Option<String>| c.clone().unwrap_or_else(|| "none".into());
        ev("colour", None, &k(&before.colour), &k(&after.colour));
    }
    if before.grade != after.grade && !before.grade.is_empty() && !after.grade.is_empty() {
        ev("grade", None, &before.grade, &after.grade);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(ws: &[(u32, &str)], colour: Option<&str>, grade: &str) -> LiveState {
        LiveState {
            warnings: ws.iter().map(|(r, c)| (*r, c.to_string())).collect(),
            colour: colour.map(String::from),
            grade: grade.into(),
            pd: 0.01,
        }
    }

    #[test]
    fn each_change_is_one_event_and_no_change_none() {
        let a = st(&[(3, "yellow"), (7, "blue")], Some("yellow"), "BBB");
        assert!(transitions("f", "2026-02-01", "b1", &a, &a).is_empty());
        let b = st(&[(3, "red"), (9, "blue")], Some("red"), "C");
        let kinds: Vec<(String, Option<u32>)> = transitions("f", "2026-02-01", "b1", &a, &b)
            .into_iter()
            .map(|e| (e.kind, e.rule))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("warning_colour".into(), Some(3)),
                ("warning_cleared".into(), Some(7)),
                ("warning_raised".into(), Some(9)),
                ("colour".into(), None),
                ("grade".into(), None),
            ]
        );
    }

    #[test]
    fn ids_are_stable_per_cause() {
        let a = st(&[], None, "A");
        let b = st(&[(1, "red")], Some("red"), "C");
        let x = transitions("f", "d", "b1", &a, &b);
        assert_eq!(
            x,
            transitions("f", "d", "b1", &a, &b),
            "the same recompute, the same ids"
        );
        let y = transitions("f", "d", "b2", &a, &b);
        assert!(x.iter().zip(&y).all(|(p, q)| p.id != q.id), "another cause, other ids");
    }
}
