//! The audit log: append-only, hash-chained, one row per read of non-public data, per write, per login (and
//! failed login). A row is committed before the response it records is sent: handlers `record` and await the
//! commit. Rows are committed in groups: one writer thread takes every row waiting, chains them
//! (`hash = SHA-256(prev_hash, the row's columns)`) and writes them in one transaction, then answers each
//! waiting request. A failed commit fails the requests that waited on it (they answer 503, never unlogged).
//!
//! The sequence and the chain's head are read from the store when the writer starts. When another process
//! writes the same store's log, a group's insert fails on the sequence key (nothing of it is written); the
//! writer then reads the head again and chains the group after it, so the chain never forks.

use crate::Error;
use sha2::{Digest, Sha256};
use std::sync::mpsc;
use xinyong_store::pool::Pool;
use xinyong_store::rows::{Row, RowOp, RowQuery, Value};
use xinyong_store::Store;

/// One event to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub user_id: String,
    pub role: String,
    pub org: String,
    /// `login`, `login_failed`, `logout`, `read`, `write`.
    pub action: String,
    pub uscc: Option<String>,
    /// What was read or written (a route, an object).
    pub target: String,
    /// Why the read was allowed: `own`, `regulator`, `authorisation:ID`, `borrower:SOURCE`.
    pub basis: Option<String>,
    pub address: String,
}

/// The hash of a row given the previous row's hash (the genesis is 64 zeros).
pub fn chain_hash(prev: &str, seq: i64, at: &str, e: &Entry) -> String {
    // Each field length-prefixed (and absent fields marked apart from any text), so that no edit can move text
    // from one column to the next without changing the hash.
    let mut h = Sha256::new();
    let mut field = |v: Option<&str>| match v {
        Some(t) => {
            h.update([1u8]);
            h.update((t.len() as u64).to_be_bytes());
            h.update(t.as_bytes());
        }
        None => h.update([0u8]),
    };
    for part in [
        Some(prev),
        Some(seq.to_string().as_str()),
        Some(at),
        Some(e.user_id.as_str()),
        Some(e.role.as_str()),
        Some(e.org.as_str()),
        Some(e.action.as_str()),
        e.uscc.as_deref(),
        Some(e.target.as_str()),
        e.basis.as_deref(),
        Some(e.address.as_str()),
    ] {
        field(part);
    }
    hex::encode(h.finalize())
}

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn entry_of(r: &Row) -> Option<(i64, String, Entry, String, String)> {
    let s = |i: usize| r.get(i).and_then(Value::as_str).map(String::from);
    Some((
        r.first()?.as_int()?,
        s(1)?,
        Entry {
            user_id: s(2)?,
            role: s(3)?,
            org: s(4)?,
            action: s(5)?,
            uscc: s(6),
            target: s(7)?,
            basis: s(8),
            address: s(9)?,
        },
        s(10)?,
        s(11)?,
    ))
}

/// A stored row of the log.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LogRow {
    pub seq: i64,
    pub at: String,
    pub user_id: String,
    pub role: String,
    pub org: String,
    pub action: String,
    pub uscc: Option<String>,
    pub target: String,
    pub basis: Option<String>,
}

/// The log's rows about a firm, newest first (at most `limit`).
pub fn of_firm(store: &dyn Store, uscc: &str, limit: u64) -> Result<Vec<LogRow>, Error> {
    let rows = store.rows(&RowQuery::all("audit_log").eq("uscc", Value::text(uscc)).last(limit))?;
    Ok(rows
        .iter()
        .filter_map(entry_of)
        .map(|(seq, at, e, _, _)| LogRow {
            seq,
            at,
            user_id: e.user_id,
            role: e.role,
            org: e.org,
            action: e.action,
            uscc: e.uscc,
            target: e.target,
            basis: e.basis,
        })
        .collect())
}

/// Checks the whole chain: every row's hash from its predecessor's; returns the rows checked, or the first
/// sequence number that breaks it.
pub fn verify(store: &dyn Store) -> Result<u64, String> {
    let rows = store.rows(&RowQuery::all("audit_log")).map_err(|e| e.to_string())?;
    let mut prev = GENESIS.to_string();
    let mut n = 0;
    for r in &rows {
        let Some((seq, at, e, p, h)) = entry_of(r) else {
            return Err(format!("a malformed row: {r:?}"));
        };
        if p != prev || chain_hash(&prev, seq, &at, &e) != h {
            return Err(format!("the chain breaks at row {seq}"));
        }
        prev = h;
        n += 1;
    }
    Ok(n)
}

/// The last row's sequence number and hash (0 and the genesis for an empty log).
fn head_of(pool: &Pool) -> Result<(i64, String), String> {
    let store = pool.get().map_err(|e| e.to_string())?;
    let last = store
        .rows(&RowQuery::all("audit_log").last(1))
        .map_err(|e| e.to_string())?;
    Ok(match last.first().and_then(entry_of) {
        Some((s, _, _, _, h)) => (s, h),
        None => (0, GENESIS.to_string()),
    })
}

/// The rows of a group, chained after (`seq`, `head`), all stamped `at`; and the new head.
fn chain(group: &[(Entry, Waiter)], seq: i64, head: &str, at: &str) -> (Vec<RowOp>, String) {
    let mut h = head.to_string();
    let ops = group
        .iter()
        .enumerate()
        .map(|(i, (e, _))| {
            let s = seq + 1 + i as i64;
            let hash = chain_hash(&h, s, at, e);
            let row = vec![
                Value::Int(s),
                Value::text(at),
                Value::text(&e.user_id),
                Value::text(&e.role),
                Value::text(&e.org),
                Value::text(&e.action),
                Value::opt_text(e.uscc.clone()),
                Value::text(&e.target),
                Value::opt_text(e.basis.clone()),
                Value::text(&e.address),
                Value::text(&h),
                Value::text(&hash),
            ];
            h = hash;
            RowOp::Insert {
                table: "audit_log",
                row,
            }
        })
        .collect();
    (ops, h)
}

type Waiter = tokio::sync::oneshot::Sender<Result<i64, String>>;

/// The handle requests record through (cheap to clone).
#[derive(Clone)]
pub struct AuditLog {
    tx: mpsc::Sender<(Entry, Waiter)>,
}

impl AuditLog {
    /// Starts the writer thread over `pool`: reads the chain's head, then commits whatever waits, in groups.
    pub fn start(pool: Pool, clock: fn() -> String) -> Result<AuditLog, Error> {
        let (mut seq, mut head) = head_of(&pool).map_err(Error::Internal)?;
        let (tx, rx) = mpsc::channel::<(Entry, Waiter)>();
        std::thread::Builder::new()
            .name("audit-log".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    while group.len() < 512 {
                        match rx.try_recv() {
                            Ok(x) => group.push(x),
                            Err(_) => break,
                        }
                    }
                    let mut outcome = Err(String::new());
                    for attempt in 0..5 {
                        if attempt > 0 {
                            // Another writer (another server process on the same store) took these sequence
                            // numbers: chain after its rows instead.
                            match head_of(&pool) {
                                Ok(x) => (seq, head) = x,
                                Err(e) => {
                                    outcome = Err(e);
                                    continue;
                                }
                            }
                        }
                        let (ops, last) = chain(&group, seq, &head, &clock());
                        let written = pool
                            .get()
                            .map_err(|e| e.to_string())
                            .and_then(|mut store| store.apply_rows(&ops).map_err(|e| e.to_string()));
                        match written {
                            Ok(()) => {
                                let first = seq + 1;
                                (seq, head) = (seq + group.len() as i64, last);
                                outcome = Ok(first);
                                break;
                            }
                            Err(e) => outcome = Err(e),
                        }
                    }
                    match outcome {
                        Ok(first) => {
                            for (i, (_, w)) in group.into_iter().enumerate() {
                                let _ = w.send(Ok(first + i as i64));
                            }
                        }
                        Err(e) => {
                            eprintln!("xinyong serve: the audit log could not be written: {e}");
                            for (_, w) in group {
                                let _ = w.send(Err(e.clone()));
                            }
                        }
                    }
                }
            })
            .map_err(|e| Error::Internal(format!("starting the audit log writer: {e}")))?;
        Ok(AuditLog { tx })
    }

    /// Records many entries (one request's reads of several firms) and waits until all are committed; they go
    /// to the writer together, so they usually share one commit.
    pub async fn record_many(&self, entries: Vec<Entry>) -> Result<(), Error> {
        let mut waits = Vec::with_capacity(entries.len());
        for e in entries {
            let (w, r) = tokio::sync::oneshot::channel();
            self.tx
                .send((e, w))
                .map_err(|_| Error::Internal("the audit log writer has stopped".into()))?;
            waits.push(r);
        }
        for r in waits {
            match r.await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    return Err(Error::Store(xinyong_store::StoreError::Backend(format!(
                        "audit log: {e}"
                    ))))
                }
                Err(_) => return Err(Error::Internal("the audit log writer has stopped".into())),
            }
        }
        Ok(())
    }

    /// Records `e` and waits until it is committed; returns its sequence number.
    pub async fn record(&self, e: Entry) -> Result<i64, Error> {
        let (w, r) = tokio::sync::oneshot::channel();
        self.tx
            .send((e, w))
            .map_err(|_| Error::Internal("the audit log writer has stopped".into()))?;
        match r.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(e)) => Err(Error::Store(xinyong_store::StoreError::Backend(format!(
                "audit log: {e}"
            )))),
            Err(_) => Err(Error::Internal("the audit log writer has stopped".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(user: &str, role: &str, uscc: Option<&str>) -> Entry {
        Entry {
            user_id: user.into(),
            role: role.into(),
            org: String::new(),
            action: "read".into(),
            uscc: uscc.map(String::from),
            target: "/x".into(),
            basis: None,
            address: "local".into(),
        }
    }

    #[test]
    fn moving_text_between_fields_or_absent_for_empty_changes_the_hash() {
        let h = |x: &Entry| chain_hash(GENESIS, 1, "t", x);
        assert_ne!(h(&e("ab", "c", None)), h(&e("a", "bc", None)));
        assert_ne!(h(&e("a\u{1f}b", "c", None)), h(&e("a", "b\u{1f}c", None)));
        assert_ne!(h(&e("a", "b", None)), h(&e("a", "b", Some(""))));
        assert_ne!(h(&e("a", "b", None)), h(&e("a", "b", Some("\u{0}"))));
        assert_eq!(h(&e("a", "b", None)), h(&e("a", "b", None)));
    }
}
