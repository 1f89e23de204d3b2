//! The differential test of the two stores: the same small district ingested and scored through SQLite and
//! through PostgreSQL (a fresh database on the local server, dropped afterwards) gives the same content hash,
//! facts, scores, warnings, events, index and guarantee circles, with a fixed clock so that ingest times agree.
//!
//! Needs the PostgreSQL server .ci/run starts (XINYONG_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres);
//! an unreachable server fails the test.

mod common;
use common::run;
use std::path::PathBuf;
use xinyong_store::Store;

fn tmp(name: &str) -> PathBuf {
    common::tmp("postgres", name)
}

fn server_url() -> String {
    std::env::var("XINYONG_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// A fresh database, dropped when the guard goes.
struct FreshDb {
    admin: String,
    name: String,
}

impl FreshDb {
    fn new() -> FreshDb {
        let admin = server_url();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!("xinyong_diff_{}_{nanos}", std::process::id());
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!("PostgreSQL at {admin} is not reachable ({e}); .ci/run starts it, or set XINYONG_PG_URL")
        });
        c.batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create database");
        FreshDb { admin, name }
    }
    fn url(&self) -> String {
        match self.admin.rfind('/') {
            Some(i) => format!("{}/{}", &self.admin[..i], self.name),
            None => panic!("XINYONG_PG_URL has no database part"),
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[test]
fn the_same_district_through_sqlite_and_postgresql_gives_the_same_results() {
    let d = tmp("district");
    let mut c = xinyong_gen::GenConfig::demo(3);
    c.enterprises = 300;
    c.invoice_mean_yuan = 400_000.0;
    xinyong_gen::generate(&c, &d, &|_, _, _| {}).expect("generate");
    let sources = d.join("sources");
    let lite = d.join("x.db");
    let pg = FreshDb::new();
    let url = pg.url();
    let clock = "2026-01-20T00:00:00";
    for db in [lite.to_str().unwrap(), url.as_str()] {
        run(&["ingest", "--db", db, "--clock", clock, sources.to_str().unwrap()]);
        run(&["score", "--db", db, "--train"]);
    }
    let a = xinyong_store_sqlite::SqliteStore::open(&lite).unwrap();
    let b = xinyong_store_postgres::PgStore::connect(&url).unwrap();
    assert_eq!(
        a.content_hash().unwrap(),
        b.content_hash().unwrap(),
        "facts, history, quarantine, batches"
    );
    assert_eq!(a.stats().unwrap(), b.stats().unwrap());
    let (ra, rb) = (a.runs().unwrap(), b.runs().unwrap());
    assert_eq!(
        ra, rb,
        "runs (id = as-of date / model version, created at the fixed clock)"
    );
    let run_id = &ra[0].run_id;
    assert_eq!(a.model(None).unwrap(), b.model(None).unwrap(), "the trained model");
    let sa = a.run_scores(run_id).unwrap();
    assert!(sa.len() > 200);
    assert_eq!(sa, b.run_scores(run_id).unwrap(), "scores, PDs, grades, colours");
    for s in &sa {
        assert_eq!(
            a.run_score(run_id, &s.uscc).unwrap(),
            b.run_score(run_id, &s.uscc).unwrap(),
            "the whole assessment of {} (features, reasons, warnings, network)",
            s.uscc
        );
    }
    assert_eq!(
        a.run_index(run_id, None).unwrap(),
        b.run_index(run_id, None).unwrap(),
        "index"
    );
    assert_eq!(
        a.run_circles(run_id, None).unwrap(),
        b.run_circles(run_id, None).unwrap(),
        "circles"
    );
    assert_eq!(a.credit_events(None).unwrap(), b.credit_events(None).unwrap(), "events");
    assert_eq!(
        a.run_benchmarks(run_id).unwrap(),
        b.run_benchmarks(run_id).unwrap(),
        "benchmarks"
    );
    // The network command on both stores.
    let na = run(&["network", "--db", lite.to_str().unwrap(), "--json"]);
    let nb = run(&["network", "--db", &url, "--json"]);
    assert_eq!(na, nb);
}
