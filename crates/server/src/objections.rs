//! An enterprise's rights over its record (issue 8): objections (异议) to a stored fact, with their legal
//! clock, and credit repair (信用修复) applications on negative public records — kept in the store, decided by
//! the department that supplied the fact. When (deadlines, windows) is `xinyong_rights`' business; this
//! module keeps the cases and acts on them.
//!
//! - Filing marks the fact disputed at once: every view of the firm (page and API) shows the mark from the
//!   next request (the kept overviews are dropped).
//! - The department that supplied the fact answers: corrected (a new version of the fact, delivered as a
//!   batch of its own; the old version is kept as history), removed (the fact is retired), or upheld. A
//!   correction or removal rescores the firm and tells its subscribers (the live path's outbox).
//! - The clock: reminded and escalated on their days, overdue after the deadline (`tick`, run by the
//!   server's refresh ticker), each step in the case's log.

use crate::auth::{Principal, Role};
use crate::Error;
use chrono::NaiveDate;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use xinyong_rights::{Calendar, Clock, Regimes, Stage, View, Windows};
use xinyong_store::rows::{Row, RowOp, RowQuery, Value};
use xinyong_store::{BatchCounts, BatchMeta, NewFact, Store, StoredFact};

/// A firm's score as of a date (valid time, then known time) with its facts, and without the listed ones (the
/// binary supplies it: the credit models live in `app`).
pub type WhatIfFn = std::sync::Arc<
    dyn Fn(
            &dyn Store,
            &str,
            &[i64],
            &str,
            &str,
        ) -> Result<(xinyong_credit::score::FirmScore, xinyong_credit::score::FirmScore), String>
        + Send
        + Sync,
>;

/// Attachments of one filing: at most this many, each at most [`MAX_FILE`] bytes.
pub const MAX_FILES: usize = 5;
pub const MAX_FILE: usize = 3 * 1024 * 1024;
/// The longest text of an objection, answer or application (characters).
pub const MAX_TEXT: usize = 4000;

/// The rules the cases follow: the holiday calendar, the objection regimes, the windows.
pub struct Rights {
    pub calendar: Calendar,
    pub regimes: Regimes,
    pub windows: Windows,
}

impl Rights {
    /// The built-in rules, or a deployment's files where the config names them.
    pub fn load(cfg: &crate::ServerConfig) -> Result<Rights, Error> {
        let read = |p: &Option<std::path::PathBuf>| -> Result<Option<String>, Error> {
            p.as_ref()
                .map(|p| std::fs::read_to_string(p).map_err(|e| Error::Internal(format!("{}: {e}", p.display()))))
                .transpose()
        };
        let calendar = match read(&cfg.calendar)? {
            Some(t) => Calendar::from_toml(&t).map_err(|e| Error::Internal(e.to_string()))?,
            None => Calendar::builtin(),
        };
        let regimes = match read(&cfg.objection_regimes)? {
            Some(t) => Regimes::from_toml(&t).map_err(Error::Internal)?,
            None => Regimes::builtin(),
        };
        let windows = match read(&cfg.windows)? {
            Some(t) => Windows::from_toml(&t).map_err(Error::Internal)?,
            None => Windows::builtin(),
        };
        Ok(Rights {
            calendar,
            regimes,
            windows,
        })
    }

    pub fn builtin() -> Rights {
        Rights {
            calendar: Calendar::builtin(),
            regimes: Regimes::builtin(),
            windows: Windows::builtin(),
        }
    }
}

pub fn day(s: &str) -> Result<NaiveDate, Error> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| Error::BadRequest(format!("{s:?}: a date YYYY-MM-DD")))
}

fn day_str(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// One objection.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Objection {
    pub id: String,
    pub uscc: String,
    pub fact_id: i64,
    pub dataset: String,
    pub source: String,
    pub filer: String,
    /// "enterprise" or "person".
    pub filer_kind: String,
    /// The person's pseudonymous id (a person's objection), else empty.
    pub person: String,
    pub text: String,
    pub regime: String,
    pub filed_on: String,
    pub filed_at: String,
    pub extended: bool,
    /// The last stage acted on (open, reminded, escalated, overdue, answered, answered_late).
    pub stage: String,
    /// corrected, removed or upheld, once answered.
    pub outcome: Option<String>,
    pub answer: Option<String>,
    pub answered_by: Option<String>,
    pub answered_on: Option<String>,
    /// The corrected version's fact id.
    pub new_fact: Option<i64>,
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn opt_text(v: &Value) -> Option<String> {
    v.as_str().map(String::from)
}

fn opt(v: &Option<String>) -> Value {
    v.as_ref().map_or(Value::Null, Value::text)
}

impl Objection {
    fn from_row(r: &Row) -> Option<Objection> {
        Some(Objection {
            id: text(&r[0]),
            uscc: text(&r[1]),
            fact_id: r[2].as_int()?,
            dataset: text(&r[3]),
            source: text(&r[4]),
            filer: text(&r[5]),
            filer_kind: text(&r[6]),
            person: text(&r[7]),
            text: text(&r[8]),
            regime: text(&r[9]),
            filed_on: text(&r[10]),
            filed_at: text(&r[11]),
            extended: r[12].as_int() == Some(1),
            stage: text(&r[13]),
            outcome: opt_text(&r[14]),
            answer: opt_text(&r[15]),
            answered_by: opt_text(&r[16]),
            answered_on: opt_text(&r[17]),
            new_fact: r[18].as_int(),
        })
    }

    fn row(&self) -> Vec<Value> {
        vec![
            Value::text(&self.id),
            Value::text(&self.uscc),
            Value::Int(self.fact_id),
            Value::text(&self.dataset),
            Value::text(&self.source),
            Value::text(&self.filer),
            Value::text(&self.filer_kind),
            Value::text(&self.person),
            Value::text(&self.text),
            Value::text(&self.regime),
            Value::text(&self.filed_on),
            Value::text(&self.filed_at),
            Value::Int(self.extended as i64),
            Value::text(&self.stage),
            opt(&self.outcome),
            opt(&self.answer),
            opt(&self.answered_by),
            opt(&self.answered_on),
            self.new_fact.map_or(Value::Null, Value::Int),
        ]
    }

    /// Its clock under its regime.
    pub fn clock(&self, rights: &Rights) -> Result<Clock, Error> {
        let (_, regime) = rights
            .regimes
            .get(Some(&self.regime))
            .ok_or_else(|| Error::Internal(format!("objection {}: no regime {:?}", self.id, self.regime)))?;
        Ok(regime.clock(day(&self.filed_on)?, &rights.calendar, self.extended))
    }

    /// Where it stands on `today`.
    pub fn stage_on(&self, rights: &Rights, today: NaiveDate) -> Result<Stage, Error> {
        let answered = self.answered_on.as_deref().map(day).transpose()?;
        Ok(self.clock(rights)?.stage(today, answered))
    }

    pub fn is_open(&self) -> bool {
        self.outcome.is_none()
    }
}

/// The change of a case from `before` to `after` as a compare-and-set: it applies only while the stored case
/// is still as `before` was read (stage, extension, outcome), so a concurrent answer, extension or clock step
/// is never overwritten; the loser gets a conflict.
fn cas(before: &Objection, after: &Objection) -> RowOp {
    RowOp::Update {
        table: "objections",
        key: vec![Value::text(&before.id)],
        set: vec![
            ("extended", Value::Int(after.extended as i64)),
            ("stage", Value::text(&after.stage)),
            ("outcome", opt(&after.outcome)),
            ("answer", opt(&after.answer)),
            ("answered_by", opt(&after.answered_by)),
            ("answered_on", opt(&after.answered_on)),
            ("new_fact", after.new_fact.map_or(Value::Null, Value::Int)),
        ],
        expect: vec![
            ("stage", Value::text(&before.stage)),
            ("extended", Value::Int(before.extended as i64)),
            ("outcome", opt(&before.outcome)),
        ],
    }
}

fn objections(s: &dyn Store, q: RowQuery) -> Result<Vec<Objection>, Error> {
    Ok(s.rows(&q)?.iter().filter_map(Objection::from_row).collect())
}

/// A firm's objections, newest first.
pub fn of_firm(s: &dyn Store, uscc: &str) -> Result<Vec<Objection>, Error> {
    let mut v = objections(s, RowQuery::all("objections").eq("uscc", Value::text(uscc)))?;
    v.sort_by(|a, b| b.filed_at.cmp(&a.filed_at));
    Ok(v)
}

/// What the platform holds about a person: the current records that name them (as legal representative or
/// shareholder), each with what it names them as. (Guarantors are firms in the lenders' feeds: a person
/// guarantor is not delivered.)
pub fn held_about(s: &dyn Store, person: &str) -> Result<Vec<(StoredFact, &'static str)>, Error> {
    let mut out = Vec::new();
    for ds in ["amr.registration", "amr.shareholders"] {
        for f in s.current_facts("amr", ds)? {
            if let Some(what) = persons_of(&f).into_iter().find(|(p, _)| p == person).map(|x| x.1) {
                out.push((f, what));
            }
        }
    }
    Ok(out)
}

/// The objections a person filed, newest first.
pub fn of_person(s: &dyn Store, person: &str) -> Result<Vec<Objection>, Error> {
    let mut v: Vec<Objection> = all(s)?.into_iter().filter(|o| o.person == person).collect();
    v.sort_by(|a, b| b.filed_at.cmp(&a.filed_at));
    Ok(v)
}

/// The objections a department answers (the facts it supplied), oldest due first.
pub fn of_source(s: &dyn Store, source: &str) -> Result<Vec<Objection>, Error> {
    let mut v = objections(s, RowQuery::all("objections").eq("source", Value::text(source)))?;
    v.sort_by(|a, b| (a.outcome.is_some(), &a.filed_on, &a.id).cmp(&(b.outcome.is_some(), &b.filed_on, &b.id)));
    Ok(v)
}

pub fn all(s: &dyn Store) -> Result<Vec<Objection>, Error> {
    let mut v = objections(s, RowQuery::all("objections"))?;
    v.sort_by(|a, b| (a.outcome.is_some(), &a.filed_on, &a.id).cmp(&(b.outcome.is_some(), &b.filed_on, &b.id)));
    Ok(v)
}

pub fn get(s: &dyn Store, id: &str) -> Result<Option<Objection>, Error> {
    Ok(
        objections(s, RowQuery::all("objections").eq("objection_id", Value::text(id)))?
            .into_iter()
            .next(),
    )
}

/// A record as a dispute names it: its firm, source, dataset and key. A re-delivery of the record (a new
/// version, a new fact id) is the same record, so it stays disputed while the objection is open.
pub fn record_key(f: &StoredFact) -> String {
    format!("{}|{}|{}|{}", f.uscc, f.source, f.dataset, f.key)
}

/// A firm's records under an open objection.
#[derive(Debug, Clone, Default)]
pub struct Disputes(BTreeMap<String, String>);

impl Disputes {
    /// The open objection of the record this fact is a version of.
    pub fn of(&self, f: &StoredFact) -> Option<&String> {
        self.0.get(&record_key(f))
    }
}

/// The firm's records under an open objection (by record, whatever version is current).
pub fn disputed(s: &dyn Store, uscc: &str) -> Result<Disputes, Error> {
    let mut out = BTreeMap::new();
    for o in of_firm(s, uscc)?.into_iter().filter(Objection::is_open) {
        if let Ok(f) = s.fact(o.fact_id) {
            out.insert(record_key(&f), o.id);
        }
    }
    Ok(Disputes(out))
}

/// The firm's records whose credit repair was granted: fact id → the day of the decision.
pub fn repaired(s: &dyn Store, uscc: &str) -> Result<BTreeMap<i64, NaiveDate>, Error> {
    Ok(repairs_of_firm(s, uscc)?
        .into_iter()
        .filter(|r| r.state == "granted")
        .filter_map(|r| Some((r.fact_id, day(r.decided_on.as_deref()?).ok()?)))
        .collect())
}

/// One line of a case's log.
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub n: i64,
    pub at: String,
    pub day: String,
    pub actor: String,
    pub action: String,
    pub note: String,
}

pub fn log(s: &dyn Store, id: &str) -> Result<Vec<LogLine>, Error> {
    Ok(
        s.rows(&RowQuery::all("objection_log").eq("objection_id", Value::text(id)))?
            .iter()
            .map(|r| LogLine {
                n: r[1].as_int().unwrap_or(0),
                at: text(&r[2]),
                day: text(&r[3]),
                actor: text(&r[4]),
                action: text(&r[5]),
                note: text(&r[6]),
            })
            .collect(),
    )
}

fn log_op(id: &str, n: i64, at: &str, day: &str, actor: &str, action: &str, note: &str) -> RowOp {
    RowOp::Insert {
        table: "objection_log",
        row: vec![
            Value::text(id),
            Value::Int(n),
            Value::text(at),
            Value::text(day),
            Value::text(actor),
            Value::text(action),
            Value::text(note),
        ],
    }
}

fn next_n(s: &dyn Store, id: &str) -> Result<i64, Error> {
    Ok(log(s, id)?.iter().map(|l| l.n).max().unwrap_or(0) + 1)
}

/// An attachment as filed.
#[derive(Debug, Clone, Serialize)]
pub struct Attachment {
    pub n: i64,
    pub name: String,
    pub content_type: String,
    pub sha256: String,
    pub size: usize,
    #[serde(skip)]
    pub data: Vec<u8>,
}

pub fn attachments(s: &dyn Store, id: &str) -> Result<Vec<Attachment>, Error> {
    Ok(
        s.rows(&RowQuery::all("objection_files").eq("objection_id", Value::text(id)))?
            .iter()
            .map(|r| {
                let data = match &r[5] {
                    Value::Bytes(b) => b.clone(),
                    _ => Vec::new(),
                };
                Attachment {
                    n: r[1].as_int().unwrap_or(0),
                    name: text(&r[2]),
                    content_type: text(&r[3]),
                    sha256: text(&r[4]),
                    size: data.len(),
                    data,
                }
            })
            .collect(),
    )
}

/// Who answers a case: the supplier of the record — a department's officer, or a lender's (a loan or
/// guarantee record comes from the lender itself).
pub fn answers(who: &Principal, source: &str) -> bool {
    matches!(who.role, Role::Department | Role::Bank) && who.org == source
}

/// Who may file on the firm's facts: the firm's own account.
fn may_file(who: &Principal, uscc: &str) -> bool {
    who.role == Role::Enterprise && who.org == uscc
}

/// Who may read a case: the firm, the department that answers it, the regulator; a person, the cases they
/// filed (`person`: the case's person, empty for a firm's case).
pub fn may_read(who: &Principal, o_uscc: &str, o_source: &str, person: &str) -> bool {
    match who.role {
        // A person's case is theirs: the firm the record belongs to does not read it.
        Role::Enterprise => who.org == o_uscc && person.is_empty(),
        Role::Department | Role::Bank => who.org == o_source,
        Role::Regulator => true,
        Role::Person => !person.is_empty() && who.org == person,
        _ => false,
    }
}

/// The people a stored fact names, as (pseudonymous id, as what): a registration's legal representative, a
/// shareholding's holder when the holder is not a firm.
pub fn persons_of(f: &StoredFact) -> Vec<(String, &'static str)> {
    let v: serde_json::Value = serde_json::from_str(&f.fields).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let mut out = Vec::new();
    match f.dataset.as_str() {
        "amr.registration" if !s("legal_rep").is_empty() || !s("legal_rep_id").is_empty() => {
            out.push((
                xinyong_credit::network::person_id(&s("legal_rep"), &s("legal_rep_id")),
                "legal_rep",
            ));
        }
        "amr.shareholders" => {
            let id = s("holder_id");
            if !id.is_empty() && xinyong_domain::uscc::Uscc::parse(&id).is_err() {
                out.push((
                    xinyong_credit::network::person_id(&s("holder_name"), &id),
                    "shareholder",
                ));
            }
        }
        _ => {}
    }
    out
}

/// A current fact of a firm, by id (refused when it is history or another firm's).
fn current_fact(s: &dyn Store, fact_id: i64, uscc: &str) -> Result<StoredFact, Error> {
    let f = s
        .fact(fact_id)
        .map_err(|_| Error::NotFound(format!("no record {fact_id} of yours")))?;
    if f.uscc != uscc {
        return Err(Error::NotFound(format!("no record {fact_id} of yours")));
    }
    if f.known_to.is_some() {
        return Err(Error::BadRequest(
            "the record has been replaced since: object to its current version".into(),
        ));
    }
    Ok(f)
}

fn new_id(prefix: &str, today: &str) -> String {
    let r = crate::auth::random_token();
    format!("{prefix}-{}-{}", today.replace('-', ""), r[..8].to_uppercase())
}

fn check_text(t: &str, what: &str) -> Result<String, Error> {
    let t = t.trim();
    if t.is_empty() {
        return Err(Error::BadRequest(format!("{what}: say what is wrong and why")));
    }
    if t.chars().count() > MAX_TEXT {
        return Err(Error::BadRequest(format!("{what}: at most {MAX_TEXT} characters")));
    }
    Ok(t.to_string())
}

fn check_files(files: &[(String, String, Vec<u8>)]) -> Result<(), Error> {
    if files.len() > MAX_FILES || files.iter().any(|f| f.2.len() > MAX_FILE) {
        return Err(Error::BadRequest(format!(
            "at most {MAX_FILES} attachments of at most {} MB each",
            MAX_FILE / 1024 / 1024
        )));
    }
    Ok(())
}

/// The rows of a case's attachments, numbered from 1.
fn attachment_ops(id: &str, files: &[(String, String, Vec<u8>)]) -> Vec<RowOp> {
    files
        .iter()
        .enumerate()
        .map(|(i, (name, ctype, data))| RowOp::Insert {
            table: "objection_files",
            row: vec![
                Value::text(id),
                Value::Int(i as i64 + 1),
                Value::text(name.chars().take(200).collect::<String>()),
                Value::text(ctype),
                Value::text(hex::encode(Sha256::digest(data))),
                Value::Bytes(data.clone()),
            ],
        })
        .collect()
}

/// What a firm files: the record (fact id), its text, its attachments (name, content type, bytes).
pub struct Filing<'a> {
    pub fact_id: i64,
    pub text: &'a str,
    pub files: &'a [(String, String, Vec<u8>)],
}

/// Files an objection to one of the firm's current facts; returns its id. The fact counts as disputed from
/// this moment (one open objection a fact).
pub fn file(
    s: &mut dyn Store,
    who: &Principal,
    f: &Filing,
    rights: &Rights,
    today: &str,
    now: &str,
) -> Result<String, Error> {
    let (fact_id, body, files) = (f.fact_id, f.text, f.files);
    // The firm objects to its own records; a person to a record that names them.
    let (f, filer_kind, person) = if who.role == Role::Person {
        let f = s
            .fact(fact_id)
            .map_err(|_| Error::NotFound(format!("no record {fact_id} of yours")))?;
        if !persons_of(&f).iter().any(|(p, _)| *p == who.org) {
            return Err(Error::NotFound(format!("no record {fact_id} that names you")));
        }
        (current_fact(s, fact_id, &f.uscc)?, "person", who.org.clone())
    } else {
        if !may_file(who, &who.org) {
            return Err(Error::Forbidden(
                "objections are filed by the firm's own account".into(),
            ));
        }
        (current_fact(s, fact_id, &who.org)?, "enterprise", String::new())
    };
    let uscc = f.uscc.clone();
    let body = check_text(body, "the objection")?;
    check_files(files)?;
    if disputed(s, &uscc)?.of(&f).is_some() {
        return Err(Error::BadRequest("this record already has an open objection".into()));
    }
    let record = record_key(&f);
    let id = new_id("YY", today);
    let o = Objection {
        id: id.clone(),
        uscc,
        fact_id,
        dataset: f.dataset.clone(),
        source: f.source.clone(),
        filer: who.user_id.clone(),
        filer_kind: filer_kind.into(),
        person,
        text: body,
        regime: rights.regimes.default.clone(),
        filed_on: today.to_string(),
        filed_at: now.to_string(),
        extended: false,
        stage: "open".into(),
        outcome: None,
        answer: None,
        answered_by: None,
        answered_on: None,
        new_fact: None,
    };
    // One open objection a record, held by the store: a second filing (a double click) fails on this key.
    let mut ops = vec![
        RowOp::Insert {
            table: "objections",
            row: o.row(),
        },
        RowOp::Insert {
            table: "objection_open",
            row: vec![Value::text(&record), Value::text(&id)],
        },
    ];
    ops.extend(attachment_ops(&id, files));
    let due = o.clock(rights)?.due;
    ops.push(log_op(
        &id,
        1,
        now,
        today,
        &who.user_id,
        "filed",
        &format!("due {}", day_str(due)),
    ));
    match s.apply_rows(&ops) {
        Ok(()) => Ok(id),
        // Another filing on the record won the race (its `objection_open` row is there now).
        Err(e) => match s.rows(&RowQuery::all("objection_open").eq("record", Value::text(&record)))? {
            r if !r.is_empty() => Err(Error::BadRequest("this record already has an open objection".into())),
            _ => Err(e.into()),
        },
    }
}

/// The department grants the regime's extension (once, before the deadline, with a reason).
pub fn extend(
    s: &mut dyn Store,
    who: &Principal,
    id: &str,
    reason: &str,
    rights: &Rights,
    today: &str,
    now: &str,
) -> Result<(), Error> {
    let before = get(s, id)?.ok_or_else(|| Error::NotFound(format!("no objection {id}")))?;
    let mut o = before.clone();
    if !answers(who, &o.source) {
        return Err(Error::Forbidden(
            "the department that supplied the record answers it".into(),
        ));
    }
    let reason = check_text(reason, "the reason")?;
    let (_, regime) = rights
        .regimes
        .get(Some(&o.regime))
        .ok_or_else(|| Error::Internal("no regime".into()))?;
    if regime.extension.is_none() {
        return Err(Error::BadRequest(format!("the {} regime has no extension", o.regime)));
    }
    if o.extended || !o.is_open() {
        return Err(Error::BadRequest("already extended, or answered".into()));
    }
    if day(today)? > o.clock(rights)?.due {
        return Err(Error::BadRequest("past its deadline: answer it".into()));
    }
    o.extended = true;
    let n = next_n(s, id)?;
    let due = o.clock(rights)?.due;
    s.apply_rows(&[
        cas(&before, &o),
        log_op(
            id,
            n,
            now,
            today,
            &who.user_id,
            "extended",
            &format!("due {} · {reason}", day_str(due)),
        ),
    ])?;
    Ok(())
}

/// How an objection is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The record was wrong: its corrected version replaces it (the old one kept as history).
    Corrected,
    /// The record should not be there: retired.
    Removed,
    /// The record stands.
    Upheld,
}

impl Outcome {
    pub fn parse(s: &str) -> Option<Outcome> {
        match s {
            "corrected" => Some(Outcome::Corrected),
            "removed" => Some(Outcome::Removed),
            "upheld" => Some(Outcome::Upheld),
            _ => None,
        }
    }

    pub fn key(self) -> &'static str {
        match self {
            Outcome::Corrected => "corrected",
            Outcome::Removed => "removed",
            Outcome::Upheld => "upheld",
        }
    }
}

/// What an answer did: the firm whose facts changed (to rescore and tell), and the answer's log rows and
/// objection row, to be written with the events (one transaction).
pub struct Answered {
    pub changed: Option<String>,
    pub ops: Vec<RowOp>,
}

/// The department's answer. A correction or removal is written now, as a batch of the department's source
/// (the fact's store history keeps both versions); the objection's own row and log come back in `ops`, for the
/// caller to write with the firm's events.
#[allow(clippy::too_many_arguments)]
pub fn answer(
    s: &mut dyn Store,
    who: &Principal,
    id: &str,
    outcome: Outcome,
    answer: &str,
    corrected: &BTreeMap<String, String>,
    rights: &Rights,
    today: &str,
    now: &str,
) -> Result<Answered, Error> {
    let before = get(s, id)?.ok_or_else(|| Error::NotFound(format!("no objection {id}")))?;
    let mut o = before.clone();
    if !answers(who, &o.source) {
        return Err(Error::Forbidden(
            "the department that supplied the record answers it".into(),
        ));
    }
    if !o.is_open() {
        return Err(Error::BadRequest("this objection has been answered".into()));
    }
    let answer = check_text(answer, "the answer")?;
    let f = s.fact(o.fact_id)?;
    if outcome == Outcome::Removed && f.dataset == "amr.registration" {
        return Err(Error::BadRequest(
            "a firm's registration is corrected, never removed (removing it would take the firm off the register)"
                .into(),
        ));
    }
    // The corrected record (a correction), as the form gives it.
    let planned = match outcome {
        Outcome::Corrected => match corrected_fields(&f, corrected) {
            Ok(x) => Some(x),
            Err(e) if f.known_to.is_none() => return Err(e),
            // Re-delivered since: refused below, whatever the form said.
            Err(_) => None,
        },
        _ => None,
    };
    // A record re-delivered since the objection was filed: correcting or removing the old version would
    // overwrite the newer delivery, so the department upholds the case with a note and the firm objects to
    // the current version. Unless it is this case's own change, stored before a crash: then the answer
    // completes the case.
    let ours = match outcome {
        Outcome::Upheld => false,
        Outcome::Corrected if planned.is_none() => false,
        _ => s.has_batch(&change_batch(&o, planned.as_deref()))?,
    };
    if outcome != Outcome::Upheld && f.known_to.is_some() && !ours {
        return Err(Error::BadRequest(
            "the record was re-delivered since the objection was filed: uphold this case with a note, and the \
             firm can object to the current version"
                .into(),
        ));
    }
    let mut changed = None;
    match outcome {
        Outcome::Upheld => {}
        Outcome::Corrected => {
            let nf = planned
                .as_deref()
                .ok_or_else(|| Error::Internal("a correction without its fields".into()))?;
            o.new_fact = write_change(s, &o, &f, Some(nf), today, now)?;
            changed = Some(o.uscc.clone());
        }
        Outcome::Removed => {
            write_change(s, &o, &f, None, today, now)?;
            changed = Some(o.uscc.clone());
        }
    }
    o.outcome = Some(outcome.key().into());
    o.answer = Some(answer.clone());
    o.answered_by = Some(who.user_id.clone());
    o.answered_on = Some(today.to_string());
    o.stage = o.stage_on(rights, day(today)?)?.key().into();
    let n = next_n(s, id)?;
    Ok(Answered {
        changed,
        ops: vec![
            cas(&before, &o),
            RowOp::Delete {
                table: "objection_open",
                key: vec![Value::text(record_key(&f))],
            },
            log_op(id, n, now, today, &who.user_id, outcome.key(), &answer),
        ],
    })
}

/// The record's fields with the department's corrections (checked: known fields, numbers as numbers, dates
/// as dates, at least one change), as stored JSON.
fn corrected_fields(f: &StoredFact, corrected: &BTreeMap<String, String>) -> Result<String, Error> {
    use xinyong_registry::ColType;
    let mut fields: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&f.fields).map_err(|e| Error::Internal(format!("stored fields: {e}")))?;
    let registry = crate::pages::registry()?;
    let def = registry.dataset(&f.dataset);
    let column = |k: &str| def.and_then(|d| d.columns.iter().find(|c| c.field == k));
    let mut any = false;
    for (k, v) in corrected {
        let v = v.trim();
        // A field the record has, or one its dataset defines (an end date the source left out).
        let old = match (fields.get(k), column(k)) {
            (Some(old), _) => old.clone(),
            (None, Some(c)) if c.ty != ColType::Id => {
                if v.is_empty() {
                    continue;
                }
                serde_json::Value::Null
            }
            _ => return Err(Error::BadRequest(format!("the record has no field {k:?}"))),
        };
        let ty = column(k).map(|c| c.ty);
        if (ty == Some(ColType::Date) || k.ends_with("date")) && !v.is_empty() && day(v).is_err() {
            return Err(Error::BadRequest(format!("{k}: a date YYYY-MM-DD")));
        }
        if let Some(c) = column(k).filter(|c| c.ty == ColType::Code && !c.codes.is_empty()) {
            if !v.is_empty() && !c.codes.values().any(|x| x == v) {
                return Err(Error::BadRequest(format!("{k}: one of the codes of its list")));
            }
        }
        let numeric = matches!(
            ty,
            Some(ColType::Money | ColType::Number | ColType::Integer | ColType::Ratio)
        );
        let new = match &old {
            serde_json::Value::Number(_) => match v.parse::<f64>() {
                Ok(x) => serde_json::json!(x),
                Err(_) => return Err(Error::BadRequest(format!("{k}: a number"))),
            },
            serde_json::Value::Null if v.is_empty() => serde_json::Value::Null,
            serde_json::Value::Null if numeric => match v.parse::<f64>() {
                Ok(x) => serde_json::json!(x),
                Err(_) => return Err(Error::BadRequest(format!("{k}: a number"))),
            },
            _ => serde_json::Value::String(v.to_string()),
        };
        let same = match (&old, &new) {
            (serde_json::Value::Number(a), serde_json::Value::Number(b)) => a.as_f64() == b.as_f64(),
            (serde_json::Value::String(a), serde_json::Value::String(b)) => a.trim() == b,
            (a, b) => a == b,
        };
        if !same {
            any = true;
            fields.insert(k.clone(), new);
        }
    }
    if !any {
        return Err(Error::BadRequest(
            "a correction changes at least one field (or answer: upheld)".into(),
        ));
    }
    serde_json::to_string(&fields).map_err(|e| Error::Internal(e.to_string()))
}

/// The batch id of a case's change: its correction (`new_fields`) or its removal (none).
fn change_batch(o: &Objection, new_fields: Option<&str>) -> String {
    let what = new_fields.unwrap_or("removed");
    hex::encode(Sha256::digest(format!("objection|{}|{what}", o.id).as_bytes()))
}

/// Writes a correction (`new_fields`) or a removal (none) of fact `f` as a batch of its source, delivered
/// today; returns the new version's fact id. Idempotent: the same answer again finds its batch stored.
fn write_change(
    s: &mut dyn Store,
    o: &Objection,
    f: &StoredFact,
    new_fields: Option<&str>,
    today: &str,
    now: &str,
) -> Result<Option<i64>, Error> {
    let batch_id = change_batch(o, new_fields);
    let key = f.key.clone();
    let find_new = |s: &dyn Store| -> Result<Option<i64>, Error> {
        Ok(new_fields.and_then(|_| {
            s.facts_of(&o.uscc, None)
                .ok()?
                .into_iter()
                .find(|x| x.dataset == f.dataset && x.key == key && x.known_to.is_none())
                .map(|x| x.fact_id)
        }))
    };
    if s.has_batch(&batch_id)? {
        return find_new(s);
    }
    // A removal retires the fact by snapshot replacement: every other current fact of its dataset, firm and
    // period is delivered again (kept).
    let keep: Vec<String> = match new_fields {
        Some(_) => Vec::new(),
        None => s
            .facts_of(&o.uscc, None)?
            .into_iter()
            .filter(|x| {
                x.dataset == f.dataset
                    && x.source == f.source
                    && x.period == f.period
                    && x.key != f.key
                    && x.known_to.is_none()
            })
            .map(|x| x.key)
            .collect(),
    };
    let fields_of = |j: &str| serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(j).unwrap_or_default();
    let line = serde_json::json!({
        "objection": o.id, "fact": f.fact_id, "key": f.key, "outcome": if new_fields.is_some() { "corrected" } else { "removed" },
        "before": fields_of(&f.fields), "after": new_fields.map(fields_of),
    })
    .to_string();
    let chunk = {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(format!("objection\n{line}\n").as_bytes())
            .and_then(|_| gz.finish())
            .map_err(|e| Error::Internal(format!("archive: {e}")))?
    };
    let mut w = s.begin()?;
    w.start_batch(&BatchMeta {
        batch_id: batch_id.clone(),
        source: f.source.clone(),
        dataset: f.dataset.clone(),
        file_name: format!("objection-{}.jsonl", o.id),
        delivered_on: today.to_string(),
        ingested_at: now.to_string(),
    })?;
    w.add_chunk(&xinyong_store::ArchiveChunk {
        chunk: 0,
        first_row: 1,
        data: chunk,
    })?;
    let mut counts = BatchCounts {
        rows_read: 1,
        ..Default::default()
    };
    match new_fields {
        Some(nf) => {
            let v: serde_json::Value = serde_json::from_str(nf).unwrap_or_default();
            let date = v.get("date").and_then(|x| x.as_str()).map(String::from);
            let end = v.get("end_date").and_then(|x| x.as_str()).map(String::from);
            let hash = hex::encode(Sha256::digest(nf.as_bytes()));
            let out = w.put_fact(&NewFact {
                uscc: &o.uscc,
                key: &f.key,
                period: f.period.as_deref(),
                date: date.as_deref(),
                end_date: end.as_deref(),
                fields: nf,
                content_hash: &hash,
                row: 2,
                n_rows: 1,
            })?;
            match out {
                xinyong_store::PutOutcome::Replaced => counts.replaced = 1,
                xinyong_store::PutOutcome::Inserted => counts.inserted = 1,
                _ => counts.unchanged = 1,
            }
        }
        None => {
            let keep: Vec<&str> = keep.iter().map(String::as_str).collect();
            counts.retired = w.retire_absent(&o.uscc, f.period.as_deref(), &keep)?;
        }
    }
    w.end_batch(counts, &[format!("objection {}: {}", o.id, what_word(new_fields))])?;
    w.commit()?;
    find_new(s)
}

fn what_word(new_fields: Option<&str>) -> &'static str {
    if new_fields.is_some() {
        "corrected"
    } else {
        "removed"
    }
}

/// Advances the clocks on `today`: each unanswered objection whose stage moved on (reminded, escalated,
/// overdue) gets the stage and a log line for each step it passed. Returns (id, stage) of those that moved.
pub fn tick(s: &mut dyn Store, rights: &Rights, today: &str, now: &str) -> Result<Vec<(String, Stage)>, Error> {
    let t = day(today)?;
    let rank = |k: &str| match k {
        "open" => 0,
        "reminded" => 1,
        "escalated" => 2,
        "overdue" => 3,
        _ => 4,
    };
    let mut moved = Vec::new();
    for before in all(s)?.into_iter().filter(Objection::is_open) {
        let mut o = before.clone();
        let st = o.stage_on(rights, t)?;
        if rank(st.key()) <= rank(&o.stage) {
            continue;
        }
        let clock = o.clock(rights)?;
        let mut n = next_n(s, &o.id)?;
        let mut ops = Vec::new();
        for (k, on) in [
            ("reminded", clock.remind_on),
            ("escalated", clock.escalate_on),
            ("overdue", clock.due.succ_opt().unwrap_or(clock.due)),
        ] {
            if rank(k) > rank(&o.stage) && rank(k) <= rank(st.key()) {
                ops.push(log_op(
                    &o.id,
                    n,
                    now,
                    &day_str(on),
                    "clock",
                    k,
                    &format!("due {}", day_str(clock.due)),
                ));
                n += 1;
            }
        }
        o.stage = st.key().into();
        ops.insert(0, cas(&before, &o));
        // A case answered or extended meanwhile: leave it to the next tick.
        match s.apply_rows(&ops) {
            Ok(()) => {}
            Err(xinyong_store::StoreError::Conflict(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        moved.push((o.id.clone(), st));
    }
    Ok(moved)
}

/// Turnaround figures (public: no firm named).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Turnaround {
    pub source: String,
    pub filed: u64,
    pub answered: u64,
    pub on_time: u64,
    pub late: u64,
    pub open: u64,
    pub overdue: u64,
    pub corrected: u64,
    pub removed: u64,
    pub upheld: u64,
    /// Days from receipt to answer: median and longest.
    pub median_days: Option<f64>,
    pub max_days: Option<i64>,
}

/// By source, and all sources together (source "").
pub fn turnaround(s: &dyn Store, rights: &Rights, today: &str) -> Result<Vec<Turnaround>, Error> {
    let t = day(today)?;
    let mut by: BTreeMap<String, (Turnaround, Vec<i64>)> = BTreeMap::new();
    for o in all(s)? {
        let clock = o.clock(rights)?;
        let stage = o.stage_on(rights, t)?;
        for key in [o.source.clone(), String::new()] {
            let (x, days) = by.entry(key.clone()).or_insert_with(|| {
                (
                    Turnaround {
                        source: key.clone(),
                        ..Default::default()
                    },
                    Vec::new(),
                )
            });
            x.filed += 1;
            match stage {
                Stage::Answered | Stage::AnsweredLate => {
                    x.answered += 1;
                    if stage == Stage::Answered {
                        x.on_time += 1;
                    } else {
                        x.late += 1;
                    }
                    if let Some(a) = o.answered_on.as_deref() {
                        days.push(clock.days_to(day(a)?));
                    }
                    match o.outcome.as_deref() {
                        Some("corrected") => x.corrected += 1,
                        Some("removed") => x.removed += 1,
                        Some("upheld") => x.upheld += 1,
                        _ => {}
                    }
                }
                Stage::Overdue => {
                    x.open += 1;
                    x.overdue += 1;
                }
                _ => x.open += 1,
            }
        }
    }
    Ok(by
        .into_values()
        .map(|(mut x, mut d)| {
            d.sort_unstable();
            x.max_days = d.last().copied();
            x.median_days = (!d.is_empty()).then(|| {
                let m = d.len() / 2;
                if d.len() % 2 == 1 {
                    d[m] as f64
                } else {
                    (d[m - 1] + d[m]) as f64 / 2.0
                }
            });
            x
        })
        .collect())
}

/// A record's windows on `today`: the public view's and the credit views'.
pub fn windows_of(
    rights: &Rights,
    f: &StoredFact,
    fields: &serde_json::Map<String, serde_json::Value>,
    repaired: Option<NaiveDate>,
) -> (Option<xinyong_rights::Shown>, Option<xinyong_rights::Shown>) {
    let w = &rights.windows;
    (
        w.of(
            View::Public,
            &f.dataset,
            fields,
            f.period.as_deref(),
            repaired,
            &rights.calendar,
        ),
        w.of(
            View::Credit,
            &f.dataset,
            fields,
            f.period.as_deref(),
            None,
            &rights.calendar,
        ),
    )
}

/// A credit repair application.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Repair {
    pub id: String,
    pub uscc: String,
    pub fact_id: i64,
    pub dataset: String,
    pub source: String,
    pub applicant: String,
    pub text: String,
    pub filed_on: String,
    pub filed_at: String,
    /// pending, granted or refused.
    pub state: String,
    pub answer: Option<String>,
    pub decided_by: Option<String>,
    pub decided_on: Option<String>,
}

impl Repair {
    fn from_row(r: &Row) -> Option<Repair> {
        Some(Repair {
            id: text(&r[0]),
            uscc: text(&r[1]),
            fact_id: r[2].as_int()?,
            dataset: text(&r[3]),
            source: text(&r[4]),
            applicant: text(&r[5]),
            text: text(&r[6]),
            filed_on: text(&r[7]),
            filed_at: text(&r[8]),
            state: text(&r[9]),
            answer: opt_text(&r[10]),
            decided_by: opt_text(&r[11]),
            decided_on: opt_text(&r[12]),
        })
    }

    fn row(&self) -> Vec<Value> {
        vec![
            Value::text(&self.id),
            Value::text(&self.uscc),
            Value::Int(self.fact_id),
            Value::text(&self.dataset),
            Value::text(&self.source),
            Value::text(&self.applicant),
            Value::text(&self.text),
            Value::text(&self.filed_on),
            Value::text(&self.filed_at),
            Value::text(&self.state),
            opt(&self.answer),
            opt(&self.decided_by),
            opt(&self.decided_on),
        ]
    }

    /// Its review clock (the Credit China regime: 10 working days), when the regimes have it.
    pub fn clock(&self, rights: &Rights) -> Option<Clock> {
        let (_, r) = rights.regimes.get(Some("credit_china"))?;
        Some(r.clock(day(&self.filed_on).ok()?, &rights.calendar, false))
    }
}

fn repairs(s: &dyn Store, q: RowQuery) -> Result<Vec<Repair>, Error> {
    Ok(s.rows(&q)?.iter().filter_map(Repair::from_row).collect())
}

pub fn repairs_of_firm(s: &dyn Store, uscc: &str) -> Result<Vec<Repair>, Error> {
    let mut v = repairs(s, RowQuery::all("repairs").eq("uscc", Value::text(uscc)))?;
    v.sort_by(|a, b| b.filed_at.cmp(&a.filed_at));
    Ok(v)
}

pub fn repairs_of_source(s: &dyn Store, source: &str) -> Result<Vec<Repair>, Error> {
    let mut v = repairs(s, RowQuery::all("repairs").eq("source", Value::text(source)))?;
    v.sort_by(|a, b| (a.state != "pending", &a.filed_on).cmp(&(b.state != "pending", &b.filed_on)));
    Ok(v)
}

pub fn all_repairs(s: &dyn Store) -> Result<Vec<Repair>, Error> {
    let mut v = repairs(s, RowQuery::all("repairs"))?;
    v.sort_by(|a, b| (a.state != "pending", &a.filed_on).cmp(&(b.state != "pending", &b.filed_on)));
    Ok(v)
}

pub fn repair(s: &dyn Store, id: &str) -> Result<Option<Repair>, Error> {
    Ok(repairs(s, RowQuery::all("repairs").eq("repair_id", Value::text(id)))?
        .into_iter()
        .next())
}

/// Whether a record may be repaired on `today`: a negative public record whose window allows a repair, not
/// already repaired or pending, its earliest repair day reached.
pub fn repairable(rights: &Rights, f: &StoredFact, today: NaiveDate) -> Result<Option<NaiveDate>, String> {
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).unwrap_or_default();
    let (public, _) = windows_of(rights, f, &fields, None);
    let Some(p) = public else {
        return Err("this record has no publicity window to shorten".into());
    };
    let Some(from) = p.repairable_from else {
        return Err("the rules allow no credit repair of this kind of record".into());
    };
    if p.last_day.is_some_and(|l| l < today) {
        return Err("this record's publicity has already ended".into());
    }
    Ok(Some(from))
}

/// Applies for the credit repair of one of the firm's negative public records; returns its id.
pub fn apply_repair(
    s: &mut dyn Store,
    who: &Principal,
    f: &Filing,
    rights: &Rights,
    today: &str,
    now: &str,
) -> Result<String, Error> {
    let (fact_id, body, files) = (f.fact_id, f.text, f.files);
    if !may_file(who, &who.org) {
        return Err(Error::Forbidden(
            "credit repair is applied for by the firm's own account".into(),
        ));
    }
    let f = current_fact(s, fact_id, &who.org)?;
    let body = check_text(body, "the application")?;
    check_files(files)?;
    let from = repairable(rights, &f, day(today)?)
        .map_err(Error::BadRequest)?
        .unwrap_or(NaiveDate::MIN);
    if day(today)? < from {
        return Err(Error::BadRequest(format!(
            "a repair of this record may be applied for from {}",
            day_str(from)
        )));
    }
    if repairs_of_firm(s, &who.org)?
        .iter()
        .any(|r| r.fact_id == fact_id && r.state != "refused")
    {
        return Err(Error::BadRequest("this record already has a repair application".into()));
    }
    let id = new_id("XF", today);
    let r = Repair {
        id: id.clone(),
        uscc: who.org.clone(),
        fact_id,
        dataset: f.dataset.clone(),
        source: f.source.clone(),
        applicant: who.user_id.clone(),
        text: body,
        filed_on: today.to_string(),
        filed_at: now.to_string(),
        state: "pending".into(),
        answer: None,
        decided_by: None,
        decided_on: None,
    };
    let mut ops = vec![RowOp::Insert {
        table: "repairs",
        row: r.row(),
    }];
    ops.extend(attachment_ops(&id, files));
    ops.push(log_op(&id, 1, now, today, &who.user_id, "filed", ""));
    s.apply_rows(&ops)?;
    Ok(id)
}

/// The department's decision on a repair application: granted (the record's publicity ends, though not
/// before the rules' earliest day) or refused, with a written answer.
pub fn decide_repair(
    s: &mut dyn Store,
    who: &Principal,
    id: &str,
    grant: bool,
    answer: &str,
    today: &str,
    now: &str,
) -> Result<Repair, Error> {
    let mut r = repair(s, id)?.ok_or_else(|| Error::NotFound(format!("no application {id}")))?;
    if !answers(who, &r.source) {
        return Err(Error::Forbidden(
            "the department that supplied the record decides".into(),
        ));
    }
    if r.state != "pending" {
        return Err(Error::BadRequest("this application has been decided".into()));
    }
    let answer = check_text(answer, "the answer")?;
    r.state = if grant { "granted" } else { "refused" }.into();
    r.answer = Some(answer.clone());
    r.decided_by = Some(who.user_id.clone());
    r.decided_on = Some(today.to_string());
    let n = next_n(s, id)?;
    // Decided once: only while it is still pending (two officers at once: the second gets a conflict).
    s.apply_rows(&[
        RowOp::Update {
            table: "repairs",
            key: vec![Value::text(id)],
            set: vec![
                ("state", Value::text(&r.state)),
                ("answer", opt(&r.answer)),
                ("decided_by", opt(&r.decided_by)),
                ("decided_on", opt(&r.decided_on)),
            ],
            expect: vec![("state", Value::text("pending"))],
        },
        log_op(id, n, now, today, &who.user_id, &r.state, &answer),
    ])?;
    Ok(r)
}
