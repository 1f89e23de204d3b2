//! The session middleware (who is asking, CSRF on every state-changing request, per-user rate limits) and
//! the account pages: log in (password, then a TOTP code for every role but the enterprise's), log out, and
//! "my account" — for an enterprise, its authorisations of banks (grant, revoke) and who read its record; for a
//! bank, the firms that authorised it.

use crate::access::{self, Authorisation};
use crate::audit::Entry;
use crate::auth::{self, Principal, Role};
use crate::i18n::Lang;
use crate::pages::{lang_of, page, LangQuery};
use crate::{AppState, Error};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::Deserialize;
use std::net::SocketAddr;

pub const SESSION_COOKIE: &str = "xy_session";
pub const CSRF_COOKIE: &str = "xy_csrf";

/// What the middleware learnt about a request.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub user: Option<Principal>,
    pub address: String,
    /// The token a form on the page must send back: the session's, or (signed out) the double-submit cookie's.
    pub csrf: String,
}

impl Ctx {
    /// The signed-in user if their role is one of `roles`: otherwise to the login page (signed out) or 403 with
    /// `why` (another role).
    pub fn require(&self, roles: &[Role], why: &str) -> Result<&Principal, Box<Response>> {
        match &self.user {
            Some(p) if roles.contains(&p.role) => Ok(p),
            Some(_) => Err(Box::new(Error::Forbidden(why.into()).into_response())),
            None => Err(Box::new(Redirect::to("/login").into_response())),
        }
    }

    /// Records, before a page that names them leaves, the reads of the firms it names (each once) as the
    /// regulator's: the dashboard's movers, the themes' drill-down, the support policies' lists.
    pub async fn regulator_reads<'a>(
        &self,
        st: &crate::AppState,
        target: &str,
        firms: impl IntoIterator<Item = &'a String>,
    ) -> Result<(), crate::Error> {
        let mut named: Vec<&String> = firms.into_iter().collect();
        named.sort();
        named.dedup();
        let reads = named
            .into_iter()
            .map(|u| self.entry("read", Some(u), target, Some("regulator".into())))
            .collect();
        st.audit.record_many(reads).await
    }

    /// An audit entry by this request's user.
    pub fn entry(&self, action: &str, uscc: Option<&str>, target: &str, basis: Option<String>) -> Entry {
        let (user_id, role, org) = match &self.user {
            Some(p) => (p.user_id.clone(), p.role.code().to_string(), p.org.clone()),
            None => (String::new(), "public".into(), String::new()),
        };
        Entry {
            user_id,
            role,
            org,
            action: action.into(),
            uscc: uscc.map(String::from),
            target: target.into(),
            basis,
            address: self.address.clone(),
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/me/authorisations", post(grant))
        .route("/me/authorisations/{id}/revoke", post(revoke))
        .route("/me/tokens", post(new_token))
        .route("/me/tokens/{id}/revoke", post(revoke_token))
}

fn cookies(h: &HeaderMap) -> Vec<(String, String)> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub(crate) fn cookie_of(h: &HeaderMap, name: &str) -> Option<String> {
    cookies(h).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn is_token(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn set_cookie(st: &AppState, name: &str, value: &str, max_age: u64) -> HeaderValue {
    let secure = if st.cfg.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn forbidden(msg: &str) -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("forbidden: {msg}\n"),
    )
        .into_response()
}

/// The CSRF token a state-changing request sent: the `X-CSRF-Token` header, a `csrf` query parameter (forms
/// that upload files put it in their action), or the `csrf` field of a URL-encoded form body (read here and
/// handed on unchanged).
async fn sent_csrf(req: Request, limit: usize) -> Result<(Option<String>, Request), Response> {
    if let Some(v) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        let v = v.to_string();
        return Ok((Some(v), req));
    }
    if let Some(v) = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("csrf=")))
    {
        let v = v.to_string();
        return Ok((Some(v), req));
    }
    let form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !form {
        return Ok((None, req));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "payload too large\n").into_response())?;
    let token = std::str::from_utf8(&bytes)
        .ok()
        .and_then(|s| s.split('&').find_map(|kv| kv.strip_prefix("csrf=")))
        .map(String::from);
    Ok((token, Request::from_parts(parts, Body::from(bytes))))
}

/// The session middleware: the signed-in user (from the store, on every request: logout and disabling hold at
/// once), the CSRF check on every request that is not GET or HEAD (and a same-origin check when the browser
/// says where it comes from), the per-user rate limit (429 with Retry-After).
pub async fn middleware(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let address = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "local".to_string(), |c| c.0.ip().to_string());
    // A front-end machine's push: signed with its key (`push.rs`), no cookie, no CSRF token, no user.
    if req.uri().path().starts_with("/api/v1/push/") {
        let mut req = req;
        req.extensions_mut().insert(Ctx {
            user: None,
            address,
            csrf: String::new(),
        });
        return next.run(req).await;
    }
    // An API token (banks' and departments' systems): no cookie, so no CSRF token; rate-limited per token.
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    if let Some(tok) = bearer {
        // Tokens are for the API only: a leaked token cannot make tokens, grant, decide or upload.
        if !req.uri().path().starts_with("/api/v1/") {
            return crate::api::json_error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "API tokens are accepted under /api/v1/ only",
            );
        }
        let user = match st.with_store(move |s| auth::token_principal(s, &tok)).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return crate::api::json_error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "an unknown or revoked API token",
                )
            }
            Err(e) => return e.into_response(),
        };
        if let Err(wait) = st.rate.take(&user.token_hash) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, wait.to_string())],
                "too many requests\n",
            )
                .into_response();
        }
        let mut req = req;
        req.extensions_mut().insert(Ctx {
            user: Some(user),
            address,
            csrf: String::new(),
        });
        return next.run(req).await;
    }
    // Assets, health and metrics need no user: no store round trip for them (a page pulls several assets).
    let path = req.uri().path();
    let anonymous = path.starts_with("/static/") || path == "/healthz" || path == "/metrics";
    let token = cookie_of(req.headers(), SESSION_COOKIE)
        .filter(|t| is_token(t))
        .filter(|_| !anonymous);
    let user = match token {
        Some(tok) => {
            let (now, t) = (st.now(), st.timeouts());
            match st.with_store_mut(move |s| auth::session(s, &tok, now, t)).await {
                Ok(u) => u,
                Err(e) => return e.into_response(),
            }
        }
        None => None,
    };
    let (csrf, new_cookie) = match &user {
        Some(p) => (p.csrf.clone(), None),
        None => match cookie_of(req.headers(), CSRF_COOKIE).filter(|t| is_token(t)) {
            Some(c) => (c, None),
            None => {
                let t = auth::random_token();
                (t.clone(), Some(set_cookie(&st, CSRF_COOKIE, &t, 86_400)))
            }
        },
    };
    if let Some(p) = &user {
        if let Err(wait) = st.rate.take(&format!("user:{}", p.user_id)) {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, wait.to_string())],
                "too many requests\n",
            )
                .into_response();
        }
    }
    let mut req = req;
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        if let (Some(origin), Some(host)) = (
            req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            req.headers().get(header::HOST).and_then(|v| v.to_str().ok()),
        ) {
            // `null` (an opaque origin: a sandboxed frame, a page with no-referrer) is not this site either.
            let o = origin.split_once("://").map_or(origin, |x| x.1);
            if o != host {
                return forbidden("a request from another site");
            }
        }
        let (sent, r) = match sent_csrf(req, st.cfg.max_body_bytes).await {
            Ok(x) => x,
            Err(res) => return res,
        };
        req = r;
        if !sent.is_some_and(|s| same(&s, &csrf)) {
            return forbidden("a missing or stale form token (CSRF); reload the page and try again");
        }
    }
    req.extensions_mut().insert(Ctx { user, address, csrf });
    let mut res = next.run(req).await;
    if let Some(c) = new_cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

#[derive(Deserialize, Default)]
pub struct LoginForm {
    #[serde(default)]
    user: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    lang: Option<String>,
}

fn login_view(st: &AppState, ctx: &Ctx, lang: Lang, cookie: Option<String>, error: Option<&str>) -> Response {
    let mut res = page(
        st,
        ctx,
        "login.html",
        lang,
        cookie,
        serde_json::json!({ "path": "/login", "error": error }),
    );
    if error.is_some() {
        *res.status_mut() = StatusCode::UNAUTHORIZED;
    }
    res
}

async fn login_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    login_view(&st, &ctx, lang, cookie, None)
}

/// Failed logins allowed per account, and per address, within 15 minutes.
const MAX_FAILS_USER: u32 = 5;
const MAX_FAILS_ADDRESS: u32 = 50;

async fn login(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let (lang, cookie) = lang_of(&LangQuery { lang: f.lang.clone() }, &headers);
    // Bounded before any work (the name is a throttle key; argon2 over a huge input is work for nothing).
    if f.user.chars().count() > 64 || f.password.chars().count() > 64 || f.code.len() > 12 {
        return login_view(&st, &ctx, lang, cookie, Some("login.failed"));
    }
    let (ukey, akey) = (format!("user:{}", f.user), format!("addr:{}", ctx.address));
    // Counted before the password is checked (cleared on success), so that parallel attempts cannot all pass
    // the check before any failure is counted.
    let locked = st
        .throttle
        .attempt(&ukey, MAX_FAILS_USER)
        .or_else(|| st.throttle.attempt(&akey, MAX_FAILS_ADDRESS));
    if let Some(wait) = locked {
        let mut res = login_view(&st, &ctx, lang, cookie, Some("login.locked"));
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        res.headers_mut().insert(header::RETRY_AFTER, wait.into());
        return res;
    }
    let now = st.now();
    let used = st.used_codes.clone();
    let (name, pw, code) = (f.user.clone(), f.password.clone(), f.code.clone());
    let outcome = st
        .with_store_mut(move |s| {
            let u = auth::user(s, &name)?;
            let ok_pw = auth::verify_password(&pw, u.as_ref().map_or(auth::dummy_hash(), |u| &u.password_hash));
            let Some(u) = u.filter(|u| ok_pw && !u.disabled) else {
                return Ok(Err("login.failed"));
            };
            if u.role.needs_totp() {
                let step = u
                    .totp_secret
                    .as_deref()
                    .and_then(|sec| auth::totp_step(sec, &code, now.max(0) as u64));
                match step {
                    Some(step) if used.claim(&u.user_id, step) => {}
                    Some(_) => return Ok(Err("login.code_used")),
                    None => return Ok(Err("login.failed")),
                }
            }
            let (token, _) = auth::start_session(s, &u, now)?;
            Ok(Ok((u, token)))
        })
        .await;
    let outcome = match outcome {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    match outcome {
        Ok((u, token)) => {
            st.throttle.clear(&ukey);
            st.throttle.undo(&akey);
            let mut entry = ctx.entry("login", None, "/login", None);
            (entry.user_id, entry.role, entry.org) = (u.user_id.clone(), u.role.code().into(), u.org.clone());
            if let Err(e) = st.audit.record(entry).await {
                return e.into_response();
            }
            let mut res = Redirect::to("/me").into_response();
            res.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&st, SESSION_COOKIE, &token, st.cfg.session_absolute_secs),
            );
            if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
                res.headers_mut().append(header::SET_COOKIE, c);
            }
            res
        }
        Err(why) => {
            let mut entry = ctx.entry("login_failed", None, "/login", None);
            entry.user_id = f.user.chars().take(64).collect();
            if let Err(e) = st.audit.record(entry).await {
                return e.into_response();
            }
            login_view(&st, &ctx, lang, cookie, Some(why))
        }
    }
}

async fn logout(State(st): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    if let Some(p) = ctx.user.clone() {
        let h = p.token_hash.clone();
        if let Err(e) = st.with_store_mut(move |s| auth::end_session(s, &h)).await {
            return e.into_response();
        }
        if let Err(e) = st.audit.record(ctx.entry("logout", None, "/logout", None)).await {
            return e.into_response();
        }
    }
    let mut res = Redirect::to("/").into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, set_cookie(&st, SESSION_COOKIE, "", 0));
    res
}

/// The lenders a firm can authorise: (source id, name).
pub fn lenders() -> Vec<(String, String)> {
    crate::pages::registry()
        .map(|r| {
            r.sources
                .iter()
                .filter(|s| s.kind == xinyong_registry::SourceKind::Lender)
                .map(|s| (s.id.clone(), s.name.clone()))
                .collect()
        })
        .unwrap_or_default()
}

pub fn lender_name(id: &str) -> String {
    lenders()
        .into_iter()
        .find(|l| l.0 == id)
        .map_or_else(|| id.to_string(), |l| l.1)
}

async fn me(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    me_page(st, ctx, q, headers, None).await
}

/// Roles that may hold API tokens (their systems call the API).
fn may_hold_tokens(r: Role) -> bool {
    matches!(r, Role::Bank | Role::Department | Role::Regulator)
}

async fn me_page(st: AppState, ctx: Ctx, q: LangQuery, headers: HeaderMap, new_token: Option<String>) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let Some(p) = ctx.user.clone() else {
        return Redirect::to("/login").into_response();
    };
    let firm = st.index.read().ok().and_then(|i| i.get(&p.org).cloned());
    let org = p.org.clone();
    let role = p.role;
    let uid = p.user_id.clone();
    let data = st
        .with_store(move |s| {
            let tokens = if may_hold_tokens(role) {
                auth::tokens_of(s, &uid)?
            } else {
                Vec::new()
            };
            let hooks = if matches!(role, Role::Bank | Role::Regulator) {
                crate::webhooks::hooks_of(s, Some(&uid))?
            } else {
                Vec::new()
            };
            let (a, l) = match role {
                Role::Enterprise => (
                    access::authorisations(s, "uscc", &org)?,
                    crate::audit::of_firm(s, &org, 200)?,
                ),
                Role::Bank => (access::authorisations(s, "bank", &org)?, Vec::new()),
                _ => (Vec::new(), Vec::new()),
            };
            Ok((a, l, tokens, hooks))
        })
        .await;
    let (auths, log, tokens, hooks) = match data {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let today = st.today();
    let index = st.index.read().unwrap_or_else(|e| e.into_inner());
    let auths: Vec<serde_json::Value> = auths
        .iter()
        .map(|a| {
            serde_json::json!({
                "a": a,
                "live": a.live(&today),
                "bank_name": lender_name(&a.bank),
                "firm_name": index.get(&a.uscc).map(|f| f.name.clone()).unwrap_or_default(),
            })
        })
        .collect();
    drop(index);
    let log: Vec<serde_json::Value> = log
        .iter()
        .map(|r| serde_json::json!({ "r": r, "org_name": lender_name(&r.org), "local": crate::shanghai(&r.at) }))
        .collect();
    page(
        &st,
        &ctx,
        "me.html",
        lang,
        cookie,
        serde_json::json!({
            "path": "/me",
            "me": p,
            "firm": firm,
            "auths": auths,
            "log": log,
            "lenders": lenders(),
            "today": today,
            "tokens": tokens,
            "may_hold_tokens": may_hold_tokens(role),
            "new_token": new_token,
            "may_hook": matches!(role, Role::Bank | Role::Regulator),
            "hooks": hooks,
        }),
    )
}

#[derive(Deserialize)]
pub struct GrantForm {
    bank: String,
    purpose: String,
    #[serde(default)]
    scope: String,
    days: u32,
}

fn enterprise(ctx: &Ctx) -> Result<&Principal, Box<Response>> {
    ctx.require(
        &[Role::Enterprise],
        "only a firm's own account grants or revokes its authorisations",
    )
}

async fn grant(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<GrantForm>) -> Response {
    let p = match enterprise(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    if !lenders().iter().any(|l| l.0 == f.bank) {
        return Error::BadRequest(format!("no lender {:?}", f.bank)).into_response();
    }
    let purpose = f.purpose.trim().chars().take(200).collect::<String>();
    if purpose.is_empty() || !(1..=366).contains(&f.days) {
        return Error::BadRequest("an authorisation states a purpose and lasts 1 to 366 days".into()).into_response();
    }
    let scope = if f.scope == "non-public+personal" {
        "non-public+personal"
    } else {
        "non-public"
    };
    let today = st.today();
    let a = Authorisation {
        auth_id: auth::random_token()[..16].to_string(),
        uscc: p.org.clone(),
        bank: f.bank.clone(),
        purpose,
        scope: scope.into(),
        granted_at: st.timestamp(),
        granted_by: p.user_id.clone(),
        expires_on: crate::add_days(&today, i64::from(f.days) - 1),
        revoked_at: None,
        revoked_by: None,
    };
    let target = format!("authorisation:{}", a.auth_id);
    let a2 = a.clone();
    if let Err(e) = st.with_store_mut(move |s| access::put_authorisation(s, &a2)).await {
        return e.into_response();
    }
    let entry = ctx.entry("write", Some(&p.org), &target, Some(format!("grant:{}", a.bank)));
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to("/me").into_response()
}

async fn revoke(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let p = match enterprise(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let (org, user, at) = (p.org.clone(), p.user_id.clone(), st.timestamp());
    let id2 = id.clone();
    let done = st
        .with_store_mut(move |s| {
            // Object-level check: only an authorisation of this firm.
            let Some(mut a) = access::authorisations(s, "uscc", &org)?
                .into_iter()
                .find(|a| a.auth_id == id2)
            else {
                return Ok(false);
            };
            if a.revoked_at.is_none() {
                a.revoked_at = Some(at);
                a.revoked_by = Some(user);
                access::put_authorisation(s, &a)?;
            }
            Ok(true)
        })
        .await;
    match done {
        Ok(true) => {}
        Ok(false) => return Error::NotFound(format!("no authorisation {id} of this firm")).into_response(),
        Err(e) => return e.into_response(),
    }
    let entry = ctx.entry(
        "write",
        Some(&p.org),
        &format!("authorisation:{id}"),
        Some("revoke".into()),
    );
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to("/me").into_response()
}

#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    label: String,
}

async fn new_token(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    Form(f): Form<TokenForm>,
) -> Response {
    let p = match &ctx.user {
        Some(p) if may_hold_tokens(p.role) => p.clone(),
        Some(_) => return forbidden("API tokens are for banks', departments' and regulators' systems"),
        None => return Redirect::to("/login").into_response(),
    };
    let label = f.label.trim().chars().take(60).collect::<String>();
    let (p2, now) = (p.clone(), st.timestamp());
    let made = st
        .with_store_mut(move |s| auth::create_token(s, &p2, &label, &now))
        .await;
    let (token, id) = match made {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("api_token:{id}"), Some("create".into())))
        .await
    {
        return e.into_response();
    }
    // The token is shown once, on this response; only its hash is kept.
    let mut res = me_page(st, ctx, LangQuery::default(), headers, Some(token)).await;
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn revoke_token(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let Some(p) = ctx.user.clone() else {
        return Redirect::to("/login").into_response();
    };
    let (uid, id2) = (p.user_id.clone(), id.clone());
    match st.with_store_mut(move |s| auth::revoke_token(s, &uid, &id2)).await {
        Ok(true) => {}
        Ok(false) => return Error::NotFound(format!("no token {id} of yours")).into_response(),
        Err(e) => return e.into_response(),
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("api_token:{id}"), Some("revoke".into())))
        .await
    {
        return e.into_response();
    }
    Redirect::to("/me").into_response()
}
