//! On a simulated clock over ten years (2020–2029), day by day: every window opens and closes on the exact
//! day an independent reckoning gives (none early, none late), and every objection is reminded, escalated
//! and due on its days, with the holidays and make-up working days of the calendar.

use chrono::{Datelike, NaiveDate};
use serde_json::{json, Map, Value};
use xinyong_rights::{Calendar, Regimes, Stage, View, Windows};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// The same day `n` months later, reckoned by hand: year and month as integers, the day clamped to the
/// month's length.
fn months_later(x: NaiveDate, n: u32) -> NaiveDate {
    let total = x.year() * 12 + x.month0() as i32 + n as i32;
    let (y, m) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
    let len = [
        31,
        if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) {
            29
        } else {
            28
        },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ][m as usize - 1];
    d(y, m, x.day().min(len))
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

/// A record, its dataset and view, and the first and last day it must be shown (None: no end).
struct Case {
    view: View,
    dataset: &'static str,
    fields: Map<String, Value>,
    period: Option<String>,
    repaired: Option<NaiveDate>,
    opens: NaiveDate,
    last: Option<NaiveDate>,
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut start = d(2020, 1, 1);
    let mut i = 0u32;
    while start < d(2028, 1, 1) {
        let s = start.format("%Y-%m-%d").to_string();
        // A warning (3 months), an ordinary fine (3 years), a serious one repaired after 8 months, an
        // ordinary one repaired after one month (held the full 3 months).
        out.push(Case {
            view: View::Public,
            dataset: "amr.penalties",
            fields: obj(json!({"date": s, "status": "warning"})),
            period: None,
            repaired: None,
            opens: start,
            last: Some(months_later(start, 3)),
        });
        out.push(Case {
            view: View::Public,
            dataset: "tax.penalties",
            fields: obj(json!({"date": s, "amount": 20000 + i})),
            period: None,
            repaired: None,
            opens: start,
            last: Some(months_later(start, 36)),
        });
        let r8 = months_later(start, 8);
        out.push(Case {
            view: View::Public,
            dataset: "eco.penalties",
            fields: obj(json!({"date": s, "amount": 3_000_000})),
            period: None,
            repaired: Some(r8),
            opens: start,
            last: Some(r8.pred_opt().unwrap()),
        });
        let r1 = months_later(start, 1);
        out.push(Case {
            view: View::Public,
            dataset: "fire.penalties",
            fields: obj(json!({"date": s, "amount": 80000})),
            period: None,
            repaired: Some(r1),
            opens: start,
            last: Some(months_later(start, 3)),
        });
        // A dishonest-debtor listing removed after 200 days: public while on; in credit views 5 years more.
        let end = start + chrono::Days::new(200);
        let e = end.format("%Y-%m-%d").to_string();
        out.push(Case {
            view: View::Public,
            dataset: "court.dishonest",
            fields: obj(json!({"date": s, "end_date": e})),
            period: None,
            repaired: None,
            opens: start,
            last: Some(end),
        });
        out.push(Case {
            view: View::Credit,
            dataset: "court.dishonest",
            fields: obj(json!({"date": s, "end_date": e})),
            period: None,
            repaired: None,
            opens: start,
            last: Some(months_later(end, 60)),
        });
        // A month 90 days overdue: in credit views until 5 years after the month's last day.
        let month_end = months_later(d(start.year(), start.month(), 1), 1).pred_opt().unwrap();
        out.push(Case {
            view: View::Credit,
            dataset: "lender.bank.loans",
            fields: obj(json!({"overdue_days": 90})),
            period: Some(start.format("%Y-%m").to_string()),
            repaired: None,
            opens: month_end,
            last: Some(months_later(month_end, 60)),
        });
        start = start + chrono::Days::new(11 + (i % 7) as u64);
        i += 1;
    }
    out
}

#[test]
fn every_window_opens_and_closes_on_its_day() {
    let (w, cal) = (Windows::builtin(), Calendar::builtin());
    let cases = cases();
    assert!(cases.len() > 1000);
    // Each case's window as the platform computes it, then day by day: the first and last day shown.
    let shown: Vec<_> = cases
        .iter()
        .map(|c| {
            w.of(c.view, c.dataset, &c.fields, c.period.as_deref(), c.repaired, &cal)
                .expect("a window")
        })
        .collect();
    let mut first: Vec<Option<NaiveDate>> = vec![None; cases.len()];
    let mut last: Vec<Option<NaiveDate>> = vec![None; cases.len()];
    let mut day = d(2020, 1, 1);
    let end = d(2034, 12, 31);
    while day <= end {
        for (i, s) in shown.iter().enumerate() {
            if s.on(day) {
                if first[i].is_none() {
                    first[i] = Some(day);
                }
                assert!(
                    last[i].is_none_or(|l| l.succ_opt() == Some(day)),
                    "case {i}: shown again after a gap"
                );
                last[i] = Some(day);
            }
        }
        day = day.succ_opt().unwrap();
    }
    for (i, c) in cases.iter().enumerate() {
        assert_eq!(first[i], Some(c.opens), "case {i} ({:?} {}) opens", c.view, c.dataset);
        assert_eq!(
            last[i], c.last,
            "case {i} ({:?} {} {:?}) closes",
            c.view, c.dataset, c.fields
        );
    }
}

#[test]
fn every_objection_is_reminded_escalated_and_due_on_its_days() {
    let cal = Calendar::builtin();
    let regimes = Regimes::builtin();
    let mut filed = d(2020, 1, 1);
    let mut n = 0u32;
    let (mut holiday_moves, mut answered_late) = (0u32, 0u32);
    while filed < d(2030, 1, 1) {
        for (name, reg) in &regimes.regimes {
            let c = reg.clock(filed, &cal, false);
            // The deadline, reckoned independently: the span's last day, then the first working day.
            let nominal = match reg.answer {
                xinyong_rights::Span::Days(k) => filed + chrono::Days::new(k as u64),
                xinyong_rights::Span::Months(k) => months_later(filed, k),
                xinyong_rights::Span::WorkingDays(k) => {
                    let mut x = filed;
                    let mut left = k;
                    while left > 0 {
                        x = x.succ_opt().unwrap();
                        if cal.is_working_day(x) {
                            left -= 1;
                        }
                    }
                    x
                }
                xinyong_rights::Span::Years(k) => months_later(filed, 12 * k),
            };
            let mut due = nominal;
            while !cal.is_working_day(due) {
                due = due.succ_opt().unwrap();
            }
            assert_eq!(c.due, due, "{name} filed {filed}");
            if due != nominal {
                holiday_moves += 1;
            }
            // A department that answers on a day that varies (some never): the daily ticker sees the
            // stages in order, escalation by the deadline, overdue from the day after.
            let answered = match n % 5 {
                0 => None,
                k => Some(filed + chrono::Days::new((k as u64) * 7)),
            };
            let mut day = filed;
            let (mut reminded, mut escalated, mut overdue) = (None, None, None);
            let mut prev = Stage::Open;
            let until = (due + chrono::Days::new(3)).max(answered.unwrap_or(filed) + chrono::Days::new(1));
            while day <= until {
                let s = c.stage(day, answered);
                match s {
                    Stage::Reminded if reminded.is_none() => reminded = Some(day),
                    Stage::Escalated if escalated.is_none() => escalated = Some(day),
                    Stage::Overdue if overdue.is_none() => overdue = Some(day),
                    _ => {}
                }
                let rank = |s: Stage| match s {
                    Stage::Open => 0,
                    Stage::Reminded => 1,
                    Stage::Escalated => 2,
                    Stage::Overdue => 3,
                    Stage::Answered | Stage::AnsweredLate => 4,
                };
                assert!(
                    rank(s) >= rank(prev),
                    "{name} filed {filed}: {prev:?} then {s:?} on {day}"
                );
                prev = s;
                day = day.succ_opt().unwrap();
            }
            match answered {
                Some(a) if a <= due => {
                    assert_eq!(prev, Stage::Answered, "{name} filed {filed}");
                    assert!(overdue.is_none());
                }
                Some(a) => {
                    answered_late += 1;
                    assert_eq!(prev, Stage::AnsweredLate);
                    let after = due.succ_opt().unwrap();
                    assert_eq!(
                        overdue,
                        (a > after).then_some(after),
                        "overdue from the day after, until answered"
                    );
                }
                None => {
                    assert_eq!(
                        overdue,
                        Some(due.succ_opt().unwrap()),
                        "{name} filed {filed}: overdue from the day after"
                    );
                    let esc = escalated.expect("escalated before its deadline");
                    assert!(esc <= due, "{name} filed {filed}: escalated {esc}, due {due}");
                    assert_eq!(esc, c.escalate_on);
                    if c.remind_on < c.escalate_on {
                        assert_eq!(reminded, Some(c.remind_on));
                    }
                }
            }
        }
        filed = filed.succ_opt().unwrap();
        n += 1;
    }
    assert!(n > 3600);
    assert!(holiday_moves > 500, "deadlines moved off rest days: {holiday_moves}");
    assert!(answered_late > 0);
}
