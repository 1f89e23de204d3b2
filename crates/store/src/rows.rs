//! Tables defined once, as data: the web platform's accounts, sessions, authorisations, audit log and
//! subscriptions. Each table is a [`TableSpec`] (columns with SQL type, nullability and field class; the
//! key; secondary indexes; whether rows may change after they are written). The backends generate their
//! DDL and statements from the specs with the helpers here, export and import every spec'd table as
//! [`crate::Record::Row`], and the store trait offers a small generic row API over them
//! ([`crate::Store::apply_rows`], [`crate::Store::rows`]).
//!
//! A new table is a new entry in [`TABLES`]; both backends create it on open (`CREATE TABLE IF NOT
//! EXISTS`). Changing the columns of a released table needs a migration step in each backend.

use crate::{Result, StoreError};

/// A column's SQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    Int,
    Real,
    Text,
    Bytes,
}

/// Who may read a column (../shared/design/compliance.md): shown to the public; non-public data about a
/// firm (a bank reads it only under an authorisation or a loan); personal information about a person;
/// sensitive (secrets, never shown); internal to the platform's own working (ids, timestamps).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldClass {
    Public,
    NonPublic,
    Personal,
    Sensitive,
    Internal,
}

impl FieldClass {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldClass::Public => "public",
            FieldClass::NonPublic => "non-public",
            FieldClass::Personal => "personal",
            FieldClass::Sensitive => "sensitive",
            FieldClass::Internal => "internal",
        }
    }
}

/// One column.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub ty: SqlType,
    pub nullable: bool,
    pub class: FieldClass,
}

const fn col(name: &'static str, ty: SqlType, class: FieldClass) -> Column {
    Column {
        name,
        ty,
        nullable: false,
        class,
    }
}

const fn opt(name: &'static str, ty: SqlType, class: FieldClass) -> Column {
    Column {
        name,
        ty,
        nullable: true,
        class,
    }
}

/// One table.
#[derive(Debug)]
pub struct TableSpec {
    pub name: &'static str,
    pub doc: &'static str,
    pub columns: &'static [Column],
    /// The first `key` columns form the primary key (rows are read in key order).
    pub key: usize,
    /// Secondary indexes, by column names.
    pub indexes: &'static [&'static [&'static str]],
    /// Rows are only ever inserted: no replacement, no deletion.
    pub append_only: bool,
}

impl TableSpec {
    pub fn column(&self, name: &str) -> Result<(usize, &Column)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, c)| c.name == name)
            .ok_or_else(|| StoreError::Backend(format!("table {}: no column {name:?}", self.name)))
    }
}

use FieldClass::{Internal, NonPublic, Personal, Public, Sensitive};
use SqlType::{Bytes, Int, Real, Text};

/// The web platform's tables, in export order.
pub static TABLES: &[TableSpec] = &[
    TableSpec {
        name: "users",
        doc: "accounts: one per person; role and organisation (a bank's or department's source id, a firm's USCC)",
        columns: &[
            col("user_id", Text, Internal),
            col("role", Text, Internal),
            col("org", Text, Internal),
            col("display_name", Text, Personal),
            col("password_hash", Text, Sensitive),
            opt("totp_secret", Text, Sensitive),
            col("created_at", Text, Internal),
            col("disabled", Int, Internal),
        ],
        key: 1,
        indexes: &[],
        append_only: false,
    },
    TableSpec {
        name: "sessions",
        doc: "server-side sessions: only the SHA-256 of the cookie's token is stored",
        columns: &[
            col("token_hash", Text, Sensitive),
            col("user_id", Text, Internal),
            col("csrf", Text, Sensitive),
            col("created_at", Int, Internal),
            col("last_seen", Int, Internal),
            col("revoked", Int, Internal),
        ],
        key: 1,
        indexes: &[&["user_id"]],
        append_only: false,
    },
    TableSpec {
        name: "api_tokens",
        doc: "API tokens of banks' and departments' systems: only the SHA-256 of a token is stored",
        columns: &[
            col("token_hash", Text, Sensitive),
            col("token_id", Text, Internal),
            col("user_id", Text, Internal),
            col("label", Text, Internal),
            col("created_at", Text, Internal),
            col("revoked", Int, Internal),
        ],
        key: 1,
        indexes: &[&["user_id"], &["token_id"]],
        append_only: false,
    },
    TableSpec {
        name: "authorisations",
        doc: "a firm's authorisation of a bank to read its non-public data: purpose, scope, expiry, revocation",
        columns: &[
            col("auth_id", Text, Internal),
            col("uscc", Text, Public),
            col("bank", Text, Internal),
            col("purpose", Text, NonPublic),
            col("scope", Text, NonPublic),
            col("granted_at", Text, Internal),
            col("granted_by", Text, Internal),
            col("expires_on", Text, NonPublic),
            opt("revoked_at", Text, Internal),
            opt("revoked_by", Text, Internal),
        ],
        key: 1,
        indexes: &[&["uscc"], &["bank"]],
        append_only: false,
    },
    TableSpec {
        name: "audit_log",
        doc: "append-only, hash-chained: one row per read of non-public data, per write, per login",
        columns: &[
            col("seq", Int, Internal),
            col("at", Text, Internal),
            col("user_id", Text, Internal),
            col("role", Text, Internal),
            col("org", Text, Internal),
            col("action", Text, Internal),
            opt("uscc", Text, Public),
            col("target", Text, Internal),
            opt("basis", Text, Internal),
            col("address", Text, Personal),
            col("prev_hash", Text, Internal),
            col("hash", Text, Internal),
        ],
        key: 1,
        indexes: &[&["uscc", "seq"]],
        append_only: true,
    },
    TableSpec {
        name: "subscriptions",
        doc: "what a bank officer follows: a firm, its guarantee circle, an industry or a town",
        columns: &[
            col("user_id", Text, Internal),
            col("kind", Text, Internal),
            col("target", Text, Internal),
            col("created_at", Text, Internal),
        ],
        key: 3,
        indexes: &[],
        append_only: false,
    },
    TableSpec {
        name: "products",
        doc: "loan products a bank publishes, with the criteria that make a firm eligible",
        columns: &[
            col("product_id", Text, Internal),
            col("bank", Text, Public),
            col("name", Text, Public),
            col("max_amount", Real, Public),
            col("term_months", Int, Public),
            col("min_grade", Text, Public),
            col("max_pd", Real, Public),
            col("industries", Text, Public),
            col("townships", Text, Public),
            col("description", Text, Public),
            col("created_at", Text, Internal),
            col("created_by", Text, Internal),
            col("active", Int, Internal),
        ],
        key: 1,
        indexes: &[&["bank"]],
        append_only: false,
    },
    TableSpec {
        name: "applications",
        doc: "a firm's application for a product (with the authorisation it gave the bank) and the bank's decision",
        columns: &[
            col("app_id", Text, Internal),
            col("product_id", Text, Internal),
            col("uscc", Text, Public),
            col("bank", Text, Internal),
            col("amount", Real, NonPublic),
            col("purpose", Text, NonPublic),
            col("status", Text, NonPublic),
            col("auth_id", Text, Internal),
            col("created_at", Text, Internal),
            col("created_by", Text, Internal),
            opt("decided_at", Text, Internal),
            opt("decided_by", Text, Internal),
            opt("note", Text, NonPublic),
        ],
        key: 1,
        indexes: &[&["uscc"], &["bank"]],
        append_only: false,
    },
    TableSpec {
        name: "changes",
        doc: "maker-checker: a proposed change to a warning rule or the active model, approved by a second person",
        columns: &[
            col("change_id", Text, Internal),
            col("kind", Text, Internal),
            col("target", Text, Internal),
            col("payload", Text, Internal),
            col("reason", Text, Internal),
            col("proposed_by", Text, Internal),
            col("proposed_at", Text, Internal),
            col("status", Text, Internal),
            opt("decided_by", Text, Internal),
            opt("decided_at", Text, Internal),
            opt("note", Text, Internal),
        ],
        key: 1,
        indexes: &[&["status"]],
        append_only: false,
    },
    TableSpec {
        name: "settings",
        doc: "approved settings the scoring run applies (rule.ID.enabled, rule.ID.colour, model.active)",
        columns: &[
            col("key", Text, Internal),
            col("value", Text, Internal),
            col("change_id", Text, Internal),
            col("updated_at", Text, Internal),
        ],
        key: 1,
        indexes: &[],
        append_only: false,
    },
    TableSpec {
        name: "push_keys",
        doc: "a source's front-end machine keys: the HMAC secret its pushes are signed with (revocable)",
        columns: &[
            col("key_id", Text, Internal),
            col("source", Text, Internal),
            col("secret", Text, Sensitive),
            col("created_at", Text, Internal),
            opt("revoked_at", Text, Internal),
        ],
        key: 1,
        indexes: &[&["source"]],
        append_only: false,
    },
    TableSpec {
        name: "pushes",
        doc: "accepted pushes by idempotency key: a retry gets the same receipt and stores nothing again",
        columns: &[
            col("source", Text, Internal),
            col("idem_key", Text, Internal),
            col("received_at", Text, Internal),
            col("receipt", Text, Internal),
        ],
        key: 2,
        indexes: &[],
        append_only: false,
    },
    TableSpec {
        name: "firm_state",
        doc: "each firm's live warnings, colour and grade since the last full run (JSON), as the outbox last told",
        columns: &[
            col("uscc", Text, NonPublic),
            col("state", Text, NonPublic),
            col("cause", Text, Internal),
            col("updated_at", Text, Internal),
        ],
        key: 1,
        indexes: &[],
        append_only: false,
    },
    TableSpec {
        name: "outbox",
        doc: "credit events of the live path, in order: written with the state change that made them, delivered \
              from here to inboxes, event streams and webhooks",
        columns: &[
            col("seq", Int, Internal),
            col("event_id", Text, Internal),
            col("uscc", Text, NonPublic),
            col("date", Text, NonPublic),
            col("kind", Text, NonPublic),
            opt("rule", Int, NonPublic),
            col("before", Text, NonPublic),
            col("after", Text, NonPublic),
            col("cause", Text, Internal),
            col("created_at", Text, Internal),
        ],
        key: 1,
        indexes: &[&["event_id"], &["uscc"]],
        append_only: true,
    },
    TableSpec {
        name: "webhooks",
        doc: "an officer's webhook: where the live events it may read are posted, and its delivery cursor",
        columns: &[
            col("hook_id", Text, Internal),
            col("user_id", Text, Internal),
            col("url", Text, Internal),
            col("secret", Text, Sensitive),
            col("created_at", Text, Internal),
            col("last_seq", Int, Internal),
            col("attempts", Int, Internal),
            col("next_at", Int, Internal),
            opt("last_error", Text, Internal),
        ],
        key: 1,
        indexes: &[&["user_id"]],
        append_only: false,
    },
    TableSpec {
        name: "alert_marks",
        doc: "an officer's triage of an alert (handled, false alarm) by the alert's key, so it holds across recomputes",
        columns: &[
            col("user_id", Text, Internal),
            col("alert_key", Text, NonPublic),
            col("mark", Text, Internal),
            col("note", Text, Internal),
            col("marked_at", Text, Internal),
        ],
        key: 2,
        indexes: &[],
        append_only: false,
    },
    TableSpec {
        name: "objections",
        doc: "an objection (异议) to one stored fact: who filed it, its text and clock, the answer of the \
              department that supplied the fact, and the fact's corrected version if any",
        columns: &[
            col("objection_id", Text, Internal),
            col("uscc", Text, NonPublic),
            col("fact_id", Int, Internal),
            col("dataset", Text, Internal),
            col("source", Text, Internal),
            col("filer", Text, Internal),
            col("filer_kind", Text, Internal),
            col("person", Text, Personal),
            col("text", Text, NonPublic),
            col("regime", Text, Internal),
            col("filed_on", Text, Internal),
            col("filed_at", Text, Internal),
            col("extended", Int, Internal),
            col("stage", Text, Internal),
            opt("outcome", Text, Internal),
            opt("answer", Text, NonPublic),
            opt("answered_by", Text, Internal),
            opt("answered_on", Text, Internal),
            opt("new_fact", Int, Internal),
        ],
        key: 1,
        indexes: &[&["uscc"], &["source"]],
        append_only: false,
    },
    TableSpec {
        name: "objection_open",
        doc: "the open objection of a record (firm|source|dataset|key: every version of it), one at most (a \
              second filing fails on the key): written with the objection, deleted with its answer",
        columns: &[col("record", Text, Internal), col("objection_id", Text, Internal)],
        key: 1,
        indexes: &[],
        append_only: false,
    },
    TableSpec {
        name: "objection_files",
        doc: "the attachments of an objection or a credit repair application, as filed",
        columns: &[
            col("objection_id", Text, Internal),
            col("n", Int, Internal),
            col("name", Text, NonPublic),
            col("content_type", Text, Internal),
            col("sha256", Text, Internal),
            col("data", Bytes, NonPublic),
        ],
        key: 2,
        indexes: &[],
        append_only: true,
    },
    TableSpec {
        name: "objection_log",
        doc: "what happened to an objection or a repair application, in order: filed, reminded, escalated, \
              overdue, extended, answered (who, when, the day in Asia/Shanghai)",
        columns: &[
            col("objection_id", Text, Internal),
            col("n", Int, Internal),
            col("at", Text, Internal),
            col("day", Text, Internal),
            col("actor", Text, Internal),
            col("action", Text, Internal),
            col("note", Text, NonPublic),
        ],
        key: 2,
        indexes: &[],
        append_only: true,
    },
    TableSpec {
        name: "repairs",
        doc: "a credit repair (信用修复) application on a negative public record: the firm's account of what \
              it corrected, the review of the department that supplied the record, and the decision",
        columns: &[
            col("repair_id", Text, Internal),
            col("uscc", Text, NonPublic),
            col("fact_id", Int, Internal),
            col("dataset", Text, Internal),
            col("source", Text, Internal),
            col("applicant", Text, Internal),
            col("text", Text, NonPublic),
            col("filed_on", Text, Internal),
            col("filed_at", Text, Internal),
            col("state", Text, Internal),
            opt("answer", Text, NonPublic),
            opt("decided_by", Text, Internal),
            opt("decided_on", Text, Internal),
        ],
        key: 1,
        indexes: &[&["uscc"], &["source"]],
        append_only: false,
    },
];

/// The approved settings (`settings` table) as key → value.
pub fn settings(store: &dyn crate::Store) -> Result<std::collections::BTreeMap<String, String>> {
    Ok(store
        .rows(&RowQuery::all("settings"))?
        .into_iter()
        .filter_map(|r| Some((r.first()?.as_str()?.to_string(), r.get(1)?.as_str()?.to_string())))
        .collect())
}

/// Tables left out of exports and backups: live sessions are not carried to another store (their users log in
/// again), so a backup file holds no session secrets.
pub const NOT_EXPORTED: &[&str] = &["sessions"];

/// The spec'd tables an export covers, in order.
pub fn exported() -> impl Iterator<Item = &'static TableSpec> {
    TABLES.iter().filter(|t| !NOT_EXPORTED.contains(&t.name))
}

/// The spec of a table.
pub fn spec(table: &str) -> Result<&'static TableSpec> {
    TABLES
        .iter()
        .find(|t| t.name == table)
        .ok_or_else(|| StoreError::Backend(format!("no table {table:?} among the spec'd tables")))
}

/// A stored value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

impl Value {
    pub fn text(s: impl Into<String>) -> Value {
        Value::Text(s.into())
    }
    pub fn opt_text(s: Option<impl Into<String>>) -> Value {
        s.map_or(Value::Null, |s| Value::Text(s.into()))
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
    fn fits(&self, c: &Column) -> bool {
        matches!(
            (self, c.ty),
            (Value::Int(_), SqlType::Int)
                | (Value::Real(_), SqlType::Real)
                | (Value::Text(_), SqlType::Text)
                | (Value::Bytes(_), SqlType::Bytes)
        ) || (matches!(self, Value::Null) && c.nullable)
    }
}

/// A row: one value per column, in the spec's column order.
pub type Row = Vec<Value>;

/// A change to the spec'd tables. [`crate::Store::apply_rows`] applies a list of them in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOp {
    /// Inserts a row; an existing key is an error (the only write an append-only table takes).
    Insert { table: &'static str, row: Row },
    /// Inserts or replaces the row with the same key.
    Put { table: &'static str, row: Row },
    /// Deletes the row with this key (its first `key` values); deleting nothing is not an error.
    Delete { table: &'static str, key: Row },
    /// Sets columns of the row with this key, only while its `expect` columns hold the given values (NULL
    /// included): a compare-and-set. No such row in that state fails the whole list with
    /// [`crate::StoreError::Conflict`], nothing of it written.
    Update {
        table: &'static str,
        key: Row,
        set: Vec<(&'static str, Value)>,
        expect: Vec<(&'static str, Value)>,
    },
}

/// A read: rows whose columns equal the given values, in key order (or reversed), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct RowQuery {
    pub table: &'static str,
    pub eq: Vec<(&'static str, Value)>,
    /// Rows whose column is greater than the value (a cursor: the events after the last one read).
    pub after: Option<(&'static str, Value)>,
    pub desc: bool,
    pub limit: Option<u64>,
}

impl RowQuery {
    pub fn all(table: &'static str) -> RowQuery {
        RowQuery {
            table,
            ..RowQuery::default()
        }
    }
    pub fn eq(mut self, column: &'static str, v: Value) -> RowQuery {
        self.eq.push((column, v));
        self
    }
    pub fn last(mut self, n: u64) -> RowQuery {
        self.desc = true;
        self.limit = Some(n);
        self
    }
    pub fn limit(mut self, n: u64) -> RowQuery {
        self.limit = Some(n);
        self
    }
    pub fn after(mut self, column: &'static str, v: Value) -> RowQuery {
        self.after = Some((column, v));
        self
    }
    /// The query's parameters in the order `select_sql` numbers them: the equalities, then `after`.
    pub fn params(&self) -> Vec<(&'static str, &Value)> {
        self.eq.iter().chain(self.after.iter()).map(|(c, v)| (*c, v)).collect()
    }
}

/// Checks a row against its table's columns: count, types, nullability.
pub fn check_row(t: &TableSpec, row: &[Value]) -> Result<()> {
    if row.len() != t.columns.len() {
        return Err(StoreError::Backend(format!(
            "table {}: {} values for {} columns",
            t.name,
            row.len(),
            t.columns.len()
        )));
    }
    for (v, c) in row.iter().zip(t.columns) {
        if !v.fits(c) {
            return Err(StoreError::Backend(format!(
                "table {}: column {} ({:?}{}) cannot hold {v:?}",
                t.name,
                c.name,
                c.ty,
                if c.nullable { ", nullable" } else { "" }
            )));
        }
    }
    Ok(())
}

/// Checks an operation: the table exists, the values fit, append-only tables take inserts only. Returns the
/// spec and the values (a whole row, or the key).
pub fn check_op(op: &RowOp) -> Result<(&'static TableSpec, &[Value])> {
    match op {
        RowOp::Insert { table, row } => {
            let t = spec(table)?;
            check_row(t, row)?;
            Ok((t, row))
        }
        RowOp::Put { table, row } => {
            let t = spec(table)?;
            if t.append_only {
                return Err(StoreError::Backend(format!(
                    "table {table} is append-only: a row cannot be replaced"
                )));
            }
            check_row(t, row)?;
            Ok((t, row))
        }
        RowOp::Delete { table, key } => {
            let t = spec(table)?;
            if t.append_only {
                return Err(StoreError::Backend(format!(
                    "table {table} is append-only: a row cannot be deleted"
                )));
            }
            if key.len() != t.key {
                return Err(StoreError::Backend(format!(
                    "table {table}: a key of {} values, {} given",
                    t.key,
                    key.len()
                )));
            }
            for (v, c) in key.iter().zip(t.columns) {
                if !v.fits(c) || matches!(v, Value::Null) {
                    return Err(StoreError::Backend(format!(
                        "table {table}: key column {} cannot be {v:?}",
                        c.name
                    )));
                }
            }
            Ok((t, key))
        }
        RowOp::Update {
            table,
            key,
            set,
            expect,
        } => {
            let t = spec(table)?;
            check_update(t, key, set, expect)?;
            Ok((t, key))
        }
    }
}

fn check_update(t: &TableSpec, key: &[Value], set: &[(&str, Value)], expect: &[(&str, Value)]) -> Result<()> {
    if t.append_only {
        return Err(StoreError::Backend(format!(
            "table {} is append-only: a row cannot be updated",
            t.name
        )));
    }
    if key.len() != t.key || set.is_empty() {
        return Err(StoreError::Backend(format!(
            "table {}: an update names the key ({} values) and at least one column to set",
            t.name, t.key
        )));
    }
    for (v, c) in key.iter().zip(t.columns) {
        if !v.fits(c) || matches!(v, Value::Null) {
            return Err(StoreError::Backend(format!(
                "table {}: key column {} cannot be {v:?}",
                t.name, c.name
            )));
        }
    }
    for (name, v) in set {
        let (i, c) = t.column(name)?;
        if i < t.key {
            return Err(StoreError::Backend(format!(
                "table {}: the key column {name} cannot be set",
                t.name
            )));
        }
        if !v.fits(c) {
            return Err(StoreError::Backend(format!(
                "table {}: column {name} cannot hold {v:?}",
                t.name
            )));
        }
    }
    for (name, v) in expect {
        let (_, c) = t.column(name)?;
        if !v.fits(c) && !matches!(v, Value::Null) {
            return Err(StoreError::Backend(format!(
                "table {}: column {name} cannot hold {v:?}",
                t.name
            )));
        }
    }
    Ok(())
}

/// The UPDATE of a [`RowOp::Update`] and the values of its parameters, in order (set, key, non-NULL
/// expectations); with the columns of those parameters (for typed NULLs).
pub fn update_sql<'a>(
    t: &'a TableSpec,
    d: &Dialect,
    key: &'a [Value],
    set: &'a [(&'static str, Value)],
    expect: &'a [(&'static str, Value)],
) -> Result<(String, Vec<(&'a Column, &'a Value)>)> {
    let mut params: Vec<(&Column, &Value)> = Vec::new();
    let mut sets = Vec::new();
    for (name, v) in set {
        let (_, c) = t.column(name)?;
        params.push((c, v));
        sets.push(format!("{name} = {}", (d.param)(params.len())));
    }
    let mut conds = Vec::new();
    for (c, v) in t.columns[..t.key].iter().zip(key) {
        params.push((c, v));
        conds.push(format!("{} = {}", c.name, (d.param)(params.len())));
    }
    for (name, v) in expect {
        let (_, c) = t.column(name)?;
        if matches!(v, Value::Null) {
            conds.push(format!("{name} IS NULL"));
        } else {
            params.push((c, v));
            conds.push(format!("{name} = {}", (d.param)(params.len())));
        }
    }
    Ok((
        format!(
            "UPDATE {} SET {} WHERE {}",
            t.name,
            sets.join(", "),
            conds.join(" AND ")
        ),
        params,
    ))
}

/// The error of an update that found no row in the expected state.
pub fn conflict(t: &TableSpec, key: &[Value]) -> StoreError {
    StoreError::Conflict(format!("table {}: no row {key:?} in the expected state", t.name))
}

/// How a backend spells its types and placeholders.
pub struct Dialect {
    /// Int, Real, Text, Bytes.
    pub types: [&'static str; 4],
    /// The placeholder of the n-th parameter (1-based).
    pub param: fn(usize) -> String,
}

impl Dialect {
    fn ty(&self, t: SqlType) -> &'static str {
        self.types[t as usize]
    }
}

fn names(cols: &[Column]) -> String {
    cols.iter().map(|c| c.name).collect::<Vec<_>>().join(", ")
}

/// `CREATE TABLE IF NOT EXISTS` and its indexes.
pub fn create_sql(t: &TableSpec, d: &Dialect) -> String {
    let cols = t
        .columns
        .iter()
        .map(|c| format!("{} {}{}", c.name, d.ty(c.ty), if c.nullable { "" } else { " NOT NULL" }))
        .collect::<Vec<_>>()
        .join(", ");
    let mut s = format!(
        "CREATE TABLE IF NOT EXISTS {} ({cols}, PRIMARY KEY ({}));\n",
        t.name,
        names(&t.columns[..t.key])
    );
    for ix in t.indexes {
        s += &format!(
            "CREATE INDEX IF NOT EXISTS {}_{} ON {} ({});\n",
            t.name,
            ix.join("_"),
            t.name,
            ix.join(", ")
        );
    }
    s
}

/// The INSERT of a whole row; with `upsert`, a row with the same key is replaced.
pub fn insert_sql(t: &TableSpec, d: &Dialect, upsert: bool) -> String {
    let ps = (1..=t.columns.len()).map(d.param).collect::<Vec<_>>().join(", ");
    let mut s = format!("INSERT INTO {} ({}) VALUES ({ps})", t.name, names(t.columns));
    if upsert {
        let rest = &t.columns[t.key..];
        if rest.is_empty() {
            s += &format!(" ON CONFLICT ({}) DO NOTHING", names(&t.columns[..t.key]));
        } else {
            let sets = rest
                .iter()
                .map(|c| format!("{0} = excluded.{0}", c.name))
                .collect::<Vec<_>>()
                .join(", ");
            s += &format!(" ON CONFLICT ({}) DO UPDATE SET {sets}", names(&t.columns[..t.key]));
        }
    }
    s
}

/// The DELETE of one key.
pub fn delete_sql(t: &TableSpec, d: &Dialect) -> String {
    let w = t.columns[..t.key]
        .iter()
        .enumerate()
        .map(|(i, c)| format!("{} = {}", c.name, (d.param)(i + 1)))
        .collect::<Vec<_>>()
        .join(" AND ");
    format!("DELETE FROM {} WHERE {w}", t.name)
}

/// The SELECT of a query (its parameters are the `eq` values, in order); errors on an unknown column.
pub fn select_sql(q: &RowQuery, d: &Dialect) -> Result<(&'static TableSpec, String)> {
    let t = spec(q.table)?;
    let mut s = format!("SELECT {} FROM {}", names(t.columns), t.name);
    for (i, (c, v)) in q.params().into_iter().enumerate() {
        let (_, col) = t.column(c)?;
        if !v.fits(col) || matches!(v, Value::Null) {
            return Err(StoreError::Backend(format!(
                "table {}: cannot compare column {c} with {v:?}",
                t.name
            )));
        }
        s += if i == 0 { " WHERE " } else { " AND " };
        let op = if i < q.eq.len() { "=" } else { ">" };
        s += &format!("{c} {op} {}", (d.param)(i + 1));
    }
    let dir = if q.desc { " DESC" } else { "" };
    s += &format!(
        " ORDER BY {}",
        t.columns[..t.key]
            .iter()
            .map(|c| format!("{}{dir}", c.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(n) = q.limit {
        s += &format!(" LIMIT {n}");
    }
    Ok((t, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Dialect = Dialect {
        types: ["INTEGER", "REAL", "TEXT", "BLOB"],
        param: |i| format!("?{i}"),
    };

    #[test]
    fn every_column_has_a_class_and_keys_are_not_null() {
        for t in TABLES {
            assert!(t.key >= 1 && t.key <= t.columns.len(), "{}", t.name);
            assert!(t.columns[..t.key].iter().all(|c| !c.nullable), "{}", t.name);
            for ix in t.indexes {
                for c in *ix {
                    t.column(c).unwrap();
                }
            }
        }
    }

    #[test]
    fn statements_are_generated_from_the_spec() {
        let t = spec("subscriptions").unwrap();
        assert_eq!(
            insert_sql(t, &D, true),
            "INSERT INTO subscriptions (user_id, kind, target, created_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (user_id, kind, target) DO UPDATE SET created_at = excluded.created_at"
        );
        assert_eq!(
            delete_sql(t, &D),
            "DELETE FROM subscriptions WHERE user_id = ?1 AND kind = ?2 AND target = ?3"
        );
        let q = RowQuery::all("audit_log").eq("uscc", Value::text("x")).last(5);
        assert_eq!(
            select_sql(&q, &D).unwrap().1,
            "SELECT seq, at, user_id, role, org, action, uscc, target, basis, address, prev_hash, hash FROM audit_log \
             WHERE uscc = ?1 ORDER BY seq DESC LIMIT 5"
        );
    }

    #[test]
    fn bad_rows_and_writes_to_append_only_tables_are_refused() {
        let bad = RowOp::Put {
            table: "subscriptions",
            row: vec![Value::text("u"), Value::Null, Value::text("t"), Value::text("d")],
        };
        assert!(check_op(&bad).unwrap_err().to_string().contains("kind"));
        let del = RowOp::Delete {
            table: "audit_log",
            key: vec![Value::Int(1)],
        };
        assert!(check_op(&del).unwrap_err().to_string().contains("append-only"));
        assert!(check_op(&RowOp::Insert {
            table: "nope",
            row: vec![]
        })
        .is_err());
        let q = RowQuery::all("users").eq("colour", Value::Int(1));
        assert!(select_sql(&q, &D).is_err());
    }
}
