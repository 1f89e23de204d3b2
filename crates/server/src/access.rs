//! Who may read a firm's non-public record, and why (../shared/design/compliance.md): the firm itself; the
//! regulator (analyst); a bank while the firm's authorisation of it is live (not revoked, not expired) or
//! while the firm borrows from it (a loan or guarantee record of that lender in the last three months of the
//! data). Every other reader — the public, a department, an administrator, any other bank — sees the public
//! record only. Decided afresh on every request from the store, so a revocation holds on the very next one.

use crate::auth::{Principal, Role};
use crate::Error;
use serde::Serialize;
use std::collections::HashSet;
use xinyong_store::rows::{Row, RowOp, RowQuery, Value};
use xinyong_store::Store;

/// Why a read of non-public data is allowed; recorded in the audit log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Basis {
    Own,
    Regulator,
    Authorisation(String),
    Borrower(String),
}

impl Basis {
    pub fn code(&self) -> String {
        match self {
            Basis::Own => "own".into(),
            Basis::Regulator => "regulator".into(),
            Basis::Authorisation(id) => format!("authorisation:{id}"),
            Basis::Borrower(src) => format!("borrower:{src}"),
        }
    }
}

/// A firm's authorisation of a bank.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Authorisation {
    pub auth_id: String,
    pub uscc: String,
    pub bank: String,
    pub purpose: String,
    pub scope: String,
    pub granted_at: String,
    pub granted_by: String,
    pub expires_on: String,
    pub revoked_at: Option<String>,
    pub revoked_by: Option<String>,
}

impl Authorisation {
    fn from_row(r: &Row) -> Option<Authorisation> {
        let s = |i: usize| r.get(i).and_then(Value::as_str).map(String::from);
        Some(Authorisation {
            auth_id: s(0)?,
            uscc: s(1)?,
            bank: s(2)?,
            purpose: s(3)?,
            scope: s(4)?,
            granted_at: s(5)?,
            granted_by: s(6)?,
            expires_on: s(7)?,
            revoked_at: s(8),
            revoked_by: s(9),
        })
    }

    fn row(&self) -> Row {
        vec![
            Value::text(&self.auth_id),
            Value::text(&self.uscc),
            Value::text(&self.bank),
            Value::text(&self.purpose),
            Value::text(&self.scope),
            Value::text(&self.granted_at),
            Value::text(&self.granted_by),
            Value::text(&self.expires_on),
            Value::opt_text(self.revoked_at.clone()),
            Value::opt_text(self.revoked_by.clone()),
        ]
    }

    /// Live on `today` (YYYY-MM-DD): not revoked, not past its last day.
    pub fn live(&self, today: &str) -> bool {
        self.revoked_at.is_none() && self.expires_on.as_str() >= today
    }
}

/// A firm's authorisations (all of them, newest grant last), or a bank's (`by_bank`).
pub fn authorisations(store: &dyn Store, column: &'static str, value: &str) -> Result<Vec<Authorisation>, Error> {
    let mut v: Vec<Authorisation> = store
        .rows(&RowQuery::all("authorisations").eq(column, Value::text(value)))?
        .iter()
        .filter_map(Authorisation::from_row)
        .collect();
    v.sort_by(|a, b| (&a.granted_at, &a.auth_id).cmp(&(&b.granted_at, &b.auth_id)));
    Ok(v)
}

/// An authorisation as a stored row (for writes that go with others in one transaction).
pub fn authorisation_row(a: &Authorisation) -> Row {
    a.row()
}

pub fn put_authorisation(store: &mut dyn Store, a: &Authorisation) -> Result<(), Error> {
    Ok(store.apply_rows(&[RowOp::Put {
        table: "authorisations",
        row: a.row(),
    }])?)
}

/// Datasets whose records make a firm a lender's borrower (or guaranteed client).
fn is_credit_dataset(ds: &str) -> bool {
    ds.starts_with("lender.") && (ds.ends_with(".loans") || ds == "lender.gc.guarantees")
}

/// The month three months before `month` (YYYY-MM).
fn months_before(month: &str, n: i32) -> String {
    let (y, m) = (
        month.get(..4).and_then(|y| y.parse::<i32>().ok()).unwrap_or(0),
        month.get(5..7).and_then(|m| m.parse::<i32>().ok()).unwrap_or(1),
    );
    let k = y * 12 + (m - 1) - n;
    format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1)
}

/// Whether (and why) `who` may read `uscc`'s non-public record on `today`; `data_month` is the month of the
/// data's cut-off (a loan record at most three months older makes a current borrower).
pub fn firm_access(
    store: &dyn Store,
    caches: &crate::cache::Caches,
    who: Option<&Principal>,
    uscc: &str,
    today: &str,
    data_month: &str,
) -> Result<Option<Basis>, Error> {
    let Some(p) = who else { return Ok(None) };
    Ok(match p.role {
        Role::Enterprise if p.org == uscc => Some(Basis::Own),
        Role::Regulator => Some(Basis::Regulator),
        Role::Bank => {
            if let Some(a) = authorisations(store, "uscc", uscc)?
                .into_iter()
                .find(|a| a.bank == p.org && a.live(today))
            {
                Some(Basis::Authorisation(a.auth_id))
            } else {
                let since = months_before(data_month, 3);
                let borrowers = caches.borrowers(&p.org, &since, || borrowers(store, &p.org, &since))?;
                borrowers.contains(uscc).then(|| Basis::Borrower(p.org.clone()))
            }
        }
        _ => None,
    })
}

/// The firms `bank` holds a current loan or guarantee record of, for a month from `since` on: its own
/// deliveries of the credit datasets, as stored now.
pub fn borrowers(store: &dyn Store, bank: &str, since: &str) -> Result<HashSet<String>, Error> {
    let mut out = HashSet::new();
    for ds in crate::pages::registry()?
        .datasets
        .iter()
        .filter(|d| is_credit_dataset(&d.id))
    {
        for f in store.current_facts(bank, &ds.id)? {
            if f.period.as_deref().is_some_and(|m| m >= since) {
                out.insert(f.uscc);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_back() {
        assert_eq!(months_before("2026-02", 3), "2025-11");
        assert_eq!(months_before("2026-12", 3), "2026-09");
    }

    #[test]
    fn an_authorisation_is_live_until_its_last_day_or_revocation() {
        let mut a = Authorisation {
            auth_id: "a".into(),
            uscc: "u".into(),
            bank: "bank01".into(),
            purpose: "loan".into(),
            scope: "non-public".into(),
            granted_at: "2026-01-01T00:00:00Z".into(),
            granted_by: "x".into(),
            expires_on: "2026-03-31".into(),
            revoked_at: None,
            revoked_by: None,
        };
        assert!(a.live("2026-03-31"));
        assert!(!a.live("2026-04-01"));
        a.revoked_at = Some("2026-02-01T00:00:00Z".into());
        assert!(!a.live("2026-02-02"));
    }
}
