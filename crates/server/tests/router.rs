//! Router tests without a socket (`tower::ServiceExt::oneshot`) on a small generated district, ingested and
//! scored into a SQLite store: every route answers, pages come in Chinese and English, the public overview
//! holds public records only, and the full overview carries the score, warnings and charts.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tower::ServiceExt;
use xinyong_server::pages::{overview, Viewer, PUBLIC_DATASETS};
use xinyong_server::{router, AppState, ServerConfig};
use xinyong_store::pool::{Pool, PoolConfig};
use xinyong_store::Store;
use xinyong_store_sqlite::SqliteStore;

/// A store with a small district ingested and scored, built once per test binary.
fn store_path() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("xinyong-server-router-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        let mut c = xinyong_gen::GenConfig::demo(5);
        c.enterprises = 150;
        c.invoice_mean_yuan = 400_000.0;
        xinyong_gen::generate(&c, &d.join("district"), &|_, _, _| {}).expect("generate");
        let db = d.join("x.db");
        let mut store = SqliteStore::open(&db).expect("open");
        let registry = xinyong_registry::Registry::builtin().expect("registry");
        xinyong_app::ingest_paths(
            &mut store,
            &registry,
            &[d.join("district/sources")],
            &xinyong_app::IngestOptions {
                clock: Some("2026-01-20T00:00:00".into()),
            },
            &mut |_, _, _| {},
        )
        .expect("ingest");
        let as_of = store.data_cutoff().unwrap().expect("deliveries");
        xinyong_app::credit::score_district(
            &mut store,
            xinyong_app::credit::ScoreOptions {
                as_of: &as_of,
                model: xinyong_app::credit::ModelChoice::Train,
                config: xinyong_credit::ScoringConfig::builtin(),
                rules: xinyong_credit::warnings::builtin_rules(),
                now: "2026-02-01T00:00:00".into(),
            },
        )
        .expect("score");
        db
    })
}

/// Runs `f` on a plain thread: the blocking PostgreSQL client runs a runtime of its own and must not be called
/// on an async test's thread.
fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("blocking work"))
}

/// The same district in a PostgreSQL database (imported from the SQLite store), created once per test binary
/// on the server `.ci/run` starts (`XINYONG_PG_URL`); an unreachable server fails the tests. Named
/// `xinyong_t_server_<pid>_0`: the CLI suites drop such leftovers once this process is gone.
fn pg_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let admin =
            std::env::var("XINYONG_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("xinyong_t_server_{}_0", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls)
            .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is not reachable ({e}); .ci/run starts it"));
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .expect("drop database");
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        let url = format!(
            "{}/{name}",
            &admin[..admin.rfind('/').expect("a database in XINYONG_PG_URL")]
        );
        let lite = SqliteStore::open(store_path()).unwrap();
        let mut pg = xinyong_store_postgres::PgStore::connect(&url).unwrap();
        xinyong_store::conformance::import_all(&mut pg, &xinyong_store::conformance::export_all(&lite))
            .expect("import");
        url
    })
}

fn pg_state() -> AppState {
    let url = pg_url().to_string();
    let pool = Pool::new(
        &PoolConfig::default(),
        Box::new(move || Ok(Box::new(xinyong_store_postgres::PgStore::connect(&url)?) as Box<dyn Store + Send>)),
    )
    .expect("pool");
    AppState::new(pool, ServerConfig::default()).expect("state")
}

/// Both stores, SQLite then PostgreSQL: every route test runs on each.
fn states() -> [AppState; 2] {
    blocking(|| [state(), pg_state()])
}

fn state() -> AppState {
    let path = store_path().to_path_buf();
    let pool = Pool::new(
        &PoolConfig::default(),
        Box::new(move || Ok(Box::new(SqliteStore::open(&path)?) as Box<dyn Store + Send>)),
    )
    .expect("pool");
    AppState::new(pool, ServerConfig::default()).expect("state")
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(st: &AppState, uri: &str, cookie: Option<&str>) -> Reply {
    let mut req = Request::get(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = router(st.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// A firm with a stored score and at least one warning, and its name.
fn some_firm(st: &AppState) -> (String, String) {
    blocking(|| some_firm_on(st))
}

fn some_firm_on(st: &AppState) -> (String, String) {
    let store = st.pool.get().unwrap();
    let run = store.runs().unwrap().remove(0);
    let ix = st.index.read().unwrap();
    for s in store.run_scores(&run.run_id).unwrap() {
        if s.colour.is_some() {
            if let Some(f) = ix.get(&s.uscc) {
                return (f.uscc.clone(), f.name.clone());
            }
        }
    }
    panic!("no scored firm with a warning");
}

#[tokio::test]
async fn health_metrics_and_assets() {
    let all = states();
    for st in &all {
        let r = get(st, "/healthz", None).await;
        assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "ok\n"));
        let r = get(st, "/static/vendor/echarts.min.js", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"));
        assert!(r.body.len() > 500_000, "the whole of ECharts is embedded");
        assert_eq!(get(st, "/static/nope.js", None).await.status, StatusCode::NOT_FOUND);
        let r = get(st, "/metrics", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(
            r.body
                .contains("xinyong_http_requests_total{route=\"/healthz\",status=\"2xx\"} 1"),
            "{}",
            r.body
        );
        assert!(r
            .body
            .contains("xinyong_http_request_seconds_bucket{route=\"/static/{path}\",status=\"4xx\",le=\"+Inf\"} 1"));
        assert!(r
            .body
            .contains(&format!("xinyong_firms_indexed {}", st.index.read().unwrap().len())));
    }
    // A PostgreSQL client closes itself on drop with a runtime of its own: not on this async thread.
    blocking(move || drop(all));
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let all = states();
    for st in &all {
        for uri in ["/", "/healthz", "/search?q=x", "/firm/none", "/static/style.css"] {
            let r = get(st, uri, None).await;
            let h = |k: &str| {
                r.headers
                    .get(k)
                    .map(|v| v.to_str().unwrap().to_string())
                    .unwrap_or_default()
            };
            assert!(h("content-security-policy").contains("frame-ancestors 'none'"), "{uri}");
            assert!(!h("content-security-policy").contains("unsafe-inline"), "{uri}");
            assert_eq!(h("x-content-type-options"), "nosniff", "{uri}");
            assert_eq!(h("referrer-policy"), "no-referrer", "{uri}");
            assert!(h("strict-transport-security").starts_with("max-age="), "{uri}");
        }
    }
    // A PostgreSQL client closes itself on drop with a runtime of its own: not on this async thread.
    blocking(move || drop(all));
}

#[tokio::test]
async fn pages_in_chinese_by_default_and_english_on_request() {
    let all = states();
    for st in &all {
        let r = get(st, "/", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("<html lang=\"zh-CN\">") && r.body.contains("企业信用查询"));
        let r = get(st, "/?lang=en", None).await;
        assert!(r.body.contains("<html lang=\"en\">") && r.body.contains("Enterprise credit search"));
        let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        assert!(cookie.starts_with("lang=en"), "{cookie}");
        // The choice is remembered.
        let r = get(st, "/", Some("lang=en")).await;
        assert!(r.body.contains("Enterprise credit search"));
    }
    // A PostgreSQL client closes itself on drop with a runtime of its own: not on this async thread.
    blocking(move || drop(all));
}

#[tokio::test]
async fn search_finds_a_firm_by_part_of_its_name_and_by_a_typo() {
    let all = states();
    for st in &all {
        let (uscc, name) = some_firm(st);
        let chars: Vec<char> = name.chars().collect();
        // The middle of the name (past the place name), and the same with one character wrong.
        let part: String = chars[2..chars.len().min(8)].iter().collect();
        let r = get(st, &format!("/search?q={}", enc(&part)), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains(&format!("/firm/{uscc}")), "{part}: {}", r.body);
        let mut typo = chars[2..chars.len().min(8)].to_vec();
        typo[1] = '龘';
        let typo: String = typo.into_iter().collect();
        let r = get(st, &format!("/search?q={}", enc(&typo)), None).await;
        assert!(r.body.contains(&format!("/firm/{uscc}")), "{typo}");
        let r = get(st, &format!("/search?q={}", enc(&"长".repeat(101))), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = get(st, "/search?q=", None).await;
        assert!(r.body.contains("id=\"no-hits\""));
    }
    // A PostgreSQL client closes itself on drop with a runtime of its own: not on this async thread.
    blocking(move || drop(all));
}

#[tokio::test]
async fn the_public_overview_shows_public_records_only() {
    let all = states();
    for st in &all {
        let (uscc, name) = some_firm(st);
        let r = get(st, &format!("/firm/{uscc}"), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains(&name));
        assert!(
            r.body.contains("id=\"restricted\""),
            "the public is told what it cannot see"
        );
        assert!(!r.body.contains("id=\"score\"") && !r.body.contains("id=\"warnings\""));
        for ds in r
            .body
            .split("data-dataset=\"")
            .skip(1)
            .map(|s| &s[..s.find('"').unwrap()])
        {
            assert!(
                PUBLIC_DATASETS.contains(&ds),
                "non-public dataset {ds} on the public page"
            );
        }
        // The legal representative's identity number never appears.
        let reg = blocking(|| {
            let store = st.pool.get().unwrap();
            store
                .facts_of(&uscc, None)
                .unwrap()
                .into_iter()
                .find(|f| f.dataset == "amr.registration")
                .unwrap()
        });
        let v: serde_json::Value = serde_json::from_str(&reg.fields).unwrap();
        if let Some(id) = v["legal_rep_id"].as_str() {
            assert!(!r.body.contains(id));
        }
        assert_eq!(
            get(st, "/firm/913306040000000000", None).await.status,
            StatusCode::NOT_FOUND
        );
    }
    // A PostgreSQL client closes itself on drop with a runtime of its own: not on this async thread.
    blocking(move || drop(all));
}

#[tokio::test]
async fn the_full_overview_has_the_score_warnings_and_charts() {
    let all = states();
    for st in &all {
        let (uscc, _) = some_firm(st);
        let (full, public) = blocking(|| {
            let store = st.pool.get().unwrap();
            (
                overview(&**store, &uscc, Viewer::Full).unwrap(),
                overview(&**store, &uscc, Viewer::Public).unwrap(),
            )
        });
        let score = full.score.as_ref().expect("a score");
        assert_eq!(score["uscc"], uscc.as_str());
        assert!(!full.warnings.is_empty(), "the firm has a colour, so a warning");
        assert!(full.warnings.iter().all(|w| w["name_zh"].is_string()));
        assert!(!full.series.is_empty(), "monthly series for charts");
        assert!(full.records.len() >= public.records.len());
        assert!(public.score.is_none() && public.warnings.is_empty() && public.series.is_empty());
        // The full page renders (templates and all their text keys).
        let html = st
            .templates
            .get_template("firm.html")
            .unwrap()
            .render(serde_json::json!({"firm": {"uscc": uscc, "name": "x"}, "ov": full, "lang": "en", "path": "/"}))
            .unwrap();
        assert!(html.contains("id=\"radar\"") && html.contains("Warnings"));
        // The chart data sits in single-quoted attributes as JSON that the page's script parses.
        for attr in ["data-forces='", "data-labels='", "data-points='"] {
            let start = html.find(attr).unwrap_or_else(|| panic!("{attr} on the page")) + attr.len();
            let json = &html[start..start + html[start..].find('\'').unwrap()];
            let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{attr}: {e}: {json}"));
            assert!(v.is_array(), "{attr}");
        }
    }
    // A PostgreSQL client closes itself on drop with a runtime of its own: not on this async thread.
    blocking(move || drop(all));
}

#[test]
fn every_text_key_the_templates_use_is_in_the_dictionary() {
    let keys = xinyong_server::i18n::keys();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut missing = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        for quote in ['"', '\''] {
            let open = format!("t({quote}");
            let parts: Vec<&str> = text.split(&open).collect();
            for (before, part) in parts.iter().zip(&parts[1..]) {
                // `t(` as a call, not the end of another name (`default(`).
                if before.chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let key = &part[..part.find(quote).unwrap()];
                // Keys built at run time (`t("match." ~ kind)`) are checked below.
                if key.ends_with('.') {
                    continue;
                }
                if !keys.contains(&key) {
                    missing.push(key.to_string());
                }
            }
        }
    }
    // Keys built at run time: match kinds, colours, registration fields, chart series.
    for k in [
        "match.typo",
        "match.code",
        "colour.red",
        "colour.yellow",
        "colour.blue",
        "reg.name",
        "chart.power",
    ] {
        if !keys.contains(&k) {
            missing.push(k.into());
        }
    }
    assert!(missing.is_empty(), "text keys missing from i18n.toml: {missing:?}");
}

#[test]
fn the_example_configuration_loads() {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/xinyong.example.toml"))
        .expect("config/xinyong.example.toml");
    let c = ServerConfig::parse(&text).expect("parses");
    assert_eq!(c, ServerConfig::default(), "the example documents the defaults");
    assert!(ServerConfig::parse("pool_size = 0").is_err());
    assert!(ServerConfig::parse("pool_wait_secs = 0").is_err());
    assert!(ServerConfig::parse("no_such_key = 1").is_err());
}

fn enc(s: &str) -> String {
    s.bytes().map(|b| format!("%{b:02X}")).collect()
}

#[tokio::test]
async fn the_dashboard_shows_every_dimension_and_counts_every_scored_firm() {
    let all = states();
    for st in &all {
        for dim in xinyong_server::dashboard::DIMENSIONS {
            let r = get(st, &format!("/dashboard?dim={dim}"), None).await;
            assert_eq!(r.status, StatusCode::OK, "{dim}");
            let start = r.body.find("data-series='").expect("chart data") + "data-series='".len();
            let json = &r.body[start..start + r.body[start..].find('\'').unwrap()];
            let series: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).unwrap();
            assert!(!series.is_empty(), "{dim}: no index series");
            if *dim == "district" {
                assert_eq!(series.len(), 1);
                let first = series.values().next().unwrap()[0].as_f64().unwrap();
                assert!((first - 100.0).abs() < 1e-6, "the base month is 100: {first}");
            }
        }
        assert_eq!(
            get(st, "/dashboard?dim=nope", None).await.status,
            StatusCode::BAD_REQUEST
        );
        // Every scored firm on the register is counted once per grouping; colours never exceed the firms.
        blocking(|| {
            let store = st.pool.get().unwrap();
            let run = store.runs().unwrap().remove(0);
            let scored = store.run_scores(&run.run_id).unwrap();
            let reds = scored.iter().filter(|s| s.colour.as_deref() == Some("red")).count() as u64;
            for groups in [&st.summary.by_industry, &st.summary.by_township] {
                assert_eq!(groups.iter().map(|c| c.firms).sum::<u64>(), scored.len() as u64);
                assert_eq!(groups.iter().map(|c| c.red).sum::<u64>(), reds);
                assert!(groups.iter().all(|c| c.red + c.yellow + c.blue <= c.firms));
            }
            // The public sees no firm-level drill-down.
            let public =
                xinyong_server::dashboard::dashboard(&**store, &run.run_id, "industry", Viewer::Public).unwrap();
            assert!(public.movers.is_empty());
            let full = xinyong_server::dashboard::dashboard(&**store, &run.run_id, "industry", Viewer::Full).unwrap();
            assert!(
                full.movers.values().any(|m| !m.is_empty()),
                "the movers of the last month"
            );
        });
    }
    // A PostgreSQL client closes itself on drop with a runtime of its own: not on this async thread.
    blocking(move || drop(all));
}
