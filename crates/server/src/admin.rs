//! Administration: accounts (create with a one-time password and TOTP secret, disable, enable) and the
//! maker-checker of the credit models' settings. An administrator proposes a change to a warning rule (turn it
//! off or on, change its colour) or to the active model version; another administrator approves or rejects it
//! (the proposer cannot); an approved change is written to `settings`, which the next `xinyong score` applies.
//! Administrators never read firms' non-public data (their overview is the public one) nor the audit log here.

use crate::account::Ctx;
use crate::auth::{self, Role, User};
use crate::pages::{lang_of, page, LangQuery};
use crate::{AppState, Error};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use xinyong_store::rows::{Row, RowOp, RowQuery, Value};
use xinyong_store::Store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(admin_page))
        .route("/admin/users", post(create_user))
        .route("/admin/users/{id}/{action}", post(set_disabled))
        .route("/admin/push-keys", post(create_push_key))
        .route("/admin/push-keys/{id}/revoke", post(revoke_push_key))
        .route("/admin/changes", post(propose))
        .route("/admin/changes/{id}/{decision}", post(decide))
}

fn admin(ctx: &Ctx) -> Result<&auth::Principal, Box<Response>> {
    ctx.require(&[Role::Admin], "administrators only")
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    pub change_id: String,
    /// `rule` or `model`.
    pub kind: String,
    /// The rule id, or `active` for the model.
    pub target: String,
    /// Settings to write when approved: key → value, as JSON.
    pub payload: String,
    pub reason: String,
    pub proposed_by: String,
    pub proposed_at: String,
    pub status: String,
    pub decided_by: Option<String>,
    pub decided_at: Option<String>,
    pub note: Option<String>,
}

impl Change {
    fn from_row(r: &Row) -> Option<Change> {
        let s = |i: usize| r.get(i).and_then(Value::as_str).map(String::from);
        Some(Change {
            change_id: s(0)?,
            kind: s(1)?,
            target: s(2)?,
            payload: s(3)?,
            reason: s(4)?,
            proposed_by: s(5)?,
            proposed_at: s(6)?,
            status: s(7)?,
            decided_by: s(8),
            decided_at: s(9),
            note: s(10),
        })
    }

    fn row(&self) -> Row {
        vec![
            Value::text(&self.change_id),
            Value::text(&self.kind),
            Value::text(&self.target),
            Value::text(&self.payload),
            Value::text(&self.reason),
            Value::text(&self.proposed_by),
            Value::text(&self.proposed_at),
            Value::text(&self.status),
            Value::opt_text(self.decided_by.clone()),
            Value::opt_text(self.decided_at.clone()),
            Value::opt_text(self.note.clone()),
        ]
    }
}

pub fn changes(store: &dyn Store) -> Result<Vec<Change>, Error> {
    let mut v: Vec<Change> = store
        .rows(&RowQuery::all("changes"))?
        .iter()
        .filter_map(Change::from_row)
        .collect();
    v.sort_by(|a, b| b.proposed_at.cmp(&a.proposed_at));
    Ok(v)
}

async fn admin_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    if let Err(r) = admin(&ctx) {
        return *r;
    }
    let got = st
        .with_store(|s| {
            let users = auth::users(s)?;
            let changes = changes(s)?;
            let settings = xinyong_store::rows::settings(s)?;
            let models: Vec<String> = {
                let mut m: Vec<String> = s.runs()?.into_iter().map(|r| r.model_version).collect();
                m.sort();
                m.dedup();
                m
            };
            Ok((users, changes, settings, models, sources(s)?))
        })
        .await;
    let (users, changes, settings, models, sources) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let users: Vec<serde_json::Value> = users
        .iter()
        .map(|u| serde_json::json!({ "user_id": u.user_id, "role": u.role, "org": u.org, "name": u.name, "disabled": u.disabled }))
        .collect();
    let rules: Vec<serde_json::Value> = xinyong_credit::warnings::builtin_rules()
        .iter()
        .map(|r| {
            let enabled = settings.get(&format!("rule.{}.enabled", r.id)).map(String::as_str) != Some("false");
            let colour = settings
                .get(&format!("rule.{}.colour", r.id))
                .cloned()
                .unwrap_or_else(|| r.colour.key().to_string());
            serde_json::json!({ "id": r.id, "name_zh": r.name_zh, "name_en": r.name_en, "colour": colour, "enabled": enabled })
        })
        .collect();
    page(
        &st,
        &ctx,
        "admin.html",
        lang,
        cookie,
        serde_json::json!({
            "path": "/admin",
            "users": users,
            "changes": changes,
            "rules": rules,
            "models": models,
            "active_model": settings.get("model.active"),
            "roles": Role::ALL.iter().map(|r| r.code()).collect::<Vec<_>>(),
            "created": serde_json::Value::Null,
            "sources": sources,
        }),
    )
}

/// Every registered source: its datasets, deliveries (count, last, rows, quarantined) and push keys (never
/// their secrets).
fn sources(s: &dyn Store) -> Result<Vec<serde_json::Value>, Error> {
    let reg = crate::pages::registry()?;
    let keys = s.rows(&RowQuery::all("push_keys"))?;
    let mut out = Vec::new();
    for src in &reg.sources {
        let batches = s.batches_of(&src.id)?;
        let rows: u64 = batches.iter().map(|(_, k)| k.rows_read).sum();
        let quarantined: u64 = batches.iter().map(|(_, k)| k.quarantined).sum();
        let last = batches.iter().map(|(m, _)| m.delivered_on.clone()).max();
        let push_keys: Vec<serde_json::Value> = keys
            .iter()
            .filter(|k| k[1].as_str() == Some(src.id.as_str()))
            .map(|k| {
                serde_json::json!({
                    "key_id": k[0].as_str(), "created_at": k[3].as_str(), "revoked_at": k[4].as_str(),
                })
            })
            .collect();
        out.push(serde_json::json!({
            "id": src.id, "name": src.name, "name_en": src.name_en, "kind": format!("{:?}", src.kind).to_lowercase(),
            "front_end": src.front_end, "datasets": reg.datasets_of(src).len(),
            "batches": batches.len(), "last": last, "rows": rows, "quarantined": quarantined,
            "push_keys": push_keys,
        }));
    }
    Ok(out)
}

#[derive(Deserialize)]
pub struct NewPushKey {
    source: String,
}

/// A push key for a source's front-end machine; its secret is shown once, on this response.
async fn create_push_key(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Form(f): Form<NewPushKey>,
) -> Response {
    if let Err(r) = admin(&ctx) {
        return *r;
    }
    let (source, at) = (f.source.trim().to_string(), st.timestamp());
    let made = st
        .with_store_mut(move |s| crate::push::create_key(s, &source, &at))
        .await;
    let key = match made {
        Ok(k) => k,
        Err(e) => return e.into_response(),
    };
    let target = format!("push_key:{}:{}", key.source, key.key_id);
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &target, Some("create".into())))
        .await
    {
        return e.into_response();
    }
    let (lang, cookie) = lang_of(&LangQuery::default(), &headers);
    let mut res = page(
        &st,
        &ctx,
        "admin_created.html",
        lang,
        cookie,
        serde_json::json!({ "path": "/admin", "push_key": { "key_id": key.key_id, "source": key.source, "secret": key.secret } }),
    );
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

/// Revokes a push key: the next push signed with it is refused.
async fn revoke_push_key(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    if let Err(r) = admin(&ctx) {
        return *r;
    }
    let (id2, at) = (id.clone(), st.timestamp());
    let done = st
        .with_store_mut(move |s| {
            Ok(s.apply_rows(&[RowOp::Update {
                table: "push_keys",
                key: vec![Value::text(&id2)],
                set: vec![("revoked_at", Value::text(&at))],
                expect: vec![("revoked_at", Value::Null)],
            }])?)
        })
        .await;
    match done {
        Ok(()) => {}
        Err(Error::Store(xinyong_store::StoreError::Conflict(_))) => {
            return Error::BadRequest(format!("no live push key {id}")).into_response()
        }
        Err(e) => return e.into_response(),
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("push_key:{id}"), Some("revoke".into())))
        .await
    {
        return e.into_response();
    }
    Redirect::to("/admin#sources").into_response()
}

#[derive(Deserialize)]
pub struct NewUser {
    user_id: String,
    role: String,
    #[serde(default)]
    org: String,
    name: String,
}

async fn create_user(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Form(f): Form<NewUser>,
) -> Response {
    if let Err(r) = admin(&ctx) {
        return *r;
    }
    let id = f.user_id.trim().to_string();
    let valid_id = !id.is_empty()
        && id.len() <= 40
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
    let Some(role) = Role::parse(&f.role) else {
        return Error::BadRequest(format!("no role {:?}", f.role)).into_response();
    };
    if !valid_id || f.name.trim().is_empty() {
        return Error::BadRequest("a user id (letters, digits, - _ .; at most 40) and a name".into()).into_response();
    }
    if role == Role::Enterprise && st.index.read().map(|i| i.get(f.org.trim()).is_none()).unwrap_or(true) {
        return Error::BadRequest("an enterprise account's organisation is its firm's USCC".into()).into_response();
    }
    // A person's account is keyed by the pseudonym of their name and id number as the register holds them
    // ("NAME|ID NUMBER", checked by the administrator against the person's documents).
    let org = if role == Role::Person {
        match f.org.split_once('|') {
            Some((name, idn)) if !name.trim().is_empty() && !idn.trim().is_empty() => {
                xinyong_credit::network::person_id(name, idn)
            }
            _ => {
                return Error::BadRequest("a person's account: NAME|ID NUMBER, as on the register".into())
                    .into_response()
            }
        }
    } else {
        f.org.trim().to_string()
    };
    let password = format!("xy-{}", &auth::random_token()[..16]);
    let totp = role.needs_totp().then(auth::new_totp_secret);
    let u = User {
        user_id: id.clone(),
        role,
        org,
        name: f.name.trim().chars().take(60).collect(),
        password_hash: match auth::hash_password(&password) {
            Ok(h) => h,
            Err(e) => return e.into_response(),
        },
        totp_secret: totp.clone(),
        disabled: false,
    };
    let row = u.row(&st.timestamp());
    let made = st
        .with_store_mut(move |s| {
            if auth::user(s, &u.user_id)?.is_some() {
                return Err(Error::BadRequest(format!("the account {} exists", u.user_id)));
            }
            Ok(s.apply_rows(&[RowOp::Insert { table: "users", row }])?)
        })
        .await;
    if let Err(e) = made {
        return e.into_response();
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("user:{id}"), Some("create".into())))
        .await
    {
        return e.into_response();
    }
    // The password and TOTP secret are shown once, on this response.
    let (lang, cookie) = lang_of(&LangQuery::default(), &headers);
    let mut res = page(
        &st,
        &ctx,
        "admin_created.html",
        lang,
        cookie,
        serde_json::json!({ "path": "/admin", "created": { "user_id": id, "password": password, "totp_secret": totp } }),
    );
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

async fn set_disabled(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let p = match admin(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let disable = match action.as_str() {
        "disable" => true,
        "enable" => false,
        _ => return Error::NotFound(format!("no action {action}")).into_response(),
    };
    if disable && id == p.user_id {
        return Error::BadRequest("an administrator cannot disable their own account".into()).into_response();
    }
    let (id2, at) = (id.clone(), st.timestamp());
    let done = st
        .with_store_mut(move |s| {
            let Some(mut u) = auth::user(s, &id2)? else {
                return Err(Error::NotFound(format!("no account {id2}")));
            };
            u.disabled = disable;
            Ok(s.apply_rows(&[RowOp::Put {
                table: "users",
                row: u.row(&at),
            }])?)
        })
        .await;
    if let Err(e) = done {
        return e.into_response();
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("user:{id}"), Some(action)))
        .await
    {
        return e.into_response();
    }
    Redirect::to("/admin").into_response()
}

#[derive(Deserialize)]
pub struct Proposal {
    kind: String,
    target: String,
    #[serde(default)]
    enabled: Option<String>,
    #[serde(default)]
    colour: Option<String>,
    #[serde(default)]
    reason: String,
}

/// The settings a proposal would write, checked: rule ids among the built-in rules, colours among red, yellow
/// and blue, model versions among those stored.
fn payload_of(p: &Proposal, models: &[String]) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let mut m = serde_json::Map::new();
    match p.kind.as_str() {
        "rule" => {
            let id: u32 = p.target.parse().map_err(|_| format!("no rule {:?}", p.target))?;
            if !xinyong_credit::warnings::builtin_rules().iter().any(|r| r.id == id) {
                return Err(format!("no rule {id}"));
            }
            if let Some(e) = p.enabled.as_deref().filter(|e| !e.is_empty()) {
                if !matches!(e, "true" | "false") {
                    return Err("enabled is true or false".into());
                }
                m.insert(format!("rule.{id}.enabled"), e.into());
            }
            if let Some(c) = p.colour.as_deref().filter(|c| !c.is_empty()) {
                if !matches!(c, "red" | "yellow" | "blue") {
                    return Err("a colour is red, yellow or blue".into());
                }
                m.insert(format!("rule.{id}.colour"), c.into());
            }
        }
        "model" => {
            if !models.contains(&p.target) {
                return Err(format!("no stored model {:?}", p.target));
            }
            m.insert("model.active".into(), p.target.clone().into());
        }
        k => return Err(format!("no kind {k:?} (rule or model)")),
    }
    if m.is_empty() {
        return Err("the proposal changes nothing".into());
    }
    Ok(m)
}

async fn propose(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<Proposal>) -> Response {
    let p = match admin(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let now = st.timestamp();
    let done = st
        .with_store_mut(move |s| {
            let models: Vec<String> = s.runs()?.into_iter().map(|r| r.model_version).collect();
            let payload = payload_of(&f, &models).map_err(Error::BadRequest)?;
            let c = Change {
                change_id: auth::random_token()[..12].to_string(),
                kind: f.kind.clone(),
                target: f.target.clone(),
                payload: serde_json::Value::Object(payload).to_string(),
                reason: f.reason.chars().take(500).collect(),
                proposed_by: p.user_id.clone(),
                proposed_at: now,
                status: "pending".into(),
                decided_by: None,
                decided_at: None,
                note: None,
            };
            s.apply_rows(&[RowOp::Insert {
                table: "changes",
                row: c.row(),
            }])?;
            Ok(c.change_id)
        })
        .await;
    let id = match done {
        Ok(id) => id,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("change:{id}"), Some("propose".into())))
        .await
    {
        return e.into_response();
    }
    Redirect::to("/admin").into_response()
}

#[derive(Deserialize)]
pub struct Decision {
    #[serde(default)]
    note: String,
}

async fn decide(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path((id, decision)): Path<(String, String)>,
    Form(f): Form<Decision>,
) -> Response {
    let p = match admin(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let status = match decision.as_str() {
        "approve" => "approved",
        "reject" => "rejected",
        _ => return Error::NotFound(format!("no decision {decision}")).into_response(),
    };
    let (id2, now) = (id.clone(), st.timestamp());
    let done = st
        .with_store_mut(move |s| {
            let Some(mut c) = changes(s)?.into_iter().find(|c| c.change_id == id2) else {
                return Err(Error::NotFound(format!("no change {id2}")));
            };
            if c.status != "pending" {
                return Err(Error::BadRequest(format!("the change is {} already", c.status)));
            }
            // Maker-checker: a second person decides.
            if c.proposed_by == p.user_id {
                return Err(Error::Forbidden(
                    "a change is approved by someone other than its proposer".into(),
                ));
            }
            c.status = status.into();
            c.decided_by = Some(p.user_id.clone());
            c.decided_at = Some(now.clone());
            c.note = Some(f.note.chars().take(500).collect());
            // Decided once: only while still pending (two administrators at once: one wins, nothing else lands).
            let mut ops = vec![RowOp::Update {
                table: "changes",
                key: vec![Value::text(&c.change_id)],
                set: vec![
                    ("status", Value::text(&c.status)),
                    ("decided_by", Value::opt_text(c.decided_by.clone())),
                    ("decided_at", Value::opt_text(c.decided_at.clone())),
                    ("note", Value::opt_text(c.note.clone())),
                ],
                expect: vec![("status", Value::text("pending"))],
            }];
            if status == "approved" {
                let m: serde_json::Map<String, serde_json::Value> =
                    serde_json::from_str(&c.payload).map_err(|e| Error::Internal(format!("stored change: {e}")))?;
                for (k, v) in m {
                    ops.push(RowOp::Put {
                        table: "settings",
                        row: vec![
                            Value::text(k),
                            Value::text(v.as_str().unwrap_or_default()),
                            Value::text(&c.change_id),
                            Value::text(&now),
                        ],
                    });
                }
            }
            // The decision and the settings it approves: one transaction.
            match s.apply_rows(&ops) {
                Ok(()) => Ok(()),
                Err(xinyong_store::StoreError::Conflict(_)) => {
                    Err(Error::BadRequest("the change was decided meanwhile".into()))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await;
    if let Err(e) = done {
        return e.into_response();
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("change:{id}"), Some(decision)))
        .await
    {
        return e.into_response();
    }
    Redirect::to("/admin").into_response()
}
