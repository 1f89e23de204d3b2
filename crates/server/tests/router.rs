//! Router tests without a socket (`tower::ServiceExt::oneshot`) on a small generated district, ingested and
//! scored into a SQLite store: every route answers, pages come in Chinese and English, the public overview
//! holds public records only, and the full overview carries the score, warnings and charts.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tower::ServiceExt;
use xinyong_server::pages::{is_public, overview, Viewer};
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
                ..Default::default()
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
            assert_eq!(h("referrer-policy"), "same-origin", "{uri}");
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
            assert!(is_public(ds), "non-public dataset {ds} on the public page");
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
async fn the_public_sees_a_penalty_within_its_publicity_window_only() {
    let all = states();
    for st in &all {
        let (uscc, until, rec) = blocking(|| {
            let store = st.pool.get().unwrap();
            let firms = st
                .index
                .read()
                .unwrap()
                .firms()
                .iter()
                .map(|f| f.uscc.clone())
                .collect::<Vec<_>>();
            firms
                .iter()
                .find_map(|u| {
                    store.facts_of(u, None).unwrap().into_iter().find_map(|f| {
                        let m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).ok()?;
                        let until = st
                            .rights
                            .windows
                            .of(
                                xinyong_rights::View::Public,
                                &f.dataset,
                                &m,
                                f.period.as_deref(),
                                None,
                                &st.rights.calendar,
                            )?
                            .last_day?
                            .format("%Y-%m-%d")
                            .to_string();
                        (f.dataset.ends_with(".penalties") && f.known_to.is_none()).then(|| {
                            (
                                u.clone(),
                                until,
                                m["record_id"].as_str().unwrap_or_default().to_string(),
                            )
                        })
                    })
                })
                .expect("a firm with a penalty")
        });
        let shows = |day: &str| {
            blocking(|| {
                let ov = overview(&**st.pool.get().unwrap(), &uscc, Viewer::Public, day, &st.rights).unwrap();
                ov.records.iter().any(|g| g.rows.iter().any(|r| r.cells.contains(&rec)))
            })
        };
        assert!(shows(&until), "{rec} of {uscc} is public on its last day {until}");
        let after = xinyong_server::add_days(&until, 1);
        assert!(!shows(&after), "{rec} of {uscc} is not public after {until}");
        // The firm itself (and any entitled reader) still sees it.
        let full = blocking(|| overview(&**st.pool.get().unwrap(), &uscc, Viewer::Full, &after, &st.rights).unwrap());
        assert!(full
            .records
            .iter()
            .any(|g| g.rows.iter().any(|r| r.cells.contains(&rec))));
    }
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
                overview(&**store, &uscc, Viewer::Full, &st.today(), &st.rights).unwrap(),
                overview(
                    &**store,
                    &uscc,
                    Viewer::Public,
                    "2000-01-01",
                    &xinyong_server::objections::Rights::builtin(),
                )
                .unwrap(),
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
        // Objections and repairs: leads by role, stages, outcomes, log actions, repair states.
        "obj.lead.enterprise",
        "obj.lead.department",
        "obj.lead.regulator",
        "obj.lead.bank",
        "obj.lead.person",
        "stage.open",
        "stage.reminded",
        "stage.escalated",
        "stage.overdue",
        "stage.answered",
        "stage.answered_late",
        "outcome.corrected",
        "outcome.removed",
        "outcome.upheld",
        "log.filed",
        "log.reminded",
        "log.escalated",
        "log.overdue",
        "log.extended",
        "log.corrected",
        "log.removed",
        "log.upheld",
        "log.granted",
        "log.refused",
        "repair.pending",
        "repair.granted",
        "repair.refused",
        "person.as.legal_rep",
        "person.as.shareholder",
        "role.person",
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
            let summary = st.summary();
            for groups in [&summary.by_industry, &summary.by_township] {
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

// ---- Accounts, sessions, CSRF, authorisation and the audit log ----

use xinyong_server::auth::{self, Role, User};

const PASSWORD: &str = "tide-pool-garnet";

/// Creates an account (ids are per test: the tests share one store) and returns its TOTP secret.
fn make_user(st: &AppState, id: &str, role: Role, org: &str) -> String {
    let secret = auth::new_totp_secret();
    let u = User {
        user_id: id.into(),
        role,
        org: org.into(),
        name: format!("{id} 名"),
        password_hash: auth::hash_password(PASSWORD).unwrap(),
        totp_secret: role.needs_totp().then(|| secret.clone()),
        disabled: false,
    };
    blocking(|| {
        st.pool
            .get()
            .unwrap()
            .apply_rows(&[xinyong_store::rows::RowOp::Put {
                table: "users",
                row: u.row("2026-01-01T00:00:00Z"),
            }])
            .unwrap()
    });
    secret
}

async fn send(st: &AppState, method: &str, uri: &str, cookie: Option<&str>, form: Option<&str>) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let body = match form {
        Some(f) => {
            req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
            Body::from(f.to_string())
        }
        None => Body::empty(),
    };
    let res = router(st.clone()).oneshot(req.body(body).unwrap()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn set_cookie(r: &Reply, name: &str) -> Option<String> {
    r.headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_value(set: &str) -> String {
    set.split(';').next().unwrap().to_string()
}

/// The form token on a page.
fn csrf_of(body: &str) -> String {
    let i = body.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    body[i..i + 64].to_string()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Logs in through the login form and returns the session cookie (`xy_session=…`) and the session's form token.
async fn login(st: &AppState, user: &str, code: Option<String>) -> (String, String) {
    let page = send(st, "GET", "/login", None, None).await;
    let pre = cookie_value(&set_cookie(&page, "xy_csrf").expect("a pre-session token cookie"));
    let form = format!(
        "csrf={}&user={user}&password={PASSWORD}&code={}",
        csrf_of(&page.body),
        code.unwrap_or_default()
    );
    let r = send(st, "POST", "/login", Some(&pre), Some(&form)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "login of {user}: {}", r.body);
    let session = cookie_value(&set_cookie(&r, "xy_session").expect("a session cookie"));
    let me = send(st, "GET", "/me", Some(&session), None).await;
    assert_eq!(me.status, StatusCode::OK);
    (session, csrf_of(&me.body))
}

#[tokio::test]
async fn login_takes_a_password_and_a_totp_code_and_sessions_end() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let bank = format!("t-login-bank-{i}");
        let secret = make_user(st, &bank, Role::Bank, "bank01");
        let page = send(st, "GET", "/login", None, None).await;
        let pre_set = set_cookie(&page, "xy_csrf").unwrap();
        assert!(pre_set.contains("HttpOnly") && pre_set.contains("SameSite=Strict") && pre_set.contains("Secure"));
        let pre = cookie_value(&pre_set);
        let token = csrf_of(&page.body);
        let post = |form: String| {
            let pre = pre.clone();
            async move { send(st, "POST", "/login", Some(&pre), Some(&form)).await }
        };
        // No form token: refused before anything else.
        let r = post(format!("user={bank}&password={PASSWORD}")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
        // A wrong password; the right password without the code; a wrong code.
        for form in [
            format!("csrf={token}&user={bank}&password=wrong-password&code="),
            format!("csrf={token}&user={bank}&password={PASSWORD}&code="),
            format!("csrf={token}&user={bank}&password={PASSWORD}&code=000000x"),
            format!("csrf={token}&user=nobody-{i}&password={PASSWORD}&code="),
        ] {
            let r = post(form).await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            assert!(set_cookie(&r, "xy_session").is_none());
        }
        // The right code: a session, its cookie Secure, HttpOnly and SameSite=Strict.
        let code = auth::totp_code(&secret, now()).unwrap();
        let r = post(format!("csrf={token}&user={bank}&password={PASSWORD}&code={code}")).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let set = set_cookie(&r, "xy_session").unwrap();
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure"),
            "{set}"
        );
        let session = cookie_value(&set);
        // The same code again is refused (replay).
        let r = post(format!("csrf={token}&user={bank}&password={PASSWORD}&code={code}")).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r.body.contains(&xinyong_server::i18n::t(
            xinyong_server::i18n::Lang::Zh,
            "login.code_used"
        )));
        let me = send(st, "GET", "/me", Some(&session), None).await;
        assert!(me.body.contains(&bank), "{}", me.body);
        // Log out: the session is over on the next request, also if its cookie is replayed.
        let csrf = csrf_of(&me.body);
        let r = send(st, "POST", "/logout", Some(&session), Some("csrf=bad")).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a stale token does not log out");
        let r = send(st, "POST", "/logout", Some(&session), Some(&format!("csrf={csrf}"))).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = send(st, "GET", "/me", Some(&session), None).await;
        assert_eq!(
            (r.status, r.headers[header::LOCATION].to_str().unwrap()),
            (StatusCode::SEE_OTHER, "/login")
        );
        // Five failures lock the account for a while, even with the right password.
        for _ in 0..5 {
            post(format!("csrf={token}&user={bank}&password=wrong-password&code=")).await;
        }
        let code = auth::totp_code(&secret, now() + 30).unwrap();
        let r = post(format!("csrf={token}&user={bank}&password={PASSWORD}&code={code}")).await;
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(r.headers.contains_key(header::RETRY_AFTER));
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn every_state_changing_route_refuses_a_request_without_its_form_token() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let user = format!("t-csrf-ent-{i}");
        let (firm, _) = some_firm(st);
        make_user(st, &user, Role::Enterprise, &firm);
        let (session, csrf) = login(st, &user, None).await;
        for uri in [
            "/login",
            "/logout",
            "/me/authorisations",
            "/me/authorisations/x/revoke",
            "/subscriptions",
            "/subscriptions/delete",
            "/products",
            "/products/x/apply",
            "/applications/x/decide",
            "/screening",
            "/data",
            "/me/tokens",
            "/me/tokens/x/revoke",
            "/admin/users",
            "/admin/users/x/disable",
            "/admin/changes",
            "/admin/changes/x/approve",
            "/admin/push-keys",
            "/admin/push-keys/x/revoke",
            "/inbox/mark",
            "/me/webhooks",
            "/me/webhooks/x/delete",
        ] {
            for form in [
                "",
                "csrf=0000000000000000000000000000000000000000000000000000000000000000",
            ] {
                let r = send(st, "POST", uri, Some(&session), Some(form)).await;
                assert_eq!(r.status, StatusCode::FORBIDDEN, "POST {uri} with {form:?}");
            }
        }
        // A form posted from another site is refused even with the token.
        let req = Request::post("/me/authorisations")
            .header(header::COOKIE, &session)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "https://evil.example")
            .header("x-csrf-token", &csrf)
            .body(Body::empty())
            .unwrap();
        let res = router(st.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
    }
    blocking(move || drop(all));
}

/// Whether a page of the overview shows the non-public part.
fn full(body: &str) -> bool {
    body.contains("id=\"score\"")
}

#[tokio::test]
async fn a_bank_reads_a_firm_only_while_authorised_and_every_read_is_in_the_audit_log() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (firm, _) = some_firm(st);
        // A bank the firm does not borrow from.
        let lenders: Vec<String> = blocking(|| {
            let s = st.pool.get().unwrap();
            s.facts_of(&firm, None).unwrap().into_iter().map(|f| f.source).collect()
        });
        // A microloan company that does not lend to the firm (the tests share a store: each test grants to
        // lenders of its own kind, so that no test's authorisation opens another's firm).
        let bank = (1..=5)
            .map(|n| format!("mlc{n:02}"))
            .find(|b| !lenders.contains(b))
            .expect("a lender that does not lend to the firm");
        let other_bank = "bank98".to_string();
        let (ent, b1, b2, reg, dep) = (
            format!("t-auth-ent-{i}"),
            format!("t-auth-bank-{i}"),
            format!("t-auth-bank2-{i}"),
            format!("t-auth-reg-{i}"),
            format!("t-auth-dep-{i}"),
        );
        make_user(st, &ent, Role::Enterprise, &firm);
        let s1 = make_user(st, &b1, Role::Bank, &bank);
        let s2 = make_user(st, &b2, Role::Bank, &other_bank);
        let sr = make_user(st, &reg, Role::Regulator, "jrb");
        let sd = make_user(st, &dep, Role::Department, "amr");
        let t = now();
        let (ent_s, ent_csrf) = login(st, &ent, None).await;
        let (b1_s, _) = login(st, &b1, auth::totp_code(&s1, t)).await;
        let (b2_s, _) = login(st, &b2, auth::totp_code(&s2, t)).await;
        let (reg_s, _) = login(st, &reg, auth::totp_code(&sr, t)).await;
        let (dep_s, _) = login(st, &dep, auth::totp_code(&sd, t)).await;
        let page = format!("/firm/{firm}");
        let sees = |cookie: Option<String>| {
            let page = page.clone();
            async move { full(&send(st, "GET", &page, cookie.as_deref(), None).await.body) }
        };
        // Before any authorisation: the firm itself and the regulator only.
        assert!(sees(Some(ent_s.clone())).await, "the firm sees its own record");
        assert!(sees(Some(reg_s.clone())).await, "the regulator sees it");
        assert!(!sees(None).await, "the public does not");
        assert!(!sees(Some(dep_s.clone())).await, "a department does not");
        assert!(!sees(Some(b1_s.clone())).await, "an unauthorised bank does not");
        // The firm authorises the bank: it sees the record on its next request; the other bank still does not.
        let r = send(
            st,
            "POST",
            "/me/authorisations",
            Some(&ent_s),
            Some(&format!(
                "csrf={ent_csrf}&bank={bank}&purpose=loan+review&scope=non-public&days=30"
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let r = send(st, "GET", &page, Some(&b1_s), None).await;
        assert!(
            full(&r.body) && r.body.contains("authorisation:"),
            "the authorised bank sees it"
        );
        assert!(!sees(Some(b2_s.clone())).await, "another bank does not");
        // A bank cannot grant; a firm cannot revoke another firm's authorisation.
        let b1_csrf = csrf_of(&send(st, "GET", "/me", Some(&b1_s), None).await.body);
        let r = send(
            st,
            "POST",
            "/me/authorisations",
            Some(&b1_s),
            Some(&format!("csrf={b1_csrf}&bank={bank}&purpose=x&days=30")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let me = send(st, "GET", "/me", Some(&ent_s), None).await;
        // The revoke form in this bank's row (other tests' authorisations of the same firm may be listed too).
        let row = me.body.find(&format!("data-bank=\"{bank}\"")).expect("the bank's row");
        let i0 = row + me.body[row..].find("/me/authorisations/").unwrap() + "/me/authorisations/".len();
        let auth_id = me.body[i0..i0 + 16].to_string();
        let r = send(
            st,
            "POST",
            &format!("/me/authorisations/{auth_id}/revoke"),
            Some(&b1_s),
            Some(&format!("csrf={b1_csrf}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a bank cannot revoke");
        // The firm revokes: the very next request of the bank is refused the record.
        let r = send(
            st,
            "POST",
            &format!("/me/authorisations/{auth_id}/revoke"),
            Some(&ent_s),
            Some(&format!("csrf={ent_csrf}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert!(!sees(Some(b1_s.clone())).await, "revocation holds on the next request");
        // The firm reads who viewed it: the bank's read under the authorisation, the regulator's.
        let me = send(st, "GET", "/me", Some(&ent_s), None).await;
        assert!(me.body.contains(&format!("({b1})")) && me.body.contains(&format!("authorisation:{auth_id}")));
        assert!(me.body.contains(&format!("({reg})")));
        assert!(
            !me.body.contains(&format!("({b2})")),
            "no read by the other bank was logged"
        );
        // The chain holds over everything the tests wrote.
        let n = blocking(|| xinyong_server::audit::verify(&**st.pool.get().unwrap())).expect("the chain holds");
        assert!(n >= 10, "{n}");
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn role_by_route_by_firm_no_one_reads_what_they_may_not() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let all_firms: Vec<String> = st
            .index
            .read()
            .unwrap()
            .firms()
            .iter()
            .map(|f| f.uscc.clone())
            .collect();
        // Each firm's credit records: (lender, dataset, period), read from the store directly.
        let credit: Vec<Vec<(String, String, String)>> = blocking(|| {
            let s = st.pool.get().unwrap();
            all_firms
                .iter()
                .map(|f| {
                    s.facts_of(f, None)
                        .unwrap()
                        .into_iter()
                        .filter(|x| x.known_to.is_none() && x.dataset.starts_with("lender."))
                        .map(|x| (x.source, x.dataset, x.period.unwrap_or_default()))
                        .collect()
                })
                .collect()
        });
        // Six firms, among them borrowers of a bank with a recent loan: that bank is one of the matrix's two.
        let month = st.data_month();
        let (y, m): (i32, i32) = (month[..4].parse().unwrap(), month[5..7].parse().unwrap());
        let k = y * 12 + m - 1 - 3;
        let since = format!("{:04}-{:02}", k / 12, k % 12 + 1);
        let borrows = |c: &[(String, String, String)], bank: &str| {
            c.iter().any(|(src, ds, p)| {
                src == bank && (ds.ends_with(".loans") || ds == "lender.gc.guarantees") && p.as_str() >= since.as_str()
            })
        };
        let lender = credit
            .iter()
            .flat_map(|c| c.iter().map(|x| x.0.clone()))
            .find(|s| s.starts_with("bank") && credit.iter().any(|c| borrows(c, s)))
            .expect("a bank with a borrower");
        let mut picked: Vec<usize> = (0..all_firms.len())
            .filter(|&j| borrows(&credit[j], &lender))
            .take(3)
            .collect();
        let rest: Vec<usize> = (0..all_firms.len())
            .filter(|j| !picked.contains(j))
            .take(6 - picked.len())
            .collect();
        picked.extend(rest);
        let own = all_firms[picked[picked.len() - 1]].clone();
        let mut who: Vec<(Option<String>, Role, String, Option<String>)> = vec![];
        for (role, org) in [
            (Role::Enterprise, own.as_str()),
            (Role::Bank, lender.as_str()),
            (Role::Bank, "bank99"),
            (Role::Department, "amr"),
            (Role::Regulator, "jrb"),
            (Role::Admin, ""),
        ] {
            let id = format!("t-matrix-{}-{org}-{i}", role.code());
            let secret = make_user(st, &id, role, org);
            let code = role.needs_totp().then(|| auth::totp_code(&secret, now()).unwrap());
            let (s, _) = login(st, &id, code).await;
            // The same person's API token: the API routes are in the matrix too.
            let p = auth::Principal {
                user_id: id.clone(),
                role,
                org: org.to_string(),
                name: id.clone(),
                csrf: String::new(),
                token_hash: String::new(),
            };
            let token = blocking(|| {
                auth::create_token(&mut **st.pool.get().unwrap(), &p, "matrix", "2026-01-01T00:00:00Z")
                    .unwrap()
                    .0
            });
            who.push((Some(s), role, org.to_string(), Some(token)));
        }
        who.push((None, Role::Enterprise, "(public)".into(), None));
        let mut bank_reads = 0;
        for (cookie, role, org, token) in &who {
            for &j in &picked {
                let f = &all_firms[j];
                let r = send(st, "GET", &format!("/firm/{f}"), cookie.as_deref(), None).await;
                assert_eq!(r.status, StatusCode::OK);
                let allowed = match (cookie, role) {
                    (None, _) => false,
                    (_, Role::Enterprise) => f == org,
                    (_, Role::Regulator) => true,
                    (_, Role::Bank) => borrows(&credit[j], org),
                    _ => false,
                };
                bank_reads += usize::from(allowed && *role == Role::Bank);
                assert_eq!(full(&r.body), allowed, "{} {org} on {f}", role.code());
                // The API: the overview as the caller may see it; the credit events only when allowed.
                let (s, v) = api(st, &format!("/api/v1/firms/{f}"), token.as_deref()).await;
                match token {
                    None => assert_eq!(s, StatusCode::UNAUTHORIZED),
                    Some(_) => {
                        assert_eq!(s, StatusCode::OK);
                        assert_eq!(v["access"].is_string(), allowed, "API {} {org} on {f}", role.code());
                        assert_eq!(v["overview"]["full"].as_bool(), Some(allowed));
                        let (s, _) = api(st, &format!("/api/v1/firms/{f}/events"), token.as_deref()).await;
                        let want = if allowed { StatusCode::OK } else { StatusCode::FORBIDDEN };
                        assert_eq!(s, want, "API events {} {org} on {f}", role.code());
                    }
                }
            }
            // The dashboard's firm-level drill-down (which firms moved a group): the regulator only.
            let d = send(st, "GET", "/dashboard?dim=township", cookie.as_deref(), None).await;
            assert_eq!(d.status, StatusCode::OK);
        }
        assert!(bank_reads > 0, "the matrix has a bank reading its borrower");
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn the_overview_draws_the_guarantee_group_around_a_firm() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        // A firm in a guarantee group with a circle, from the stored run.
        let firm = blocking(|| {
            let s = st.pool.get().unwrap();
            let run = s.runs().unwrap().remove(0);
            s.run_scores(&run.run_id)
                .unwrap()
                .into_iter()
                .find(|r| {
                    let d = s.run_score(&run.run_id, &r.uscc).unwrap().unwrap();
                    let v: serde_json::Value = serde_json::from_str(&d).unwrap();
                    v.pointer("/network/in_circle").and_then(|x| x.as_bool()) == Some(true)
                })
                .map(|r| r.uscc)
                .expect("a firm in a circle")
        });
        let reg = format!("t-circle-reg-{i}");
        let secret = make_user(st, &reg, Role::Regulator, "jrb");
        let (session, _) = login(st, &reg, auth::totp_code(&secret, now())).await;
        let r = send(st, "GET", &format!("/firm/{firm}"), Some(&session), None).await;
        assert!(r.body.contains("id=\"circle-graph\""), "the graph is drawn");
        // The data behind it: the firm first, its circle's members, the contracts among the drawn firms.
        let ov = blocking(|| {
            overview(
                &**st.pool.get().unwrap(),
                &firm,
                Viewer::Full,
                &st.today(),
                &xinyong_server::objections::Rights::builtin(),
            )
            .unwrap()
        });
        let c = ov.circle.expect("a group view");
        assert_eq!((c.nodes[0].0.as_str(), c.nodes[0].2), (firm.as_str(), 0));
        assert!(c.nodes.iter().any(|n| n.2 == 1), "its circle's members are marked");
        assert!(c.nodes.len() <= xinyong_server::pages::CIRCLE_NODES);
        assert!(!c.links.is_empty());
        let ids: Vec<&str> = c.nodes.iter().map(|n| n.0.as_str()).collect();
        assert!(c
            .links
            .iter()
            .all(|l| ids.contains(&l.0.as_str()) && ids.contains(&l.1.as_str())));
        // A bank or the firm itself: other firms' PDs and contracts between other firms are not theirs to see.
        assert!(c.nodes[0].4.is_some(), "the firm's own PD");
        assert!(
            c.nodes[1..].iter().all(|n| n.3.is_none() && n.4.is_none()),
            "no other firm's PD"
        );
        assert!(
            c.links.iter().all(|l| l.0 == firm || l.1 == firm),
            "only the firm's own contracts"
        );
        // The regulator sees them.
        let ov = blocking(|| {
            overview(
                &**st.pool.get().unwrap(),
                &firm,
                Viewer::Regulator,
                &st.today(),
                &xinyong_server::objections::Rights::builtin(),
            )
            .unwrap()
        });
        let c = ov.circle.unwrap();
        assert!(c.nodes.iter().all(|n| n.3.is_some() && n.4.is_some()));
        // The public never sees it.
        let r = send(st, "GET", &format!("/firm/{firm}"), None, None).await;
        assert!(!r.body.contains("circle-graph"));
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn a_bank_follows_firms_and_its_inbox_holds_only_what_it_may_read() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        // Two firms with credit events; the bank lends to neither; one authorises it.
        let (a, b, c_lender) = blocking(|| {
            let s = st.pool.get().unwrap();
            let mut with: Vec<String> = s.credit_events(None).unwrap().into_iter().map(|e| e.uscc).collect();
            with.dedup();
            with.sort();
            with.dedup();
            let lends = |f: &str, bank: &str| s.facts_of(f, None).unwrap().iter().any(|x| x.source == bank);
            let gc = ["gc01", "gc02", "gc03"];
            let mut pick = None;
            'outer: for g in gc {
                let free: Vec<&String> = with.iter().filter(|f| !lends(f, g)).take(2).collect();
                if free.len() == 2 {
                    pick = Some((free[0].clone(), free[1].clone(), g.to_string()));
                    break 'outer;
                }
            }
            pick.expect("two firms with events and a guarantee company that backs neither")
        });
        let lender = c_lender;
        let (ent, bank, dep) = (
            format!("t-sub-ent-{i}"),
            format!("t-sub-bank-{i}"),
            format!("t-sub-dep-{i}"),
        );
        make_user(st, &ent, Role::Enterprise, &a);
        let sb = make_user(st, &bank, Role::Bank, &lender);
        let sd = make_user(st, &dep, Role::Department, "amr");
        let (ent_s, ent_csrf) = login(st, &ent, None).await;
        let (bank_s, bank_csrf) = login(st, &bank, auth::totp_code(&sb, now())).await;
        let (dep_s, dep_csrf) = login(st, &dep, auth::totp_code(&sd, now())).await;
        // A department may not subscribe; the bank may.
        let r = send(
            st,
            "POST",
            "/subscriptions",
            Some(&dep_s),
            Some(&format!("csrf={dep_csrf}&kind=firm&target={a}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        for f in [&a, &b] {
            let r = send(
                st,
                "POST",
                "/subscriptions",
                Some(&bank_s),
                Some(&format!("csrf={bank_csrf}&kind=firm&target={f}")),
            )
            .await;
            assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        }
        let r = send(
            st,
            "POST",
            "/subscriptions",
            Some(&bank_s),
            Some(&format!("csrf={bank_csrf}&kind=colour&target=x")),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        // Without an authorisation: both firms counted, no event shown.
        let r = send(st, "GET", "/inbox", Some(&bank_s), None).await;
        assert!(r.body.contains("id=\"hidden-firms\""), "{}", r.body);
        assert!(!r.body.contains("class=\"alert\""));
        // The firm authorises the bank: its events appear, the other firm's do not.
        let r = send(
            st,
            "POST",
            "/me/authorisations",
            Some(&ent_s),
            Some(&format!("csrf={ent_csrf}&bank={lender}&purpose=monitoring&days=30")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = send(st, "GET", "/inbox", Some(&bank_s), None).await;
        let want: Vec<String> = blocking(|| {
            st.pool
                .get()
                .unwrap()
                .credit_events(Some(&a))
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect()
        });
        for id in &want {
            // Listed, or folded into a later event of the same alert (repeats suppressed).
            let folded = r
                .body
                .split("data-folded=\"")
                .skip(1)
                .any(|x| x[..x.find('"').unwrap()].split(' ').any(|f| f == id));
            assert!(
                r.body.contains(&format!("data-event=\"{id}\"")) || folded,
                "event {id} of the authorised firm"
            );
        }
        let other: Vec<String> = blocking(|| {
            st.pool
                .get()
                .unwrap()
                .credit_events(Some(&b))
                .unwrap()
                .into_iter()
                .map(|e| e.id)
                .collect()
        });
        for id in &other {
            assert!(
                !r.body.contains(&format!("data-event=\"{id}\"")),
                "no event of the unauthorised firm"
            );
        }
        // Unsubscribe.
        let r = send(
            st,
            "POST",
            "/subscriptions/delete",
            Some(&bank_s),
            Some(&format!("csrf={bank_csrf}&kind=firm&target={a}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = send(st, "GET", "/inbox", Some(&bank_s), None).await;
        assert!(!r.body.contains("class=\"alert\""), "no alert once unsubscribed");
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn a_bank_publishes_a_product_screens_it_and_decides_an_application() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let org = format!("bank9{i}");
        let (bank, other, ent, dep) = (
            format!("t-prod-bank-{i}"),
            format!("t-prod-bank2-{i}"),
            format!("t-prod-ent-{i}"),
            format!("t-prod-dep-{i}"),
        );
        let sb = make_user(st, &bank, Role::Bank, &org);
        let so = make_user(st, &other, Role::Bank, "bank89");
        let sd = make_user(st, &dep, Role::Department, "amr");
        let (bank_s, bank_csrf) = login(st, &bank, auth::totp_code(&sb, now())).await;
        let (other_s, other_csrf) = login(st, &other, auth::totp_code(&so, now())).await;
        let (dep_s, dep_csrf) = login(st, &dep, auth::totp_code(&sd, now())).await;
        let form_with = |grade: &str| {
            format!("name=%E7%A7%91%E6%8A%80%E8%B4%B7&max_amount=2000000&term_months=12&min_grade={grade}&max_pd_percent=2.5")
        };
        let form = form_with("BB");
        let r = send(
            st,
            "POST",
            "/products",
            Some(&dep_s),
            Some(&format!("csrf={dep_csrf}&{form}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "a department does not publish");
        let r = send(
            st,
            "POST",
            "/products",
            Some(&bank_s),
            Some(&format!("csrf={bank_csrf}&{}", form_with("Z"))),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "an unknown grade is refused");
        let r = send(
            st,
            "POST",
            "/products",
            Some(&bank_s),
            Some(&format!("csrf={bank_csrf}&{form}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let list_url = r.headers[header::LOCATION].to_str().unwrap().to_string();
        let pid = list_url.rsplit('/').next().unwrap().to_string();
        // The screening list: exactly the firms of the latest run graded BB or better, PD ≤ 2.5 %, not red —
        // computed here from the stored scores.
        let want: Vec<String> = blocking(|| {
            let s = st.pool.get().unwrap();
            let run = s.runs().unwrap().remove(0);
            let good = ["AAA", "AA", "A", "BBB", "BB"];
            let ix = st.index.read().unwrap();
            let mut v: Vec<String> = s
                .run_scores(&run.run_id)
                .unwrap()
                .into_iter()
                .filter(|r| good.contains(&r.grade.as_str()) && r.pd <= 0.025 && r.colour.as_deref() != Some("red"))
                .filter(|r| ix.get(&r.uscc).is_some())
                .map(|r| r.uscc)
                .collect();
            v.sort();
            v
        });
        assert!(!want.is_empty(), "some firm is eligible");
        let listed = |body: &str| {
            let mut v: Vec<String> = body
                .match_indices("class=\"eligible\" data-uscc=\"")
                .map(|(k, m)| body[k + m.len()..k + m.len() + 18].to_string())
                .collect();
            v.sort();
            v
        };
        // The bank may read none of them: none is named; they are counted when there are ten or more.
        let r = send(st, "GET", &list_url, Some(&bank_s), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(listed(&r.body).is_empty(), "no unauthorised firm is named");
        assert_eq!(r.body.contains("id=\"eligible-others\""), want.len() >= 10);
        if want.len() >= 10 {
            assert!(
                r.body.contains(&format!(": {}+", want.len() / 10 * 10)),
                "the rounded count"
            );
        }
        // The regulator sees every eligible firm.
        let reg = format!("t-prod-reg-{i}");
        let sr = make_user(st, &reg, Role::Regulator, "jrb");
        let (reg_s, _) = login(st, &reg, auth::totp_code(&sr, now())).await;
        let r = send(st, "GET", &list_url, Some(&reg_s), None).await;
        assert_eq!(listed(&r.body), want);
        // Another bank may not screen this product; the regulator may.
        let r = send(st, "GET", &list_url, Some(&other_s), None).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // A firm applies: the application and the bank's authorisation in one step.
        let firm = want[0].clone();
        make_user(st, &ent, Role::Enterprise, &firm);
        let (ent_s, ent_csrf) = login(st, &ent, None).await;
        let r = send(
            st,
            "POST",
            &format!("/products/{pid}/apply"),
            Some(&ent_s),
            Some(&format!("csrf={ent_csrf}&amount=5000000&purpose=x")),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "above the product's amount");
        let r = send(
            st,
            "POST",
            &format!("/products/{pid}/apply"),
            Some(&ent_s),
            Some(&format!("csrf={ent_csrf}&amount=1000000&purpose=working+capital")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let r = send(st, "GET", &format!("/firm/{firm}"), Some(&bank_s), None).await;
        assert!(full(&r.body), "the application authorised the bank");
        let r = send(st, "GET", &list_url, Some(&bank_s), None).await;
        assert_eq!(
            listed(&r.body),
            vec![firm.clone()],
            "the applicant is named now, with its PD"
        );
        assert!(r.body.contains("%</td></tr>"));
        let logged = blocking(|| {
            xinyong_server::audit::of_firm(&**st.pool.get().unwrap(), &firm, 100)
                .unwrap()
                .iter()
                .any(|r| r.user_id == bank && r.target == list_url)
        });
        assert!(logged, "the screening list's read is in the audit log");
        // The bank decides; only once; another bank cannot.
        let r = send(st, "GET", "/products", Some(&bank_s), None).await;
        let k = r.body.find("/applications/").expect("the application is listed") + "/applications/".len();
        let app = r.body[k..k + 12].to_string();
        let decide = |who: String, csrf: String| {
            let app = app.clone();
            async move {
                send(
                    st,
                    "POST",
                    &format!("/applications/{app}/decide"),
                    Some(&who),
                    Some(&format!("csrf={csrf}&decision=approved&note=ok")),
                )
                .await
            }
        };
        assert_eq!(
            decide(other_s.clone(), other_csrf.clone()).await.status,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            decide(bank_s.clone(), bank_csrf.clone()).await.status,
            StatusCode::SEE_OTHER
        );
        assert_eq!(
            decide(bank_s.clone(), bank_csrf.clone()).await.status,
            StatusCode::BAD_REQUEST
        );
        let r = send(st, "GET", "/products", Some(&ent_s), None).await;
        assert!(
            r.body.contains(&format!("data-app=\"{app}\" data-status=\"approved\"")),
            "the firm sees the decision"
        );
    }
    blocking(move || drop(all));
}

/// A multipart upload: `file` as the field `file`, after the plain `fields`.
async fn upload(
    st: &AppState,
    uri: &str,
    cookie: &str,
    file_name: &str,
    bytes: &[u8],
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    upload_with(st, uri, cookie, &[], (file_name, bytes)).await
}

async fn upload_with(
    st: &AppState,
    uri: &str,
    cookie: &str,
    fields: &[(&str, &str)],
    file: (&str, &[u8]),
) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let boundary = "xyBoundaryQ9dE2vX";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\n",
            file.0
        )
        .as_bytes(),
    );
    body.extend_from_slice(file.1);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let res = router(st.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes().to_vec();
    (status, headers, bytes)
}

#[tokio::test]
async fn bulk_screening_returns_excel_with_scores_only_where_authorised_and_formulas_escaped() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (firm, _) = some_firm(st);
        // Three firms that do not borrow from the private-lending company, none the shared test firm.
        let picked: Vec<(String, String)> = blocking(|| {
            let s = st.pool.get().unwrap();
            let ix = st.index.read().unwrap();
            ix.firms()
                .iter()
                .filter(|f| f.uscc != firm && !s.facts_of(&f.uscc, None).unwrap().iter().any(|x| x.source == "pfc"))
                .skip(10 + i * 3)
                .take(3)
                .map(|f| (f.uscc.clone(), f.name.clone()))
                .collect()
        });
        let (a, b, c) = (&picked[0], &picked[1], &picked[2]);
        let (ent, bank, dep) = (
            format!("t-bulk-ent-{i}"),
            format!("t-bulk-bank-{i}"),
            format!("t-bulk-dep-{i}"),
        );
        make_user(st, &ent, Role::Enterprise, &a.0);
        let sb = make_user(st, &bank, Role::Bank, "pfc");
        let sd = make_user(st, &dep, Role::Department, "amr");
        let (ent_s, ent_csrf) = login(st, &ent, None).await;
        let (bank_s, bank_csrf) = login(st, &bank, auth::totp_code(&sb, now())).await;
        let (dep_s, dep_csrf) = login(st, &dep, auth::totp_code(&sd, now())).await;
        let r = send(
            st,
            "POST",
            "/me/authorisations",
            Some(&ent_s),
            Some(&format!("csrf={ent_csrf}&bank=pfc&purpose=review&days=10")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let csv = format!(
            "客户名称,统一社会信用代码,备注\n{},{},\n,{},\n{},,by name\n坏代码,123,\n\"=HYPERLINK(\"\"http://evil\"\")\",,\n",
            a.1, a.0, b.0, c.1
        );
        let (gb, _, _) = encoding_rs::GB18030.encode(&csv);
        // A department may not; a missing form token is refused.
        let (status, _, _) = upload(st, &format!("/screening?csrf={dep_csrf}"), &dep_s, "list.csv", &gb).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, _) = upload(st, "/screening", &bank_s, "list.csv", &gb).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, body) = upload(st, &format!("/screening?csrf={bank_csrf}"), &bank_s, "list.pdf", b"x").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&body));
        let (status, headers, body) =
            upload(st, &format!("/screening?csrf={bank_csrf}"), &bank_s, "list.csv", &gb).await;
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
        assert!(headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("screening.xlsx"));
        // Read the workbook back.
        use calamine::Reader;
        let mut wb = calamine::Xlsx::new(std::io::Cursor::new(body)).expect("an xlsx");
        let sheet = wb.sheet_names()[0].clone();
        let range = wb.worksheet_range(&sheet).unwrap();
        let rows: Vec<Vec<String>> = range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        assert_eq!(rows.len(), 6, "{rows:?}");
        let line = |k: usize| &rows[k];
        assert_eq!(
            (line(1)[2].as_str(), line(1)[4].as_str(), line(1)[6].as_str()),
            (a.0.as_str(), "found", "yes")
        );
        assert!(
            !line(1)[7].is_empty() && !line(1)[8].is_empty(),
            "grade and PD of the authorised firm: {:?}",
            line(1)
        );
        assert_eq!(
            (line(2)[2].as_str(), line(2)[6].as_str(), line(2)[7].as_str()),
            (b.0.as_str(), "no", "")
        );
        assert!(line(2)[8].is_empty(), "no PD for a firm the bank may not read");
        assert_eq!(
            (line(3)[2].as_str(), line(3)[4].as_str()),
            (c.0.as_str(), "found"),
            "found by its exact name"
        );
        assert_eq!(line(4)[4], "invalid_code");
        assert_eq!(line(5)[4], "not_found");
        assert_eq!(line(5)[1], "'=HYPERLINK(\"http://evil\")", "the formula is escaped");
        // The read of the authorised firm is on record.
        let logged = blocking(|| {
            xinyong_server::audit::of_firm(&**st.pool.get().unwrap(), &a.0, 50)
                .unwrap()
                .iter()
                .any(|r| r.target == "/screening" && r.user_id == bank)
        });
        assert!(logged, "the screening read is in the audit log");
    }
    blocking(move || drop(all));
}

async fn upload_fields(
    st: &AppState,
    uri: &str,
    cookie: &str,
    fields: &[(&str, &str)],
    file: (&str, &[u8]),
) -> (StatusCode, axum::http::HeaderMap, String) {
    let (status, headers, body) = upload_with(st, uri, cookie, fields, file).await;
    (status, headers, String::from_utf8_lossy(&body).into_owned())
}

/// The ingest path as the binary wires it (`cli::serve_cmd`).
fn ingest_fn(registry: std::sync::Arc<xinyong_registry::Registry>) -> xinyong_server::data::IngestFn {
    std::sync::Arc::new(move |store, dir| {
        let (mut batches, mut changed) = (Vec::new(), Vec::new());
        let s = xinyong_app::ingest_paths(
            store,
            &registry,
            &[dir.to_path_buf()],
            &Default::default(),
            &mut |b, _, _| {
                batches.push(b.batch_id.clone());
                changed.extend(b.changed.iter().cloned());
            },
        )
        .map_err(|e| e.to_string())?;
        changed.sort_unstable();
        changed.dedup();
        Ok(xinyong_server::data::IngestReport {
            files: s.files,
            skipped: s.skipped,
            rows_read: s.counts.rows_read,
            quarantined: s.counts.quarantined,
            batches,
            changed,
        })
    })
}

#[tokio::test]
async fn a_department_uploads_a_delivery_through_the_ingest_path_and_reads_its_quarantine() {
    let all = states();
    let registry = std::sync::Arc::new(xinyong_registry::Registry::builtin().unwrap());
    let ingest = ingest_fn(registry);
    // A delivered file of the market regulator's penalties, with a broken line appended.
    let amr = store_path().parent().unwrap().join("district/sources/amr");
    let original = std::fs::read_dir(&amr)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("amr.penalties__"))
        .min()
        .expect("a penalties delivery");
    for (i, st) in all.iter().enumerate() {
        let st = st.clone().with_ingest(ingest.clone());
        let mut bytes = std::fs::read(&original).unwrap();
        bytes.extend_from_slice(format!("not-a-code-{i},x\n").as_bytes());
        let (dep, other, bank) = (
            format!("t-data-dep-{i}"),
            format!("t-data-court-{i}"),
            format!("t-data-bank-{i}"),
        );
        let sd = make_user(&st, &dep, Role::Department, "amr");
        let so = make_user(&st, &other, Role::Department, "court");
        let sb = make_user(&st, &bank, Role::Bank, "bank01");
        let (dep_s, dep_csrf) = login(&st, &dep, auth::totp_code(&sd, now())).await;
        let (other_s, _) = login(&st, &other, auth::totp_code(&so, now())).await;
        let (bank_s, bank_csrf) = login(&st, &bank, auth::totp_code(&sb, now())).await;
        let fields = [("dataset", "amr.penalties"), ("delivered", "2026-01-25")];
        // A bank may not deliver; another department's dataset is refused; a future date is refused.
        let (status, _, _) = upload_fields(
            &st,
            &format!("/data?csrf={bank_csrf}"),
            &bank_s,
            &fields,
            ("p.csv", &bytes),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _, body) = upload_fields(
            &st,
            &format!("/data?csrf={dep_csrf}"),
            &dep_s,
            &[("dataset", "court.cases"), ("delivered", "2026-01-25")],
            ("p.csv", &bytes),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        let (status, _, _) = upload_fields(
            &st,
            &format!("/data?csrf={dep_csrf}"),
            &dep_s,
            &[("dataset", "amr.penalties"), ("delivered", "2999-01-01")],
            ("p.csv", &bytes),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // The delivery: ingested, its receipt and its quarantined line with the reason and row.
        let (status, headers, body) = upload_fields(
            &st,
            &format!("/data?csrf={dep_csrf}"),
            &dep_s,
            &fields,
            ("p.csv", &bytes),
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        let receipt = headers[header::LOCATION].to_str().unwrap().to_string();
        let r = send(&st, "GET", &receipt, Some(&dep_s), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("class=\"quarantined\""), "{}", r.body);
        assert!(r.body.contains(&format!("not-a-code-{i}")), "the raw line is shown");
        let lines = String::from_utf8_lossy(&bytes).lines().count();
        assert!(
            r.body.contains(&format!("<td>{lines}</td>")),
            "the broken line's row number ({lines})"
        );
        // The same bytes again: already stored, the same receipt.
        let (status, headers, _) = upload_fields(
            &st,
            &format!("/data?csrf={dep_csrf}"),
            &dep_s,
            &fields,
            ("p.csv", &bytes),
        )
        .await;
        assert_eq!(
            (status, headers[header::LOCATION].to_str().unwrap()),
            (StatusCode::SEE_OTHER, receipt.as_str())
        );
        // Freshness shows the delivery; another department cannot open the receipt.
        let r = send(&st, "GET", "/data", Some(&dep_s), None).await;
        assert!(r.body.contains("2026-01-25"));
        let r = send(&st, "GET", &receipt, Some(&other_s), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
        blocking(move || drop(st));
    }
    blocking(move || drop(all));
}

async fn api(st: &AppState, uri: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
    let mut req = Request::get(uri);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = router(st.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = res.status();
    assert!(
        res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{uri}"
    );
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

/// The keys a schema of the OpenAPI document requires (following one `$ref`).
fn required<'a>(doc: &'a serde_json::Value, schema: &'a serde_json::Value) -> Vec<&'a str> {
    let s = match schema.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => doc.pointer(&r[1..]).expect("a $ref that resolves"),
        None => schema,
    };
    s.get("required")
        .and_then(|r| r.as_array())
        .map(|a| a.iter().filter_map(|x| x.as_str()).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_api_takes_tokens_keeps_the_access_rules_and_matches_its_openapi_document() {
    let doc: serde_json::Value =
        serde_json::from_str(xinyong_server::api::OPENAPI).expect("the OpenAPI document parses");
    assert_eq!(doc["openapi"], "3.1.0");
    let mut paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    let mut routes = xinyong_server::api::ROUTES.to_vec();
    paths.sort();
    routes.sort();
    assert_eq!(paths, routes, "the document lists exactly the served routes");
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (firm, name) = some_firm(st);
        let bank = format!("t-api-bank-{i}");
        let secret = make_user(st, &bank, Role::Bank, "bank97");
        let (session, csrf) = login(st, &bank, auth::totp_code(&secret, now())).await;
        // The document is public; everything else needs a token.
        let (status, served) = api(st, "/api/v1/openapi.json", None).await;
        assert_eq!((status, &served), (StatusCode::OK, &doc));
        let (status, body) = api(st, "/api/v1/firms?q=x", None).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
        let (status, _) = api(
            st,
            "/api/v1/firms?q=x",
            Some("xyt_0000000000000000000000000000000000000000000000000000000000000000"),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // A token from the account page, shown once.
        let r = send(
            st,
            "POST",
            "/me/tokens",
            Some(&session),
            Some(&format!("csrf={csrf}&label=core")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let k = r.body.find("id=\"new-token\">").expect("the new token") + "id=\"new-token\">".len();
        let token = r.body[k..k + 68].to_string();
        let again = send(st, "GET", "/me", Some(&session), None).await;
        assert!(!again.body.contains(&token), "shown once only");
        // A token opens the API only: not the pages, not token management.
        let req = Request::post("/me/tokens")
            .header(header::AUTHORIZATION, format!("Bearer {token}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from("label=x"))
            .unwrap();
        let res = router(st.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a token cannot mint tokens");
        // Each route's answer has the fields its schema requires.
        let check = |path: &str, body: &serde_json::Value| {
            let schema = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
            for key in required(&doc, schema) {
                assert!(body.get(key).is_some(), "{path}: {key} missing in {body}");
            }
        };
        let (status, body) = api(st, &format!("/api/v1/firms?q={}", enc(&name)), Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        check("/api/v1/firms", &body);
        assert_eq!(body["firms"][0]["uscc"], firm.as_str());
        let (status, body) = api(st, &format!("/api/v1/firms/{firm}"), Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        check("/api/v1/firms/{uscc}", &body);
        assert!(
            body["access"].is_null() && body["overview"]["score"].is_null(),
            "no authorisation: public facts only"
        );
        let (status, body) = api(st, &format!("/api/v1/firms/{firm}/events"), Some(&token)).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (StatusCode::FORBIDDEN, Some("forbidden"))
        );
        let (status, body) = api(st, "/api/v1/index?dimension=township", Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        check("/api/v1/index", &body);
        assert!(!body["points"].as_array().unwrap().is_empty());
        let (status, _) = api(st, "/api/v1/index?dimension=colour", Some(&token)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, body) = api(st, "/api/v1/inbox", Some(&token)).await;
        assert_eq!(status, StatusCode::OK);
        check("/api/v1/inbox", &body);
        let (status, _) = api(st, "/api/v1/firms/91330000000000000X", Some(&token)).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // The regulator's token reads the whole record and the events, each read logged.
        let reg = format!("t-api-reg-{i}");
        let rs = make_user(st, &reg, Role::Regulator, "jrb");
        let (rsession, rcsrf) = login(st, &reg, auth::totp_code(&rs, now())).await;
        let r = send(
            st,
            "POST",
            "/me/tokens",
            Some(&rsession),
            Some(&format!("csrf={rcsrf}&label=x")),
        )
        .await;
        let k = r.body.find("id=\"new-token\">").unwrap() + "id=\"new-token\">".len();
        let rtoken = r.body[k..k + 68].to_string();
        let (status, body) = api(st, &format!("/api/v1/firms/{firm}"), Some(&rtoken)).await;
        assert_eq!((status, body["access"].as_str()), (StatusCode::OK, Some("regulator")));
        assert!(body["overview"]["score"].is_object());
        let (status, body) = api(st, &format!("/api/v1/firms/{firm}/events"), Some(&rtoken)).await;
        assert_eq!(status, StatusCode::OK);
        check("/api/v1/firms/{uscc}/events", &body);
        let logged = blocking(|| {
            xinyong_server::audit::of_firm(&**st.pool.get().unwrap(), &firm, 500)
                .unwrap()
                .iter()
                .filter(|r| r.user_id == reg && r.target.starts_with("/api/v1/"))
                .count()
        });
        assert_eq!(logged, 2, "both API reads are in the audit log");
        // A revoked token stops at once; enterprises hold no tokens.
        let id = blocking(|| auth::tokens_of(&**st.pool.get().unwrap(), &bank).unwrap()[0].0.clone());
        let r = send(
            st,
            "POST",
            &format!("/me/tokens/{id}/revoke"),
            Some(&session),
            Some(&format!("csrf={csrf}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let (status, _) = api(st, "/api/v1/index", Some(&token)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let ent = format!("t-api-ent-{i}");
        make_user(st, &ent, Role::Enterprise, &firm);
        let (es, ecsrf) = login(st, &ent, None).await;
        let r = send(
            st,
            "POST",
            "/me/tokens",
            Some(&es),
            Some(&format!("csrf={ecsrf}&label=x")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn administrators_manage_accounts_and_a_second_one_approves_rule_and_model_changes() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (a1, a2, reg) = (format!("t-adm1-{i}"), format!("t-adm2-{i}"), format!("t-adm-reg-{i}"));
        let s1 = make_user(st, &a1, Role::Admin, "");
        let s2 = make_user(st, &a2, Role::Admin, "");
        let sr = make_user(st, &reg, Role::Regulator, "jrb");
        let (c1, t1) = login(st, &a1, auth::totp_code(&s1, now())).await;
        let (c2, t2) = login(st, &a2, auth::totp_code(&s2, now())).await;
        let (cr, tr) = login(st, &reg, auth::totp_code(&sr, now())).await;
        assert_eq!(
            send(st, "GET", "/admin", Some(&cr), None).await.status,
            StatusCode::FORBIDDEN
        );
        let r = send(
            st,
            "POST",
            "/admin/changes",
            Some(&cr),
            Some(&format!("csrf={tr}&kind=rule&target=1&enabled=false&reason=x")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "only administrators propose");
        // Bad proposals.
        for form in [
            "kind=rule&target=999&enabled=false",
            "kind=rule&target=1&colour=green",
            "kind=rule&target=1",
            "kind=model&target=nope",
        ] {
            let r = send(
                st,
                "POST",
                "/admin/changes",
                Some(&c1),
                Some(&format!("csrf={t1}&{form}&reason=x")),
            )
            .await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{form}");
        }
        // A proposal; its proposer cannot approve it; the second administrator does; once.
        let rule = 10 + i;
        let r = send(
            st,
            "POST",
            "/admin/changes",
            Some(&c1),
            Some(&format!(
                "csrf={t1}&kind=rule&target={rule}&enabled=false&colour=blue&reason=too+noisy"
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let page = send(st, "GET", "/admin", Some(&c1), None).await.body;
        let k = page.find("class=\"change\" data-change=\"").unwrap() + "class=\"change\" data-change=\"".len();
        let id = page[k..k + 12].to_string();
        let approve = |c: String, t: String| {
            let id = id.clone();
            async move {
                send(
                    st,
                    "POST",
                    &format!("/admin/changes/{id}/approve"),
                    Some(&c),
                    Some(&format!("csrf={t}&note=ok")),
                )
                .await
            }
        };
        assert_eq!(
            approve(c1.clone(), t1.clone()).await.status,
            StatusCode::FORBIDDEN,
            "maker is not checker"
        );
        let settings = || blocking(|| xinyong_store::rows::settings(&**st.pool.get().unwrap()).unwrap());
        assert!(
            !settings().contains_key(&format!("rule.{rule}.enabled")),
            "nothing applies before approval"
        );
        assert_eq!(approve(c2.clone(), t2.clone()).await.status, StatusCode::SEE_OTHER);
        let s = settings();
        assert_eq!(
            s.get(&format!("rule.{rule}.enabled")).map(String::as_str),
            Some("false")
        );
        assert_eq!(s.get(&format!("rule.{rule}.colour")).map(String::as_str), Some("blue"));
        assert_eq!(
            approve(c2.clone(), t2.clone()).await.status,
            StatusCode::BAD_REQUEST,
            "decided once"
        );
        // A new account: its password shown once; it logs in; disabled, its session ends at once.
        let new = format!("t-adm-new-{i}");
        let r = send(
            st,
            "POST",
            "/admin/users",
            Some(&c1),
            Some(&format!("csrf={t1}&user_id={new}&role=department&org=amr&name=X")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        let grab = |id: &str| {
            let k = r.body.find(&format!("id=\"{id}\">")).unwrap() + id.len() + 6;
            r.body[k..].split('<').next().unwrap().to_string()
        };
        let (password, totp) = (grab("created-password"), grab("created-totp"));
        let again = send(
            st,
            "POST",
            "/admin/users",
            Some(&c1),
            Some(&format!("csrf={t1}&user_id={new}&role=department&org=amr&name=X")),
        )
        .await;
        assert_eq!(again.status, StatusCode::BAD_REQUEST, "the account exists");
        let pageq = send(st, "GET", "/login", None, None).await;
        let pre = cookie_value(&set_cookie(&pageq, "xy_csrf").unwrap());
        let code = auth::totp_code(&totp, now()).unwrap();
        let r = send(
            st,
            "POST",
            "/login",
            Some(&pre),
            Some(&format!(
                "csrf={}&user={new}&password={password}&code={code}",
                csrf_of(&pageq.body)
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "the new account logs in");
        let session = cookie_value(&set_cookie(&r, "xy_session").unwrap());
        assert_eq!(
            send(st, "GET", "/me", Some(&session), None).await.status,
            StatusCode::OK
        );
        let r = send(
            st,
            "POST",
            &format!("/admin/users/{new}/disable"),
            Some(&c2),
            Some(&format!("csrf={t2}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        assert_eq!(
            send(st, "GET", "/me", Some(&session), None).await.status,
            StatusCode::SEE_OTHER,
            "disabled: signed out"
        );
        let r = send(
            st,
            "POST",
            &format!("/admin/users/{a1}/disable"),
            Some(&c1),
            Some(&format!("csrf={t1}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "not oneself");
    }
    blocking(move || drop(all));
}

#[test]
fn a_new_scoring_run_shows_without_a_restart() {
    // A copy of the test store (the others must keep their latest run).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("copy.db");
    {
        let src = SqliteStore::open(store_path()).unwrap();
        let mut dst = SqliteStore::open(&path).unwrap();
        xinyong_store::conformance::import_all(&mut dst, &xinyong_store::conformance::export_all(&src)).unwrap();
    }
    let p2 = path.clone();
    let pool = Pool::new(
        &PoolConfig::default(),
        Box::new(move || Ok(Box::new(SqliteStore::open(&p2)?) as Box<dyn Store + Send>)),
    )
    .unwrap();
    let st = AppState::new(pool, ServerConfig::default()).unwrap();
    let before = st.summary();
    assert!(!st.refresh().unwrap(), "nothing new");
    // A later run that scores one firm red.
    let uscc = st.index.read().unwrap().firms()[0].uscc.clone();
    // Its overview is kept between requests ...
    let full = |st: &AppState| {
        let store = SqliteStore::open(&path).unwrap();
        let u = uscc.clone();
        st.caches
            .overview(&uscc, Viewer::Full, || {
                overview(
                    &store,
                    &u,
                    Viewer::Full,
                    &st.today(),
                    &xinyong_server::objections::Rights::builtin(),
                )
            })
            .unwrap()
    };
    let kept = full(&st);
    assert!(st.caches.kept(&uscc, Viewer::Full).is_some());
    let mut store = SqliteStore::open(&path).unwrap();
    store
        .put_run(&xinyong_store::ScoreRun {
            run_id: "run-later".into(),
            as_of: "2099-01-31".into(),
            model_version: "m".into(),
            created_at: "2099-02-01T00:00:00Z".into(),
            benchmarks: "{}".into(),
            scores: vec![xinyong_store::ScoreRow {
                uscc: uscc.clone(),
                score: 1.0,
                pd: 0.9,
                grade: "C".into(),
                grade_unadjusted: "C".into(),
                colour: Some("red".into()),
                detail: "{}".into(),
            }],
            ..Default::default()
        })
        .unwrap();
    assert!(st.refresh().unwrap(), "the new run is picked up");
    // ... until the data changes: the new run's grade shows on the next request.
    assert!(
        st.caches.kept(&uscc, Viewer::Full).is_none(),
        "the kept overviews were dropped"
    );
    assert_ne!(full(&st).json, kept.json, "the overview of the new run");
    let after = st.summary();
    assert_eq!(after.run_id.as_deref(), Some("run-later"));
    assert_ne!(before.run_id, after.run_id);
    assert_eq!(after.by_township.iter().map(|c| c.firms).sum::<u64>(), 1);
    assert_eq!(after.by_township.iter().map(|c| c.red).sum::<u64>(), 1);
    // A batch stored by another process (here: an empty one) is new data too.
    full(&st);
    assert!(!st.refresh().unwrap(), "nothing new");
    let mut w = store.begin().unwrap();
    w.start_batch(&xinyong_store::BatchMeta {
        batch_id: "later-batch".into(),
        source: "amr".into(),
        dataset: "amr.penalties".into(),
        file_name: "later.csv".into(),
        delivered_on: "2099-02-01".into(),
        ingested_at: "2099-02-01T00:00:00Z".into(),
    })
    .unwrap();
    w.end_batch(Default::default(), &[]).unwrap();
    w.commit().unwrap();
    assert!(st.caches.kept(&uscc, Viewer::Full).is_some());
    assert!(st.refresh().unwrap(), "the new batch is picked up");
    assert!(st.caches.kept(&uscc, Viewer::Full).is_none());
}

#[tokio::test]
async fn the_regulator_reads_the_thematic_analysis_and_its_figures_add_up() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let reg = format!("t-themes-reg-{i}");
        let secret = make_user(st, &reg, Role::Regulator, "jrb");
        let bank = format!("t-themes-bank-{i}");
        let bs = make_user(st, &bank, Role::Bank, "bank96");
        // Only the regulator: the public is sent to log in, a bank is refused.
        assert_eq!(get(st, "/themes", None).await.status, StatusCode::SEE_OTHER);
        let (bank_s, _) = login(st, &bank, auth::totp_code(&bs, now())).await;
        assert_eq!(
            send(st, "GET", "/themes", Some(&bank_s), None).await.status,
            StatusCode::FORBIDDEN
        );
        let (session, _) = login(st, &reg, auth::totp_code(&secret, now())).await;
        for tab in xinyong_server::themes::TABS {
            for lang in ["zh", "en"] {
                let r = send(
                    st,
                    "GET",
                    &format!("/themes?tab={tab}&lang={lang}"),
                    Some(&session),
                    None,
                )
                .await;
                assert_eq!(r.status, StatusCode::OK, "{tab} {lang}: {}", r.body);
                assert!(r.body.contains("aria-current=\"page\""), "{tab}");
            }
        }
        let themes = blocking(|| {
            let ix = st.index.read().unwrap();
            xinyong_server::themes::build(&**st.pool.get().unwrap(), &ix, &st.data_month()).unwrap()
        });
        // Every active firm is in one size class and one industry section; the colours match the run's.
        let (scores, active) = blocking(|| {
            let store = st.pool.get().unwrap();
            let run = store.latest_run().unwrap().unwrap();
            let ix = st.index.read().unwrap();
            let active: std::collections::HashSet<String> = ix
                .firms()
                .iter()
                .filter(|f| f.status == "active" || f.status.is_empty())
                .map(|f| f.uscc.clone())
                .collect();
            (store.run_scores(&run.run_id).unwrap(), active)
        });
        for groups in [&themes.sizes, &themes.resources] {
            assert_eq!(groups.iter().map(|g| g.firms).sum::<u64>(), active.len() as u64);
            let reds = scores
                .iter()
                .filter(|s| active.contains(&s.uscc) && s.colour.as_deref() == Some("red"))
                .count() as u64;
            assert_eq!(groups.iter().map(|g| g.red).sum::<u64>(), reds);
        }
        assert!(themes
            .resources
            .iter()
            .any(|g| g.power_mwh > 0.0 && g.tax_per_mwh.is_some()));
        assert!(!themes.clusters.is_empty(), "the demo district has cluster firms");
        // Subsidies: the fund flows add up to what was paid.
        let paid: f64 = blocking(|| {
            let store = st.pool.get().unwrap();
            ["finance.subsidies", "agri.subsidies"]
                .iter()
                .flat_map(|ds| store.current_facts(ds.split('.').next().unwrap(), ds).unwrap())
                .map(|f| {
                    serde_json::from_str::<serde_json::Value>(&f.fields).unwrap()["amount"]
                        .as_f64()
                        .unwrap_or(0.0)
                })
                .sum()
        });
        let flows: f64 = themes.funds.iter().map(|r| r.amount_wan).sum();
        assert!(paid > 0.0 && (flows * 1e4 - paid).abs() < 1.0, "{flows} vs {paid}");
        assert!(themes
            .funds
            .iter()
            .all(|r| r.to_red + r.to_yellow + r.to_blue <= r.amount_wan + 1e-6));
        // The firms the pages named are on record as the regulator's reads.
        let named = themes
            .clusters
            .iter()
            .flat_map(|g| g.top.iter())
            .next()
            .map(|r| r.uscc.clone());
        if let Some(firm) = named {
            let logged = blocking(|| {
                xinyong_server::audit::of_firm(&**st.pool.get().unwrap(), &firm, 500)
                    .unwrap()
                    .iter()
                    .any(|r| r.user_id == reg && r.target == "/themes?tab=clusters")
            });
            assert!(logged, "the drill-down read of {firm} is logged");
        }
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn support_policies_are_matched_to_a_firm_and_counted_for_the_regulator() {
    use xinyong_server::support;
    let all = states();
    for (i, st) in all.iter().enumerate() {
        // The district-wide matches and one firm's own profile agree, for every firm of a sample.
        let today = st.today();
        let m = blocking(|| {
            let ix = st.index.read().unwrap();
            support::match_all(&**st.pool.get().unwrap(), &ix, &today).unwrap()
        });
        assert!(
            support::policies().iter().any(|p| !m.eligible[&p.id].is_empty()),
            "some firm fits some policy"
        );
        let firms: Vec<_> = st.index.read().unwrap().firms().iter().take(40).cloned().collect();
        for f in firms.iter().filter(|f| f.status == "active") {
            let p = blocking(|| support::profile_of(&**st.pool.get().unwrap(), f, &today).unwrap());
            for pol in support::policies() {
                let listed = m.eligible[&pol.id].iter().any(|e| e.0 == f.uscc);
                assert_eq!(support::eligible(pol, &p), listed, "{} {}: {p:?}", pol.id, f.uscc);
            }
        }
        // The public reads the criteria, no firm's data.
        let r = get(st, "/support", None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("id=\"policy-sme-interest\""));
        assert!(!r.body.contains("id=\"count-") && !r.body.contains("class=\"tag ok\""));
        // A firm reads its own matches, each criterion with its own value.
        let firm = firms.iter().find(|f| f.status == "active").unwrap().uscc.clone();
        let ent = format!("t-support-ent-{i}");
        make_user(st, &ent, Role::Enterprise, &firm);
        let (es, _) = login(st, &ent, None).await;
        let r = send(st, "GET", "/support?lang=en", Some(&es), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.body.contains("id=\"support-own\""));
        let marks = r.body.matches("class=\"tag ok\"").count() + r.body.matches("class=\"tag no\"").count();
        assert_eq!(marks, support::policies().len(), "every policy judged for the firm");
        // The regulator: counts and the firms, each read on record.
        let reg = format!("t-support-reg-{i}");
        let secret = make_user(st, &reg, Role::Regulator, "jrb");
        let (rs, _) = login(st, &reg, auth::totp_code(&secret, now())).await;
        let r = send(st, "GET", "/support", Some(&rs), None).await;
        assert_eq!(r.status, StatusCode::OK);
        for pol in support::policies() {
            let want = format!(
                "id=\"count-{}\">符合条件的企业: {}</p>",
                pol.id,
                m.eligible[&pol.id].len()
            );
            assert!(r.body.contains(&want), "{want}");
        }
        if let Some(e) = m.eligible.values().flatten().next() {
            let logged = blocking(|| {
                xinyong_server::audit::of_firm(&**st.pool.get().unwrap(), &e.0, 500)
                    .unwrap()
                    .iter()
                    .any(|r| r.user_id == reg && r.target == "/support")
            });
            assert!(logged);
        }
    }
    blocking(move || drop(all));
}

#[test]
fn every_stored_field_has_a_class_and_no_page_shows_a_personal_one() {
    let store = SqliteStore::open(store_path()).unwrap();
    let registry = xinyong_server::pages::registry().unwrap();
    let st = state();
    let firms: Vec<String> = st
        .index
        .read()
        .unwrap()
        .firms()
        .iter()
        .map(|f| f.uscc.clone())
        .collect();
    let mut fields = std::collections::BTreeSet::new();
    let mut personal = Vec::new();
    for u in &firms {
        for f in store.facts_of(u, None).unwrap() {
            let ds = registry
                .dataset(&f.dataset)
                .unwrap_or_else(|| panic!("stored dataset {} has no definition, so no class", f.dataset));
            let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).unwrap();
            for (k, x) in &v {
                let class = ds.class_of(k);
                fields.insert((f.dataset.clone(), k.clone(), format!("{class:?}")));
                if class == xinyong_registry::Class::Personal {
                    if let Some(s) = x.as_str().filter(|s| s.len() >= 6) {
                        personal.push((u.clone(), s.to_string()));
                    }
                }
            }
        }
    }
    assert!(fields.len() > 100, "{} classified fields", fields.len());
    assert!(
        !personal.is_empty(),
        "the demo district has personal fields (legal representatives' id numbers)"
    );
    // (The platform's own tables, `store::rows`, classify every column by construction: `FieldClass` is a
    // required part of a column's spec.)
    // No overview, for any viewer, carries a personal field's value.
    for (u, value) in personal.iter().take(30) {
        for viewer in [Viewer::Public, Viewer::Full, Viewer::Regulator] {
            let ov = overview(
                &store,
                u,
                viewer,
                "2026-01-01",
                &xinyong_server::objections::Rights::builtin(),
            )
            .unwrap();
            let json = serde_json::to_string(&ov).unwrap();
            assert!(
                !json.contains(value.as_str()),
                "{viewer:?} overview of {u} shows a personal field"
            );
        }
    }
}

// ---- Real time: pushes, the outbox, the event stream ----

async fn push_req(
    st: &AppState,
    key: &(String, String),
    dataset: &str,
    date: &str,
    idem: &str,
    body: &[u8],
    ts_shift: i64,
) -> (StatusCode, serde_json::Value, axum::http::HeaderMap) {
    use xinyong_server::push::{sign, signed_head};
    let ts = (now() as i64 + ts_shift).to_string();
    let sig = sign(&key.1, &signed_head(&ts, idem, dataset, date), body);
    let req = Request::post(format!("/api/v1/push/{dataset}?date={date}"))
        .header("x-push-key", &key.0)
        .header("x-push-timestamp", &ts)
        .header("x-push-signature", sig)
        .header("idempotency-key", idem)
        .header(header::CONTENT_TYPE, "application/json");
    let res = router(st.clone())
        .oneshot(req.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or_default(), headers)
}

#[tokio::test]
async fn a_push_that_turns_a_firm_red_warns_its_guarantors_and_the_live_network_agrees_with_the_run() {
    let all = states();
    let registry = std::sync::Arc::new(xinyong_registry::Registry::builtin().unwrap());
    for base in all.iter() {
        // The live path's network, rebuilt group by group from the run, reproduces the run.
        let (groups, diffs) =
            blocking(|| xinyong_app::credit::check_live_network(&**base.pool.get().unwrap()).unwrap());
        assert!(groups > 10, "the demo district has guarantee groups ({groups})");
        assert!(
            diffs.is_empty(),
            "{} differences, first: {:#?}",
            diffs.len(),
            &diffs[..diffs.len().min(5)]
        );
        // A guarantee between two scored firms: the borrower not red, the guarantor without the contagion
        // warning (47) and with no red neighbour; neither the other push test's firms.
        let (borrower, guarantor, as_of) = blocking(|| {
            let store = base.pool.get().unwrap();
            let run = store.latest_run().unwrap().unwrap();
            let score = |u: &str| -> Option<xinyong_credit::score::FirmScore> {
                serde_json::from_str(&store.run_score(&run.run_id, u).unwrap()?).ok()
            };
            for j in store.run_circles(&run.run_id, None).unwrap() {
                let v: xinyong_credit::network::GroupView = serde_json::from_str(&j).unwrap();
                for (g, b, ..) in v.contracts.iter().rev() {
                    let (Some(gs), Some(bs)) = (score(g), score(b)) else {
                        continue;
                    };
                    let red =
                        |s: &xinyong_credit::score::FirmScore| s.colour == Some(xinyong_credit::warnings::Colour::Red);
                    let gn = gs.network.clone().unwrap_or_default();
                    let warned = gs.warnings.iter().any(|w| w.rule == 47);
                    if g != b
                        && !red(&bs)
                        && !red(&gs)
                        && !warned
                        && gn.neighbours_red.is_empty()
                        && gn.contagion < 0.02
                    {
                        return (b.clone(), g.clone(), run.as_of.clone());
                    }
                }
            }
            panic!("no calm guarantee pair in the demo district")
        });
        let key = blocking(|| {
            let k = xinyong_server::push::create_key(&mut **base.pool.get().unwrap(), "court", "2026-01-01T00:00:00Z")
                .unwrap();
            (k.key_id, k.secret)
        });
        let listed = format!("{}/{}/06", &as_of[..4], &as_of[5..7]);
        let body = serde_json::to_vec(&serde_json::json!([{
            "统一社会信用代码": borrower, "执行案号": "(2026)浙0604执9001号", "发布日期": listed,
            "名单类型": "失信被执行人", "未履行金额(万元)": "80",
        }]))
        .unwrap();
        let st = base
            .clone()
            .with_ingest(ingest_fn(registry.clone()))
            .with_rescore(xinyong_app::credit::live_rescorer());
        let (s, receipt, _) = push_req(&st, &key, "court.dishonest", &as_of, "net-1", &body, 0).await;
        assert_eq!(s, StatusCode::CREATED, "{receipt}");
        assert!(receipt["neighbours_rescored"].as_u64() >= Some(1), "{receipt}");
        let events = |uscc: String, cause: &'static str| {
            let st = st.clone();
            blocking(move || {
                st.pool
                    .get()
                    .unwrap()
                    .rows(
                        &xinyong_store::rows::RowQuery::all("outbox")
                            .eq("uscc", xinyong_store::rows::Value::text(&uscc)),
                    )
                    .unwrap()
                    .into_iter()
                    .filter(|r| r[8].as_str() == Some(cause))
                    .map(|r| (r[4].as_str().unwrap_or("").to_string(), r[5].as_int()))
                    .collect::<Vec<_>>()
            })
        };
        assert!(
            events(borrower.clone(), "net-1").contains(&("colour".to_string(), None)),
            "the borrower turned red"
        );
        assert!(
            events(guarantor.clone(), "net-1").contains(&("warning_raised".to_string(), Some(47))),
            "its guarantor is warned of contagion (47): {:?}",
            events(guarantor.clone(), "net-1")
        );
        // A server started afresh (nothing held in memory) reads what was told from the store: a second
        // listing of the same firm makes no second warning for the guarantor.
        let st2 = base
            .clone()
            .with_ingest(ingest_fn(registry.clone()))
            .with_rescore(xinyong_app::credit::live_rescorer());
        let body2 = serde_json::to_vec(&serde_json::json!([{
            "统一社会信用代码": borrower, "执行案号": "(2026)浙0604执9002号", "发布日期": listed,
            "名单类型": "失信被执行人", "未履行金额(万元)": "12",
        }]))
        .unwrap();
        let (s, r2, _) = push_req(&st2, &key, "court.dishonest", &as_of, "net-2", &body2, 0).await;
        assert_eq!(s, StatusCode::CREATED, "{r2}");
        assert_eq!(
            events(guarantor.clone(), "net-2"),
            vec![],
            "nothing new for the guarantor"
        );
    }
}

#[tokio::test]
async fn a_signed_push_is_stored_rescored_and_its_events_reach_the_stream_once() {
    let all = states();
    let registry = std::sync::Arc::new(xinyong_registry::Registry::builtin().unwrap());
    for (i, base) in all.iter().enumerate() {
        // Each store gets its own copy of the events: a firm of its own, not red, on the register.
        let st = base
            .clone()
            .with_ingest(ingest_fn(registry.clone()))
            .with_rescore(xinyong_app::credit::live_rescorer());
        let (firm, as_of) = blocking(|| {
            let store = st.pool.get().unwrap();
            let run = store.latest_run().unwrap().unwrap();
            let scores = store.run_scores(&run.run_id).unwrap();
            let firm = scores
                .iter()
                .filter(|s| s.colour.is_none())
                .nth(3 + 7 * i)
                .expect("an uncoloured firm")
                .uscc
                .clone();
            (firm, run.as_of)
        });
        let key = blocking(|| {
            let k = xinyong_server::push::create_key(&mut **st.pool.get().unwrap(), "court", "2026-01-01T00:00:00Z")
                .unwrap();
            (k.key_id, k.secret)
        });
        let listed = format!("{}/{}/05", &as_of[..4], &as_of[5..7]);
        let record = serde_json::json!([{
            "统一社会信用代码": firm, "执行案号": format!("(2026)浙0604执{i}号"), "发布日期": listed,
            "名单类型": "失信被执行人", "未履行金额(万元)": "35.5",
        }]);
        let body = serde_json::to_vec(&record).unwrap();
        // Refused: a bad signature, a stale timestamp, a dataset the source does not deliver, bad JSON.
        let (s, e, _) = push_req(
            &st,
            &(key.0.clone(), "wrong".into()),
            "court.dishonest",
            &as_of,
            "a1",
            &body,
            0,
        )
        .await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("bad_signature"))
        );
        let (s, e, _) = push_req(&st, &key, "court.dishonest", &as_of, "a1", &body, -3600).await;
        assert_eq!((s, e["error"].as_str()), (StatusCode::UNAUTHORIZED, Some("stale")));
        let (s, _, _) = push_req(&st, &key, "tax.arrears", &as_of, "a1", &body, 0).await;
        assert_eq!(s, StatusCode::FORBIDDEN);
        let (s, e, _) = push_req(&st, &key, "court.dishonest", &as_of, "a1", b"[{oops", 0).await;
        assert_eq!((s, e["error"].as_str()), (StatusCode::BAD_REQUEST, Some("bad_json")));
        // A regulator follows the firm and opens the stream before the push.
        let reg = format!("t-push-reg-{i}");
        let secret = make_user(&st, &reg, Role::Regulator, "jrb");
        let (session, csrf) = login(&st, &reg, auth::totp_code(&secret, now())).await;
        let r = send(
            &st,
            "POST",
            "/subscriptions",
            Some(&session),
            Some(&format!("csrf={csrf}&kind=firm&target={firm}")),
        )
        .await;
        assert!(r.status.is_redirection(), "{}", r.body);
        let before = *st.events.borrow();
        // The push: stored, rescored, events made.
        let (s, receipt, h) = push_req(&st, &key, "court.dishonest", &as_of, &format!("b{i}"), &body, 0).await;
        assert_eq!(s, StatusCode::CREATED, "{receipt}");
        assert_eq!(h["idempotent-replay"], "false");
        assert_eq!(
            (receipt["rows_read"].as_u64(), receipt["quarantined"].as_u64()),
            (Some(1), Some(0))
        );
        assert_eq!(receipt["firms_rescored"], 1);
        let ids: Vec<String> = serde_json::from_value(receipt["events"].clone()).unwrap();
        assert!(
            !ids.is_empty(),
            "a dishonest-debtor listing changes the firm's warnings: {receipt}"
        );
        // The same idempotency key again: the same receipt, nothing stored again.
        let (s, again, h) = push_req(&st, &key, "court.dishonest", &as_of, &format!("b{i}"), &body, 0).await;
        assert_eq!((s, h["idempotent-replay"].to_str().unwrap()), (StatusCode::OK, "true"));
        assert_eq!(again, receipt);
        // The same key with another body: refused, not answered with the first receipt.
        let (s, e, _) = push_req(&st, &key, "court.dishonest", &as_of, &format!("b{i}"), b"[]", 0).await;
        assert_eq!(
            (s, e["error"].as_str()),
            (StatusCode::CONFLICT, Some("idempotency_conflict"))
        );
        let outboxed = blocking(|| {
            st.pool
                .get()
                .unwrap()
                .rows(&xinyong_store::rows::RowQuery::all("outbox").eq("uscc", xinyong_store::rows::Value::text(&firm)))
                .unwrap()
                .iter()
                .filter(|r| r[8].as_str() == Some(format!("b{i}").as_str()))
                .count()
        });
        assert_eq!(outboxed, ids.len(), "no second set of events");
        // A row with a broken code: quarantined with its reason, row and raw text.
        let bad = serde_json::to_vec(&serde_json::json!([{
            "统一社会信用代码": "91330604NOTACODE", "执行案号": "x", "发布日期": listed, "名单类型": "失信被执行人",
        }]))
        .unwrap();
        let (s, r2, _) = push_req(&st, &key, "court.dishonest", &as_of, &format!("c{i}"), &bad, 0).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(r2["quarantined"], 1, "{r2}");
        assert!(r2["quarantine"][0][2].as_str().unwrap().contains("91330604NOTACODE"));
        // The stream from before the push: exactly the push's events, each once, in order.
        let req = Request::get(format!("/api/v1/stream?after={before}"))
            .header(header::COOKIE, &session)
            .body(Body::empty())
            .unwrap();
        let res = router(st.clone()).oneshot(req).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut body = res.into_body();
        let mut text = String::new();
        while text.matches("event: credit").count() < ids.len() {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
                .await
                .expect("the events arrive")
                .unwrap()
                .unwrap();
            if let Ok(d) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&d));
            }
        }
        for id in &ids {
            assert_eq!(text.matches(id.as_str()).count(), 1, "{id} once in {text}");
        }
        assert!(text.contains(&format!("\"uscc\":\"{firm}\"")));
        // Signed out: the stream opened with that session ends at the next push (it reads no more).
        let r = send(&st, "POST", "/logout", Some(&session), Some(&format!("csrf={csrf}"))).await;
        assert!(r.status.is_redirection(), "{}", r.body);
        let (s, _, _) = push_req(&st, &key, "court.dishonest", &as_of, &format!("d{i}"), &bad, 0).await;
        assert_eq!(s, StatusCode::CREATED);
        let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            loop {
                match body.frame().await {
                    None => break true,
                    Some(Ok(f)) if f.is_data() => {
                        let d = f.into_data().unwrap();
                        assert!(
                            !String::from_utf8_lossy(&d).contains("event: credit"),
                            "no event after signing out"
                        );
                    }
                    Some(_) => {}
                }
            }
        })
        .await;
        assert_eq!(ended, Ok(true), "the stream ended");
        // The events are on the audit log as the regulator's reads.
        let logged = blocking(|| {
            xinyong_server::audit::of_firm(&**st.pool.get().unwrap(), &firm, 500)
                .unwrap()
                .iter()
                .any(|r| r.user_id == reg && r.target == "/api/v1/stream")
        });
        assert!(logged);
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn an_administrator_lists_the_sources_and_makes_and_revokes_a_push_key() {
    let all = states();
    let registry = std::sync::Arc::new(xinyong_registry::Registry::builtin().unwrap());
    for (i, base) in all.iter().enumerate() {
        let st = base
            .clone()
            .with_ingest(ingest_fn(registry.clone()))
            .with_rescore(xinyong_app::credit::live_rescorer());
        let adm = format!("t-keys-admin-{i}");
        let secret = make_user(&st, &adm, Role::Admin, "ops");
        let (session, csrf) = login(&st, &adm, auth::totp_code(&secret, now())).await;
        let r = send(&st, "GET", "/admin", Some(&session), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(
            r.body.matches("class=\"source\"").count(),
            registry.sources.len(),
            "every registered source is listed"
        );
        // A key for the water company's front-end machine: its secret shown once.
        let r = send(
            &st,
            "POST",
            "/admin/push-keys",
            Some(&session),
            Some(&format!("csrf={csrf}&source=water")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let grab = |id: &str| {
            let k = r.body.find(&format!("id=\"{id}\">")).unwrap() + id.len() + 6;
            r.body[k..k + r.body[k..].find('<').unwrap()].to_string()
        };
        let key = (grab("created-key"), grab("created-secret"));
        assert!(key.0.starts_with("pk_") && key.1.len() >= 32);
        assert_eq!(r.headers[header::CACHE_CONTROL], "no-store");
        // The key works for the source's own dataset; not for an unknown source's.
        let bad = send(
            &st,
            "POST",
            "/admin/push-keys",
            Some(&session),
            Some(&format!("csrf={csrf}&source=nope")),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        let body = b"[]";
        let (s, receipt, _) = push_req(&st, &key, "water.usage", "2026-01-10", &format!("w{i}"), body, 0).await;
        assert_eq!(s, StatusCode::CREATED, "{receipt}");
        // Revoked: the next push is refused; revoking twice is an error.
        let r = send(
            &st,
            "POST",
            &format!("/admin/push-keys/{}/revoke", key.0),
            Some(&session),
            Some(&format!("csrf={csrf}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let (s, _, _) = push_req(&st, &key, "water.usage", "2026-01-10", &format!("w2{i}"), body, 0).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let r = send(
            &st,
            "POST",
            &format!("/admin/push-keys/{}/revoke", key.0),
            Some(&session),
            Some(&format!("csrf={csrf}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        // A bank cannot make keys.
        let bank = format!("t-keys-bank-{i}");
        let bs = make_user(&st, &bank, Role::Bank, "bank95");
        let (bank_s, bank_csrf) = login(&st, &bank, auth::totp_code(&bs, now())).await;
        let r = send(
            &st,
            "POST",
            "/admin/push-keys",
            Some(&bank_s),
            Some(&format!("csrf={bank_csrf}&source=water")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn webhooks_deliver_each_event_signed_retry_after_a_failure_and_dedupe_by_id() {
    use std::sync::{Arc, Mutex};
    let all = states();
    let registry = std::sync::Arc::new(xinyong_registry::Registry::builtin().unwrap());
    for (i, base) in all.iter().enumerate() {
        let mut st = base
            .clone()
            .with_ingest(ingest_fn(registry.clone()))
            .with_rescore(xinyong_app::credit::live_rescorer());
        // The receiver is on this machine: allowed by configuration here (refused by default, below).
        let strict = st.clone();
        let mut cfg = (*st.cfg).clone();
        cfg.webhook_private_hosts = true;
        st.cfg = std::sync::Arc::new(cfg);
        // A receiver that fails its first request, then records (event id, signature valid).
        type Got = Arc<Mutex<(usize, Vec<(String, String, String, Vec<u8>)>)>>;
        let got: Got = Arc::default();
        let g2 = got.clone();
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |h: axum::http::HeaderMap, body: axum::body::Bytes| {
                let g = g2.clone();
                async move {
                    let mut g = g.lock().unwrap();
                    g.0 += 1;
                    let hv = |k: &str| h[k].to_str().unwrap().to_string();
                    g.1.push((
                        hv("x-xinyong-event-id"),
                        hv("x-xinyong-timestamp"),
                        hv("x-xinyong-signature"),
                        body.to_vec(),
                    ));
                    if g.0 == 1 {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::NO_CONTENT
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        // The regulator follows a firm and adds a webhook; its secret is shown once.
        let firm = blocking(|| {
            let store = st.pool.get().unwrap();
            let run = store.latest_run().unwrap().unwrap();
            store
                .run_scores(&run.run_id)
                .unwrap()
                .iter()
                .rev()
                .filter(|s| s.colour.is_none())
                .nth(i)
                .expect("an uncoloured firm")
                .uscc
                .clone()
        });
        let reg = format!("t-hook-reg-{i}");
        let secret = make_user(&st, &reg, Role::Regulator, "jrb");
        let (session, csrf) = login(&st, &reg, auth::totp_code(&secret, now())).await;
        let r = send(
            &st,
            "POST",
            "/subscriptions",
            Some(&session),
            Some(&format!("csrf={csrf}&kind=firm&target={firm}")),
        )
        .await;
        assert!(r.status.is_redirection());
        let url = enc(&format!("http://{addr}/hook"));
        let r = send(
            &st,
            "POST",
            "/me/webhooks",
            Some(&session),
            Some(&format!("csrf={csrf}&url={url}")),
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let k = r.body.find("id=\"created-secret\">").unwrap() + "id=\"created-secret\">".len();
        let hook_secret = r.body[k..k + r.body[k..].find('<').unwrap()].to_string();
        // Not http, or an internal address under the default configuration: refused.
        let r = send(
            &st,
            "POST",
            "/me/webhooks",
            Some(&session),
            Some(&format!("csrf={csrf}&url=ftp%3A%2F%2Fx")),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        for internal in [
            "http://127.0.0.1:9/x",
            "http://169.254.169.254/latest",
            "http://10.0.0.8/",
            "http://localhost/",
        ] {
            let form = format!("csrf={csrf}&url={}", enc(internal));
            let r = send(&strict, "POST", "/me/webhooks", Some(&session), Some(&form)).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "{internal}: {}", r.body);
        }
        // A push makes events for the firm.
        let key = blocking(|| {
            let k = xinyong_server::push::create_key(&mut **st.pool.get().unwrap(), "court", "2026-01-01T00:00:00Z")
                .unwrap();
            (k.key_id, k.secret)
        });
        let as_of = st.summary().as_of.clone().unwrap();
        let record = serde_json::json!([{
            "统一社会信用代码": firm, "执行案号": format!("(2026)浙0604执hook{i}号"),
            "发布日期": format!("{}/{}/03", &as_of[..4], &as_of[5..7]), "名单类型": "失信被执行人",
        }]);
        let (s, receipt, _) = push_req(
            &st,
            &key,
            "court.dishonest",
            &as_of,
            &format!("h{i}"),
            &serde_json::to_vec(&record).unwrap(),
            0,
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{receipt}");
        let ids: Vec<String> = serde_json::from_value(receipt["events"].clone()).unwrap();
        assert!(!ids.is_empty());
        // The first round fails at the first event; the retry waits its backoff, then all arrive.
        let client = xinyong_server::webhooks::client();
        xinyong_server::webhooks::round(&st, &client).await.unwrap();
        assert_eq!(got.lock().unwrap().0, 1, "one attempt, failed");
        let hook = blocking(|| {
            xinyong_server::webhooks::hooks_of(&**st.pool.get().unwrap(), Some(&reg))
                .unwrap()
                .remove(0)
        });
        assert_eq!(
            (hook.attempts, hook.last_error.as_deref()),
            (1, Some("HTTP 500 Internal Server Error"))
        );
        xinyong_server::webhooks::round(&st, &client).await.unwrap();
        assert_eq!(got.lock().unwrap().0, 1, "not before its backoff");
        tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
        xinyong_server::webhooks::round(&st, &client).await.unwrap();
        let g = got.lock().unwrap().1.clone();
        let mut seen: Vec<String> = g.iter().map(|x| x.0.clone()).collect();
        seen.sort();
        seen.dedup();
        let mut want = ids.clone();
        want.sort();
        assert_eq!(seen, want, "after deduplication, every event once");
        for (id, ts, sig, body) in &g {
            assert_eq!(
                sig,
                &xinyong_server::webhooks::signature(&hook_secret, ts, body),
                "{id} signed"
            );
        }
        let hook = blocking(|| {
            xinyong_server::webhooks::hooks_of(&**st.pool.get().unwrap(), Some(&reg))
                .unwrap()
                .remove(0)
        });
        assert_eq!((hook.attempts, hook.last_error), (0, None));
        // Nothing new: another round posts nothing.
        let n = got.lock().unwrap().0;
        xinyong_server::webhooks::round(&st, &client).await.unwrap();
        assert_eq!(got.lock().unwrap().0, n);
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn the_inbox_folds_repeats_and_an_officers_mark_holds_across_recomputes() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (firm, _) = some_firm(st);
        let reg = format!("t-triage-reg-{i}");
        let secret = make_user(st, &reg, Role::Regulator, "jrb");
        let (session, csrf) = login(st, &reg, auth::totp_code(&secret, now())).await;
        let r = send(
            st,
            "POST",
            "/subscriptions",
            Some(&session),
            Some(&format!("csrf={csrf}&kind=firm&target={firm}")),
        )
        .await;
        assert!(r.status.is_redirection());
        // The live path raised the same warning twice (two pushes), for a rule no run raised for this firm.
        let rule = 900 + i as i64;
        let add = |n: i64, date: &str| {
            // Sequence numbers of their own, far from those pushes in parallel tests take (max + 1).
            let seq = 50_000_000 + i as i64 * 1_000 + n * 100;
            let mut store = st.pool.get().unwrap();
            store
                .apply_rows(&[xinyong_store::rows::RowOp::Insert {
                    table: "outbox",
                    row: vec![
                        xinyong_store::rows::Value::Int(seq),
                        xinyong_store::rows::Value::text(format!("t-triage-{i}-{n}")),
                        xinyong_store::rows::Value::text(&firm),
                        xinyong_store::rows::Value::text(date),
                        xinyong_store::rows::Value::text("warning_raised"),
                        xinyong_store::rows::Value::Int(rule),
                        xinyong_store::rows::Value::text(""),
                        xinyong_store::rows::Value::text("red"),
                        xinyong_store::rows::Value::text(format!("cause-{n}")),
                        xinyong_store::rows::Value::text("2026-02-01T00:00:00Z"),
                    ],
                }])
                .unwrap();
        };
        blocking(|| {
            add(1, "2026-02-01");
            add(2, "2026-02-02");
        });
        let key = format!("{firm}|warning_raised|{rule}|red");
        let row_of = |body: &str| -> Option<String> {
            let k = body.find(&format!("data-key=\"{key}\""))?;
            let end = body[k..].find("</tr>")? + k;
            Some(body[k..end].to_string())
        };
        let r = send(st, "GET", "/inbox", Some(&session), None).await;
        let row = row_of(&r.body).expect("the alert is listed");
        assert_eq!(
            r.body.matches(&format!("data-key=\"{key}\"")).count(),
            1,
            "repeats folded"
        );
        assert!(row.contains("×2"), "{row}");
        // Marked a false alarm: out of the inbox (counted), back with ?all=1.
        let form = format!("csrf={csrf}&key={}&mark=false_alarm&note=known", enc(&key));
        let r = send(st, "POST", "/inbox/mark", Some(&session), Some(&form)).await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        let r = send(st, "GET", "/inbox", Some(&session), None).await;
        assert!(row_of(&r.body).is_none());
        assert!(r.body.contains("id=\"dismissed\""));
        let r = send(st, "GET", "/inbox?all=1", Some(&session), None).await;
        assert!(row_of(&r.body).is_some() && r.body.contains("marked-false_alarm"));
        // A later recompute raises it again: the mark holds (the alert's key, not the event's id).
        blocking(|| add(3, "2026-02-03"));
        let r = send(st, "GET", "/inbox", Some(&session), None).await;
        assert!(row_of(&r.body).is_none(), "still a false alarm");
        // Cleared: back, with all three events folded.
        let form = format!("csrf={csrf}&key={}&mark=clear", enc(&key));
        send(st, "POST", "/inbox/mark", Some(&session), Some(&form)).await;
        let r = send(st, "GET", "/inbox", Some(&session), None).await;
        assert!(row_of(&r.body).expect("listed again").contains("×3"));
        // The daily digest: the day the three arrived (Beijing time) lists the firm with them, another day not.
        let r = send(st, "GET", "/inbox/digest?date=2026-02-01", Some(&session), None).await;
        assert_eq!(r.status, StatusCode::OK);
        let k = r
            .body
            .find(&format!("data-firm=\"{firm}\""))
            .expect("the firm in the digest");
        let row = &r.body[k..k + r.body[k..].find("</tr>").unwrap()];
        assert!(row.contains("<td>3</td>") || row.contains("×3"), "{row}");
        let r = send(st, "GET", "/inbox/digest?date=2026-02-02", Some(&session), None).await;
        assert!(!r.body.contains(&format!("data-firm=\"{firm}\"")));
        assert_eq!(
            send(st, "GET", "/inbox/digest?date=yesterday", Some(&session), None)
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
        // A bad mark is refused.
        let form = format!("csrf={csrf}&key=x&mark=delete");
        assert_eq!(
            send(st, "POST", "/inbox/mark", Some(&session), Some(&form))
                .await
                .status,
            StatusCode::BAD_REQUEST
        );
    }
    blocking(move || drop(all));
}

/// A multipart form with text fields and files (field `files`).
async fn multipart(
    st: &AppState,
    uri: &str,
    cookie: &str,
    fields: &[(&str, &str)],
    files: &[(&str, &[u8])],
) -> (StatusCode, axum::http::HeaderMap, String) {
    let boundary = "xyObjBoundary7Qm";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let req = Request::post(uri)
        .header(header::COOKIE, cookie)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let res = router(st.clone()).oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

/// A firm with exactly one current dishonest-debtor listing that its latest score warns of (rule 1), and the
/// listing's fact id; `skip` firms are left out.
fn listed_firm(st: &AppState, skip: usize) -> (String, i64) {
    blocking(|| {
        let store = st.pool.get().unwrap();
        let run = store.latest_run().unwrap().unwrap();
        let mut found = Vec::new();
        for s in store.run_scores(&run.run_id).unwrap() {
            let Some(j) = store.run_score(&run.run_id, &s.uscc).unwrap() else {
                continue;
            };
            let fs: xinyong_credit::score::FirmScore = serde_json::from_str(&j).unwrap();
            if !fs.warnings.iter().any(|w| w.rule == 1) {
                continue;
            }
            let listings: Vec<i64> = store
                .facts_of(&s.uscc, None)
                .unwrap()
                .into_iter()
                .filter(|f| f.dataset == "court.dishonest")
                .map(|f| f.fact_id)
                .collect();
            if listings.len() == 1 {
                found.push((s.uscc.clone(), listings[0]));
                if found.len() > skip {
                    break;
                }
            }
        }
        found
            .into_iter()
            .nth(skip)
            .expect("a firm with one dishonest-debtor listing")
    })
}

/// The first current fact matching `pred` of each scored firm, `skip` such firms left out: (firm, fact id,
/// source).
fn scored_firm_fact(
    st: &AppState,
    skip: usize,
    what: &str,
    pred: impl Fn(&xinyong_store::StoredFact) -> bool + Send + Sync,
) -> (String, i64, String) {
    blocking(|| {
        let store = st.pool.get().unwrap();
        let run = store.latest_run().unwrap().unwrap();
        store
            .run_scores(&run.run_id)
            .unwrap()
            .iter()
            .filter_map(|s| {
                store
                    .facts_of(&s.uscc, None)
                    .unwrap()
                    .into_iter()
                    .find(|f| pred(f))
                    .map(|f| (s.uscc.clone(), f.fact_id, f.source))
            })
            .nth(skip)
            .unwrap_or_else(|| panic!("a firm with {what}"))
    })
}

/// A firm's current penalty record with an amount; `skip` such firms are left out.
fn penalty_fact(st: &AppState, skip: usize) -> (String, i64) {
    let (firm, fact, _) = scored_firm_fact(st, skip, "a penalty", |f| {
        f.dataset.ends_with(".penalties") && f.fields.contains("\"amount\":")
    });
    (firm, fact)
}

#[tokio::test]
async fn an_objection_marks_the_fact_disputed_at_once_and_a_removal_rescores_and_tells_subscribers() {
    let all = states();
    for (i, base) in all.iter().enumerate() {
        let st = base
            .clone()
            .with_rescore(xinyong_app::credit::live_rescorer())
            .with_what_if(xinyong_app::credit::what_if());
        let (firm, fact) = listed_firm(&st, 0);
        let ent = format!("t-obj-ent-{i}");
        make_user(&st, &ent, Role::Enterprise, &firm);
        let (session, csrf) = login(&st, &ent, None).await;
        // The firm's own page offers an objection beside the record.
        let page = send(&st, "GET", &format!("/firm/{firm}"), Some(&session), None).await;
        assert!(
            page.body.contains(&format!("/objections/new?fact={fact}")),
            "an Object link"
        );
        // "What would improve my score": the dishonest-debtor warning, what clears it, the listing behind it
        // with an objection link and the day it leaves the credit views.
        let imp = send(&st, "GET", "/improve", Some(&session), None).await;
        assert_eq!(imp.status, StatusCode::OK, "{}", imp.body);
        assert!(imp.body.contains("data-rule=\"1\""), "the warning is listed");
        assert!(
            imp.body.contains(&format!("/objections/new?fact={fact}")),
            "with its record to object to"
        );
        assert!(
            imp.body.contains("计入信用视图至") || imp.body.contains("后再计入信用视图5年"),
            "and when the record leaves the credit views (a listing not ended: 5 years after it ends)"
        );
        // The form: the record, the clock, the score with and without it.
        let new = send(
            &st,
            "GET",
            &format!("/objections/new?fact={fact}"),
            Some(&session),
            None,
        )
        .await;
        assert_eq!(new.status, StatusCode::OK, "{}", new.body);
        assert!(new.body.contains("id=\"due-if-today\""));
        assert!(
            new.body.contains("id=\"grade-without\""),
            "the score without the record"
        );
        // Filed, with an attachment.
        let (s, h, body) = multipart(
            &st,
            &format!("/objections?csrf={csrf}"),
            &session,
            &[("fact", &fact.to_string()), ("text", "该失信记录已履行完毕并已屏蔽。")],
            &[("履行证明.pdf", b"%PDF-1.4 proof")],
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        let loc = h[header::LOCATION].to_str().unwrap().to_string();
        let id = loc.trim_start_matches("/objections/").to_string();
        // Disputed at once, in the public view too (no cache left stale).
        let public = send(&st, "GET", &format!("/firm/{firm}"), None, None).await;
        assert!(
            public
                .body
                .contains(&format!("data-fact=\"{fact}\" class=\"disputed\"")),
            "the public page marks the record disputed"
        );
        // A second objection to the same record is refused while the first is open.
        let (s, _, _) = multipart(
            &st,
            &format!("/objections?csrf={csrf}"),
            &session,
            &[("fact", &fact.to_string()), ("text", "again")],
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        // Who may read the case: the firm, the department that supplied the record, the regulator; not
        // another firm, not a bank.
        let other = format!("t-obj-other-{i}");
        make_user(&st, &other, Role::Enterprise, "91330604MA2XXXXXX0");
        let (os, _) = login(&st, &other, None).await;
        assert_eq!(
            send(&st, "GET", &loc, Some(&os), None).await.status,
            StatusCode::FORBIDDEN
        );
        let court = format!("t-obj-court-{i}");
        let secret = make_user(&st, &court, Role::Department, "court");
        let (cs, ccsrf) = login(&st, &court, auth::totp_code(&secret, now())).await;
        let case = send(&st, "GET", &loc, Some(&cs), None).await;
        assert_eq!(case.status, StatusCode::OK);
        assert!(case.body.contains("id=\"answer-submit\""), "the department can answer");
        let listed = send(&st, "GET", "/objections", Some(&cs), None).await;
        assert!(listed.body.contains(&id), "on the department's list");
        // Another department may not answer.
        let amr = format!("t-obj-amr-{i}");
        let s2 = make_user(&st, &amr, Role::Department, "amr");
        let (as_, acsrf) = login(&st, &amr, auth::totp_code(&s2, now())).await;
        let r = send(
            &st,
            "POST",
            &format!("{loc}/answer"),
            Some(&as_),
            Some(&format!("csrf={acsrf}&outcome=upheld&answer=no")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // The court removes the listing: the record is retired (kept as history), the firm rescored, and
        // the change goes to its subscribers through the outbox.
        let r = send(
            &st,
            "POST",
            &format!("{loc}/answer"),
            Some(&cs),
            Some(&format!(
                "csrf={ccsrf}&outcome=removed&answer=%E5%B7%B2%E5%B1%A5%E8%A1%8C"
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        let (retired, events, before_today) = blocking(|| {
            let s = st.pool.get().unwrap();
            let f = s.fact(fact).unwrap();
            let ev: Vec<(String, Option<i64>)> = s
                .rows(&xinyong_store::rows::RowQuery::all("outbox").eq("uscc", xinyong_store::rows::Value::text(&firm)))
                .unwrap()
                .into_iter()
                .filter(|r| r[8].as_str() == Some(format!("objection:{id}").as_str()))
                .map(|r| (r[4].as_str().unwrap().to_string(), r[5].as_int()))
                .collect();
            let yesterday = xinyong_server::add_days(&st.today(), -1);
            let then = s
                .facts_of(&firm, Some(&yesterday))
                .unwrap()
                .iter()
                .any(|x| x.fact_id == fact);
            (f.known_to, ev, then)
        });
        assert_eq!(retired, Some(st.today()), "retired today");
        assert!(before_today, "as of yesterday the record is still there (history kept)");
        assert!(
            events.contains(&("warning_cleared".to_string(), Some(1))),
            "the dishonest-debtor warning cleared, told to subscribers: {events:?}"
        );
        let case = send(&st, "GET", &loc, Some(&session), None).await;
        assert!(case.body.contains("id=\"obj-outcome\""));
        assert!(!case.body.contains("id=\"answer-submit\""));
        let public = send(&st, "GET", &format!("/firm/{firm}"), None, None).await;
        assert!(
            !public.body.contains(&format!("data-fact=\"{fact}\"")),
            "the removed record is gone"
        );
        // The public turnaround figures count it (no firm named).
        let t = send(&st, "GET", "/api/v1/objections/turnaround", None, None).await;
        assert_eq!(t.status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_str(&t.body).unwrap();
        let court_row = v["turnaround"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["source"] == "court")
            .cloned()
            .unwrap();
        assert!(court_row["removed"].as_u64() >= Some(1));
        assert!(!t.body.contains(&firm));
        // The attachment downloads for the department, as an attachment.
        let r = send(&st, "GET", &format!("{loc}/files/1"), Some(&cs), None).await;
        assert_eq!(r.status, StatusCode::OK);
        assert!(r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment"));
        assert_eq!(r.body, "%PDF-1.4 proof");
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn a_correction_keeps_both_versions_and_the_clock_reminds_escalates_and_marks_overdue() {
    use xinyong_server::objections as ob;
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (firm, fact) = penalty_fact(st, 0);
        let source = blocking(|| st.pool.get().unwrap().fact(fact).unwrap().source);
        let who = xinyong_server::auth::Principal {
            user_id: format!("t-clock-ent-{i}"),
            role: Role::Enterprise,
            org: firm.clone(),
            name: "x".into(),
            csrf: String::new(),
            token_hash: String::new(),
        };
        let court = xinyong_server::auth::Principal {
            role: Role::Department,
            org: source.clone(),
            user_id: format!("t-clock-court-{i}"),
            ..who.clone()
        };
        let rights = ob::Rights::builtin();
        let (stages, log, answered) = blocking(|| {
            let mut s = st.pool.get().unwrap();
            // Filed Saturday 12 September 2026: day 15 is the 27th; day 20, 2 October, is a National Day
            // holiday (1–7 October, the 3rd and 4th a weekend), so it is due Thursday 8 October.
            let filing = ob::Filing {
                fact_id: fact,
                text: "wrong amount",
                files: &[],
            };
            let id = ob::file(&mut **s, &who, &filing, &rights, "2026-09-12", "t0").unwrap();
            let mut stages = Vec::new();
            for d in ["2026-09-20", "2026-09-27", "2026-10-08", "2026-10-09", "2026-10-10"] {
                let moved = ob::tick(&mut **s, &rights, d, "t").unwrap();
                stages.push((d, moved.iter().find(|m| m.0 == id).map(|m| m.1.key())));
            }
            let log: Vec<(String, String)> = ob::log(&**s, &id)
                .unwrap()
                .into_iter()
                .map(|l| (l.day, l.action))
                .collect();
            // Corrected late: the amount was wrong.
            let mut fix = std::collections::BTreeMap::new();
            fix.insert("amount".to_string(), "1".to_string());
            let answer = |s: &mut dyn xinyong_store::Store| {
                ob::answer(
                    s,
                    &court,
                    &id,
                    ob::Outcome::Corrected,
                    "金额有误，已更正",
                    &fix,
                    &rights,
                    "2026-10-12",
                    "t2",
                )
            };
            // The correction's batch is stored, then the server dies before the case's row: the case is
            // still open, the record already replaced. The department answers again: the same correction
            // completes the case, no second batch.
            let crashed = answer(&mut **s).unwrap();
            drop(crashed);
            assert!(ob::get(&**s, &id).unwrap().unwrap().is_open());
            let batches = s.batch_ids().unwrap().len();
            let a = answer(&mut **s).unwrap();
            assert_eq!(s.batch_ids().unwrap().len(), batches, "no second batch");
            s.apply_rows(&a.ops).unwrap();
            (stages, log, ob::get(&**s, &id).unwrap().unwrap())
        });
        assert_eq!(
            stages,
            vec![
                ("2026-09-20", None),
                ("2026-09-27", Some("escalated")),
                ("2026-10-08", None),
                ("2026-10-09", Some("overdue")),
                ("2026-10-10", None),
            ]
        );
        assert_eq!(
            log.iter().map(|(d, a)| format!("{d} {a}")).collect::<Vec<_>>(),
            vec![
                "2026-09-12 filed",
                "2026-09-27 reminded",
                "2026-09-27 escalated",
                "2026-10-09 overdue"
            ]
        );
        assert_eq!(answered.outcome.as_deref(), Some("corrected"));
        assert_eq!(answered.stage, "answered_late");
        let (old, new) = blocking(|| {
            let s = st.pool.get().unwrap();
            (s.fact(fact).unwrap(), s.fact(answered.new_fact.unwrap()).unwrap())
        });
        assert_eq!(
            old.known_to.as_deref(),
            Some("2026-10-12"),
            "the old version kept, closed at the correction"
        );
        assert!(new.fields.contains("\"amount\":1"), "{}", new.fields);
        assert_eq!(new.known_from, "2026-10-12");
        // Answering twice is refused.
        let again = blocking(|| {
            let mut s = st.pool.get().unwrap();
            ob::answer(
                &mut **s,
                &court,
                &answered.id,
                ob::Outcome::Upheld,
                "x",
                &Default::default(),
                &rights,
                "2026-10-14",
                "t3",
            )
            .is_err()
        });
        assert!(again);
    }
}

#[tokio::test]
async fn a_granted_credit_repair_ends_the_records_publicity_but_not_its_credit_view() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        // A penalty still public today whose rules allow a repair from a day already past.
        let today = chrono::NaiveDate::parse_from_str(&st.today(), "%Y-%m-%d").unwrap();
        let (firm, fact, source, reg_fact) = blocking(|| {
            let store = st.pool.get().unwrap();
            let run = store.latest_run().unwrap().unwrap();
            store
                .run_scores(&run.run_id)
                .unwrap()
                .iter()
                .filter_map(|s| {
                    let facts = store.facts_of(&s.uscc, None).unwrap();
                    let reg = facts.iter().find(|f| f.dataset == "amr.registration")?.fact_id;
                    facts.iter().find_map(|f| {
                        let m: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).ok()?;
                        let w = st.rights.windows.of(
                            xinyong_rights::View::Public,
                            &f.dataset,
                            &m,
                            f.period.as_deref(),
                            None,
                            &st.rights.calendar,
                        )?;
                        (f.dataset.ends_with(".penalties")
                            && w.last_day.is_some_and(|l| l >= today)
                            && w.repairable_from.is_some_and(|r| r <= today))
                        .then(|| (s.uscc.clone(), f.fact_id, f.source.clone(), reg))
                    })
                })
                .nth(1)
                .expect("a repairable penalty")
        });
        let ent = format!("t-repair-ent-{i}");
        make_user(st, &ent, Role::Enterprise, &firm);
        let (session, csrf) = login(st, &ent, None).await;
        let shown = |cookie: Option<String>| {
            let st = st.clone();
            let firm = firm.clone();
            async move {
                send(&st, "GET", &format!("/firm/{firm}"), cookie.as_deref(), None)
                    .await
                    .body
                    .contains(&format!("data-fact=\"{fact}\""))
            }
        };
        assert!(shown(None).await, "public before the repair");
        let page = send(st, "GET", &format!("/repairs/new?fact={fact}"), Some(&session), None).await;
        assert!(page.body.contains("id=\"repair-submit\""), "{}", page.body);
        // A record the rules allow no repair of is refused.
        let (s, _, _) = multipart(
            st,
            &format!("/repairs?csrf={csrf}"),
            &session,
            &[("fact", &reg_fact.to_string()), ("text", "x")],
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let (s, h, body) = multipart(
            st,
            &format!("/repairs?csrf={csrf}"),
            &session,
            &[
                ("fact", &fact.to_string()),
                ("text", "罚款已缴清，违法行为已整改，承诺守法经营。"),
            ],
            &[("缴款凭证.pdf", b"%PDF receipt")],
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        let loc = h[header::LOCATION].to_str().unwrap().to_string();
        let (s, _, _) = multipart(
            st,
            &format!("/repairs?csrf={csrf}"),
            &session,
            &[("fact", &fact.to_string()), ("text", "again")],
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "one application a record");
        // The supplying department grants it.
        let dept = format!("t-repair-dept-{i}");
        let secret = make_user(st, &dept, Role::Department, &source);
        let (ds, dcsrf) = login(st, &dept, auth::totp_code(&secret, now())).await;
        let case = send(st, "GET", &loc, Some(&ds), None).await;
        assert!(case.body.contains("id=\"decide-submit\""));
        let r = send(
            st,
            "POST",
            &format!("{loc}/decide"),
            Some(&ds),
            Some(&format!(
                "csrf={dcsrf}&decision=grant&answer=%E5%87%86%E4%BA%88%E4%BF%AE%E5%A4%8D"
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        assert!(!shown(None).await, "no longer public once repaired");
        assert!(
            shown(Some(session.clone())).await,
            "the firm's own (credit) view keeps it"
        );
        let case = send(st, "GET", &loc, Some(&session), None).await;
        assert!(case.body.contains("id=\"public-until\""));
        assert!(
            case.body.contains(&xinyong_server::add_days(&st.today(), -1)),
            "public until yesterday"
        );
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn a_person_sees_what_is_held_about_them_and_who_read_it_and_objects() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (firm, _) = some_firm(st);
        let (reg_fact, name, idn) = blocking(|| {
            let s = st.pool.get().unwrap();
            let f = s
                .facts_of(&firm, None)
                .unwrap()
                .into_iter()
                .find(|f| f.dataset == "amr.registration")
                .unwrap();
            let v: serde_json::Value = serde_json::from_str(&f.fields).unwrap();
            (
                f.fact_id,
                v["legal_rep"].as_str().unwrap().to_string(),
                v["legal_rep_id"].as_str().unwrap().to_string(),
            )
        });
        let person = xinyong_credit::network::person_id(&name, &idn);
        let pid = format!("t-person-{i}");
        let secret = make_user(st, &pid, Role::Person, &person);
        let (ps, pcsrf) = login(st, &pid, auth::totp_code(&secret, now())).await;
        // The regulator reads the firm's record: on the person's page as a read.
        let reg = format!("t-person-reg-{i}");
        let rs = make_user(st, &reg, Role::Regulator, "jrb");
        let (rsess, _) = login(st, &reg, auth::totp_code(&rs, now())).await;
        assert_eq!(
            send(st, "GET", &format!("/firm/{firm}"), Some(&rsess), None)
                .await
                .status,
            StatusCode::OK
        );
        let page = send(st, "GET", "/person", Some(&ps), None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        assert!(
            page.body.contains(&format!("data-fact=\"{reg_fact}\"")),
            "the registration that names them"
        );
        assert!(page.body.contains(&idn), "their own id number, shown to them");
        assert!(page.body.contains("class=\"read\""), "who read the firm's record");
        // No other page shows their id number: the firm's page, even to the regulator.
        let firm_page = send(st, "GET", &format!("/firm/{firm}"), Some(&rsess), None).await;
        assert!(!firm_page.body.contains(&idn));
        // They object to the record; the register's department gets it; the firm's own account does not
        // read a person's case; another person may not file on a record that does not name them.
        let (s, h, body) = multipart(
            st,
            &format!("/objections?csrf={pcsrf}"),
            &ps,
            &[("fact", &reg_fact.to_string()), ("text", "本人已不再担任法定代表人。")],
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        let loc = h[header::LOCATION].to_str().unwrap().to_string();
        assert_eq!(send(st, "GET", &loc, Some(&ps), None).await.status, StatusCode::OK);
        let ent = format!("t-person-firm-{i}");
        make_user(st, &ent, Role::Enterprise, &firm);
        let (es, _) = login(st, &ent, None).await;
        assert_eq!(
            send(st, "GET", &loc, Some(&es), None).await.status,
            StatusCode::FORBIDDEN
        );
        let other = format!("t-person-other-{i}");
        let os = make_user(st, &other, Role::Person, "Pdeadbeef0000");
        let (osess, ocsrf) = login(st, &other, auth::totp_code(&os, now())).await;
        let (s, _, _) = multipart(
            st,
            &format!("/objections?csrf={ocsrf}"),
            &osess,
            &[("fact", &reg_fact.to_string()), ("text", "not me")],
            &[],
        )
        .await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "as if there were no such record: fact ids are not probed"
        );
        let amr = format!("t-person-amr-{i}");
        let asec = make_user(st, &amr, Role::Department, "amr");
        let (asess, _) = login(st, &amr, auth::totp_code(&asec, now())).await;
        let listed = send(st, "GET", "/objections", Some(&asess), None).await;
        assert!(
            listed.body.contains(loc.trim_start_matches("/objections/")),
            "on the department's list"
        );
        let mine = send(st, "GET", "/objections", Some(&ps), None).await;
        assert!(
            mine.body.contains(loc.trim_start_matches("/objections/")),
            "on the person's own list"
        );
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn an_objection_to_a_loan_record_is_answered_by_the_lender_that_reported_it() {
    let all = states();
    for (i, st) in all.iter().enumerate() {
        let (firm, fact, lender) = scored_firm_fact(st, 5 + i, "a loan record", |f| {
            f.dataset.starts_with("lender.") && f.dataset.ends_with(".loans")
        });
        let ent = format!("t-loanobj-ent-{i}");
        make_user(st, &ent, Role::Enterprise, &firm);
        let (es, ecsrf) = login(st, &ent, None).await;
        let (s, h, body) = multipart(
            st,
            &format!("/objections?csrf={ecsrf}"),
            &es,
            &[("fact", &fact.to_string()), ("text", "该月逾期天数有误。")],
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        let loc = h[header::LOCATION].to_str().unwrap().to_string();
        // Another lender may neither read nor answer it; the reporting lender does both.
        let other = format!("t-loanobj-other-{i}");
        let osec = make_user(
            st,
            &other,
            Role::Bank,
            if lender == "bank01" { "bank02" } else { "bank01" },
        );
        let (os, ocsrf) = login(st, &other, auth::totp_code(&osec, now())).await;
        assert_eq!(
            send(st, "GET", &loc, Some(&os), None).await.status,
            StatusCode::FORBIDDEN
        );
        let r = send(
            st,
            "POST",
            &format!("{loc}/answer"),
            Some(&os),
            Some(&format!("csrf={ocsrf}&outcome=upheld&answer=x")),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let bank = format!("t-loanobj-bank-{i}");
        let bsec = make_user(st, &bank, Role::Bank, &lender);
        let (bs, bcsrf) = login(st, &bank, auth::totp_code(&bsec, now())).await;
        let case = send(st, "GET", &loc, Some(&bs), None).await;
        assert!(case.body.contains("id=\"answer-submit\""), "the lender can answer");
        let r = send(
            st,
            "POST",
            &format!("{loc}/answer"),
            Some(&bs),
            Some(&format!(
                "csrf={bcsrf}&outcome=upheld&answer=%E6%A0%B8%E5%AE%9E%E6%97%A0%E8%AF%AF"
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        // Answered once: a second answer is refused, and the record may be objected to again.
        let r = send(
            st,
            "POST",
            &format!("{loc}/answer"),
            Some(&bs),
            Some(&format!("csrf={bcsrf}&outcome=upheld&answer=x")),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let (s, _, _) = multipart(
            st,
            &format!("/objections?csrf={ecsrf}"),
            &es,
            &[("fact", &fact.to_string()), ("text", "again, with new evidence")],
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "a new objection once the first is answered");
    }
    blocking(move || drop(all));
}

#[tokio::test]
async fn a_record_re_delivered_during_its_objection_stays_disputed_and_is_not_corrected_from_the_old_version() {
    use xinyong_server::objections as ob;
    let all = states();
    for (i, st) in all.iter().enumerate() {
        // A record no other test touches: a court case (the other tests use listings and penalties).
        let (firm, fact, _) = scored_firm_fact(st, 0, "a court case", |f| f.dataset == "court.cases");
        let who = xinyong_server::auth::Principal {
            user_id: format!("t-redeliver-ent-{i}"),
            role: Role::Enterprise,
            org: firm.clone(),
            name: "x".into(),
            csrf: String::new(),
            token_hash: String::new(),
        };
        let rights = ob::Rights::builtin();
        let today = st.today();
        let (id, new_fact, shown, refused, upheld) = blocking(|| {
            let mut s = st.pool.get().unwrap();
            let old = s.fact(fact).unwrap();
            let filing = ob::Filing {
                fact_id: fact,
                text: "wrong",
                files: &[],
            };
            let id = ob::file(&mut **s, &who, &filing, &rights, &today, "t0").unwrap();
            // The department's next delivery re-sends the record, changed: a new version, a new fact id.
            let mut v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&old.fields).unwrap();
            v.insert("note".into(), serde_json::json!("re-delivered"));
            let fields = serde_json::to_string(&v).unwrap();
            {
                let mut w = s.begin().unwrap();
                w.start_batch(&xinyong_store::BatchMeta {
                    batch_id: format!("redeliver-{i}-{fact}"),
                    source: old.source.clone(),
                    dataset: old.dataset.clone(),
                    file_name: "redelivery.jsonl".into(),
                    delivered_on: today.clone(),
                    ingested_at: "2026-12-01T00:00:00.000Z".into(),
                })
                .unwrap();
                w.put_fact(&xinyong_store::NewFact {
                    uscc: &firm,
                    key: &old.key,
                    period: old.period.as_deref(),
                    date: v.get("date").and_then(|d| d.as_str()),
                    end_date: None,
                    fields: &fields,
                    content_hash: &format!("redeliver-{i}"),
                    row: 2,
                    n_rows: 1,
                })
                .unwrap();
                w.end_batch(Default::default(), &[]).unwrap();
                w.commit().unwrap();
            }
            let new_fact = s
                .facts_of(&firm, None)
                .unwrap()
                .into_iter()
                .find(|f| f.key == old.key && f.dataset == old.dataset)
                .unwrap()
                .fact_id;
            // Every view marks the new version disputed too: the objection names the record, not a version.
            let ov = overview(&**s, &firm, Viewer::Full, &today, &rights).unwrap();
            let shown = ov
                .records
                .iter()
                .flat_map(|g| &g.rows)
                .find(|r| r.fact == new_fact)
                .and_then(|r| r.disputed.clone());
            // The supplier may not correct the old version over the newer delivery; it upholds with a note.
            let dept = xinyong_server::auth::Principal {
                role: Role::Department,
                org: old.source.clone(),
                ..who.clone()
            };
            // (a field the objected version has, so that only the re-delivery can refuse it)
            let old_fields: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&old.fields).unwrap();
            let field = old_fields
                .iter()
                .find(|(_, x)| x.is_string())
                .map(|(k, _)| k.clone())
                .unwrap();
            let mut fix = std::collections::BTreeMap::new();
            fix.insert(field, "corrected".to_string());
            let refused = match ob::answer(
                &mut **s,
                &dept,
                &id,
                ob::Outcome::Corrected,
                "x",
                &fix,
                &rights,
                &today,
                "t1",
            ) {
                Err(e) => e.to_string().contains("re-delivered"),
                Ok(_) => false,
            };
            let a = ob::answer(
                &mut **s,
                &dept,
                &id,
                ob::Outcome::Upheld,
                "已重新报送",
                &Default::default(),
                &rights,
                &today,
                "t2",
            )
            .unwrap();
            s.apply_rows(&a.ops).unwrap();
            let upheld = ob::get(&**s, &id).unwrap().unwrap();
            (id, new_fact, shown, refused, upheld)
        });
        assert_ne!(new_fact, fact);
        assert_eq!(
            shown.as_deref(),
            Some(id.as_str()),
            "the re-delivered version is marked disputed"
        );
        assert!(refused, "no correction of the old version over the newer delivery");
        assert_eq!(upheld.outcome.as_deref(), Some("upheld"));
        // Answered: the record is no longer disputed, and may be objected to again.
        let open = blocking(|| {
            ob::disputed(&**st.pool.get().unwrap(), &firm)
                .unwrap()
                .of(&st.pool.get().unwrap().fact(new_fact).unwrap())
                .cloned()
        });
        assert_eq!(open, None);
    }
}

#[tokio::test]
async fn a_correction_through_the_answer_form_reaches_the_firms_subscribers() {
    let all = states();
    for (i, base) in all.iter().enumerate() {
        let st = base.clone().with_rescore(xinyong_app::credit::live_rescorer());
        // Another firm on the dishonest-debtor list (the removal test takes the first).
        let (firm, fact) = listed_firm(&st, 1);
        let ent = format!("t-fix-ent-{i}");
        make_user(&st, &ent, Role::Enterprise, &firm);
        let (es, ecsrf) = login(&st, &ent, None).await;
        // A regulator follows the firm and reads the event stream from now.
        let reg = format!("t-fix-reg-{i}");
        let rsec = make_user(&st, &reg, Role::Regulator, "jrb");
        let (rs, rcsrf) = login(&st, &reg, auth::totp_code(&rsec, now())).await;
        let r = send(
            &st,
            "POST",
            "/subscriptions",
            Some(&rs),
            Some(&format!("csrf={rcsrf}&kind=firm&target={firm}")),
        )
        .await;
        assert!(r.status.is_redirection(), "{}", r.body);
        let before = *st.events.borrow();
        let (s, h, body) = multipart(
            &st,
            &format!("/objections?csrf={ecsrf}"),
            &es,
            &[("fact", &fact.to_string()), ("text", "已履行完毕，法院已屏蔽。")],
            &[],
        )
        .await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{body}");
        let loc = h[header::LOCATION].to_str().unwrap().to_string();
        let id = loc.trim_start_matches("/objections/").to_string();
        // The court corrects the listing: it had ended (屏蔽) the day before the latest run's date, the date the
        // firm is restated as of.
        let court = format!("t-fix-court-{i}");
        let csec = make_user(&st, &court, Role::Department, "court");
        let (cs, ccsrf) = login(&st, &court, auth::totp_code(&csec, now())).await;
        let ended = blocking(|| {
            let s = st.pool.get().unwrap();
            let as_of = s.runs().unwrap().into_iter().map(|r| r.as_of).max().unwrap();
            let listed: serde_json::Value = serde_json::from_str(&s.fact(fact).unwrap().fields).unwrap();
            let listed = listed["date"].as_str().unwrap().to_string();
            xinyong_server::add_days(&as_of, -1).max(listed)
        });
        // A corrected date that is not a date is refused, with the field named.
        let bad = send(
            &st,
            "POST",
            &format!("{loc}/answer"),
            Some(&cs),
            Some(&format!(
                "csrf={ccsrf}&outcome=corrected&answer=x&f.end_date=2025%2F1%2F1"
            )),
        )
        .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST);
        assert!(bad.body.contains("end_date"), "{}", bad.body);
        let r = send(
            &st,
            "POST",
            &format!("{loc}/answer"),
            Some(&cs),
            Some(&format!(
                "csrf={ccsrf}&outcome=corrected&answer=%E5%B7%B2%E5%B1%8F%E8%94%BD&f.end_date={ended}"
            )),
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
        // Both versions are on the case; the firm's events went out with the correction as their cause, and
        // the regulator's stream from before the answer carries them.
        let case = send(&st, "GET", &loc, Some(&es), None).await;
        assert!(case.body.contains("id=\"corrected\""), "both versions side by side");
        let cause = format!("objection:{id}");
        let ids: Vec<String> = blocking(|| {
            st.pool
                .get()
                .unwrap()
                .rows(&xinyong_store::rows::RowQuery::all("outbox").eq("uscc", xinyong_store::rows::Value::text(&firm)))
                .unwrap()
                .into_iter()
                .filter(|r| r[8].as_str() == Some(cause.as_str()))
                .map(|r| r[1].as_str().unwrap().to_string())
                .collect()
        });
        assert!(
            !ids.is_empty(),
            "the correction changed the firm's warnings: events made"
        );
        let req = Request::get(format!("/api/v1/stream?after={before}"))
            .header(header::COOKIE, &rs)
            .body(Body::empty())
            .unwrap();
        let res = router(st.clone()).oneshot(req).await.unwrap();
        let mut body = res.into_body();
        let mut text = String::new();
        while !ids.iter().all(|e| text.contains(e.as_str())) {
            let frame = tokio::time::timeout(std::time::Duration::from_secs(10), body.frame())
                .await
                .expect("the correction's events reach the subscriber")
                .unwrap()
                .unwrap();
            if let Ok(d) = frame.into_data() {
                text.push_str(&String::from_utf8_lossy(&d));
            }
        }
    }
    blocking(move || drop(all));
}
