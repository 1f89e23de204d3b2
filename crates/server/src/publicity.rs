//! Publicity windows (compliance.md): how long a public record stays on the public view. A pure function of
//! the record and the day, so that the public page and its tests agree.
//!
//! - Administrative penalties (`*.penalties`): until the authority's own publicity end date (公示截止日期)
//!   when it gives one; else 3 months from the decision for a minor penalty (a warning, or a fine of at most
//!   [`MINOR_FINE_YUAN`]), 3 years for any other (SAMR rules, 2021).
//! - Lists (the abnormal-operation list, dishonest debtors, the NDRC's lists): while the firm is on the list
//!   (until its removal date).
//! - Other negative records shown to the public (court cases, tax arrears): 5 years from the end of the event
//!   (征信业管理条例 art. 16).
//! - Registration facts, registration changes and equity pledges: always.
//!
//! The threshold of a "lower amount" fine is set by each province; [`MINOR_FINE_YUAN`] is this deployment's
//! reading, not a national number.

use chrono::{Months, NaiveDate};
use serde_json::{Map, Value};

/// The largest fine (yuan) counted as minor for the 3-month window.
pub const MINOR_FINE_YUAN: f64 = 10_000.0;

/// Lists whose records are public while the firm is on them.
const LISTS: &[&str] = &["amr.abnormal_list", "court.dishonest", "ndrc.credit_lists"];

/// The last day `fields` (a record of `dataset`) is shown to the public; `None`: no end.
pub fn public_until(dataset: &str, fields: &Map<String, Value>) -> Option<String> {
    let date = |k: &str| {
        fields
            .get(k)
            .and_then(|v| v.as_str())
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    let end = date("end_date");
    let plus = |d: NaiveDate, months: u32| d.checked_add_months(Months::new(months)).unwrap_or(NaiveDate::MAX);
    let day = if dataset.ends_with(".penalties") {
        match (end, date("date")) {
            (Some(e), _) => Some(e),
            (None, Some(d)) => {
                let amount = fields.get("amount").and_then(|a| a.as_f64()).unwrap_or(0.0);
                let warning = fields.get("status").and_then(|s| s.as_str()) == Some("warning");
                let minor = warning || (amount > 0.0 && amount <= MINOR_FINE_YUAN);
                Some(plus(d, if minor { 3 } else { 36 }))
            }
            (None, None) => None,
        }
    } else if LISTS.contains(&dataset) {
        end
    } else if matches!(dataset, "court.cases" | "tax.arrears") {
        end.or(date("date")).map(|d| plus(d, 60))
    } else {
        None
    };
    day.map(|d| d.format("%Y-%m-%d").to_string())
}

/// Whether the record is shown to the public on `today` (YYYY-MM-DD).
pub fn is_public_on(dataset: &str, fields: &Map<String, Value>, today: &str) -> bool {
    public_until(dataset, fields).is_none_or(|until| today <= until.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cases as data: dataset, record, the last public day expected.
    const CASES: &[(&str, &str, Option<&str>)] = &[
        // A warning: 3 months.
        (
            "amr.penalties",
            r#"{"date":"2025-01-15","status":"warning"}"#,
            Some("2025-04-15"),
        ),
        // A small fine: 3 months; a large one: 3 years.
        (
            "fire.penalties",
            r#"{"date":"2025-01-31","amount":5000}"#,
            Some("2025-04-30"),
        ),
        (
            "eco.penalties",
            r#"{"date":"2025-01-31","amount":50000}"#,
            Some("2028-01-31"),
        ),
        // The authority's own end date wins.
        (
            "amr.penalties",
            r#"{"date":"2025-01-15","amount":50000,"end_date":"2025-06-30"}"#,
            Some("2025-06-30"),
        ),
        // A list: while on it.
        ("amr.abnormal_list", r#"{"date":"2024-03-01"}"#, None),
        (
            "court.dishonest",
            r#"{"date":"2024-03-01","end_date":"2025-03-01"}"#,
            Some("2025-03-01"),
        ),
        // Court cases: 5 years from the end of the event.
        ("court.cases", r#"{"date":"2020-02-29"}"#, Some("2025-02-28")),
        // Registration changes: always.
        ("amr.changes", r#"{"date":"2001-01-01"}"#, None),
        // No date: nothing to count from.
        ("safety.penalties", r#"{"amount":1}"#, None),
    ];

    #[test]
    fn windows() {
        for (ds, rec, want) in CASES {
            let m: Map<String, Value> = serde_json::from_str(rec).unwrap();
            assert_eq!(public_until(ds, &m).as_deref(), *want, "{ds} {rec}");
        }
    }

    #[test]
    fn the_last_day_is_still_public() {
        let m: Map<String, Value> = serde_json::from_str(r#"{"date":"2025-01-15","status":"warning"}"#).unwrap();
        assert!(is_public_on("amr.penalties", &m, "2025-04-15"));
        assert!(!is_public_on("amr.penalties", &m, "2025-04-16"));
        assert!(is_public_on("amr.abnormal_list", &m, "2099-01-01"));
    }
}
