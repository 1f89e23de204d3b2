//! Real time (issue 7): a source's front-end machine (前置机) pushes records; the platform stores them through
//! the file ingest path, rescores the firms whose facts changed, and writes each change of their warnings,
//! colour or grade as an event to the outbox, in the same transaction as their new live state and the push's
//! receipt. Subscribers read the outbox: the event stream (`stream.rs`) and the inbox.
//!
//! `POST /api/v1/push/{dataset}[?date=YYYY-MM-DD]`, the body in the dataset's registered format (CSV, JSON
//! lines or .xlsx bytes, as the source's files) or, with `Content-Type: application/json`, a JSON array of
//! objects keyed by the source's column headers. Headers:
//! - `X-Push-Key`: the key id (`xinyong push-key create --source S`); the key's source must deliver the dataset;
//! - `X-Push-Timestamp`: Unix seconds, within [`SKEW_SECS`] of the server's clock (an old request replayed is
//!   refused);
//! - `Idempotency-Key`: 1–128 characters `[A-Za-z0-9._-]`; the same key again returns the first receipt and
//!   stores nothing (a retry after a lost answer is safe);
//! - `X-Push-Signature`: hex HMAC-SHA256 with the key's secret over
//!   `"{timestamp}\n{idempotency key}\n{dataset}\n{date}\n"` followed by the body.
//!
//! The answer is a receipt: rows read, quarantined (each with row, reason and raw text, as for files), the
//! firms rescored and the events made. `date` is the delivery date (default: today in Beijing): records are
//! known from it, and the firms are rescored as of it.

use crate::{AppState, Error};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::BTreeMap;
use xinyong_credit::live::{transitions, LiveState, Rescored};
use xinyong_store::rows::{Row, RowOp, RowQuery, Value};
use xinyong_store::Store;

/// How far a push's timestamp may be from the server's clock.
pub const SKEW_SECS: i64 = 300;

/// Quarantined rows listed in a receipt, at most.
pub const RECEIPT_QUARANTINE: u64 = 100;

/// Rescoring: the changed firms from their own facts, then their guarantee groups (each state that changed,
/// the neighbours' included). The binary supplies it (the credit models' scorer lives in `app`, which this
/// crate does not name).
pub type RescoreFn = xinyong_credit::live::Rescorer<OwnFn, SettleFn>;
pub type OwnFn = dyn Fn(&dyn Store, &[String], &str, &str) -> Result<Vec<Rescored>, String> + Send + Sync;
pub type SettleFn = dyn Fn(&dyn Store, Vec<Rescored>, &str) -> Result<Vec<(String, LiveState)>, String> + Send + Sync;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/push/{dataset}", post(push))
}

/// A source's key.
#[derive(Debug, Clone)]
pub struct PushKey {
    pub key_id: String,
    pub source: String,
    pub secret: String,
    pub revoked: bool,
}

/// Makes a key for `source` (its id and secret, shown once).
pub fn create_key(store: &mut dyn Store, source: &str, now: &str) -> Result<PushKey, Error> {
    let reg = crate::pages::registry()?;
    if reg.source(source).is_none() {
        return Err(Error::BadRequest(format!("no source {source} in the registry")));
    }
    let key = PushKey {
        key_id: format!("pk_{}", &crate::auth::random_token()[..16]),
        source: source.to_string(),
        secret: crate::auth::random_token(),
        revoked: false,
    };
    store.apply_rows(&[RowOp::Insert {
        table: "push_keys",
        row: vec![
            Value::text(&key.key_id),
            Value::text(source),
            Value::text(&key.secret),
            Value::text(now),
            Value::Null,
        ],
    }])?;
    Ok(key)
}

fn key_of(store: &dyn Store, key_id: &str) -> Result<Option<PushKey>, Error> {
    let rows = store.rows(&RowQuery::all("push_keys").eq("key_id", Value::text(key_id)))?;
    Ok(rows.first().map(|r| PushKey {
        key_id: r[0].as_str().unwrap_or_default().to_string(),
        source: r[1].as_str().unwrap_or_default().to_string(),
        secret: r[2].as_str().unwrap_or_default().to_string(),
        revoked: !matches!(r[4], Value::Null),
    }))
}

/// The signed text's head (the body follows it).
pub fn signed_head(timestamp: &str, idem: &str, dataset: &str, date: &str) -> String {
    format!("{timestamp}\n{idem}\n{dataset}\n{date}\n")
}

/// The signature of a push (hex HMAC-SHA256), as a front-end machine computes it.
pub fn sign(secret: &str, head: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(head.as_bytes());
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn verify(secret: &str, head: &str, body: &[u8], sig_hex: &str) -> bool {
    let Ok(sig) = hex::decode(sig_hex) else { return false };
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(head.as_bytes());
    m.update(body);
    m.verify_slice(&sig).is_ok()
}

fn refuse(status: StatusCode, code: &str, msg: &str) -> Response {
    crate::api::json_error(status, code, msg)
}

#[derive(Deserialize)]
pub struct PushQuery {
    date: Option<String>,
}

/// What a push did.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Receipt {
    pub idempotency_key: String,
    /// SHA-256 of the dataset, date and body the key was first used with.
    #[serde(default)]
    pub request_sha256: String,
    pub dataset: String,
    pub delivered_on: String,
    pub batches: Vec<String>,
    pub rows_read: u64,
    pub quarantined: u64,
    /// (row, reason, raw text).
    pub quarantine: Vec<(u64, String, String)>,
    pub firms_rescored: u64,
    /// Guarantee neighbours of those firms whose network warnings moved with them (recomposed too).
    #[serde(default)]
    pub neighbours_rescored: u64,
    pub events: Vec<String>,
    /// Where the push's time went, in milliseconds: the ingest (file, parse, archive, commit), the rescoring
    /// of the firms from their own facts, their guarantee groups (network), the states' and events'
    /// transaction.
    #[serde(default)]
    pub ms: BTreeMap<String, u64>,
}

async fn push(
    State(st): State<AppState>,
    Path(dataset): Path<String>,
    Query(q): Query<PushQuery>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let h = |k: &str| {
        headers
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let (key_id, ts, sig, idem) = (
        h("x-push-key"),
        h("x-push-timestamp"),
        h("x-push-signature"),
        h("idempotency-key"),
    );
    if key_id.is_empty() || ts.is_empty() || sig.is_empty() {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a push needs X-Push-Key, X-Push-Timestamp and X-Push-Signature",
        );
    }
    let idem_ok = !idem.is_empty()
        && idem.len() <= 128
        && idem
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-');
    if !idem_ok {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Idempotency-Key: 1 to 128 characters of A-Z a-z 0-9 . _ -",
        );
    }
    let today = st.today();
    let date = q.date.unwrap_or_else(|| today.clone());
    // Canonical only (chrono also reads "+2030-01-1"): the date becomes the facts' known-from and sorts as text.
    let canonical =
        chrono::NaiveDate::parse_from_str(&date, "%Y-%m-%d").is_ok_and(|d| d.format("%Y-%m-%d").to_string() == date);
    if !canonical || date > today {
        return refuse(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "date: a delivery date YYYY-MM-DD, not after today",
        );
    }
    let Ok(t) = ts.parse::<i64>() else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "X-Push-Timestamp: Unix seconds",
        );
    };
    if (st.now() - t).abs() > SKEW_SECS {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "stale",
            "X-Push-Timestamp is more than 5 minutes from the server's clock (a replay, or a clock to set)",
        );
    }
    let k = key_id.clone();
    let key = match st.with_store(move |s| key_of(s, &k)).await {
        Ok(Some(k)) if !k.revoked => k,
        Ok(_) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an unknown or revoked push key",
            )
        }
        Err(e) => return crate::api::api_error(e),
    };
    // The body is read only for a known key (at most the configured size).
    let Ok(body) = axum::body::to_bytes(body, st.cfg.max_body_bytes).await else {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            &format!("a push body is at most {} bytes", st.cfg.max_body_bytes),
        );
    };
    let head = signed_head(&ts, &idem, &dataset, &date);
    if !verify(&key.secret, &head, &body, &sig) {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "X-Push-Signature does not match the body (HMAC-SHA256 of timestamp, key, dataset, date, body)",
        );
    }
    // The key's source must deliver this dataset.
    let Ok(reg) = crate::pages::registry() else {
        return refuse(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the registry");
    };
    let def = reg
        .source(&key.source)
        .and_then(|s| reg.datasets_of(s).into_iter().find(|d| d.id == dataset));
    let Some(def) = def else {
        return refuse(
            StatusCode::FORBIDDEN,
            "forbidden",
            &format!("source {} does not deliver dataset {dataset}", key.source),
        );
    };
    // The body as the source's file.
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let file = if json {
        match from_json(def, &body) {
            Ok(b) => b,
            Err(m) => return refuse(StatusCode::BAD_REQUEST, "bad_json", &m),
        }
    } else {
        body.to_vec()
    };
    let (Some(ingest), Some(rescore)) = (st.ingest.clone(), st.rescore.clone()) else {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "this server was started without an ingest path",
        );
    };
    // One push at a time: the live states and the outbox's order are written by one writer.
    let _one = st.push_lock.lock().await;
    let ext = match def.format {
        xinyong_registry::Format::Csv => "csv",
        xinyong_registry::Format::Xlsx => "xlsx",
        xinyong_registry::Format::Jsonl => "jsonl",
    };
    // What the idempotency key stands for: this dataset, date and body. The same key with another request
    // is refused, not answered with the first receipt.
    let request = {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        h.update(format!("{dataset}\n{date}\n").as_bytes());
        h.update(&body);
        hex::encode(h.finalize())
    };
    let (source, ds, when, pool) = (key.source.clone(), dataset.clone(), st.timestamp(), st.pool.clone());
    let request2 = request.clone();
    let (idem2, date2) = (idem.clone(), date.clone());
    let done = st
        .with_store_mut(move |s| {
            // A retry: the first receipt.
            let seen = s.rows(
                &RowQuery::all("pushes")
                    .eq("source", Value::text(&source))
                    .eq("idem_key", Value::text(&idem2)),
            )?;
            if let Some(r) = seen.first() {
                let receipt: Receipt = serde_json::from_str(r[3].as_str().unwrap_or("{}"))
                    .map_err(|e| Error::Internal(format!("stored receipt: {e}")))?;
                return Ok((true, receipt, 0));
            }
            let dir = std::env::temp_dir().join(format!("xinyong-push-{}", crate::auth::random_token()));
            std::fs::create_dir(&dir).map_err(|e| Error::Internal(format!("push folder: {e}")))?;
            let folder = dir.join(&source);
            let written = std::fs::create_dir(&folder).and_then(|_| {
                let tag: String = crate::auth::sha256_hex(&idem2).chars().take(12).collect();
                std::fs::write(folder.join(format!("{ds}__{date2}__push-{tag}.{ext}")), &file)
            });
            let t0 = std::time::Instant::now();
            let out = written
                .map_err(|e| format!("push file: {e}"))
                .and_then(|_| ingest(s, &dir));
            let t_ingest = t0.elapsed().as_millis() as u64;
            let _ = std::fs::remove_dir_all(&dir);
            let mut report = out.map_err(Error::BadRequest)?;
            // The same bytes stored before under no receipt: a retry after a crash between the ingest's commit
            // and the receipt's. Its firms were never rescored from it: rescore them now (the events it made then).
            if report.skipped > 0 {
                for b in &report.batches {
                    report.changed.extend(s.batch_firms(b)?);
                }
                report.changed.sort_unstable();
                report.changed.dedup();
            }
            let mut quarantine = Vec::new();
            for b in &report.batches {
                for q in s.quarantine_of(b, RECEIPT_QUARANTINE)? {
                    quarantine.push((q.row, q.reason, q.raw));
                }
            }
            // The live states, their events and the receipt: one transaction. Another writer on the store (a
            // second server process) may take the outbox's next numbers first: then read again and retry.
            let t1 = std::time::Instant::now();
            // A delivery dated before the latest full run is rescored as of the run's date: the live state is
            // never taken back to an older view of the firm (which would make spurious events).
            let run_as_of = s.runs()?.into_iter().map(|r| r.as_of).max().unwrap_or_default();
            let as_of = if date2 < run_as_of { run_as_of } else { date2.clone() };
            let (scored, t_network) = rescore_all(s, &pool, &rescore, &report.changed, &as_of, &as_of)?;
            let neighbours = scored.len().saturating_sub(report.changed.len()) as u64;
            let t_rescore = (t1.elapsed().as_millis() as u64).saturating_sub(t_network);
            let t2 = std::time::Instant::now();
            let mut attempt = 0;
            let (receipt, last) = loop {
                let (mut ops, events, last) = rescored(s, &scored, &date2, &source, &idem2, &when)?;
                // Stamped as the transaction is written (after the rescoring): an outbox row's created_at is
                // when its push was accepted.
                let at = Value::text(crate::timestamp());
                for op in &mut ops {
                    if let RowOp::Insert { table: "outbox", row } = op {
                        row[9] = at.clone();
                    }
                }
                let receipt = Receipt {
                    idempotency_key: idem2.clone(),
                    request_sha256: request2.clone(),
                    dataset: ds.clone(),
                    delivered_on: date2.clone(),
                    batches: report.batches.clone(),
                    rows_read: report.rows_read,
                    quarantined: report.quarantined,
                    quarantine: quarantine.clone(),
                    firms_rescored: report.changed.len() as u64,
                    neighbours_rescored: neighbours,
                    events,
                    ms: [
                        ("ingest", t_ingest),
                        ("rescore", t_rescore),
                        ("network", t_network),
                        ("write", t2.elapsed().as_millis() as u64),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect(),
                };
                ops.push(RowOp::Insert {
                    table: "pushes",
                    row: vec![
                        Value::text(&source),
                        Value::text(&idem2),
                        Value::text(&when),
                        Value::text(serde_json::to_string(&receipt).unwrap_or_default()),
                    ],
                });
                match s.apply_rows(&ops) {
                    Ok(()) => break (receipt, last),
                    Err(e) if attempt >= 4 => return Err(e.into()),
                    Err(_) => attempt += 1,
                }
            };
            Ok((false, receipt, last))
        })
        .await;
    let (replay, receipt, last) = match done {
        Ok(x) => x,
        Err(e) => return crate::api::api_error(e),
    };
    if replay && !receipt.request_sha256.is_empty() && receipt.request_sha256 != request {
        return refuse(
            StatusCode::CONFLICT,
            "idempotency_conflict",
            "this Idempotency-Key was used with another dataset, date or body",
        );
    }
    if !replay {
        st.events.send_replace(last);
        // The new facts show on the next page.
        if let Ok(g) = st.with_store(|s| crate::generation(s)).await {
            st.caches.advance(g);
        }
    }
    // On the audit log, a replay too (it stored nothing: its entry says so). The push's own transaction is
    // committed first: an entry names only what was stored.
    let entry = crate::audit::Entry {
        user_id: key.key_id.clone(),
        role: "source".into(),
        org: key.source.clone(),
        action: if replay { "replay".into() } else { "write".into() },
        uscc: None,
        target: format!("push:{dataset}:{idem}"),
        basis: Some(format!(
            "{}{} rows, {} quarantined, {} events",
            if replay { "the first receipt again: " } else { "" },
            receipt.rows_read,
            receipt.quarantined,
            receipt.events.len()
        )),
        address: String::new(),
    };
    if let Err(e) = st.audit.record(entry).await {
        return crate::api::api_error(e);
    }
    let status = if replay { StatusCode::OK } else { StatusCode::CREATED };
    (
        status,
        [("idempotent-replay", if replay { "true" } else { "false" })],
        Json(receipt),
    )
        .into_response()
}

/// From the firms' live states before (the last told, else the latest run's) and after rescoring (`scored`):
/// the rows to write (states, events with their outbox sequence numbers), the event ids and the last seq.
type Written = (Vec<RowOp>, Vec<String>, i64);

fn rescored(
    s: &dyn Store,
    scored: &[(String, LiveState)],
    date: &str,
    source: &str,
    cause: &str,
    when: &str,
) -> Result<Written, Error> {
    // Idempotency keys are unique per source: the events' ids are made from both.
    let scoped = format!("{source}:{cause}");
    let mut seq = last_seq(s)?;
    let run = s.latest_run()?;
    let mut ops = Vec::new();
    let mut ids = Vec::new();
    for (uscc, now) in scored {
        let uscc = uscc.clone();
        let before = match live_state(s, &uscc)? {
            Some(b) => b,
            None => match &run {
                Some(r) => s
                    .run_score(&r.run_id, &uscc)?
                    .and_then(|j| serde_json::from_str::<xinyong_credit::score::FirmScore>(&j).ok())
                    .map(|f| LiveState::of(&f))
                    .unwrap_or_default(),
                None => LiveState::default(),
            },
        };
        for e in transitions(&uscc, date, &scoped, &before, now) {
            seq += 1;
            ids.push(e.id.clone());
            ops.push(RowOp::Insert {
                table: "outbox",
                row: vec![
                    Value::Int(seq),
                    Value::text(&e.id),
                    Value::text(&e.uscc),
                    Value::text(&e.date),
                    Value::text(&e.kind),
                    e.rule.map_or(Value::Null, |r| Value::Int(r as i64)),
                    Value::text(&e.before),
                    Value::text(&e.after),
                    Value::text(cause),
                    Value::text(when),
                ],
            });
        }
        ops.push(RowOp::Put {
            table: "firm_state",
            row: vec![
                Value::text(&uscc),
                Value::text(serde_json::to_string(&now).unwrap_or_default()),
                Value::text(cause),
                Value::text(when),
            ],
        });
    }
    Ok((ops, ids, seq))
}

/// Rescores `firms` as of `date` from their own facts, in parallel over pooled connections when there are
/// many (one a core, at most 4): a push of a monthly snapshot changes hundreds of firms. Then their guarantee
/// groups, once: the states of the firms and of the neighbours whose warnings moved.
fn rescore_all(
    s: &dyn Store,
    pool: &xinyong_store::pool::Pool,
    rescore: &RescoreFn,
    firms: &[String],
    date: &str,
    known_by: &str,
) -> Result<(Vec<(String, LiveState)>, u64), Error> {
    let own = &rescore.own;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let parts = cores.min(firms.len() / 16).max(1);
    let rescored = if parts == 1 {
        own(s, firms, date, known_by).map_err(Error::Internal)?
    } else {
        let size = firms.len().div_ceil(parts);
        let mut chunks = firms.chunks(size);
        let first = chunks.next().unwrap_or_default();
        let others: Vec<(xinyong_store::pool::Pooled, &[String])> =
            chunks.map(|c| Ok((pool.get()?, c))).collect::<Result<_, Error>>()?;
        std::thread::scope(|sc| {
            let handles: Vec<_> = others
                .into_iter()
                .map(|(conn, c)| sc.spawn(move || own(&**conn, c, date, known_by)))
                .collect();
            let mut out = own(s, first, date, known_by).map_err(Error::Internal)?;
            for h in handles {
                let part = h
                    .join()
                    .map_err(|_| Error::Internal("a rescoring thread failed".into()))?;
                out.extend(part.map_err(Error::Internal)?);
            }
            Ok::<_, Error>(out)
        })?
    };
    let t = std::time::Instant::now();
    let states = (rescore.settle)(s, rescored, date).map_err(Error::Internal)?;
    Ok((states, t.elapsed().as_millis() as u64))
}

/// Rescores `firms` after a change that is not a push (an objection's correction or removal): as of the
/// latest run's date with what is known today (a restatement), their events written to the outbox under
/// `cause` in one transaction with `extra`. Returns the events' ids and the outbox's last sequence number.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rescore_and_tell(
    s: &mut dyn Store,
    pool: &xinyong_store::pool::Pool,
    rescore: &RescoreFn,
    firms: &[String],
    today: &str,
    source: &str,
    cause: &str,
    when: &str,
    extra: Vec<RowOp>,
) -> Result<(Vec<String>, i64), Error> {
    let run_as_of = s.runs()?.into_iter().map(|r| r.as_of).max().unwrap_or_default();
    let as_of = if run_as_of.is_empty() {
        today.to_string()
    } else {
        run_as_of.min(today.to_string())
    };
    let (scored, _) = rescore_all(s, pool, rescore, firms, &as_of, today)?;
    let mut attempt = 0;
    loop {
        let (mut ops, events, last) = rescored(s, &scored, today, source, cause, when)?;
        let at = Value::text(crate::timestamp());
        for op in &mut ops {
            if let RowOp::Insert { table: "outbox", row } = op {
                row[9] = at.clone();
            }
        }
        ops.extend(extra.iter().cloned());
        match s.apply_rows(&ops) {
            Ok(()) => return Ok((events, last)),
            Err(e) if attempt >= 4 => return Err(e.into()),
            Err(_) => attempt += 1,
        }
    }
}

/// A firm's live state as last told (none before its first push since the latest run).
pub fn live_state(s: &dyn Store, uscc: &str) -> Result<Option<LiveState>, Error> {
    let rows = s.rows(&RowQuery::all("firm_state").eq("uscc", Value::text(uscc)))?;
    Ok(rows
        .first()
        .and_then(|r| serde_json::from_str(r[1].as_str().unwrap_or("")).ok()))
}

/// The outbox's last sequence number (0: empty).
pub fn last_seq(s: &dyn Store) -> Result<i64, Error> {
    let rows = s.rows(&RowQuery::all("outbox").last(1))?;
    Ok(rows.first().and_then(|r| r[0].as_int()).unwrap_or(0))
}

/// An outbox row as sent to subscribers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutEvent {
    pub seq: i64,
    pub event_id: String,
    pub uscc: String,
    pub date: String,
    pub kind: String,
    pub rule: Option<i64>,
    pub before: String,
    pub after: String,
    pub created_at: String,
}

impl OutEvent {
    pub fn from_row(r: &Row) -> Option<OutEvent> {
        Some(OutEvent {
            seq: r[0].as_int()?,
            event_id: r[1].as_str()?.to_string(),
            uscc: r[2].as_str()?.to_string(),
            date: r[3].as_str()?.to_string(),
            kind: r[4].as_str()?.to_string(),
            rule: r[5].as_int(),
            before: r[6].as_str()?.to_string(),
            after: r[7].as_str()?.to_string(),
            created_at: r[9].as_str()?.to_string(),
        })
    }
}

/// Outbox events after `seq`, oldest first, at most `limit`.
pub fn events_after(s: &dyn Store, seq: i64, limit: usize) -> Result<Vec<OutEvent>, Error> {
    let rows = s.rows(
        &RowQuery::all("outbox")
            .after("seq", Value::Int(seq))
            .limit(limit as u64),
    )?;
    Ok(rows.iter().filter_map(OutEvent::from_row).collect())
}

/// A JSON array of objects keyed by the source's headers, as the dataset's registered file (CSV in its
/// encoding, or JSON lines); .xlsx datasets take the file itself.
fn from_json(def: &xinyong_registry::Dataset, body: &[u8]) -> Result<Vec<u8>, String> {
    let rows: Vec<BTreeMap<String, serde_json::Value>> =
        serde_json::from_slice(body).map_err(|e| format!("the body is not a JSON array of objects: {e}"))?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    match def.format {
        xinyong_registry::Format::Jsonl => {
            let mut out = Vec::new();
            for r in &rows {
                out.extend(serde_json::to_vec(r).map_err(|e| e.to_string())?);
                out.push(b'\n');
            }
            Ok(out)
        }
        xinyong_registry::Format::Csv => {
            let headers: Vec<&str> = def.columns.iter().map(|c| c.header.as_str()).collect();
            for r in &rows {
                if let Some(k) = r.keys().find(|k| !headers.contains(&k.as_str())) {
                    return Err(format!(
                        "{k}: not a column of {} (its headers: {})",
                        def.id,
                        headers.join(", ")
                    ));
                }
            }
            let mut w = csv::Writer::from_writer(Vec::new());
            w.write_record(&headers).map_err(|e| e.to_string())?;
            for r in &rows {
                w.write_record(headers.iter().map(|h| r.get(*h).map(text).unwrap_or_default()))
                    .map_err(|e| e.to_string())?;
            }
            let utf8 = w.into_inner().map_err(|e| e.to_string())?;
            Ok(match def.encoding {
                xinyong_registry::Encoding::Gb18030 => {
                    let s = String::from_utf8(utf8).map_err(|e| e.to_string())?;
                    encoding_rs::GB18030.encode(&s).0.into_owned()
                }
                _ => utf8,
            })
        }
        xinyong_registry::Format::Xlsx => Err(format!(
            "{} is registered as .xlsx: push the workbook itself, not JSON",
            def.id
        )),
    }
}

/// A front-end machine's side of the push API: signs and sends pushes (the feed simulator uses it; a
/// source's own machine does the same in its own language).
pub struct Pusher {
    base: String,
    key_id: String,
    secret: String,
    client: crate::webhooks::Client,
}

impl Pusher {
    /// `base`: the platform's address (`http://host:port`).
    pub fn new(base: &str, key_id: &str, secret: &str) -> Pusher {
        Pusher {
            base: base.trim_end_matches('/').to_string(),
            key_id: key_id.to_string(),
            secret: secret.to_string(),
            client: crate::webhooks::client(),
        }
    }

    /// Sends one push; the answer's status and body (a receipt, or an error).
    pub async fn send(
        &self,
        dataset: &str,
        date: &str,
        idem: &str,
        body: Vec<u8>,
        now: i64,
    ) -> Result<(u16, serde_json::Value), String> {
        let ts = now.to_string();
        let sig = sign(&self.secret, &signed_head(&ts, idem, dataset, date), &body);
        let req = axum::http::Request::post(format!("{}/api/v1/push/{dataset}?date={date}", self.base))
            .header("x-push-key", &self.key_id)
            .header("x-push-timestamp", &ts)
            .header("x-push-signature", sig)
            .header("idempotency-key", idem)
            .body(http_body_util::Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let res = tokio::time::timeout(std::time::Duration::from_secs(60), self.client.request(req))
            .await
            .map_err(|_| "no answer in 60 s".to_string())?
            .map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(res.into_body())
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, serde_json::from_slice(&bytes).unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_every_signed_part() {
        let head = signed_head("1700000000", "k1", "court.cases", "2026-02-01");
        let sig = sign("s3cret", &head, b"body");
        assert!(verify("s3cret", &head, b"body", &sig));
        assert!(!verify("s3cret", &head, b"bodY", &sig), "the body");
        assert!(!verify("other", &head, b"body", &sig), "the secret");
        for other in [
            signed_head("1700000001", "k1", "court.cases", "2026-02-01"),
            signed_head("1700000000", "k2", "court.cases", "2026-02-01"),
            signed_head("1700000000", "k1", "court.dishonest", "2026-02-01"),
            signed_head("1700000000", "k1", "court.cases", "2026-02-02"),
        ] {
            assert!(!verify("s3cret", &other, b"body", &sig), "{other:?}");
        }
        assert!(!verify("s3cret", &head, b"body", "zz"), "not hex");
    }
}
