//! The differential test of the two stores: the same small district ingested and scored through SQLite and
//! through PostgreSQL (a fresh database on the local server, dropped afterwards) gives the same content hash,
//! facts, scores, warnings, events, index and guarantee circles, with a fixed clock so that ingest times agree.
//!
//! Needs the PostgreSQL server .ci/run starts (XINYONG_PG_URL, default postgres://postgres@127.0.0.1:5432/postgres);
//! an unreachable server fails the test.

mod common;
use common::{run, FreshDb};
use std::path::PathBuf;
use xinyong_store::Store;

fn tmp(name: &str) -> PathBuf {
    common::tmp("postgres", name)
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
    let pg = FreshDb::new("diff");
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
    serves_then_stops_cleanly_on_ctrl_c(&url);
}

/// `xinyong serve` on a PostgreSQL store answers, and ctrl-c (SIGINT) ends it with success and no panic (its
/// pooled connections close outside the async runtime: closing one on an async thread panics).
fn serves_then_stops_cleanly_on_ctrl_c(url: &str) {
    use std::io::{BufRead, Read, Write};
    let mut child = std::process::Command::new(common::bin())
        .args(["serve", "--db", url, "--listen", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("serve said {line:?}"))
        .to_string();
    let mut s = std::net::TcpStream::connect(&addr).expect("connect");
    write!(s, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200") && reply.ends_with("ok\n"), "{reply}");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !stderr.contains("panicked"),
        "{:?}: {stderr}",
        out.status
    );
}

/// The `source content hash` and `target content hash` a backup, restore or migrate command printed.
fn hashes(out: &str) -> (String, String) {
    let get = |p: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(p))
            .unwrap_or_else(|| panic!("no {p:?} in {out}"))
            .trim()
            .to_string()
    };
    (get("source content hash "), get("target content hash "))
}

fn district(d: &std::path::Path, seed: u64) -> PathBuf {
    let mut c = xinyong_gen::GenConfig::demo(seed);
    c.enterprises = 200;
    c.invoice_mean_yuan = 400_000.0;
    xinyong_gen::generate(&c, d, &|_, _, _| {}).expect("generate");
    d.join("sources")
}

#[test]
fn migrate_sqlite_to_postgresql_then_back_up_while_ingesting_and_restore() {
    let d = tmp("migrate");
    let first = district(&d.join("a"), 3);
    let second = district(&d.join("b"), 4);
    let lite = d.join("x.db");
    let lite_url = format!("sqlite://{}", lite.display());
    run(&["ingest", "--db", lite.to_str().unwrap(), first.to_str().unwrap()]);
    run(&["score", "--db", lite.to_str().unwrap(), "--train"]);

    // SQLite → a fresh PostgreSQL database.
    let pg = FreshDb::new("migrate");
    let url = pg.url();
    let out = run(&["migrate", "--from", &lite_url, "--to", &url]);
    let (src, dst) = hashes(&out);
    assert_eq!(src, dst, "{out}");
    let a = xinyong_store_sqlite::SqliteStore::open(&lite).unwrap();
    let b = xinyong_store_postgres::PgStore::connect(&url).unwrap();
    assert_eq!(a.content_hash().unwrap(), src);
    assert_eq!(b.content_hash().unwrap(), src);
    assert_eq!(a.stats().unwrap(), b.stats().unwrap());
    let runs = a.runs().unwrap();
    assert_eq!(runs, b.runs().unwrap());
    let run_id = &runs[0].run_id;
    let scores = a.run_scores(run_id).unwrap();
    assert!(scores.len() > 100);
    assert_eq!(scores, b.run_scores(run_id).unwrap(), "scores after migrate");
    assert_eq!(a.model(None).unwrap(), b.model(None).unwrap());
    assert_eq!(a.credit_events(None).unwrap(), b.credit_events(None).unwrap());
    let migrated: Vec<String> = b.batch_ids().unwrap();
    // Into a store holding data: refused.
    let refused = std::process::Command::new(common::bin())
        .args(["migrate", "--from", &url, "--to", lite.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));

    // Online backup of the PostgreSQL store while a second district is ingested into it.
    let backup = d.join("x.backup.gz");
    let ingest = {
        let (url, second) = (url.clone(), second.clone());
        std::thread::spawn(move || run(&["ingest", "--db", &url, second.to_str().unwrap()]))
    };
    // Start once the ingest has committed something (so the backup overlaps it), or when it is over.
    let started = std::time::Instant::now();
    while !ingest.is_finished() && b.batch_ids().unwrap().len() == migrated.len() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = run(&["backup", "--db", &url, "--out", backup.to_str().unwrap()]);
    let overlapped = !ingest.is_finished();
    ingest.join().expect("ingest");
    eprintln!("backup overlapped the ingest: {overlapped}");
    let (snapshot, read_back) = hashes(&out);
    assert_eq!(snapshot, read_back, "{out}");
    let after = b.batch_ids().unwrap();
    assert!(after.len() > migrated.len(), "the second ingest stored batches");

    // Into a fresh SQLite file: the snapshot's content.
    let restored = d.join("restored.db");
    let out = run(&[
        "restore",
        "--file",
        backup.to_str().unwrap(),
        "--db",
        restored.to_str().unwrap(),
    ]);
    let (src, dst) = hashes(&out);
    assert_eq!(
        (src.as_str(), dst.as_str()),
        (snapshot.as_str(), snapshot.as_str()),
        "{out}"
    );
    let r = xinyong_store_sqlite::SqliteStore::open(&restored).unwrap();
    assert_eq!(r.content_hash().unwrap(), snapshot);
    let got = r.batch_ids().unwrap();
    eprintln!(
        "batches: {} migrated, {} in the snapshot, {} after the ingest",
        migrated.len(),
        got.len(),
        after.len()
    );
    assert!(
        migrated.iter().all(|id| got.contains(id)),
        "the migrated content is in the snapshot"
    );
    assert!(
        got.iter().all(|id| after.contains(id)),
        "the snapshot holds only committed batches"
    );
    assert_eq!(r.run_scores(run_id).unwrap(), scores, "scores after backup and restore");
    // A restore into a store holding data is refused.
    let refused = std::process::Command::new(common::bin())
        .args([
            "restore",
            "--file",
            backup.to_str().unwrap(),
            "--db",
            restored.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("not empty"));
    let _ = std::fs::remove_dir_all(&d);
}
