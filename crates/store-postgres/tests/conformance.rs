//! The PostgreSQL backend passes the storage conformance story, and stores the same logical content as the
//! SQLite backend for the same writes (same content hash, same reads).
//!
//! Each test creates a fresh database on the server named by `XINYONG_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) and drops it at the end, also when the test fails. An
//! unreachable server fails the tests: they never pass without having run.

use std::sync::atomic::{AtomicU32, Ordering};
use xinyong_store::*;
use xinyong_store_postgres::PgStore;
use xinyong_store_sqlite::SqliteStore;

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A database created for one test, dropped when this guard is (after a panic too).
struct TestDb {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDb {
    fn create() -> TestDb {
        static N: AtomicU32 = AtomicU32::new(0);
        let admin_url = std::env::var("XINYONG_PG_URL").unwrap_or_else(|_| DEFAULT_URL.to_string());
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "xinyong_test_{}_{}_{}",
            std::process::id(),
            nanos,
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = admin(&admin_url);
        // A database whose default collation orders unlike bytes ("a" before "B"), when the server has ICU:
        // the store must not depend on it. Otherwise the server's default.
        let icu = format!("CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'und'");
        if let Err(e) = admin.batch_execute(&icu) {
            eprintln!("note: no ICU database ({e}); using the server's default collation");
            admin
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on {admin_url}: {e}"));
        }
        let url = with_dbname(&admin_url, &name);
        TestDb { admin_url, name, url }
    }

    fn connect(&self) -> PgStore {
        PgStore::connect(&self.url).unwrap_or_else(|e| panic!("connect to {}: {e}", self.url))
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            Ok(mut c) => {
                if let Err(e) = c.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
                    eprintln!("could not drop test database {}: {e}", self.name);
                }
            }
            Err(e) => eprintln!("could not drop test database {}: {e}", self.name),
        }
    }
}

fn admin(url: &str) -> postgres::Client {
    postgres::Client::connect(url, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {url} ({e}: {}). These tests need a server: start one, or set \
             XINYONG_PG_URL to a URL whose user may CREATE DATABASE",
            std::error::Error::source(&e).map_or(String::new(), |c| c.to_string())
        )
    })
}

/// The same connection string naming another database (URL or `key=value` form).
fn with_dbname(url: &str, db: &str) -> String {
    if let Some(scheme_end) = url.find("://") {
        let (base, query) = match url.find('?') {
            Some(q) => (&url[..q], &url[q..]),
            None => (url, ""),
        };
        let authority_end = base[scheme_end + 3..]
            .find('/')
            .map_or(base.len(), |i| scheme_end + 3 + i);
        format!("{}/{db}{query}", &base[..authority_end])
    } else {
        format!("{url} dbname={db}")
    }
}

#[test]
fn postgres_passes_the_conformance_story() {
    let db = TestDb::create();
    let mut store = db.connect();
    assert_eq!(store.schema_version().unwrap(), 2);
    xinyong_store::conformance::run(&mut store);
    drop(store);
    // Connecting again applies no migration twice and sees the same content.
    let again = db.connect();
    assert_eq!(again.schema_version().unwrap(), 2);
    assert_eq!(again.stats().unwrap().batches, 6);
}

#[test]
fn postgres_bulk_writes_store_what_single_writes_store() {
    let (da, db) = (TestDb::create(), TestDb::create());
    // Statistics refreshed (ANALYZE inside the writer's transaction) after every 2 facts written.
    let mut bulk = da.connect();
    bulk.set_analyze_min(2);
    xinyong_store::conformance::bulk(&mut bulk, &mut db.connect());
    // A writer dropped without committing leaves nothing, however many refreshes it ran.
    let before = bulk.content_hash().unwrap();
    {
        let mut w = bulk.begin().unwrap();
        w.start_batch(&BatchMeta {
            batch_id: "rolled-back".into(),
            source: "bank01".into(),
            dataset: "lender.bank.loans".into(),
            file_name: "x.csv".into(),
            delivered_on: "2025-07-10".into(),
            ingested_at: "2026-01-01T00:00:00.000Z".into(),
        })
        .unwrap();
        let keys: Vec<String> = (0..6).map(|i| format!("k|2025-06|R{i}")).collect();
        let facts: Vec<NewFact> = keys
            .iter()
            .map(|k| NewFact {
                uscc: "91110000600037341L",
                key: k,
                period: Some("2025-06"),
                date: None,
                end_date: None,
                fields: "{}",
                content_hash: "h",
                row: 2,
                n_rows: 1,
            })
            .collect();
        assert_eq!(w.put_facts(&facts).unwrap().len(), 6);
    }
    assert_eq!(bulk.content_hash().unwrap(), before);
    assert!(!bulk.has_batch("rolled-back").unwrap());
    // And what SQLite stores one at a time.
    let dir = tempfile::tempdir().unwrap();
    let dc = TestDb::create();
    xinyong_store::conformance::bulk(
        &mut dc.connect(),
        &mut SqliteStore::open(&dir.path().join("one.db")).unwrap(),
    );
}

#[test]
fn postgres_exports_and_imports() {
    let (da, db) = (TestDb::create(), TestDb::create());
    xinyong_store::conformance::round_trip(&mut da.connect(), &mut db.connect());
}

#[test]
fn postgres_and_sqlite_export_into_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let pg = TestDb::create();
    xinyong_store::conformance::round_trip(
        &mut pg.connect(),
        &mut SqliteStore::open(&dir.path().join("b.db")).unwrap(),
    );
    let pg = TestDb::create();
    xinyong_store::conformance::round_trip(
        &mut SqliteStore::open(&dir.path().join("a.db")).unwrap(),
        &mut pg.connect(),
    );
}

#[test]
fn an_unreachable_server_is_an_error() {
    let e = PgStore::connect("postgres://postgres@127.0.0.1:1/postgres?connect_timeout=5")
        .err()
        .expect("no server listens on port 1");
    assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
}

// ---- the same writes through both backends ----

fn meta(batch: &str, source: &str, dataset: &str, delivered: &str) -> BatchMeta {
    BatchMeta {
        batch_id: batch.into(),
        source: source.into(),
        dataset: dataset.into(),
        file_name: format!("{dataset}__{delivered}__{batch}.csv"),
        delivered_on: delivered.into(),
        ingested_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

/// A fact; its content hash is derived from its fields.
fn fact<'a>(uscc: &'a str, key: &'a str, period: Option<&'a str>, fields: &'a str, row: u64) -> NewFact<'a> {
    NewFact {
        uscc,
        key,
        period,
        date: Some("2025-01-15"),
        end_date: None,
        fields,
        content_hash: Box::leak(format!("h:{fields}").into_boxed_str()),
        row,
        n_rows: 1,
    }
}

struct Delivery<'a> {
    meta: BatchMeta,
    facts: Vec<NewFact<'a>>,
    /// retire_absent(uscc, period) with the delivered keys kept.
    retire: Vec<(&'a str, Option<&'a str>)>,
    quarantine: Vec<QuarantineRow<'a>>,
}

const U1: &str = "91110000600037341L";
const U2: &str = "91330604MA2C00002Y";
const G: &str = "91330604MA2C00009X";

fn deliveries() -> Vec<Delivery<'static>> {
    let loans = "lender.bank.loans";
    let q = |row, reason, detail, raw| QuarantineRow {
        row,
        reason,
        detail,
        raw,
    };
    vec![
        // Keys whose bytewise order differs from a locale's ("B" < "a" < "Ä" < "中"), two sources with the
        // same dataset and key, and rejected rows with any characters (NUL too).
        Delivery {
            meta: meta("b01", "bank01", loans, "2025-02-10"),
            facts: vec![
                fact(U1, "k|2025-01|a", Some("2025-01"), r#"{"a":1}"#, 2),
                fact(U1, "k|2025-01|B", Some("2025-01"), r#"{"b":1}"#, 3),
                fact(U1, "k|2025-01|Ä", Some("2025-01"), r#"{"c":1}"#, 4),
                fact(U1, "k|2025-01|中", Some("2025-01"), r#"{"d":1}"#, 5),
                fact(U2, "k|2025-01|a", Some("2025-01"), r#"{"e":1}"#, 6),
            ],
            retire: vec![],
            quarantine: vec![
                q(7, "date", "日期: \"2021-13-45\" is not a date", "x,2021-13-45"),
                q(8, "Date", "upper case", "y"),
                q(9, "id:uscc", "bad check digit", "z\0nul,é"),
                q(9, "id:uscc", "same row and reason, other detail", "w"),
            ],
        },
        Delivery {
            meta: meta("b02", "bank02", loans, "2025-02-10"),
            facts: vec![fact(U1, "k|2025-01|a", Some("2025-01"), r#"{"a":"other bank"}"#, 2)],
            retire: vec![],
            quarantine: vec![],
        },
        // A correction: "a" replaced, "B" unchanged, "Ä" and "中" retired; U2's facts untouched.
        Delivery {
            meta: meta("b03", "bank01", loans, "2025-03-10"),
            facts: vec![
                fact(U1, "k|2025-01|a", Some("2025-01"), r#"{"a":2}"#, 2),
                fact(U1, "k|2025-01|B", Some("2025-01"), r#"{"b":1}"#, 3),
            ],
            retire: vec![(U1, Some("2025-01"))],
            quarantine: vec![q(4, "number", "金额: \"x\"", "k,x")],
        },
        // Late: between the first delivery and the correction.
        Delivery {
            meta: meta("b04", "bank01", loans, "2025-02-25"),
            facts: vec![
                fact(U1, "k|2025-01|a", Some("2025-01"), r#"{"a":9}"#, 7),
                fact(U1, "k|2025-01|B", Some("2025-01"), r#"{"b":1}"#, 8),
            ],
            retire: vec![],
            quarantine: vec![],
        },
        // Same key twice in one delivery (equal sort keys but for the content), and snapshots without period.
        Delivery {
            meta: meta("b05", "bank01", loans, "2025-04-10"),
            facts: vec![
                fact(U2, "k|2025-02|x", Some("2025-02"), r#"{"x":1}"#, 2),
                fact(U2, "k|2025-02|x", Some("2025-02"), r#"{"x":2}"#, 3),
                fact(U2, "reg|none", None, r#"{"n":1}"#, 4),
                fact(U2, "reg|none2", None, r#"{"n":2}"#, 5),
            ],
            retire: vec![],
            quarantine: vec![],
        },
        Delivery {
            meta: meta("b06", "bank01", loans, "2025-05-10"),
            facts: vec![fact(U2, "reg|none", None, r#"{"n":1}"#, 2)],
            retire: vec![(U2, None)],
            quarantine: vec![],
        },
        // Guarantees given by G (stored under the borrowers), one of them later replaced.
        Delivery {
            meta: meta("b07", "bank01", "lender.bank.guarantees", "2025-03-01"),
            facts: vec![
                fact(
                    U1,
                    "g|1",
                    None,
                    r#"{"guarantor_id":"91330604MA2C00009X","amount":1}"#,
                    2,
                ),
                fact(
                    U2,
                    "g|2",
                    None,
                    r#"{"guarantor_id":"91330604MA2C00009X","amount":2}"#,
                    3,
                ),
                fact(G, "g|3", None, r#"{"guarantor_id":"91110000600037341L","amount":3}"#, 4),
                // A cell with a NUL character (escaped in the canonical JSON): stored and found as in SQLite.
                fact(
                    U1,
                    "g|4",
                    None,
                    r#"{"guarantor_id":"91330604MA2C00009X","note":"a\u0000b"}"#,
                    5,
                ),
            ],
            retire: vec![],
            quarantine: vec![],
        },
        Delivery {
            meta: meta("b08", "bank01", "lender.bank.guarantees", "2025-04-01"),
            facts: vec![fact(
                U2,
                "g|2",
                None,
                r#"{"guarantor_id":"91330604MA2C00009X","amount":5}"#,
                2,
            )],
            retire: vec![],
            quarantine: vec![],
        },
        // The registration crosswalk.
        Delivery {
            meta: meta("b09", "amr", "amr.registration", "2025-01-05"),
            facts: vec![
                fact(U2, "r|U2", None, r#"{"reg_no":"330604000000002"}"#, 2),
                fact(U1, "r|U1", None, r#"{"reg_no":"110000000000001"}"#, 3),
                fact(G, "r|G", None, r#"{"name":"no reg_no"}"#, 4),
                fact(
                    "91330604MA2C00010K",
                    "r|N",
                    None,
                    r#"{"name":"x\u0000y","reg_no":"330604000000010"}"#,
                    5,
                ),
            ],
            retire: vec![],
            quarantine: vec![],
        },
    ]
}

/// Writes the deliveries (two commit groups) and returns what each write did.
fn write(store: &mut dyn Store) -> Vec<String> {
    let mut log = Vec::new();
    let all = deliveries();
    for group in all.chunks(4) {
        let mut w = store.begin().expect("begin");
        for d in group {
            w.start_batch(&d.meta).expect("start");
            w.add_chunk(&ArchiveChunk {
                chunk: 0,
                first_row: 1,
                data: format!("raw {}", d.meta.batch_id).into_bytes(),
            })
            .expect("chunk");
            w.add_chunk(&ArchiveChunk {
                chunk: 1,
                first_row: 5,
                data: vec![0, 159, 146, 150, 255],
            })
            .expect("chunk");
            for f in &d.facts {
                log.push(format!(
                    "{} {} {:?}",
                    d.meta.batch_id,
                    f.key,
                    w.put_fact(f).expect("put")
                ));
            }
            for (uscc, period) in &d.retire {
                let keep: Vec<&str> = d.facts.iter().map(|f| f.key).collect();
                let n = w.retire_absent(uscc, *period, &keep).expect("retire");
                log.push(format!("{} retired {n}", d.meta.batch_id));
            }
            for q in &d.quarantine {
                w.quarantine(q).expect("quarantine");
            }
            w.end_batch(
                BatchCounts {
                    rows_read: (d.facts.len() + d.quarantine.len()) as u64,
                    quarantined: d.quarantine.len() as u64,
                    ..Default::default()
                },
                &["note: one".to_string(), "note: two".to_string()],
            )
            .expect("end");
        }
        w.commit().expect("commit");
    }
    log
}

/// Everything the interface reads back, as text.
fn reads(store: &dyn Store) -> Vec<String> {
    let mut out = vec![
        format!("batches {:?}", store.batch_ids().unwrap()),
        format!("crosswalk {:?}", store.crosswalk().unwrap()),
        format!("stats {:?}", store.stats().unwrap()),
        format!("cutoff {:?}", store.data_cutoff().unwrap()),
        format!("quarantine {:?}", store.quarantine_rows(None, u64::MAX).unwrap()),
        format!("quarantine date {:?}", store.quarantine_rows(Some("DATE"), 10).unwrap()),
        format!("quarantine id {:?}", store.quarantine_rows(Some("id:"), 1).unwrap()),
        format!("quarantine _ {:?}", store.quarantine_rows(Some("_d"), 10).unwrap()),
        format!("chunk {:?}", store.chunk_for("b01", 6).unwrap()),
        format!("chunk {:?}", store.chunk_for("b03", 2).unwrap()),
    ];
    for u in [U1, U2, G] {
        for t in [
            None,
            Some("2025-02-10"),
            Some("2025-02-26"),
            Some("2025-03-31"),
            Some("2025-12-31"),
        ] {
            out.push(format!("facts_of {u} {t:?} {:?}", store.facts_of(u, t).unwrap()));
        }
        for t in ["2025-03-15", "2025-04-15"] {
            out.push(format!(
                "guarantees {u} {t} {:?}",
                store.guarantees_given(u, t).unwrap()
            ));
        }
    }
    for t in ["2025-02-10", "2025-03-10", "2025-12-31"] {
        let (mut seen, mut ids) = (Vec::new(), Vec::new());
        store
            .scan_facts(t, &mut |f| {
                ids.push(f.fact_id);
                seen.push(format!("{f:?}"));
                Ok(())
            })
            .unwrap();
        out.push(format!("scan {t} {seen:?}"));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "scan in fact id order: {ids:?}");
    }
    let first = store.facts_of(U1, Some("2025-02-20")).unwrap().remove(0);
    out.push(format!("fact {:?}", store.fact(first.fact_id).unwrap()));
    out
}

#[test]
fn the_same_writes_give_the_same_content_as_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let mut lite = SqliteStore::open(&dir.path().join("x.db")).unwrap();
    let db = TestDb::create();
    let mut pg = db.connect();

    let log_lite = write(&mut lite);
    let log_pg = write(&mut pg);
    assert_eq!(log_pg, log_lite, "the same outcomes");
    for expected in [
        "b03 k|2025-01|a Replaced",
        "b03 k|2025-01|B Unchanged",
        "b03 retired 2",
        "b04 k|2025-01|a Backdated",
        "b04 k|2025-01|B Unchanged",
        "b05 k|2025-02|x Replaced",
        "b06 retired 1",
    ] {
        assert!(log_pg.iter().any(|l| l == expected), "{expected} in {log_pg:#?}");
    }

    let (h_lite, h_pg) = (lite.content_hash().unwrap(), pg.content_hash().unwrap());
    assert_eq!(h_pg, h_lite, "the same content hash");

    let (r_lite, r_pg) = (reads(&lite), reads(&pg));
    for (a, b) in r_pg.iter().zip(&r_lite) {
        assert_eq!(a, b, "the same reads");
    }
    assert_eq!(r_pg.len(), r_lite.len());

    // A further write changes both hashes alike.
    for s in [&mut lite as &mut dyn Store, &mut pg] {
        let mut w = s.begin().unwrap();
        w.start_batch(&meta("b10", "bank01", "lender.bank.loans", "2025-06-10"))
            .unwrap();
        w.put_fact(&fact(U1, "k|2025-01|a", Some("2025-01"), r#"{"a":3}"#, 2))
            .unwrap();
        w.end_batch(BatchCounts::default(), &[]).unwrap();
        w.commit().unwrap();
    }
    assert_ne!(pg.content_hash().unwrap(), h_pg);
    assert_eq!(pg.content_hash().unwrap(), lite.content_hash().unwrap());

    // A writer dropped without commit leaves nothing behind, in both.
    for s in [&mut lite as &mut dyn Store, &mut pg] {
        let mut w = s.begin().unwrap();
        w.start_batch(&meta("b11", "bank01", "lender.bank.loans", "2025-07-10"))
            .unwrap();
        w.put_fact(&fact(U1, "k|2025-01|a", Some("2025-01"), r#"{"a":4}"#, 2))
            .unwrap();
        w.end_batch(BatchCounts::default(), &[]).unwrap();
    }
    assert!(!pg.has_batch("b11").unwrap());
    assert_eq!(pg.content_hash().unwrap(), lite.content_hash().unwrap());
}

fn pg_pool(db: &TestDb, max_size: u32, wait: std::time::Duration) -> pool::Pool {
    let url = db.url.clone();
    pool::Pool::new(
        &pool::PoolConfig { max_size, wait },
        Box::new(move || Ok(Box::new(PgStore::connect(&url)?) as Box<dyn Store + Send>)),
    )
    .expect("pool")
}

#[test]
fn postgres_serves_many_threads_through_the_pool() {
    let db = TestDb::create();
    xinyong_store::conformance::pool(&pg_pool(&db, 3, std::time::Duration::from_secs(30)), 3);
}

#[test]
fn a_full_postgres_pool_makes_a_request_wait_then_fail_clearly() {
    let db = TestDb::create();
    xinyong_store::conformance::pool_wait(&pg_pool(&db, 1, std::time::Duration::from_millis(200)));
}

/// The server ends the pool's connections (a restart, an administrator's pg_terminate_backend): the next
/// request gets a fresh connection instead of an error.
#[test]
fn the_pool_replaces_connections_the_server_closed() {
    let db = TestDb::create();
    let p = pg_pool(&db, 2, std::time::Duration::from_secs(10));
    p.get().unwrap().stats().unwrap();
    let ended: i64 = admin(&db.admin_url)
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1) t",
            &[&db.name],
        )
        .unwrap()
        .get(0);
    assert!(ended >= 1, "the pool's connection was ended");
    let store = p.get().expect("a fresh connection");
    store.stats().expect("it answers");
}
