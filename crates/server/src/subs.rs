//! Subscriptions and the alert inbox: a bank officer (or an analyst) follows firms, a firm's guarantee group, an
//! industry (a GB/T 4754 code prefix) or a township; the inbox lists the credit events (a warning starts or
//! ends, the colour or the grade changes) of the firms they cover, newest first — only of firms the reader may
//! read now (a bank: authorised or borrowing; the events are non-public), the rest counted. Push delivery (SSE,
//! webhooks) is issue 7's.

use crate::access;
use crate::account::Ctx;
use crate::auth::Role;
use crate::pages::{lang_of, page, LangQuery};
use crate::{AppState, Error};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use xinyong_store::rows::{RowOp, RowQuery, Value};
use xinyong_store::Store;

pub const KINDS: &[&str] = &["firm", "group", "industry", "township"];

/// Firms one subscription may cover at most (an industry or a township can be large).
pub const MAX_FIRMS: usize = 500;

/// Events an inbox shows at most.
pub const INBOX_LIMIT: usize = 200;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/inbox", get(inbox))
        .route("/inbox/mark", post(mark))
        .route("/inbox/digest", get(digest_page))
        .route("/subscriptions", post(subscribe))
        .route("/subscriptions/delete", post(unsubscribe))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Subscription {
    pub kind: String,
    pub target: String,
    pub created_at: String,
}

pub fn subscriptions(store: &dyn Store, user: &str) -> Result<Vec<Subscription>, Error> {
    Ok(store
        .rows(&RowQuery::all("subscriptions").eq("user_id", Value::text(user)))?
        .iter()
        .filter_map(|r| {
            Some(Subscription {
                kind: r.get(1)?.as_str()?.into(),
                target: r.get(2)?.as_str()?.into(),
                created_at: r.get(3)?.as_str()?.into(),
            })
        })
        .collect())
}

fn may_subscribe(ctx: &Ctx) -> Result<&crate::auth::Principal, Box<Response>> {
    ctx.require(
        &[Role::Bank, Role::Regulator],
        "subscriptions are for bank officers and analysts",
    )
}

#[derive(Deserialize)]
pub struct SubForm {
    kind: String,
    target: String,
    #[serde(default)]
    back: Option<String>,
}

/// Where a form goes back to: a local path only.
fn back_to(back: Option<&str>) -> String {
    let local = |b: &str| {
        b.starts_with('/')
            && !b.starts_with("//")
            && b.bytes().all(|c| c.is_ascii_alphanumeric() || b"/_-.?=&%".contains(&c))
    };
    match back {
        Some(b) if local(b) => b.to_string(),
        _ => "/inbox".into(),
    }
}

/// Subscriptions one user may hold at most.
pub const MAX_SUBSCRIPTIONS: usize = 50;

async fn subscribe(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<SubForm>) -> Response {
    let p = match may_subscribe(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let target = f.target.trim().to_string();
    if !KINDS.contains(&f.kind.as_str()) || target.is_empty() || target.len() > 64 {
        return Error::BadRequest("a subscription is a kind (firm, group, industry, township) and a target".into())
            .into_response();
    }
    if f.kind == "firm" && st.index.read().map(|i| i.get(&target).is_none()).unwrap_or(true) {
        return Error::NotFound(format!("no firm {target}")).into_response();
    }
    let row = vec![
        Value::text(&p.user_id),
        Value::text(&f.kind),
        Value::text(&target),
        Value::text(st.timestamp()),
    ];
    let uid = p.user_id.clone();
    if let Err(e) = st
        .with_store_mut(move |s| {
            if subscriptions(s, &uid)?.len() >= MAX_SUBSCRIPTIONS {
                return Err(Error::BadRequest(format!(
                    "at most {MAX_SUBSCRIPTIONS} subscriptions; remove one first"
                )));
            }
            Ok(s.apply_rows(&[RowOp::Put {
                table: "subscriptions",
                row,
            }])?)
        })
        .await
    {
        return e.into_response();
    }
    let entry = ctx.entry(
        "write",
        None,
        &format!("subscription:{}:{target}", f.kind),
        Some("subscribe".into()),
    );
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to(&back_to(f.back.as_deref())).into_response()
}

async fn unsubscribe(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<SubForm>) -> Response {
    let p = match may_subscribe(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let key = vec![Value::text(&p.user_id), Value::text(&f.kind), Value::text(&f.target)];
    if let Err(e) = st
        .with_store_mut(move |s| {
            Ok(s.apply_rows(&[RowOp::Delete {
                table: "subscriptions",
                key,
            }])?)
        })
        .await
    {
        return e.into_response();
    }
    let entry = ctx.entry(
        "write",
        None,
        &format!("subscription:{}:{}", f.kind, f.target),
        Some("unsubscribe".into()),
    );
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to(&back_to(f.back.as_deref())).into_response()
}

/// The firms a subscription covers (at most [`MAX_FIRMS`]).
pub fn covered(st: &AppState, store: &dyn Store, s: &Subscription) -> Result<Vec<String>, Error> {
    let ix = st.index.read().unwrap_or_else(|e| e.into_inner());
    Ok(match s.kind.as_str() {
        "firm" => vec![s.target.clone()],
        "group" => match &st.summary().run_id.clone() {
            Some(run) => store
                .run_circles(run, Some(&s.target))?
                .first()
                .and_then(|j| serde_json::from_str::<xinyong_credit::network::GroupView>(j).ok())
                .map(|g| g.members.into_iter().take(MAX_FIRMS).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        },
        "industry" => ix
            .firms()
            .iter()
            .filter(|f| {
                f.industry.starts_with(&s.target)
                    || xinyong_domain::industry::section_of(&f.industry).is_some_and(|i| i.code == s.target)
            })
            .take(MAX_FIRMS)
            .map(|f| f.uscc.clone())
            .collect(),
        "township" => ix
            .firms()
            .iter()
            .filter(|f| f.township == s.target)
            .take(MAX_FIRMS)
            .map(|f| f.uscc.clone())
            .collect(),
        _ => Vec::new(),
    })
}

#[derive(Debug, Serialize)]
pub struct InboxItem {
    pub id: String,
    pub uscc: String,
    pub name: String,
    pub date: String,
    pub kind: String,
    pub rule: Option<u32>,
    pub rule_zh: Option<String>,
    pub rule_en: Option<String>,
    pub before: String,
    pub after: String,
    /// From the live path (a push), not a full run.
    pub live: bool,
    /// The alert's identity across recomputes: firm, kind, rule and the state it went to.
    pub key: String,
    /// Earlier events of the same alert folded into this one (repeats suppressed): their ids.
    pub folded: Vec<String>,
    pub repeats: usize,
    /// The reader's mark: `handled` or `false_alarm`, with a note.
    pub mark: Option<String>,
    pub note: Option<String>,
}

/// The alert key of an event: the same warning raised again by a later recompute has the same key, so a mark
/// on it holds.
pub fn alert_key(uscc: &str, kind: &str, rule: Option<u32>, after: &str) -> String {
    format!(
        "{uscc}|{kind}|{}|{after}",
        rule.map_or(String::new(), |r| r.to_string())
    )
}

/// The reader's marks: alert key → (mark, note).
pub fn marks_of(store: &dyn Store, user: &str) -> Result<std::collections::HashMap<String, (String, String)>, Error> {
    Ok(store
        .rows(&RowQuery::all("alert_marks").eq("user_id", Value::text(user)))?
        .iter()
        .filter_map(|r| {
            Some((
                r[1].as_str()?.to_string(),
                (r[2].as_str()?.to_string(), r[3].as_str()?.to_string()),
            ))
        })
        .collect())
}

/// The inbox: the events of the firms the user's subscriptions cover and the user may read; also how many
/// covered firms it may not read.
pub struct Inbox {
    pub subs: Vec<Subscription>,
    pub items: Vec<InboxItem>,
    pub hidden: usize,
    /// Alerts the reader marked a false alarm (left out unless asked for).
    pub dismissed: usize,
    /// The firms whose events are shown, with the basis of each read (for the audit log).
    pub reads: Vec<(String, String)>,
}

pub fn inbox_of(
    st: &AppState,
    store: &dyn Store,
    who: &crate::auth::Principal,
    today: &str,
    month: &str,
) -> Result<Inbox, Error> {
    inbox_with(st, store, who, today, month, false)
}

/// The inbox; `all`: with the alerts marked false alarms too.
pub fn inbox_with(
    st: &AppState,
    store: &dyn Store,
    who: &crate::auth::Principal,
    today: &str,
    month: &str,
    all: bool,
) -> Result<Inbox, Error> {
    let subs = subscriptions(store, &who.user_id)?;
    let firms = covered_all(st, store, &subs)?;
    let rules = xinyong_credit::warnings::builtin_rules();
    let marks = marks_of(store, &who.user_id)?;
    let (mut items, mut hidden, mut bases) = (Vec::new(), 0, Vec::new());
    for f in &firms {
        let Some(basis) = access::firm_access(store, &st.caches, Some(who), f, today, month)? else {
            hidden += 1;
            continue;
        };
        bases.push((f.clone(), basis.code()));
        let name = st
            .index
            .read()
            .ok()
            .and_then(|i| i.get(f).map(|x| x.name.clone()))
            .unwrap_or_default();
        let runs = store.credit_events(Some(f))?.into_iter().map(|e| (e, false));
        let live = store
            .rows(&RowQuery::all("outbox").eq("uscc", Value::text(f)))?
            .iter()
            .filter_map(crate::push::OutEvent::from_row)
            .map(|e| {
                (
                    xinyong_store::EventRow {
                        id: e.event_id,
                        uscc: e.uscc,
                        date: e.date,
                        kind: e.kind,
                        rule: e.rule.map(|r| r as u32),
                        before: e.before,
                        after: e.after,
                    },
                    true,
                )
            })
            .collect::<Vec<_>>();
        for (e, is_live) in runs.chain(live) {
            let rule = e.rule.and_then(|r| rules.iter().find(|x| x.id == r));
            let key = alert_key(&e.uscc, &e.kind, e.rule, &e.after);
            let (mark, note) = match marks.get(&key) {
                Some((m, n)) => (Some(m.clone()), Some(n.clone())),
                None => (None, None),
            };
            items.push(InboxItem {
                id: e.id,
                uscc: e.uscc,
                name: name.clone(),
                date: e.date,
                kind: e.kind,
                rule: e.rule,
                rule_zh: rule.map(|r| r.name_zh.clone()),
                rule_en: rule.map(|r| r.name_en.clone()),
                before: e.before,
                after: e.after,
                live: is_live,
                key,
                folded: Vec::new(),
                repeats: 0,
                mark,
                note,
            });
        }
    }
    items.sort_by(|a, b| (&b.date, b.live, &b.uscc, &b.id).cmp(&(&a.date, a.live, &a.uscc, &a.id)));
    // Repeats suppressed: the newest event of an alert stands for the earlier ones.
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut folded: Vec<InboxItem> = Vec::new();
    for it in items {
        match seen.get(&it.key) {
            Some(&i) => {
                folded[i].repeats += 1;
                folded[i].folded.push(it.id);
            }
            None => {
                seen.insert(it.key.clone(), folded.len());
                folded.push(it);
            }
        }
    }
    let dismissed = folded
        .iter()
        .filter(|i| i.mark.as_deref() == Some("false_alarm"))
        .count();
    let mut items: Vec<InboxItem> = folded
        .into_iter()
        .filter(|i| all || i.mark.as_deref() != Some("false_alarm"))
        .collect();
    items.truncate(INBOX_LIMIT);
    let reads = bases
        .into_iter()
        .filter(|(f, _)| items.iter().any(|i| &i.uscc == f))
        .collect();
    Ok(Inbox {
        subs,
        items,
        hidden,
        dismissed,
        reads,
    })
}

/// One firm in a daily digest: the live events that arrived for it that day (Beijing time).
#[derive(Debug, Clone, Serialize, Default)]
pub struct DigestFirm {
    pub uscc: String,
    pub name: String,
    pub events: usize,
    /// Events by kind.
    pub kinds: std::collections::BTreeMap<String, usize>,
    /// The colour and grade it ended the day with, when they changed.
    pub colour: Option<String>,
    pub grade: Option<String>,
}

/// The firms a user's subscriptions cover, each once, in subscription order.
pub fn covered_all(st: &AppState, store: &dyn Store, subs: &[Subscription]) -> Result<Vec<String>, Error> {
    let mut seen = std::collections::HashSet::new();
    let mut firms = Vec::new();
    for s in subs {
        for f in covered(st, store, s)? {
            if seen.insert(f.clone()) {
                firms.push(f);
            }
        }
    }
    Ok(firms)
}

/// A digest's firms, and the reads it makes (firm, basis) for the audit log.
pub type Digest = (Vec<DigestFirm>, Vec<(String, String)>);

/// The daily digest: per firm the reader follows and may read, the live events (the outbox) that arrived on
/// `day` (YYYY-MM-DD, Beijing time), alerts marked false alarms left out; firms with most events first.
pub fn digest(
    st: &AppState,
    store: &dyn Store,
    who: &crate::auth::Principal,
    day: &str,
    today: &str,
    month: &str,
) -> Result<Digest, Error> {
    let marks = marks_of(store, &who.user_id)?;
    let firms = covered_all(st, store, &subscriptions(store, &who.user_id)?)?;
    let (mut out, mut reads) = (Vec::new(), Vec::new());
    for f in &firms {
        let events: Vec<crate::push::OutEvent> = store
            .rows(&RowQuery::all("outbox").eq("uscc", Value::text(f)))?
            .iter()
            .filter_map(crate::push::OutEvent::from_row)
            .filter(|e| crate::shanghai(&e.created_at).starts_with(day))
            .filter(|e| {
                let key = alert_key(&e.uscc, &e.kind, e.rule.map(|r| r as u32), &e.after);
                marks.get(&key).map(|m| m.0.as_str()) != Some("false_alarm")
            })
            .collect();
        if events.is_empty() {
            continue;
        }
        let Some(basis) = access::firm_access(store, &st.caches, Some(who), f, today, month)? else {
            continue;
        };
        reads.push((f.clone(), basis.code()));
        let mut d = DigestFirm {
            uscc: f.clone(),
            name: st
                .index
                .read()
                .ok()
                .and_then(|i| i.get(f).map(|x| x.name.clone()))
                .unwrap_or_default(),
            events: events.len(),
            ..Default::default()
        };
        for e in &events {
            *d.kinds.entry(e.kind.clone()).or_default() += 1;
            match e.kind.as_str() {
                "colour" => d.colour = Some(e.after.clone()),
                "grade" => d.grade = Some(e.after.clone()),
                _ => {}
            }
        }
        out.push(d);
    }
    out.sort_by(|a, b| b.events.cmp(&a.events).then(a.uscc.cmp(&b.uscc)));
    Ok((out, reads))
}

#[derive(Deserialize, Default)]
pub struct DigestQuery {
    lang: Option<String>,
    date: Option<String>,
}

async fn digest_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DigestQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&LangQuery { lang: q.lang.clone() }, &headers);
    let p = match may_subscribe(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let day = q.date.unwrap_or_else(|| st.today());
    if chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").is_err() {
        return Error::BadRequest("date: YYYY-MM-DD".into()).into_response();
    }
    let (st2, d2, today, month) = (st.clone(), day.clone(), st.today(), st.data_month());
    let got = st.with_store(move |s| digest(&st2, s, &p, &d2, &today, &month)).await;
    let (firms, reads) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let path = format!("/inbox/digest?date={day}");
    if let Err(e) = st.audit.record_many(read_entries(&ctx, &path, &reads)).await {
        return e.into_response();
    }
    page(
        &st,
        &ctx,
        "digest.html",
        lang,
        cookie,
        serde_json::json!({
            "path": path, "day": day, "firms": firms,
            "prev": crate::add_days(&day, -1), "next": crate::add_days(&day, 1),
            "events": firms.iter().map(|f| f.events).sum::<usize>(),
        }),
    )
}

#[derive(Deserialize)]
pub struct MarkForm {
    key: String,
    mark: String,
    #[serde(default)]
    note: String,
}

/// Marks an alert handled or a false alarm (or clears the mark); the mark holds across recomputes.
async fn mark(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<MarkForm>) -> Response {
    let p = match may_subscribe(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    if !matches!(f.mark.as_str(), "handled" | "false_alarm" | "clear") || f.key.len() > 200 || f.note.len() > 500 {
        return Error::BadRequest("mark: handled, false_alarm or clear; a note of at most 500 bytes".into())
            .into_response();
    }
    let (uid, key, at) = (p.user_id.clone(), f.key.clone(), st.timestamp());
    let op = if f.mark == "clear" {
        RowOp::Delete {
            table: "alert_marks",
            key: vec![Value::text(&uid), Value::text(&key)],
        }
    } else {
        RowOp::Put {
            table: "alert_marks",
            row: vec![
                Value::text(&uid),
                Value::text(&key),
                Value::text(&f.mark),
                Value::text(f.note.trim()),
                Value::text(&at),
            ],
        }
    };
    if let Err(e) = st.with_store_mut(move |s| Ok(s.apply_rows(&[op])?)).await {
        return e.into_response();
    }
    let firm = f.key.split('|').next().map(String::from);
    if let Err(e) = st
        .audit
        .record(ctx.entry(
            "write",
            firm.as_deref(),
            "alert_mark",
            Some(format!("{}:{}", f.mark, f.key)),
        ))
        .await
    {
        return e.into_response();
    }
    Redirect::to("/inbox#alerts").into_response()
}

/// The audit entries of an inbox's reads.
pub fn read_entries(ctx: &Ctx, target: &str, reads: &[(String, String)]) -> Vec<crate::audit::Entry> {
    reads
        .iter()
        .map(|(f, b)| ctx.entry("read", Some(f), target, Some(b.clone())))
        .collect()
}

#[derive(Deserialize, Default)]
pub struct InboxQuery {
    lang: Option<String>,
    all: Option<String>,
}

async fn inbox(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<InboxQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&LangQuery { lang: q.lang.clone() }, &headers);
    let all = q.all.is_some();
    let p = match may_subscribe(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let (st2, today, month) = (st.clone(), st.today(), st.data_month());
    let got = st
        .with_store(move |s| inbox_with(&st2, s, &p, &today, &month, all))
        .await;
    let Inbox {
        subs,
        items,
        hidden,
        dismissed,
        reads,
    } = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = st.audit.record_many(read_entries(&ctx, "/inbox", &reads)).await {
        return e.into_response();
    }
    page(
        &st,
        &ctx,
        "inbox.html",
        lang,
        cookie,
        serde_json::json!({
            "path": "/inbox",
            "subs": subs,
            "items": items,
            "hidden": hidden,
            "dismissed": dismissed,
            "all": all,
            "kinds": KINDS,
            "industries": st.summary().by_industry.clone(),
            "townships": st.summary().by_township.clone(),
        }),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_form_goes_back_to_a_local_path_only() {
        assert_eq!(
            super::back_to(Some("/firm/91330604MA2C00002Y")),
            "/firm/91330604MA2C00002Y"
        );
        for bad in [
            "//evil.example",
            "/\t/evil.example",
            "https://evil.example",
            "/\\evil",
            "/路径",
        ] {
            assert_eq!(super::back_to(Some(bad)), "/inbox", "{bad:?}");
        }
    }
}
