//! The JSON API for banks' and departments' systems, under /api/v1: the same access decisions, field classes
//! and audit log as the pages, authenticated by an API token (`Authorization: Bearer xyt_…`, created on the
//! account page and stored as its SHA-256 only). The OpenAPI document is `openapi.json` beside this crate,
//! served at /api/v1/openapi.json; a test checks that it lists exactly the routes served here.

use crate::account::Ctx;
use crate::auth::Role;
use crate::pages::{overview, Viewer};
use crate::{AppState, Error};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde::Deserialize;

/// The routes, as the OpenAPI document must list them.
pub const ROUTES: &[&str] = &[
    "/api/v1/openapi.json",
    "/api/v1/firms",
    "/api/v1/firms/{uscc}",
    "/api/v1/firms/{uscc}/events",
    "/api/v1/index",
    "/api/v1/inbox",
];

pub const OPENAPI: &str = include_str!("../openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/firms", get(firms))
        .route("/api/v1/firms/{uscc}", get(firm))
        .route("/api/v1/firms/{uscc}/events", get(events))
        .route("/api/v1/index", get(index))
        .route("/api/v1/inbox", get(inbox))
}

/// An error as JSON: `{"error": code, "message": text}` with the status of the page error.
pub fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": code, "message": message }))).into_response()
}

pub fn api_error(e: Error) -> Response {
    let res = e.into_response();
    let status = res.status();
    let code = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "store_unavailable",
        _ => "internal",
    };
    json_error(status, code, code)
}

fn signed_in(ctx: &Ctx) -> Result<&crate::auth::Principal, Box<Response>> {
    ctx.user.as_ref().ok_or_else(|| {
        Box::new(json_error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send an API token: Authorization: Bearer xyt_…",
        ))
    })
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[derive(Deserialize)]
pub struct FirmsQuery {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

async fn firms(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<FirmsQuery>) -> Response {
    if let Err(r) = signed_in(&ctx) {
        return *r;
    }
    if q.q.chars().count() > 100 {
        return json_error(StatusCode::BAD_REQUEST, "bad_request", "q: at most 100 characters");
    }
    let limit = q.limit.unwrap_or(st.cfg.search_limit).clamp(1, st.cfg.search_limit);
    let ix = st.index.read().unwrap_or_else(|e| e.into_inner());
    let hits: Vec<serde_json::Value> = ix
        .search(&q.q, limit)
        .into_iter()
        .map(|h| {
            serde_json::json!({
                "uscc": h.firm.uscc, "name": h.firm.name, "legal_rep": h.firm.legal_rep,
                "industry": h.firm.industry, "township": h.firm.township, "status": h.firm.status,
                "matched": h.matched,
            })
        })
        .collect();
    Json(serde_json::json!({ "query": q.q, "firms": hits })).into_response()
}

async fn firm(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Path(uscc): Path<String>) -> Response {
    let p = match signed_in(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let known = st.index.read().ok().and_then(|i| i.get(&uscc).cloned());
    let Some(reg) = known else {
        return json_error(StatusCode::NOT_FOUND, "not_found", &format!("no firm {uscc}"));
    };
    let (u, today, month, caches, rights) = (
        uscc.clone(),
        st.today(),
        st.data_month(),
        st.caches.clone(),
        st.rights.clone(),
    );
    let got = st
        .with_store(move |s| {
            let basis = crate::access::firm_access(s, &caches, Some(&p), &u, &today, &month)?;
            let viewer = Viewer::of(basis.as_ref());
            Ok((
                basis,
                caches.overview(&u, viewer, || overview(s, &u, viewer, &today, &rights))?,
            ))
        })
        .await;
    let (basis, ov) = match got {
        Ok(x) => x,
        Err(e) => return api_error(e),
    };
    let target = format!("/api/v1/firms/{uscc}");
    if let Some(b) = &basis {
        if let Err(e) = st
            .audit
            .record(ctx.entry("read", Some(&uscc), &target, Some(b.code())))
            .await
        {
            return api_error(e);
        }
    }
    // The overview's JSON is kept between requests; the rest is this request's.
    let head = serde_json::json!({ "uscc": reg.uscc, "name": reg.name, "access": basis.map(|b| b.code()) });
    let mut body = head.to_string();
    body.pop();
    body.push_str(",\"overview\":");
    body.push_str(&ov.json);
    body.push('}');
    ([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn events(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Path(uscc): Path<String>) -> Response {
    let p = match signed_in(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    if st.index.read().map(|i| i.get(&uscc).is_none()).unwrap_or(true) {
        return json_error(StatusCode::NOT_FOUND, "not_found", &format!("no firm {uscc}"));
    }
    let (u, today, month, caches) = (uscc.clone(), st.today(), st.data_month(), st.caches.clone());
    let got = st
        .with_store(move |s| {
            let basis = crate::access::firm_access(s, &caches, Some(&p), &u, &today, &month)?;
            let events = match &basis {
                Some(_) => s.credit_events(Some(&u))?,
                None => Vec::new(),
            };
            Ok((basis, events))
        })
        .await;
    let (basis, events) = match got {
        Ok(x) => x,
        Err(e) => return api_error(e),
    };
    let Some(b) = basis else {
        return json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the firm's events are non-public: the firm has not authorised you and does not borrow from you",
        );
    };
    let target = format!("/api/v1/firms/{uscc}/events");
    if let Err(e) = st
        .audit
        .record(ctx.entry("read", Some(&uscc), &target, Some(b.code())))
        .await
    {
        return api_error(e);
    }
    let list: Vec<serde_json::Value> = events
        .into_iter()
        .map(|e| {
            serde_json::json!({ "id": e.id, "date": e.date, "kind": e.kind, "rule": e.rule, "before": e.before, "after": e.after })
        })
        .collect();
    Json(serde_json::json!({ "uscc": uscc, "events": list })).into_response()
}

#[derive(Deserialize)]
pub struct IndexQuery {
    dimension: Option<String>,
}

async fn index(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Query(q): Query<IndexQuery>) -> Response {
    if let Err(r) = signed_in(&ctx) {
        return *r;
    }
    let dim = q.dimension.unwrap_or_else(|| "district".into());
    if !crate::dashboard::DIMENSIONS.contains(&dim.as_str()) {
        return json_error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("dimension: one of {}", crate::dashboard::DIMENSIONS.join(", ")),
        );
    }
    let Some(run) = st.summary().run_id.clone() else {
        return json_error(StatusCode::NOT_FOUND, "not_found", "no scoring run stored yet");
    };
    let d = dim.clone();
    let rows = match st.with_store(move |s| Ok(s.run_index(&run, Some(&d))?)).await {
        Ok(r) => r,
        Err(e) => return api_error(e),
    };
    let points: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|(month, _, member, value)| serde_json::json!({ "month": month, "member": member, "value": value }))
        .collect();
    Json(serde_json::json!({ "dimension": dim, "as_of": st.summary().as_of, "points": points })).into_response()
}

async fn inbox(State(st): State<AppState>, Extension(ctx): Extension<Ctx>) -> Response {
    let p = match signed_in(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    if !matches!(p.role, Role::Bank | Role::Regulator) {
        return json_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the inbox is for bank officers and analysts",
        );
    }
    let (st2, today, month) = (st.clone(), st.today(), st.data_month());
    let got = st
        .with_store(move |s| crate::subs::inbox_of(&st2, s, &p, &today, &month))
        .await;
    match got {
        Ok(inbox) => {
            let reads = crate::subs::read_entries(&ctx, "/api/v1/inbox", &inbox.reads);
            if let Err(e) = st.audit.record_many(reads).await {
                return api_error(e);
            }
            Json(serde_json::json!({
                "subscriptions": inbox.subs, "events": inbox.items, "hidden_firms": inbox.hidden,
            }))
            .into_response()
        }
        Err(e) => api_error(e),
    }
}
