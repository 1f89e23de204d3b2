//! The pages of an enterprise's rights (issue 8): filing an objection and following it, the department's
//! answer, credit repair applications and their review, and the public turnaround figures. The cases
//! themselves are `objections.rs`.

use crate::account::Ctx;
use crate::auth::{Principal, Role};
use crate::objections::{self as ob, Objection, Outcome, Repair};
use crate::pages::{lang_of, page, registry, LangQuery};
use crate::{AppState, Error};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xinyong_store::{Store, StoredFact};

/// Cases of each kind listed on one page, at most (open and oldest due first).
const LIST_MAX: usize = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/objections", get(list).post(file_post))
        .route("/objections/new", get(new_page))
        .route("/objections/turnaround", get(turnaround_page))
        .route("/objections/{id}", get(detail))
        .route("/objections/{id}/answer", post(answer_post))
        .route("/objections/{id}/extend", post(extend_post))
        .route("/objections/{id}/files/{n}", get(file_get))
        .route("/repairs", post(repair_post))
        .route("/repairs/new", get(repair_new))
        .route("/repairs/{id}", get(repair_detail))
        .route("/repairs/{id}/decide", post(repair_decide))
        .route("/api/v1/objections/turnaround", get(turnaround_api))
        .route("/improve", get(improve))
        .route("/person", get(person_page))
}

fn signed_in(ctx: &Ctx, roles: &[Role]) -> Result<Principal, Box<Response>> {
    ctx.require(
        roles,
        "objections are for the firm, the department that answers them and the regulator",
    )
    .cloned()
}

#[derive(Deserialize)]
struct FactQuery {
    fact: i64,
    #[serde(default)]
    lang: Option<String>,
}

/// A stored fact as a page shows it: its dataset's name and its fields with the source's headers.
#[derive(Serialize)]
struct FactView {
    fact_id: i64,
    dataset: String,
    name: String,
    source: String,
    known_from: String,
    known_to: Option<String>,
    /// (field, header, shown value, raw value)
    fields: Vec<(String, String, String, String)>,
}

fn fact_view(f: &StoredFact) -> FactView {
    let reg = registry().ok();
    let def = reg.and_then(|r| r.dataset(&f.dataset));
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).unwrap_or_default();
    // The firm sees its whole record (a person's fields are never shown on a page).
    let fields = crate::pages::shown_fields(def, &v, true)
        .into_iter()
        .map(|k| {
            let raw = match &v[k] {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => String::new(),
                other => other.to_string(),
            };
            (
                k.clone(),
                crate::pages::header_of(def, k),
                crate::pages::shown(def, k, &v[k]),
                raw,
            )
        })
        .collect();
    FactView {
        fact_id: f.fact_id,
        dataset: f.dataset.clone(),
        name: def.map_or(f.dataset.clone(), |d| d.name.clone()),
        source: f.source.clone(),
        known_from: f.known_from.clone(),
        known_to: f.known_to.clone(),
        fields,
    }
}

/// A score as the pages compare it.
#[derive(Serialize)]
struct ScoreView {
    score: f64,
    grade: String,
    pd: f64,
    colour: Option<String>,
    warnings: Vec<(u32, String, String, String)>,
}

fn score_view(s: &xinyong_credit::score::FirmScore) -> ScoreView {
    let rules = xinyong_credit::warnings::builtin_rules();
    ScoreView {
        score: s.score,
        grade: s.grade.clone(),
        pd: s.pd,
        colour: s.colour.map(|c| c.key().to_string()),
        warnings: s
            .warnings
            .iter()
            .map(|w| {
                let r = rules.iter().find(|r| r.id == w.rule);
                (
                    w.rule,
                    w.colour.key().to_string(),
                    r.map_or(String::new(), |r| r.name_zh.clone()),
                    r.map_or(String::new(), |r| r.name_en.clone()),
                )
            })
            .collect(),
    }
}

/// The firm's score with and without the facts, where the server can score (as of the latest run's date,
/// with what is known now).
fn what_if(st: &AppState, s: &dyn Store, uscc: &str, facts: &[i64]) -> Result<Option<(ScoreView, ScoreView)>, Error> {
    let Some(f) = &st.what_if else { return Ok(None) };
    let Some(run) = s.latest_run()? else {
        return Ok(None);
    };
    let (with, without) = f(s, uscc, facts, &run.as_of, &st.today()).map_err(Error::Internal)?;
    Ok(Some((score_view(&with), score_view(&without))))
}

/// Whether the holiday calendar lists every year a clock spans (else only weekends count as rest days).
fn known_years(st: &AppState, c: &xinyong_rights::Clock) -> bool {
    use chrono::Datelike;
    (c.filed.year()..=c.due.year()).all(|y| st.rights.calendar.knows(y))
}

fn firm_name(st: &AppState, uscc: &str) -> String {
    st.index
        .read()
        .ok()
        .and_then(|i| i.get(uscc).map(|f| f.name.clone()))
        .unwrap_or_else(|| uscc.to_string())
}

#[derive(Serialize)]
struct Row {
    o: Objection,
    firm: String,
    dataset_name: String,
    due: String,
    stage: String,
}

fn dataset_name(ds: &str) -> String {
    registry()
        .ok()
        .and_then(|r| r.dataset(ds).map(|d| d.name.clone()))
        .unwrap_or_else(|| ds.to_string())
}

async fn list(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let who = match signed_in(
        &ctx,
        &[
            Role::Enterprise,
            Role::Department,
            Role::Bank,
            Role::Regulator,
            Role::Person,
        ],
    ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (w, rights, today) = (who.clone(), st.rights.clone(), st.today());
    let got = st
        .with_store(move |s| {
            let (os, rs) = match w.role {
                // A person's case about the firm's record is the person's, not the firm's.
                Role::Enterprise => (
                    ob::of_firm(s, &w.org)?
                        .into_iter()
                        .filter(|o| o.person.is_empty())
                        .collect(),
                    ob::repairs_of_firm(s, &w.org)?,
                ),
                Role::Person => (ob::of_person(s, &w.org)?, Vec::new()),
                // The supplier of the records: a department, or a lender for its loan and guarantee records.
                Role::Department | Role::Bank => (ob::of_source(s, &w.org)?, ob::repairs_of_source(s, &w.org)?),
                _ => (ob::all(s)?, ob::all_repairs(s)?),
            };
            let t = ob::day(&today)?;
            let mut rows = Vec::new();
            for o in os {
                let clock = o.clock(&rights)?;
                let stage = o.stage_on(&rights, t)?;
                rows.push((o, clock.due.format("%Y-%m-%d").to_string(), stage.key().to_string()));
            }
            let repairs: Vec<(Repair, String)> = rs
                .into_iter()
                .map(|r| {
                    let due = r
                        .clock(&rights)
                        .map(|c| c.due.format("%Y-%m-%d").to_string())
                        .unwrap_or_default();
                    (r, due)
                })
                .collect();
            Ok((rows, repairs))
        })
        .await;
    let (mut rows, mut repairs) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    // A page holds at most LIST_MAX cases of each kind (open and oldest due first).
    let totals = (rows.len(), repairs.len());
    rows.truncate(LIST_MAX);
    repairs.truncate(LIST_MAX);
    // The department's and the regulator's list names firms' cases: reads of their non-public record.
    if matches!(who.role, Role::Department | Role::Bank | Role::Regulator) {
        let mut firms: Vec<&str> = rows.iter().map(|r| r.0.uscc.as_str()).collect();
        firms.extend(repairs.iter().map(|r| r.0.uscc.as_str()));
        firms.sort_unstable();
        firms.dedup();
        let entries = firms
            .iter()
            .map(|u| ctx.entry("read", Some(u), "/objections", Some("objections".into())))
            .collect();
        if let Err(e) = st.audit.record_many(entries).await {
            return e.into_response();
        }
    }
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(o, due, stage)| Row {
            firm: firm_name(&st, &o.uscc),
            dataset_name: dataset_name(&o.dataset),
            o,
            due,
            stage,
        })
        .collect();
    let repairs: Vec<serde_json::Value> = repairs
        .into_iter()
        .map(|(r, due)| {
            serde_json::json!({ "r": r, "firm": firm_name(&st, &r.uscc), "dataset_name": dataset_name(&r.dataset), "due": due })
        })
        .collect();
    page(
        &st,
        &ctx,
        "objections.html",
        lang,
        cookie,
        serde_json::json!({
            "path": "/objections", "rows": rows, "repairs": repairs, "today": st.today(),
            "total_rows": totals.0, "total_repairs": totals.1,
        }),
    )
}

async fn new_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<FactQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&LangQuery { lang: q.lang.clone() }, &headers);
    let who = match signed_in(&ctx, &[Role::Enterprise, Role::Person]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (st2, fact, rights, today) = (st.clone(), q.fact, st.rights.clone(), st.today());
    let got = st
        .with_store(move |s| {
            let f = s
                .fact(fact)
                .map_err(|_| Error::NotFound(format!("no record {fact} of yours")))?;
            let person = who.role == Role::Person;
            if person && !ob::persons_of(&f).iter().any(|(p, _)| *p == who.org) {
                return Err(Error::NotFound(format!("no record {fact} that names you")));
            }
            if !person && f.uscc != who.org {
                return Err(Error::NotFound(format!("no record {fact} of yours")));
            }
            let (_, regime) = rights
                .regimes
                .get(None)
                .ok_or_else(|| Error::Internal("no regime".into()))?;
            let clock = regime.clock(ob::day(&today)?, &rights.calendar, false);
            let open = ob::disputed(s, &f.uscc)?.of(&f).cloned();
            let scores = if person {
                None
            } else {
                what_if(&st2, s, &who.org, &[fact])?
            };
            Ok((fact_view(&f), clock, regime.clone(), open, scores, f.known_to.is_some()))
        })
        .await;
    let (fv, clock, regime, open, scores, replaced) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    page(
        &st,
        &ctx,
        "objection.html",
        lang,
        cookie,
        serde_json::json!({
            "calendar_known": known_years(&st, &clock),
            "path": format!("/objections/new?fact={}", q.fact), "mode": "new", "fact": fv, "clock": clock,
            "regime": regime, "open": open, "scores": scores, "replaced": replaced,
            "max_files": ob::MAX_FILES,
        }),
    )
}

/// A multipart form: its text fields and its files (name, content type, bytes).
async fn read_form(mut mp: Multipart) -> Result<(BTreeMap<String, String>, Vec<(String, String, Vec<u8>)>), Error> {
    let (mut fields, mut files) = (BTreeMap::new(), Vec::new());
    loop {
        match mp.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or("").to_string();
                let file_name = f.file_name().map(String::from);
                let ctype = f.content_type().unwrap_or("application/octet-stream").to_string();
                let b = f
                    .bytes()
                    .await
                    .map_err(|e| Error::BadRequest(format!("the form broke off: {e}")))?;
                match file_name {
                    Some(n) if name == "files" => {
                        if !b.is_empty() {
                            files.push((n, ctype, b.to_vec()));
                        }
                    }
                    _ => {
                        fields.insert(name, String::from_utf8_lossy(&b).to_string());
                    }
                }
            }
            Ok(None) => break,
            Err(e) => return Err(Error::BadRequest(format!("not a form: {e}"))),
        }
    }
    Ok((fields, files))
}

/// What a firm's form files: an objection or a repair application.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Objection,
    Repair,
}

/// Files the form's case (an objection: the firm's own account or a person the record names; a repair: the
/// firm's); the case's page next.
async fn filed(st: &AppState, ctx: &Ctx, mp: Multipart, kind: Kind) -> Response {
    let roles: &[Role] = match kind {
        Kind::Objection => &[Role::Enterprise, Role::Person],
        Kind::Repair => &[Role::Enterprise],
    };
    let who = match signed_in(ctx, roles) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (fields, files) = match read_form(mp).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let Some(fact) = fields.get("fact").and_then(|f| f.trim().parse::<i64>().ok()) else {
        return Error::BadRequest("which record: fact".into()).into_response();
    };
    let body = fields.get("text").cloned().unwrap_or_default();
    let (w, rights, today, now) = (who.clone(), st.rights.clone(), st.today(), st.timestamp());
    let done = st
        .with_store_mut(move |s| {
            let f = ob::Filing {
                fact_id: fact,
                text: &body,
                files: &files,
            };
            match kind {
                Kind::Objection => ob::file(s, &w, &f, &rights, &today, &now),
                Kind::Repair => ob::apply_repair(s, &w, &f, &rights, &today, &now),
            }
        })
        .await;
    let id = match done {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    // An objection marks the record disputed in every view from now on: the kept overviews go.
    if kind == Kind::Objection {
        st.caches.clear();
    }
    let (path, what) = match kind {
        Kind::Objection => ("objections", "objection"),
        Kind::Repair => ("repairs", "repair"),
    };
    // The firm's own case names the firm; a person's case names no firm in the log line's firm column.
    let firm = (who.role == Role::Enterprise).then_some(who.org.as_str());
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", firm, &format!("/{path}"), Some(format!("{what}:{id}"))))
        .await
    {
        return e.into_response();
    }
    Redirect::to(&format!("/{path}/{id}")).into_response()
}

async fn file_post(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, mp: Multipart) -> Response {
    filed(&st, &ctx, mp, Kind::Objection).await
}

async fn detail(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let who = match signed_in(
        &ctx,
        &[
            Role::Enterprise,
            Role::Department,
            Role::Bank,
            Role::Regulator,
            Role::Person,
        ],
    ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let is_person = who.role == Role::Person;
    let (st2, i, rights, today) = (st.clone(), id.clone(), st.rights.clone(), st.today());
    let got = st
        .with_store(move |s| {
            let o = ob::get(s, &i)?.ok_or_else(|| Error::NotFound(format!("no objection {i}")))?;
            if !ob::may_read(&who, &o.uscc, &o.source, &o.person) {
                return Err(Error::Forbidden("this objection is not yours to read".into()));
            }
            let before = fact_view(&s.fact(o.fact_id)?);
            let after = match o.new_fact {
                Some(n) => Some(fact_view(&s.fact(n)?)),
                None => None,
            };
            let clock = o.clock(&rights)?;
            let stage = o.stage_on(&rights, ob::day(&today)?)?;
            let (_, regime) = rights
                .regimes
                .get(Some(&o.regime))
                .ok_or_else(|| Error::Internal("no regime".into()))?;
            // With and without the fact while it is disputed; after the answer the record speaks for itself.
            // (Not for a person: the firm's score is the firm's.)
            let scores = if o.is_open() && !is_person {
                what_if(&st2, s, &o.uscc, &[o.fact_id])?
            } else {
                None
            };
            Ok((
                o.clone(),
                before,
                after,
                clock,
                stage.key(),
                regime.clone(),
                ob::log(s, &i)?,
                ob::attachments(s, &i)?,
                scores,
            ))
        })
        .await;
    let (o, before, after, clock, stage, regime, log, files, scores) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let path = format!("/objections/{id}");
    if let Err(e) = st
        .audit
        // A person's case is logged without the firm: the firm's log of reads must not reveal it.
        .record(ctx.entry(
            "read",
            o.person.is_empty().then_some(o.uscc.as_str()),
            &path,
            Some(format!("objection:{id}")),
        ))
        .await
    {
        return e.into_response();
    }
    let answers = ctx.user.as_ref().is_some_and(|p| ob::answers(p, &o.source));
    // The dataset's fields the record left out (an end date not delivered), for a correction to fill in;
    // never a person's or a sensitive field.
    let missing: Vec<(String, String)> = registry()
        .ok()
        .and_then(|r| r.dataset(&o.dataset))
        .map(|d| {
            d.columns
                .iter()
                .filter(|c| c.ty != xinyong_registry::ColType::Id && !c.field.starts_with("metric:"))
                .filter(|c| {
                    matches!(
                        d.class_of(&c.field),
                        xinyong_registry::Class::Public | xinyong_registry::Class::NonPublic
                    )
                })
                .filter(|c| !before.fields.iter().any(|f| f.0 == c.field))
                .map(|c| (c.field.clone(), c.header.clone()))
                .collect()
        })
        .unwrap_or_default();
    // Both versions side by side: (field, header, before, after, changed).
    let diff: Vec<(String, String, String, String, bool)> = after
        .as_ref()
        .map(|a| {
            a.fields
                .iter()
                .map(|(k, h, v, _)| {
                    let old = before
                        .fields
                        .iter()
                        .find(|x| &x.0 == k)
                        .map(|x| x.2.clone())
                        .unwrap_or_default();
                    (k.clone(), h.clone(), old.clone(), v.clone(), &old != v)
                })
                .collect()
        })
        .unwrap_or_default();
    page(
        &st,
        &ctx,
        "objection.html",
        lang,
        cookie,
        serde_json::json!({
            "calendar_known": known_years(&st, &clock),
            "path": path, "mode": "detail", "o": o, "firm": firm_name(&st, &o.uscc), "fact": before, "after": after,
            "clock": clock, "stage": stage, "regime": regime, "log": log, "files": files, "scores": scores,
            "answers": answers && o.is_open(), "diff": diff, "missing": missing,
        }),
    )
}

async fn answer_post(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let who = match signed_in(&ctx, &[Role::Department, Role::Bank]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let get = |k: &str| {
        form.iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let Some(outcome) = Outcome::parse(&get("outcome")) else {
        return Error::BadRequest("outcome: corrected, removed or upheld".into()).into_response();
    };
    let answer = get("answer");
    let corrected: BTreeMap<String, String> = form
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("f.").map(|k| (k.to_string(), v.clone())))
        .collect();
    // The outbox has one writer: an answer that changes a record writes the firm's events like a push.
    let _one = st.push_lock.lock().await;
    let (w, i, rights, today, now, pool, rescore) = (
        who.clone(),
        id.clone(),
        st.rights.clone(),
        st.today(),
        st.timestamp(),
        st.pool.clone(),
        st.rescore.clone(),
    );
    let done = st
        .with_store_mut(move |s| {
            let a = ob::answer(s, &w, &i, outcome, &answer, &corrected, &rights, &today, &now)?;
            match (&a.changed, &rescore) {
                (Some(uscc), Some(r)) => {
                    let cause = format!("objection:{i}");
                    let (events, last) = crate::push::rescore_and_tell(
                        s,
                        &pool,
                        r,
                        std::slice::from_ref(uscc),
                        &today,
                        &w.org,
                        &cause,
                        &now,
                        a.ops,
                    )?;
                    Ok((a.changed, events, Some(last)))
                }
                _ => {
                    s.apply_rows(&a.ops)?;
                    Ok((a.changed, Vec::new(), None))
                }
            }
        })
        .await;
    let (changed, events, last) = match done {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Some(last) = last {
        st.events.send_replace(last);
    }
    st.caches.clear();
    let uscc = changed.unwrap_or_default();
    let entry = ctx.entry(
        "write",
        (!uscc.is_empty()).then_some(uscc.as_str()),
        &format!("/objections/{id}/answer"),
        Some(format!("objection:{id}:{}:{} events", outcome.key(), events.len())),
    );
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to(&format!("/objections/{id}")).into_response()
}

#[derive(Deserialize)]
struct ReasonForm {
    reason: String,
}

async fn extend_post(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<ReasonForm>,
) -> Response {
    let who = match signed_in(&ctx, &[Role::Department, Role::Bank]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (i, rights, today, now) = (id.clone(), st.rights.clone(), st.today(), st.timestamp());
    let done = st
        .with_store_mut(move |s| ob::extend(s, &who, &i, &f.reason, &rights, &today, &now))
        .await;
    if let Err(e) = done {
        return e.into_response();
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry(
            "write",
            None,
            &format!("/objections/{id}/extend"),
            Some(format!("objection:{id}")),
        ))
        .await
    {
        return e.into_response();
    }
    Redirect::to(&format!("/objections/{id}")).into_response()
}

async fn file_get(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, n)): Path<(String, i64)>,
) -> Response {
    let who = match signed_in(
        &ctx,
        &[
            Role::Enterprise,
            Role::Department,
            Role::Bank,
            Role::Regulator,
            Role::Person,
        ],
    ) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let i = id.clone();
    let got = st
        .with_store(move |s| {
            let (uscc, source, person) = match ob::get(s, &i)? {
                Some(o) => (o.uscc, o.source, o.person),
                None => match ob::repair(s, &i)? {
                    Some(r) => (r.uscc, r.source, String::new()),
                    None => return Err(Error::NotFound(format!("no case {i}"))),
                },
            };
            if !ob::may_read(&who, &uscc, &source, &person) {
                return Err(Error::Forbidden("not yours to read".into()));
            }
            let a = ob::attachments(s, &i)?
                .into_iter()
                .find(|a| a.n == n)
                .ok_or_else(|| Error::NotFound("no such attachment".into()))?;
            Ok((person.is_empty().then_some(uscc), a))
        })
        .await;
    let (uscc, a) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = st
        .audit
        .record(ctx.entry("read", uscc.as_deref(), &format!("/objections/{id}/files/{n}"), None))
        .await
    {
        return e.into_response();
    }
    // Always a download, never rendered in the platform's origin.
    // The name as filed (RFC 6266 / 5987): an ASCII fallback, and the UTF-8 name percent-encoded.
    let ascii: String = a
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    let ascii = if ascii.trim_matches('.').is_empty() {
        format!("attachment-{n}")
    } else {
        ascii
    };
    let utf8 = crate::pages::urlencode(&a.name);
    (
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{utf8}"),
            ),
        ],
        a.data,
    )
        .into_response()
}

async fn turnaround_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let (rights, today) = (st.rights.clone(), st.today());
    let got = st.with_store(move |s| ob::turnaround(s, &rights, &today)).await;
    let rows = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let (_, regime) = match st.rights.regimes.get(None) {
        Some(r) => r,
        None => return Error::Internal("no regime".into()).into_response(),
    };
    let names: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            let n = registry()
                .ok()
                .and_then(|g| g.source(&r.source).map(|s| s.name.clone()))
                .unwrap_or_else(|| r.source.clone());
            (r.source.clone(), n)
        })
        .collect();
    page(
        &st,
        &ctx,
        "turnaround.html",
        lang,
        cookie,
        serde_json::json!({ "path": "/objections/turnaround", "rows": rows, "names": names, "regime": regime }),
    )
}

async fn turnaround_api(State(st): State<AppState>) -> Response {
    let (rights, today) = (st.rights.clone(), st.today());
    match st.with_store(move |s| ob::turnaround(s, &rights, &today)).await {
        Ok(rows) => Json(serde_json::json!({ "turnaround": rows })).into_response(),
        Err(e) => crate::api::api_error(e),
    }
}

async fn repair_new(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<FactQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&LangQuery { lang: q.lang.clone() }, &headers);
    let who = match signed_in(&ctx, &[Role::Enterprise]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (fact, rights, today) = (q.fact, st.rights.clone(), st.today());
    let got = st
        .with_store(move |s| {
            let f = s
                .fact(fact)
                .map_err(|_| Error::NotFound(format!("no record {fact} of yours")))?;
            if f.uscc != who.org {
                return Err(Error::NotFound(format!("no record {fact} of yours")));
            }
            let fields: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&f.fields).unwrap_or_default();
            let (public, _) = ob::windows_of(&rights, &f, &fields, None);
            let allowed = ob::repairable(&rights, &f, ob::day(&today)?);
            Ok((fact_view(&f), public, allowed))
        })
        .await;
    let (fv, public, allowed) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let (from, why_not) = match allowed {
        Ok(d) => (d.map(|d| d.format("%Y-%m-%d").to_string()), None),
        Err(m) => (None, Some(m)),
    };
    page(
        &st,
        &ctx,
        "repair.html",
        lang,
        cookie,
        serde_json::json!({
            "path": format!("/repairs/new?fact={}", q.fact), "mode": "new", "fact": fv, "public": public,
            "from": from, "why_not": why_not, "today": st.today(), "max_files": ob::MAX_FILES,
        }),
    )
}

async fn repair_post(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, mp: Multipart) -> Response {
    filed(&st, &ctx, mp, Kind::Repair).await
}

async fn repair_detail(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let who = match signed_in(&ctx, &[Role::Enterprise, Role::Department, Role::Bank, Role::Regulator]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (i, rights) = (id.clone(), st.rights.clone());
    let got = st
        .with_store(move |s| {
            let r = ob::repair(s, &i)?.ok_or_else(|| Error::NotFound(format!("no application {i}")))?;
            if !ob::may_read(&who, &r.uscc, &r.source, "") {
                return Err(Error::Forbidden("this application is not yours to read".into()));
            }
            let f = s.fact(r.fact_id)?;
            let fields: serde_json::Map<String, serde_json::Value> =
                serde_json::from_str(&f.fields).unwrap_or_default();
            let decided = r
                .decided_on
                .as_deref()
                .and_then(|d| ob::day(d).ok())
                .filter(|_| r.state == "granted");
            let (public, _) = ob::windows_of(&rights, &f, &fields, decided);
            let clock = r.clock(&rights);
            Ok((
                r,
                fact_view(&f),
                public,
                clock,
                ob::log(s, &i)?,
                ob::attachments(s, &i)?,
            ))
        })
        .await;
    let (r, fv, public, clock, log, files) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let path = format!("/repairs/{id}");
    if let Err(e) = st
        .audit
        .record(ctx.entry("read", Some(&r.uscc), &path, Some(format!("repair:{id}"))))
        .await
    {
        return e.into_response();
    }
    let decides = ctx.user.as_ref().is_some_and(|p| ob::answers(p, &r.source)) && r.state == "pending";
    page(
        &st,
        &ctx,
        "repair.html",
        lang,
        cookie,
        serde_json::json!({
            "path": path, "mode": "detail", "r": r, "firm": firm_name(&st, &r.uscc), "fact": fv, "public": public,
            "clock": clock, "log": log, "files": files, "decides": decides,
        }),
    )
}

#[derive(Deserialize)]
struct DecideForm {
    decision: String,
    answer: String,
}

async fn repair_decide(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    let who = match signed_in(&ctx, &[Role::Department, Role::Bank]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let grant = match f.decision.as_str() {
        "grant" => true,
        "refuse" => false,
        _ => return Error::BadRequest("decision: grant or refuse".into()).into_response(),
    };
    let (i, today, now) = (id.clone(), st.today(), st.timestamp());
    let done = st
        .with_store_mut(move |s| ob::decide_repair(s, &who, &i, grant, &f.answer, &today, &now))
        .await;
    let r = match done {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    // A granted repair ends the record's publicity: the kept public overviews go.
    st.caches.clear();
    if let Err(e) = st
        .audit
        .record(ctx.entry(
            "write",
            Some(&r.uscc),
            &format!("/repairs/{id}/decide"),
            Some(format!("repair:{id}:{}", r.state)),
        ))
        .await
    {
        return e.into_response();
    }
    Redirect::to(&format!("/repairs/{id}")).into_response()
}

/// One record behind a reason or a warning, and when it leaves the views.
#[derive(Serialize)]
struct Cited {
    fact_id: i64,
    dataset: String,
    name: String,
    date: String,
    current: bool,
    /// The last day it counts in the credit views (none: no retention rule, it stays while current) ...
    credit_until: Option<String>,
    /// ... or: a retention rule that starts only when the event ends (a listing, arrears not ended yet).
    credit_after_end: bool,
    /// The last day it is public, and the first day a credit repair may end that.
    public_until: Option<String>,
    repairable_from: Option<String>,
    disputed: Option<String>,
}

fn cite(
    s: &dyn Store,
    rights: &ob::Rights,
    disputed: &ob::Disputes,
    uscc: &str,
    fact_id: i64,
) -> Result<Option<Cited>, Error> {
    // Only the firm's own records: a network warning's evidence names other firms' contracts.
    let Ok(f) = s.fact(fact_id) else { return Ok(None) };
    if f.uscc != uscc {
        return Ok(None);
    }
    let fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).unwrap_or_default();
    let (public, credit) = ob::windows_of(rights, &f, &fields, None);
    let d = |x: Option<chrono::NaiveDate>| x.map(|d| d.format("%Y-%m-%d").to_string());
    let date = fields
        .get("date")
        .and_then(|v| v.as_str())
        .map(String::from)
        .or(f.period.clone())
        .unwrap_or_default();
    Ok(Some(Cited {
        fact_id,
        name: dataset_name(&f.dataset),
        dataset: f.dataset.clone(),
        date,
        current: f.known_to.is_none(),
        credit_until: d(credit.as_ref().and_then(|c| c.last_day)),
        credit_after_end: credit
            .as_ref()
            .is_some_and(|c| c.last_day.is_none() && c.start.is_none()),
        public_until: d(public.as_ref().and_then(|p| p.last_day)),
        repairable_from: d(public.as_ref().and_then(|p| p.repairable_from)),
        disputed: disputed.of(&f).cloned(),
    }))
}

/// "What would improve my score": for the firm's own account, the reasons that cost it most points with the
/// records behind them and when each leaves the credit views, and each warning with the remedy that clears
/// it (the rule's own words), the day it clears by itself where the data fixes one, and the records it rests
/// on (each may be objected to, or repaired where the rules allow).
async fn improve(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let who = match signed_in(&ctx, &[Role::Enterprise]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let (uscc, rights) = (who.org.clone(), st.rights.clone());
    let got = st
        .with_store(move |s| {
            let Some(run) = s.latest_run()? else {
                return Ok(None);
            };
            let Some(j) = s.run_score(&run.run_id, &uscc)? else {
                return Ok(None);
            };
            let fs: xinyong_credit::score::FirmScore =
                serde_json::from_str(&j).map_err(|e| Error::Internal(format!("stored score: {e}")))?;
            let disputed = ob::disputed(s, &uscc)?;
            // The first ten records behind a reason or a warning that the firm may see, each with its rights.
            let cite_all = |ids: &mut dyn Iterator<Item = i64>| -> Result<Vec<Cited>, Error> {
                let mut cited = Vec::new();
                for id in ids.take(10) {
                    cited.extend(cite(s, &rights, &disputed, &uscc, id)?);
                }
                Ok(cited)
            };
            let mut reasons = Vec::new();
            let mut rs = fs.reasons.clone();
            rs.sort_by(|a, b| b.points_lost.total_cmp(&a.points_lost));
            for r in rs.iter().filter(|r| r.points_lost > 0.0) {
                let cited = cite_all(&mut r.evidence.iter().map(|p| p.fact_id))?;
                reasons.push(serde_json::json!({
                    "name_zh": r.name_zh, "name_en": r.name_en, "value": r.value, "median": r.industry_median,
                    "points_lost": r.points_lost, "records": cited,
                }));
            }
            let rules = xinyong_credit::warnings::builtin_rules();
            let mut warnings = Vec::new();
            for w in &fs.warnings {
                let rule = rules.iter().find(|r| r.id == w.rule);
                let cited = cite_all(&mut w.evidence.iter().copied())?;
                warnings.push(serde_json::json!({
                    "rule": w.rule, "colour": w.colour.key(), "since": w.since, "clears_on": w.clears_on,
                    "name_zh": rule.map(|r| r.name_zh.clone()), "name_en": rule.map(|r| r.name_en.clone()),
                    "clears": rule.map(|r| r.clears.clone()), "records": cited,
                }));
            }
            Ok(Some((fs, run.as_of, reasons, warnings)))
        })
        .await;
    let got = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let ctx_json = match got {
        Some((fs, as_of, reasons, warnings)) => serde_json::json!({
            "path": "/improve", "scored": true, "as_of": as_of, "grade": fs.grade, "grade_unadjusted": fs.grade_unadjusted,
            "score": fs.score, "pd": fs.pd, "colour": fs.colour.map(|c| c.key()), "reasons": reasons, "warnings": warnings,
        }),
        None => serde_json::json!({ "path": "/improve", "scored": false }),
    };
    page(&st, &ctx, "improve.html", lang, cookie, ctx_json)
}

/// A person's view (PIPL: the right to know and to correct): every record that names them — shown to them
/// whole, their own personal fields included — who read the records of those firms (no page shows a
/// person's fields to anyone else), and their objections.
async fn person_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let who = match signed_in(&ctx, &[Role::Person]) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let person = who.org.clone();
    let got = st
        .with_store(move |s| {
            let held = ob::held_about(s, &person)?;

            let mut records = Vec::new();
            let mut reads = Vec::new();
            let mut firms: Vec<String> = Vec::new();
            for (f, what) in &held {
                let reg = registry().ok();
                let def = reg.and_then(|r| r.dataset(&f.dataset));
                let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).unwrap_or_default();
                // The person's own record, whole: every field the source delivered, by its header.
                let fields: Vec<(String, String, String)> = v
                    .iter()
                    .map(|(k, x)| {
                        (
                            k.clone(),
                            crate::pages::header_of(def, k),
                            crate::pages::shown(def, k, x),
                        )
                    })
                    .collect();
                records.push(serde_json::json!({
                    "fact_id": f.fact_id, "uscc": f.uscc, "dataset": f.dataset, "name": dataset_name(&f.dataset),
                    "as": what, "source": f.source, "known_from": f.known_from, "fields": fields,
                    "disputed": ob::disputed(s, &f.uscc)?.of(f),
                }));
                if !firms.contains(&f.uscc) {
                    firms.push(f.uscc.clone());
                }
            }
            // Reads of the firms' pages and records (which name the person, without their personal fields),
            // by whom; the basis of a bank's read (its loans or authorisations) is the firm's business, not
            // shown here.
            for u in &firms {
                for r in crate::audit::of_firm(s, u, 500)? {
                    let page = r.target.starts_with("/firm/") || r.target.starts_with("/api/v1/firms/");
                    if r.action == "read" && r.role != "public" && page {
                        reads.push(r);
                    }
                }
            }
            reads.sort_by(|a, b| b.at.cmp(&a.at));
            reads.truncate(200);
            Ok((records, reads, ob::of_person(s, &person)?))
        })
        .await;
    let (records, reads, objections) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = st
        .audit
        .record(ctx.entry("read", None, "/person", Some("own personal data".into())))
        .await
    {
        return e.into_response();
    }
    let records: Vec<serde_json::Value> = records
        .into_iter()
        .map(|mut r| {
            let u = r["uscc"].as_str().unwrap_or_default().to_string();
            r["firm"] = serde_json::Value::String(firm_name(&st, &u));
            r
        })
        .collect();
    let reads: Vec<serde_json::Value> = reads
        .into_iter()
        .map(|r| {
            serde_json::json!({ "at": crate::shanghai(&r.at), "role": r.role, "org": r.org, "firm": r.uscc.as_deref().map(|u| firm_name(&st, u)) })
        })
        .collect();
    page(
        &st,
        &ctx,
        "person.html",
        lang,
        cookie,
        serde_json::json!({ "path": "/person", "records": records, "reads": reads, "objections": objections }),
    )
}
