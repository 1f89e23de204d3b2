//! The live events as server-sent events: `GET /api/v1/stream` (an API token, or a signed-in session), each
//! outbox event of a firm the reader follows (its subscriptions; an enterprise: its own firm) and may read
//! now (`access::firm_access`), in outbox order. The SSE `id` is the outbox sequence number: a client that
//! reconnects with `Last-Event-ID` (or `?after=SEQ`) gets what it missed, each event once; without either it
//! gets the events from its connection on. Every event sent is a read of the firm's non-public data: logged
//! before it leaves. The credential it was opened with is checked on every read and at least every 20
//! seconds (a logout, a revoked token or a disabled account ends it), and it ends after an hour (clients
//! reconnect with `Last-Event-ID`).

use crate::account::Ctx;
use crate::auth::{Principal, Role};
use crate::push::{events_after, OutEvent};
use crate::{AppState, Error};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Deserialize;
use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use xinyong_store::Store;

/// Outbox rows read at a time.
const READ: usize = 500;

/// A stream ends after this long (the client reconnects with `Last-Event-ID` and is authenticated anew).
pub const MAX_SECS: u64 = 3600;

/// How often an idle stream checks that its credential still holds (logout, a revoked token, a disabled
/// account end it).
const RECHECK_SECS: u64 = 20;

/// What the stream was opened with, checked again on every read.
#[derive(Clone)]
enum Credential {
    Token(String),
    Session(String),
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/stream", get(stream))
}

#[derive(Deserialize)]
pub struct StreamQuery {
    after: Option<i64>,
}

/// The firms `who` follows now: its subscriptions' (an enterprise: its own firm).
pub fn followed(st: &AppState, s: &dyn Store, who: &Principal) -> Result<HashSet<String>, Error> {
    Ok(match who.role {
        Role::Enterprise => std::iter::once(who.org.clone()).collect(),
        _ => {
            let mut f = HashSet::new();
            for sub in crate::subs::subscriptions(s, &who.user_id)? {
                f.extend(crate::subs::covered(st, s, &sub)?);
            }
            f
        }
    })
}

/// Of `events`, those `who` follows and may read now.
pub fn visible(st: &AppState, s: &dyn Store, who: &Principal, events: Vec<OutEvent>) -> Result<Vec<OutEvent>, Error> {
    if events.is_empty() {
        return Ok(events);
    }
    let followed = followed(st, s, who)?;
    let (today, month) = (st.today(), st.data_month());
    let mut out = Vec::new();
    for e in events {
        if followed.contains(&e.uscc)
            && crate::access::firm_access(s, &st.caches, Some(who), &e.uscc, &today, &month)?.is_some()
        {
            out.push(e);
        }
    }
    Ok(out)
}

struct Cursor {
    st: AppState,
    who: Principal,
    ctx: Ctx,
    cred: Credential,
    opened: std::time::Instant,
    last: i64,
    rx: tokio::sync::watch::Receiver<i64>,
    pending: VecDeque<OutEvent>,
}

async fn stream(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<StreamQuery>,
    headers: HeaderMap,
) -> Response {
    let Some(who) = ctx.user.clone() else {
        return crate::api::json_error(StatusCode::UNAUTHORIZED, "unauthorized", "sign in or send an API token");
    };
    if !matches!(who.role, Role::Bank | Role::Regulator | Role::Enterprise) {
        return crate::api::json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the event stream is for banks, the regulator and enterprises",
        );
    }
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(q.after);
    let bearer = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let cred = match (
        bearer,
        crate::account::cookie_of(&headers, crate::account::SESSION_COOKIE),
    ) {
        (Some(t), _) => Credential::Token(t),
        (None, Some(c)) => Credential::Session(c),
        (None, None) => {
            return crate::api::json_error(StatusCode::UNAUTHORIZED, "unauthorized", "sign in or send an API token")
        }
    };
    let rx = st.events.subscribe();
    let last = resume.unwrap_or(*rx.borrow());
    let cursor = Cursor {
        st,
        who,
        ctx,
        cred,
        opened: std::time::Instant::now(),
        last,
        rx,
        pending: VecDeque::new(),
    };
    let events = futures_util::stream::unfold(cursor, |mut c| async move {
        loop {
            if let Some(e) = c.pending.pop_front() {
                let data = serde_json::to_string(&e).unwrap_or_default();
                let ev = Event::default().id(e.seq.to_string()).event("credit").data(data);
                return Some((Ok::<Event, Infallible>(ev), c));
            }
            if c.opened.elapsed().as_secs() >= MAX_SECS {
                return None;
            }
            let (st, who, after, cred) = (c.st.clone(), c.who.clone(), c.last, c.cred.clone());
            let (now, timeouts) = (c.st.now(), c.st.timeouts());
            let read =
                c.st.with_store(move |s| {
                    // A logout, a revoked token or an account disabled since the stream opened: no more.
                    let holds = match &cred {
                        Credential::Token(t) => {
                            crate::auth::token_principal(s, t)?.is_some_and(|p| p.user_id == who.user_id)
                        }
                        Credential::Session(t) => crate::auth::session_in_force(s, t, now, timeouts)?,
                    };
                    if !holds {
                        return Err(Error::Forbidden("the credential no longer holds".into()));
                    }
                    let all = events_after(s, after, READ)?;
                    let last = all.last().map_or(after, |e| e.seq);
                    Ok((visible(&st, s, &who, all)?, last))
                })
                .await;
            let Ok((mine, last)) = read else { return None };
            c.last = last;
            if !mine.is_empty() {
                let reads = mine
                    .iter()
                    .map(|e| {
                        c.ctx.entry(
                            "read",
                            Some(&e.uscc),
                            "/api/v1/stream",
                            Some(format!("event:{}", e.event_id)),
                        )
                    })
                    .collect();
                if c.st.audit.record_many(reads).await.is_err() {
                    return None;
                }
                c.pending.extend(mine);
                continue;
            }
            if last > after {
                continue; // read on: more rows than one read may follow
            }
            // Nothing new: wait for the next push's events.
            if *c.rx.borrow_and_update() > c.last {
                continue;
            }
            // New events, or time to check the credential again; the channel closed: the server stops.
            let woke = tokio::time::timeout(std::time::Duration::from_secs(RECHECK_SECS), c.rx.changed()).await;
            if let Ok(Err(_)) = woke {
                return None;
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::default()).into_response()
}
