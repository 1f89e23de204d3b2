//! Webhooks: a bank's or the regulator's system receives the live events it may read, as HTTP POSTs, from
//! the outbox. Delivery is at least once: each hook keeps a cursor (the outbox sequence number of the last
//! event it has settled) in its row, advanced only after the receiver answered 2xx, so a crash or a failed
//! request sends the event again; the receiver deduplicates by `X-Xinyong-Event-Id` (stable per event) and so
//! sees each event exactly once. A failed delivery is retried with exponential backoff (1 s doubling, at most
//! [`MAX_BACKOFF_SECS`]); the hook's row says the last error.
//!
//! A request: `POST URL`, `Content-Type: application/json`, the event as the stream sends it, and headers
//! `X-Xinyong-Event-Id`, `X-Xinyong-Timestamp` (Unix seconds) and `X-Xinyong-Signature` (hex HMAC-SHA256 with
//! the hook's secret over `"{timestamp}\n"` and the body). Only `http://` URLs are delivered (no TLS client is
//! built in: a bank's receiver sits behind its own TLS-terminating proxy, or on its internal network).
//!
//! Every event delivered is a read of the firm's non-public data by the hook's owner: logged first.

use crate::account::Ctx;
use crate::auth::{Principal, Role};
use crate::push::{events_after, OutEvent};
use crate::{AppState, Error};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::post;
use axum::{Extension, Form, Router};
use hmac::{Hmac, Mac};
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use xinyong_store::rows::{Row, RowOp, RowQuery, Value};
use xinyong_store::Store;

/// The longest wait between two attempts.
pub const MAX_BACKOFF_SECS: i64 = 300;
/// Events read per hook per round.
const BATCH: usize = 200;
/// Hooks an account may have.
pub const MAX_HOOKS: usize = 5;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/webhooks", post(create))
        .route("/me/webhooks/{id}/delete", post(delete))
}

/// A hook as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Hook {
    pub hook_id: String,
    pub user_id: String,
    pub url: String,
    #[serde(skip)]
    pub secret: String,
    pub created_at: String,
    pub last_seq: i64,
    pub attempts: i64,
    pub next_at: i64,
    pub last_error: Option<String>,
}

impl Hook {
    fn from_row(r: &Row) -> Option<Hook> {
        Some(Hook {
            hook_id: r[0].as_str()?.into(),
            user_id: r[1].as_str()?.into(),
            url: r[2].as_str()?.into(),
            secret: r[3].as_str()?.into(),
            created_at: r[4].as_str()?.into(),
            last_seq: r[5].as_int()?,
            attempts: r[6].as_int()?,
            next_at: r[7].as_int()?,
            last_error: r[8].as_str().map(String::from),
        })
    }
}

pub fn hooks_of(s: &dyn Store, user: Option<&str>) -> Result<Vec<Hook>, Error> {
    let q = match user {
        Some(u) => RowQuery::all("webhooks").eq("user_id", Value::text(u)),
        None => RowQuery::all("webhooks"),
    };
    Ok(s.rows(&q)?.iter().filter_map(Hook::from_row).collect())
}

/// The signature a receiver checks.
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(timestamp.as_bytes());
    m.update(b"\n");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

fn may_hook(ctx: &Ctx) -> Result<&Principal, Box<Response>> {
    ctx.require(
        &[Role::Bank, Role::Regulator],
        "webhooks are for banks and the regulator",
    )
}

/// Whether an address is one a webhook may not reach unless the configuration allows private hosts: the
/// server's own machine and private, link-local, shared (CGNAT), unspecified or multicast networks.
pub fn internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v) => {
            let o = v.octets();
            v.is_loopback()
                || v.is_private()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_multicast()
                || v.is_broadcast()
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || o[0] == 0
        }
        IpAddr::V6(v) => {
            let seg = v.segments();
            v.is_loopback()
                || v.is_unspecified()
                || v.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00
                || (seg[0] & 0xffc0) == 0xfe80
                || v.to_ipv4_mapped().is_some_and(|m| internal(IpAddr::V4(m)))
        }
    }
}

/// The host and port of an `http://` URL.
fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("http://")?;
    let auth = rest.split(['/', '?', '#']).next()?;
    if auth.contains('@') {
        return None;
    }
    let (host, port) = match auth.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || auth.starts_with('[') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) if auth.starts_with('[') && auth.ends_with(']') => (auth, 80),
            Err(_) => return None,
        },
        _ => (auth, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

/// Refuses a URL whose host resolves to an internal address (server-side request forgery), unless
/// `allow_private`. Checked when a hook is made and again before each delivery (a name may be re-pointed).
pub async fn check_target(url: &str, allow_private: bool) -> Result<(), String> {
    let (host, port) = host_port(url).ok_or("a webhook URL: http://host[:port]/path")?;
    if allow_private {
        return Ok(());
    }
    let addrs: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|_| format!("{host} does not resolve"))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| internal(a.ip())) {
        return Err(format!(
            "{host} is an internal address: webhooks go to a bank's own systems outside this server's network"
        ));
    }
    Ok(())
}

#[derive(Deserialize)]
pub struct NewHook {
    url: String,
}

/// A webhook for the signed-in officer's account; its secret is shown once.
async fn create(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<NewHook>) -> Response {
    let p = match may_hook(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let url = f.url.trim().to_string();
    let ok = url.len() <= 500
        && url
            .strip_prefix("http://")
            .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    if !ok {
        return Error::BadRequest("a webhook URL: http://host[:port]/path, at most 500 characters".into())
            .into_response();
    }
    if let Err(why) = check_target(&url, st.cfg.webhook_private_hosts).await {
        return Error::BadRequest(why).into_response();
    }
    let hook_id = format!("wh_{}", &crate::auth::random_token()[..12]);
    let secret = crate::auth::random_token();
    let (uid, at, now) = (p.user_id.clone(), st.timestamp(), st.now());
    // Delivery starts with the events from now on.
    let from = *st.events.borrow();
    let (id2, secret2, url2) = (hook_id.clone(), secret.clone(), url.clone());
    let made = st
        .with_store_mut(move |s| {
            if hooks_of(s, Some(&uid))?.len() >= MAX_HOOKS {
                return Err(Error::BadRequest(format!("at most {MAX_HOOKS} webhooks an account")));
            }
            Ok(s.apply_rows(&[RowOp::Insert {
                table: "webhooks",
                row: vec![
                    Value::text(&id2),
                    Value::text(&uid),
                    Value::text(&url2),
                    Value::text(&secret2),
                    Value::text(&at),
                    Value::Int(from),
                    Value::Int(0),
                    Value::Int(now),
                    Value::Null,
                ],
            }])?)
        })
        .await;
    if let Err(e) = made {
        return e.into_response();
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry(
            "write",
            None,
            &format!("webhook:{hook_id}"),
            Some(format!("create {url}")),
        ))
        .await
    {
        return e.into_response();
    }
    let mut res = crate::pages::page(
        &st,
        &ctx,
        "admin_created.html",
        crate::pages::lang_of(&Default::default(), &Default::default()).0,
        None,
        serde_json::json!({ "path": "/me", "back": "/me", "webhook": { "hook_id": hook_id, "url": url, "secret": secret } }),
    );
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

async fn delete(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Path(id): Path<String>) -> Response {
    let p = match may_hook(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let id2 = id.clone();
    let done = st
        .with_store_mut(move |s| {
            // Only one's own.
            if !hooks_of(s, Some(&p.user_id))?.iter().any(|h| h.hook_id == id2) {
                return Err(Error::NotFound(format!("no webhook {id2}")));
            }
            Ok(s.apply_rows(&[RowOp::Delete {
                table: "webhooks",
                key: vec![Value::text(&id2)],
            }])?)
        })
        .await;
    if let Err(e) = done {
        return e.into_response();
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("webhook:{id}"), Some("delete".into())))
        .await
    {
        return e.into_response();
    }
    Redirect::to("/me#webhooks").into_response()
}

/// The HTTP client deliveries use (plain HTTP/1.1).
pub type Client =
    hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<axum::body::Bytes>>;

pub fn client() -> Client {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

/// The delivery worker: a round whenever a push adds events, and at least every second (for retries).
pub async fn run(st: AppState) {
    let client = client();
    let mut rx = st.events.subscribe();
    loop {
        if let Err(e) = round(&st, &client).await {
            eprintln!("xinyong serve: webhooks: {e}");
        }
        let _ = tokio::time::timeout(std::time::Duration::from_secs(1), rx.changed()).await;
    }
}

/// One round: every hook that is due gets its pending events, in order, until one fails.
pub async fn round(st: &AppState, client: &Client) -> Result<(), Error> {
    let now = st.now();
    let hooks = st.with_store(|s| hooks_of(s, None)).await?;
    for h in hooks.into_iter().filter(|h| h.next_at <= now) {
        deliver(st, client, h).await?;
    }
    Ok(())
}

async fn deliver(st: &AppState, client: &Client, h: Hook) -> Result<(), Error> {
    let (st2, uid, after) = (st.clone(), h.user_id.clone(), h.last_seq);
    let (owner, pending, last) = st
        .with_store(move |s| {
            let Some(u) = crate::auth::user(s, &uid)? else {
                return Ok((None, Vec::new(), after));
            };
            let disabled = u.disabled;
            let owner = Principal::of(u);
            let all = events_after(s, after, BATCH)?;
            let last = all.last().map_or(after, |e| e.seq);
            if disabled {
                return Ok((None, Vec::new(), after));
            }
            Ok((Some(owner.clone()), crate::stream::visible(&st2, s, &owner, all)?, last))
        })
        .await?;
    let Some(owner) = owner else { return Ok(()) };
    let mut settled = h.last_seq;
    for e in &pending {
        // Events in between that the owner may not read are settled without a request.
        match send_one(st, client, &h, &owner, e).await {
            Ok(()) => settled = e.seq,
            Err(why) => {
                advance(st, &h, settled, Some((h.attempts + 1, why))).await?;
                return Ok(());
            }
        }
    }
    let done = if pending.iter().all(|e| e.seq <= settled) {
        last
    } else {
        settled
    };
    if done != h.last_seq || h.attempts != 0 {
        advance(st, &h, done, None).await?;
    }
    Ok(())
}

async fn send_one(st: &AppState, client: &Client, h: &Hook, owner: &Principal, e: &OutEvent) -> Result<(), String> {
    // On record before it leaves.
    let entry = crate::audit::Entry {
        user_id: owner.user_id.clone(),
        role: owner.role.code().to_string(),
        org: owner.org.clone(),
        action: "read".into(),
        uscc: Some(e.uscc.clone()),
        target: format!("webhook:{}", h.hook_id),
        basis: Some(format!("event:{}", e.event_id)),
        address: String::new(),
    };
    check_target(&h.url, st.cfg.webhook_private_hosts).await?;
    st.audit.record(entry).await.map_err(|e| format!("audit: {e}"))?;
    let body = serde_json::to_vec(e).map_err(|e| e.to_string())?;
    let ts = st.now().to_string();
    let req = axum::http::Request::post(&h.url)
        .header("content-type", "application/json")
        .header("x-xinyong-event-id", &e.event_id)
        .header("x-xinyong-timestamp", &ts)
        .header("x-xinyong-signature", signature(&h.secret, &ts, &body))
        .body(Full::new(axum::body::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let res = tokio::time::timeout(std::time::Duration::from_secs(10), client.request(req))
        .await
        .map_err(|_| "no answer in 10 s".to_string())?
        .map_err(|e| format!("{e}"))?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", res.status()))
    }
}

/// Moves a hook's cursor to `seq` (compare-and-set on the cursor it had); with a failure, schedules the retry.
async fn advance(st: &AppState, h: &Hook, seq: i64, failed: Option<(i64, String)>) -> Result<(), Error> {
    let now = st.now();
    let (attempts, next_at, err) = match failed {
        Some((n, why)) => (n, now + (1i64 << n.min(9)).min(MAX_BACKOFF_SECS), Some(why)),
        None => (0, now, None),
    };
    let (id, prev) = (h.hook_id.clone(), h.last_seq);
    let r = st
        .with_store_mut(move |s| {
            Ok(s.apply_rows(&[RowOp::Update {
                table: "webhooks",
                key: vec![Value::text(&id)],
                set: vec![
                    ("last_seq", Value::Int(seq)),
                    ("attempts", Value::Int(attempts)),
                    ("next_at", Value::Int(next_at)),
                    ("last_error", Value::opt_text(err)),
                ],
                expect: vec![("last_seq", Value::Int(prev))],
            }])?)
        })
        .await;
    match r {
        // Deleted meanwhile, or another worker moved it: nothing to do.
        Err(Error::Store(xinyong_store::StoreError::Conflict(_))) => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_and_url_hosts() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.9",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "203.0.113.5", "2001:db8::1"] {
            assert!(!internal(ip.parse().unwrap()), "{ip}");
        }
        assert_eq!(
            host_port("http://bank.example:8443/x"),
            Some(("bank.example".into(), 8443))
        );
        assert_eq!(host_port("http://bank.example/x?y"), Some(("bank.example".into(), 80)));
        assert_eq!(host_port("http://[::1]:9/x"), Some(("::1".into(), 9)));
        assert_eq!(host_port("http://user@evil/"), None);
        assert_eq!(host_port("https://bank.example/"), None);
    }
}
