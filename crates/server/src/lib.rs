//! The web platform (issue 6): an axum router over a pool of stores. Pages are server-rendered (minijinja
//! templates embedded in the binary, Chinese by default with an English switch); the charts are Apache
//! ECharts, embedded too. Handlers run store work on the blocking pool (`spawn_blocking`), one pooled
//! connection per request.
//!
//! Architecture invariant: this crate names no store backend; the binary opens the pool.

pub mod access;
pub mod account;
pub mod admin;
pub mod api;
pub mod audit;
pub mod auth;
pub mod bulk;
pub mod cache;
pub mod config;
pub mod dashboard;
pub mod data;
pub mod demo;
pub mod i18n;
pub mod matching;
pub mod metrics;
pub mod objection_pages;
pub mod objections;
pub mod pages;
pub mod push;
pub mod search;
pub mod stream;
pub mod subs;
pub mod support;
pub mod themes;
pub mod webhooks;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::{Arc, RwLock};
use xinyong_store::pool::Pool;
use xinyong_store::Store;

pub use config::ServerConfig;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub index: Arc<RwLock<search::SearchIndex>>,
    pub cfg: Arc<ServerConfig>,
    pub metrics: Arc<metrics::Metrics>,
    pub templates: Arc<minijinja::Environment<'static>>,
    /// The latest run's colour counts by group (the dashboard).
    pub summary: Arc<RwLock<Arc<dashboard::Summary>>>,
    pub audit: audit::AuditLog,
    pub throttle: Arc<auth::Throttle>,
    pub rate: Arc<auth::RateLimit>,
    pub used_codes: Arc<auth::UsedCodes>,
    /// The ingest path for uploaded deliveries (the binary supplies it; none: uploads are refused).
    pub ingest: Option<data::IngestFn>,
    /// Overviews and banks' borrowers, dropped when the data changes.
    pub caches: Arc<cache::Caches>,
    /// Rescoring for the live path (the binary supplies it; none: pushes are refused).
    pub rescore: Option<push::RescoreFn>,
    /// One push at a time (the live states and the outbox have one writer).
    pub push_lock: Arc<tokio::sync::Mutex<()>>,
    /// The outbox's last sequence number: event streams wait on it.
    pub events: Arc<tokio::sync::watch::Sender<i64>>,
    /// The calendar, objection regimes and windows (issue 8).
    pub rights: Arc<objections::Rights>,
    /// A firm's score with and without some of its facts (the binary supplies it; none: not shown).
    pub what_if: Option<objections::WhatIfFn>,
}

impl AppState {
    /// Builds the state: loads the search index from the store's register.
    pub fn new(pool: Pool, cfg: ServerConfig) -> Result<AppState, Error> {
        let (index, summary, generation, last_seq) = {
            let store = pool.get()?;
            let index = load_index(&**store)?;
            let summary = dashboard::Summary::load(&**store, &index)?;
            (index, summary, generation(&**store)?, push::last_seq(&**store)?)
        };
        let caches = Arc::new(cache::Caches::new(cfg.overview_cache_mb * 1024 * 1024, generation));
        let audit = audit::AuditLog::start(pool.clone(), timestamp)?;
        let rights = Arc::new(objections::Rights::load(&cfg)?);
        Ok(AppState {
            rights,
            what_if: None,
            audit,
            throttle: Arc::new(auth::Throttle::new(std::time::Duration::from_secs(900))),
            rate: Arc::new(auth::RateLimit::new(cfg.rate_per_sec, cfg.rate_burst)),
            used_codes: Arc::new(auth::UsedCodes::default()),
            ingest: None,
            rescore: None,
            push_lock: Arc::new(tokio::sync::Mutex::new(())),
            events: Arc::new(tokio::sync::watch::Sender::new(last_seq)),
            caches,
            pool,
            index: Arc::new(RwLock::new(index)),
            cfg: Arc::new(cfg),
            metrics: Arc::new(metrics::Metrics::default()),
            templates: Arc::new(pages::templates()),
            summary: Arc::new(RwLock::new(Arc::new(summary))),
        })
    }

    /// The latest run's summary (replaced by [`AppState::refresh`]).
    pub fn summary(&self) -> Arc<dashboard::Summary> {
        self.summary.read().map(|s| s.clone()).unwrap_or_default()
    }

    /// Picks up data stored since the last look (a scoring run or a batch): drops the caches, reloads the
    /// search index (the register as it is now) and the dashboard's summary. True when it did. Blocking: run it off the async threads.
    pub fn refresh(&self) -> Result<bool, Error> {
        let store = self.pool.get()?;
        let now = generation(&**store)?;
        let run_changed = now.run != self.summary().run_id;
        if !self.caches.advance(now) && !run_changed {
            return Ok(false);
        }
        let index = load_index(&**store)?;
        let summary = dashboard::Summary::load(&**store, &index)?;
        if let Ok(mut w) = self.index.write() {
            *w = index;
        }
        if let Ok(mut w) = self.summary.write() {
            *w = Arc::new(summary);
        }
        Ok(true)
    }

    /// With the rescoring of the live path (pushes).
    pub fn with_rescore(mut self, f: push::RescoreFn) -> AppState {
        self.rescore = Some(f);
        self
    }

    /// With the what-if scoring of objections (a firm's score with and without disputed facts).
    pub fn with_what_if(mut self, f: objections::WhatIfFn) -> AppState {
        self.what_if = Some(f);
        self
    }

    /// With the ingest path for uploaded deliveries.
    pub fn with_ingest(mut self, f: data::IngestFn) -> AppState {
        self.ingest = Some(f);
        self
    }

    /// Unix time, seconds.
    pub fn now(&self) -> i64 {
        now()
    }

    /// Today's date in Asia/Shanghai (YYYY-MM-DD).
    pub fn today(&self) -> String {
        today()
    }

    /// Now, as stored (UTC, RFC 3339 with milliseconds).
    pub fn timestamp(&self) -> String {
        timestamp()
    }

    pub fn timeouts(&self) -> auth::Timeouts {
        auth::Timeouts {
            idle: self.cfg.session_idle_secs,
            absolute: self.cfg.session_absolute_secs,
        }
    }

    /// The month of the data's cut-off: the latest run's as-of date, else this month.
    pub fn data_month(&self) -> String {
        self.summary()
            .as_of
            .clone()
            .unwrap_or_else(today)
            .chars()
            .take(7)
            .collect()
    }

    /// Runs store work that writes, on the blocking pool with a pooled connection.
    pub async fn with_store_mut<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = pool.get()?;
            f(&mut **store)
        })
        .await
        .map_err(|e| Error::Internal(format!("a store task failed: {e}")))?
    }

    /// Runs store work on the blocking pool with a pooled connection.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let store = pool.get()?;
            f(&**store)
        })
        .await
        .map_err(|e| Error::Internal(format!("a store task failed: {e}")))?
    }
}

pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Today in Asia/Shanghai (UTC+8, no daylight saving).
pub fn today() -> String {
    xinyong_rights::shanghai_day(now()).format("%Y-%m-%d").to_string()
}

pub fn timestamp() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// A stored UTC timestamp as shown: Asia/Shanghai time, to the second ("2026-01-02 08:00:00").
pub fn shanghai(utc: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(utc)
        .map(|t| {
            (t.naive_utc() + chrono::Duration::hours(8))
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| utc.to_string())
}

/// `date` (YYYY-MM-DD) plus `n` days.
pub fn add_days(date: &str, n: i64) -> String {
    chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d")
        .map(|d| (d + chrono::Duration::days(n)).format("%Y-%m-%d").to_string())
        .unwrap_or_else(|_| date.to_string())
}

/// The data's generation as stored now (see [`cache::Generation`]).
pub fn generation(store: &dyn Store) -> Result<cache::Generation, Error> {
    let run = store.latest_run()?.map(|r| r.run_id);
    let mut batches = store.batch_ids()?;
    batches.sort_unstable();
    let mut h = std::collections::hash_map::DefaultHasher::new();
    std::hash::Hash::hash(&batches, &mut h);
    // The open objections (the disputed marks) and the granted repairs (shortened publicity) show on every
    // view too: a change by another process drops the kept overviews at the next refresh.
    use xinyong_store::rows::{RowQuery, Value};
    let open: Vec<String> = store
        .rows(&RowQuery::all("objection_open"))?
        .iter()
        .filter_map(|r| r[1].as_str().map(String::from))
        .collect();
    let granted: Vec<String> = store
        .rows(&RowQuery::all("repairs").eq("state", Value::text("granted")))?
        .iter()
        .filter_map(|r| r[0].as_str().map(String::from))
        .collect();
    std::hash::Hash::hash(&open, &mut h);
    std::hash::Hash::hash(&granted, &mut h);
    Ok(cache::Generation {
        run,
        batches: batches.len(),
        digest: std::hash::Hasher::finish(&h),
        day: today(),
    })
}

/// The search index from the register's current facts.
pub fn load_index(store: &dyn Store) -> Result<search::SearchIndex, Error> {
    let mut firms = Vec::new();
    for f in store.current_facts("amr", "amr.registration")? {
        let v: serde_json::Value = serde_json::from_str(&f.fields).unwrap_or_default();
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
        firms.push(search::Firm {
            uscc: f.uscc.clone(),
            name: s("name"),
            former_names: s("former_names")
                .split(['；', ';', ',', '，'])
                .map(str::trim)
                .filter(|x| !x.is_empty())
                .map(String::from)
                .collect(),
            legal_rep: s("legal_rep"),
            reg_no: s("reg_no"),
            township: s("township"),
            industry: s("industry"),
            status: s("status"),
            size_class: s("size_class"),
        });
    }
    Ok(search::SearchIndex::new(firms))
}

/// The scores of a run by USCC.
pub(crate) type ScoresByFirm = std::collections::HashMap<String, xinyong_store::ScoreRow>;

/// The latest run, if any, and its scores by USCC (none without a run): what the district-wide pages
/// (themes, support policies) read.
pub(crate) fn latest_scores(
    store: &dyn xinyong_store::Store,
) -> Result<(Option<xinyong_store::RunInfo>, ScoresByFirm), Error> {
    let run = store.latest_run()?;
    let scores = match &run {
        Some(r) => store
            .run_scores(&r.run_id)?
            .into_iter()
            .map(|s| (s.uscc.clone(), s))
            .collect(),
        None => ScoresByFirm::new(),
    };
    Ok((run, scores))
}

/// Errors of a request, each with its status and a stable code; internal details are logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("store: {0}")]
    Store(#[from] xinyong_store::StoreError),
    #[error("internal: {0}")]
    Internal(String),
}

impl Error {
    fn status(&self) -> (StatusCode, &'static str) {
        match self {
            Error::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Error::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Error::Store(_) => (StatusCode::SERVICE_UNAVAILABLE, "store_unavailable"),
            Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let shown = match &self {
            Error::NotFound(m) | Error::BadRequest(m) | Error::Forbidden(m) => m.clone(),
            other => {
                eprintln!("xinyong serve: {status} {code}: {other}");
                code.to_string()
            }
        };
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("{code}: {shown}\n"),
        )
            .into_response()
    }
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let limit = state.cfg.max_body_bytes;
    Router::new()
        .merge(pages::router())
        .merge(account::router())
        .merge(subs::router())
        .merge(matching::router())
        .merge(bulk::router())
        .merge(data::router())
        .merge(api::router())
        .merge(admin::router())
        .merge(themes::router())
        .merge(support::router())
        .merge(push::router())
        .merge(stream::router())
        .merge(webhooks::router())
        .merge(objection_pages::router())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::handler))
        .route("/static/{*path}", get(pages::asset))
        .layer(middleware::from_fn_with_state(state.clone(), account::middleware))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(axum::extract::DefaultBodyLimit::max(limit))
        .with_state(state)
}

/// Liveness and readiness: the store answers.
async fn healthz(State(st): State<AppState>) -> Result<&'static str, Error> {
    st.with_store(|s| Ok(s.ping()?)).await?;
    Ok("ok\n")
}

/// Security headers on every response, and the request counters.
async fn security_headers(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let route = metrics::route_label(req.uri().path());
    let mut res = next.run(req).await;
    st.metrics.observe(route, res.status().as_u16(), started.elapsed());
    let h = res.headers_mut();
    let set = |h: &mut axum::http::HeaderMap, k: header::HeaderName, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'",
    );
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    // same-origin, not no-referrer: with no-referrer Chromium sends `Origin: null` on same-site form posts,
    // which the same-origin check must refuse; same-origin still sends nothing to other sites.
    set(h, header::REFERRER_POLICY, "same-origin");
    if st.cfg.hsts {
        set(
            h,
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    res
}

/// Serves the router on a bound listener until ctrl-c. (The caller binds first, so that "serving" is said only
/// once connections are accepted.)
pub async fn serve(listener: tokio::net::TcpListener, state: AppState) -> std::io::Result<()> {
    // A new scoring run (or register) shows without a restart: checked every `refresh_secs`.
    let every = std::time::Duration::from_secs(state.cfg.refresh_secs.max(1));
    let watcher = state.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            tick.tick().await;
            let st = watcher.clone();
            match tokio::task::spawn_blocking(move || st.refresh()).await {
                Ok(Ok(true)) => eprintln!("xinyong serve: a new scoring run is shown"),
                Ok(Err(e)) => eprintln!("xinyong serve: refresh: {e}"),
                _ => {}
            }
            // The objections' clocks: reminders, escalations, overdue (each step logged once).
            let st = watcher.clone();
            let ticked = tokio::task::spawn_blocking(move || {
                let mut s = st.pool.get()?;
                objections::tick(&mut **s, &st.rights, &st.today(), &st.timestamp())
            })
            .await;
            match ticked {
                Ok(Ok(moved)) if !moved.is_empty() => {
                    eprintln!("xinyong serve: {} objection clock(s) moved on", moved.len())
                }
                Ok(Err(e)) => eprintln!("xinyong serve: objection clocks: {e}"),
                _ => {}
            }
        }
    });
    // Webhooks are delivered from the outbox while the server runs.
    tokio::spawn(webhooks::run(state.clone()));
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_are_shown_in_asia_shanghai_and_dates_add() {
        assert_eq!(super::shanghai("2026-01-01T16:30:00.000Z"), "2026-01-02 00:30:00");
        assert_eq!(super::add_days("2026-02-28", 1), "2026-03-01");
    }
}
