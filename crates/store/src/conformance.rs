//! The conformance story every backend must pass: replacement with history, idempotent re-delivery,
//! late (backdated) deliveries, set replacement, as-of reads, provenance and quarantine. A backend's
//! tests call [`run`] on a fresh, empty store.

use crate::*;

fn meta(batch: &str, dataset: &str, delivered: &str) -> BatchMeta {
    BatchMeta {
        batch_id: batch.into(),
        source: "bank01".into(),
        dataset: dataset.into(),
        file_name: format!("{dataset}__{delivered}__x.csv"),
        delivered_on: delivered.into(),
        ingested_at: "2026-01-01T00:00:00.000Z".into(),
    }
}

fn fact<'a>(uscc: &'a str, key: &'a str, period: &'a str, fields: &'a str, hash: &'a str, row: u64) -> NewFact<'a> {
    NewFact {
        uscc,
        key,
        period: Some(period),
        date: None,
        end_date: None,
        fields,
        content_hash: hash,
        row,
        n_rows: 1,
    }
}

/// Writes one batch of facts in its own transaction and returns the outcomes.
fn batch(store: &mut dyn Store, m: &BatchMeta, facts: &[NewFact<'_>], retire: Option<(&str, &str)>) -> Vec<PutOutcome> {
    let mut w = store.begin().expect("begin");
    w.start_batch(m).expect("start");
    w.add_chunk(&ArchiveChunk {
        chunk: 0,
        first_row: 1,
        data: b"raw".to_vec(),
    })
    .expect("chunk");
    let out: Vec<PutOutcome> = facts.iter().map(|f| w.put_fact(f).expect("put")).collect();
    if let Some((uscc, period)) = retire {
        let keep: Vec<&str> = facts.iter().map(|f| f.key).collect();
        w.retire_absent(uscc, Some(period), &keep).expect("retire");
    }
    w.quarantine(&QuarantineRow {
        row: 9,
        reason: "date",
        detail: "日期: \"2021-13-45\" is not a date",
        raw: "x,2021-13-45",
    })
    .expect("quarantine");
    w.end_batch(
        BatchCounts {
            rows_read: facts.len() as u64 + 1,
            quarantined: 1,
            ..Default::default()
        },
        &[],
    )
    .expect("end");
    w.commit().expect("commit");
    out
}

fn fields_as_of(store: &dyn Store, uscc: &str, t: Option<&str>) -> Vec<String> {
    store
        .facts_of(uscc, t)
        .expect("facts_of")
        .into_iter()
        .map(|f| format!("{} {}", f.key, f.fields))
        .collect()
}

/// Runs the story; panics with the step that failed.
pub fn run(store: &mut dyn Store) {
    use PutOutcome::*;
    let u = "91110000600037341L";
    let ds = "lender.bank.loans";
    // A monthly delivery with two loans of one firm.
    let m1 = meta("b1", ds, "2025-02-10");
    let out = batch(
        store,
        &m1,
        &[
            fact(u, "k|2025-01|L1", "2025-01", "{\"a\":1}", "h1", 2),
            fact(u, "k|2025-01|L2", "2025-01", "{\"b\":1}", "h2", 3),
        ],
        None,
    );
    assert_eq!(out, [Inserted, Inserted], "first delivery");
    assert!(store.has_batch("b1").unwrap() && !store.has_batch("b2").unwrap());
    assert_eq!(store.batch_ids().unwrap(), ["b1"]);
    assert_eq!(store.batch_firms("b1").unwrap(), [u]);
    assert!(store.batch_firms("nope").unwrap().is_empty());
    // The same content again, in another file: nothing changes.
    let out = batch(
        store,
        &meta("b2", ds, "2025-02-11"),
        &[fact(u, "k|2025-01|L1", "2025-01", "{\"a\":1}", "h1", 2)],
        None,
    );
    assert_eq!(out, [Unchanged], "same content");
    // A correction of L1 that no longer holds L2: L1 replaced, L2 retired, both kept for history.
    let out = batch(
        store,
        &meta("b3", ds, "2025-03-10"),
        &[fact(u, "k|2025-01|L1", "2025-01", "{\"a\":2}", "h1b", 2)],
        Some((u, "2025-01")),
    );
    assert_eq!(out, [Replaced], "correction");
    assert_eq!(
        fields_as_of(store, u, None),
        ["k|2025-01|L1 {\"a\":2}"],
        "current after correction"
    );
    assert_eq!(
        fields_as_of(store, u, Some("2025-02-20")),
        ["k|2025-01|L1 {\"a\":1}", "k|2025-01|L2 {\"b\":1}"],
        "as known before the correction"
    );
    assert!(
        fields_as_of(store, u, Some("2025-01-01")).is_empty(),
        "nothing was known before the first delivery"
    );
    let current: Vec<String> = store
        .current_facts("bank01", ds)
        .unwrap()
        .into_iter()
        .map(|f| format!("{} {}", f.key, f.fields))
        .collect();
    assert_eq!(current, ["k|2025-01|L1 {\"a\":2}"], "current facts of a dataset");
    assert!(store.current_facts("bank02", ds).unwrap().is_empty());
    // A delivery dated between the two, arriving late: it becomes history, the current version stays.
    let out = batch(
        store,
        &meta("b4", ds, "2025-02-25"),
        &[fact(u, "k|2025-01|L1", "2025-01", "{\"a\":9}", "h1c", 7)],
        None,
    );
    assert_eq!(out, [Backdated], "late delivery");
    assert_eq!(
        fields_as_of(store, u, None),
        ["k|2025-01|L1 {\"a\":2}"],
        "current after a late delivery"
    );
    assert_eq!(
        fields_as_of(store, u, Some("2025-02-26")),
        ["k|2025-01|L1 {\"a\":9}", "k|2025-01|L2 {\"b\":1}"]
    );
    assert_eq!(
        fields_as_of(store, u, Some("2025-02-20")),
        ["k|2025-01|L1 {\"a\":1}", "k|2025-01|L2 {\"b\":1}"]
    );
    // The same late content again changes nothing.
    let out = batch(
        store,
        &meta("b5", ds, "2025-02-25"),
        &[fact(u, "k|2025-01|L1", "2025-01", "{\"a\":9}", "h1c", 7)],
        None,
    );
    assert_eq!(out, [Unchanged], "late delivery again");
    // Provenance: the current fact leads to its batch, row and archive chunk.
    let cur = store.facts_of(u, None).unwrap().remove(0);
    assert_eq!(
        (
            cur.batch_id.as_str(),
            cur.row,
            cur.known_from.as_str(),
            cur.known_to.as_deref()
        ),
        ("b3", 2, "2025-03-10", None)
    );
    let f = store.fact(cur.fact_id).unwrap();
    assert_eq!(f.key, "k|2025-01|L1");
    let c = store.chunk_for("b3", 2).unwrap();
    assert_eq!(c.data, b"raw");
    assert!(store.chunk_for("nope", 1).is_err());
    // Quarantine rows are kept with their reason.
    let q = store.quarantine_rows(Some("date"), 100).unwrap();
    assert_eq!(q.len(), 5);
    assert_eq!(q[0].raw, "x,2021-13-45");
    let st = store.stats().unwrap();
    assert_eq!((st.batches, st.facts_current), (5, 1));
    assert_eq!(st.quarantine_by_reason, [("date".to_string(), 5)]);
    // The content hash is stable across reads and changes with content.
    let h = store.content_hash().unwrap();
    assert_eq!(h, store.content_hash().unwrap());
    batch(
        store,
        &meta("b6", ds, "2025-04-10"),
        &[fact(u, "k|2025-02|L1", "2025-02", "{}", "h9", 2)],
        None,
    );
    assert_ne!(h, store.content_hash().unwrap());
    // The credit models read every version known by a date, with both times.
    let mut seen = Vec::new();
    store
        .scan_facts("2025-03-10", &mut |f| {
            seen.push((f.key_free(), f.known_from, f.known_to));
            Ok(())
        })
        .unwrap();
    assert!(seen.iter().all(|(_, from, _)| from.as_str() <= "2025-03-10"));
    assert!(
        seen.iter().any(|(_, _, to)| to.is_some()),
        "replaced versions are scanned too"
    );
    let mut later = 0;
    store
        .scan_facts("2025-04-30", &mut |_| {
            later += 1;
            Ok(())
        })
        .unwrap();
    assert!(later > seen.len());
    // Split over sinks (threads, where the store reads on several connections): together the same facts,
    // each exactly once, each sink's in id order.
    let mut whole = Vec::new();
    store
        .scan_facts("2025-04-30", &mut |f| {
            whole.push(f);
            Ok(())
        })
        .unwrap();
    // Three sinks, and more sinks than facts (some ranges of ids hold none).
    for n in [1, 2, 3, whole.len() + 2] {
        let mut shares: Vec<Vec<ScanFact>> = vec![Vec::new(); n];
        {
            let mut sinks: Vec<Box<FactSink<'_>>> = shares
                .iter_mut()
                .map(|v| {
                    Box::new(move |f: ScanFact| {
                        v.push(f);
                        Ok(())
                    }) as Box<FactSink<'_>>
                })
                .collect();
            let mut refs: Vec<&mut FactSink<'_>> = sinks.iter_mut().map(|b| &mut **b).collect();
            store.scan_facts_split("2025-04-30", &mut refs).unwrap();
        }
        for v in &shares {
            assert!(
                v.windows(2).all(|w| w[0].fact_id < w[1].fact_id),
                "{n} sinks: a share out of id order"
            );
        }
        let mut all: Vec<ScanFact> = shares.into_iter().flatten().collect();
        all.sort_by_key(|f| f.fact_id);
        assert_eq!(all, whole, "{n} sinks: the split scan reads what one scan reads");
    }
    assert_eq!(store.data_cutoff().unwrap().as_deref(), Some("2025-04-10"));
    results(store);
    fact_cache(store);
}

/// The derived cache of the facts: read back in order under its key, replaced by the next write, retired by
/// any commit of facts, never written for a generation that has passed. A backend that keeps none says so
/// (`fact_generation` is `None`) and reads none back.
fn fact_cache(store: &mut dyn Store) {
    fn read(store: &dyn Store, key: &str) -> (bool, Vec<Vec<u8>>) {
        let mut parts = Vec::new();
        let found = store
            .read_fact_cache(key, &mut |p| {
                parts.push(p.to_vec());
                Ok(())
            })
            .unwrap();
        (found, parts)
    }
    let none = (false, Vec::new());
    let parts = vec![b"head".to_vec(), Vec::new(), vec![0u8, 255, 7]];
    let Some(g) = store.fact_generation().unwrap() else {
        assert!(!store.write_fact_cache(0, "k", &parts).unwrap());
        assert_eq!(read(store, "k"), none);
        return;
    };
    assert_eq!(read(store, "k"), none);
    assert!(store.write_fact_cache(g, "k", &parts).unwrap());
    assert_eq!(read(store, "k"), (true, parts.clone()));
    assert_eq!(read(store, "other"), none, "another key");
    assert!(store.write_fact_cache(g, "k2", &parts[..1]).unwrap());
    assert_eq!(read(store, "k"), none, "a write replaces the cache");
    assert_eq!(read(store, "k2"), (true, parts[..1].to_vec()));
    let u = "91110000600037341L";
    batch(
        store,
        &meta("cache", "lender.bank.loans", "2025-05-10"),
        &[fact(u, "k|2025-04|L9", "2025-04", "{\"c\":1}", "h-cache", 2)],
        None,
    );
    let g2 = store.fact_generation().unwrap().unwrap();
    assert!(g2 > g, "a commit of facts moves the generation on");
    assert_eq!(read(store, "k2"), none, "and retires the cache");
    assert!(!store.write_fact_cache(g, "k", &parts).unwrap(), "a passed generation");
    assert_eq!(read(store, "k"), none);
    assert!(store.write_fact_cache(g2, "k", &parts).unwrap());
    assert_eq!(read(store, "k"), (true, parts));
}

trait KeyFree {
    fn key_free(&self) -> String;
}

impl KeyFree for ScanFact {
    fn key_free(&self) -> String {
        format!("{}|{}|{}", self.uscc, self.dataset, self.fields)
    }
}

/// Models and scoring runs: stored, read back, replaced by id; events kept once per id.
fn results(store: &mut dyn Store) {
    assert_eq!(store.model(None).unwrap(), None);
    store.put_model("5f-a", "2025-01-01T00:00:00", "{\"a\":1}").unwrap();
    store.put_model("5f-b", "2025-02-01T00:00:00", "{\"b\":1}").unwrap();
    store
        .put_model("5f-a", "2025-03-01T00:00:00", "{\"changed\":1}")
        .unwrap();
    assert_eq!(store.model(None).unwrap().unwrap().0, "5f-b");
    assert_eq!(
        store.model(Some("5f-a")).unwrap().unwrap().1,
        "{\"a\":1}",
        "a version is immutable"
    );
    let u = "91110000600037341L";
    let mut run = ScoreRun {
        run_id: "2025-03-31/5f-b".into(),
        as_of: "2025-03-31".into(),
        model_version: "5f-b".into(),
        created_at: "2025-04-01T00:00:00".into(),
        benchmarks: "{}".into(),
        scores: vec![ScoreRow {
            uscc: u.into(),
            score: 612.5,
            pd: 0.012,
            grade: "BB".into(),
            grade_unadjusted: "BB".into(),
            colour: Some("yellow".into()),
            detail: "{\"x\":1}".into(),
        }],
        warnings: vec![WarningRow {
            uscc: u.into(),
            rule: 28,
            colour: "yellow".into(),
            since: Some("2025-03-01".into()),
            clears_on: None,
            evidence: "[1]".into(),
        }],
        spans: vec![(u.into(), 28, "yellow".into(), "2025-03-31".into(), None)],
        events: vec![EventRow {
            id: "e1".into(),
            uscc: u.into(),
            date: "2025-03-31".into(),
            kind: "warning_raised".into(),
            rule: Some(28),
            before: String::new(),
            after: "yellow".into(),
        }],
        history: vec![(
            u.into(),
            "2025-03".into(),
            0.012,
            612.5,
            "BB".into(),
            Some("yellow".into()),
        )],
        index: vec![("2025-03".into(), "district".into(), "330604".into(), 100.0, "{}".into())],
        movers: vec![("2025-03".into(), "district".into(), "330604".into(), u.into(), 0.001)],
        circles: vec![
            (format!("G{u}"), 3, 2, 4.5e6, "{\"g\":1}".into()),
            ("G91330604MA2C00002Y".into(), 2, 2, 9.0e6, "{\"g\":2}".into()),
        ],
    };
    assert_eq!(store.latest_run().unwrap(), None);
    store.put_run(&run).unwrap();
    assert_eq!(store.latest_run().unwrap().map(|r| r.run_id), Some(run.run_id.clone()));
    assert_eq!(store.run_score(&run.run_id, u).unwrap().as_deref(), Some("{\"x\":1}"));
    assert_eq!(store.run_scores(&run.run_id).unwrap()[0].grade, "BB");
    assert_eq!(store.run_index(&run.run_id, Some("district")).unwrap().len(), 1);
    assert_eq!(store.run_benchmarks(&run.run_id).unwrap(), "{}");
    assert_eq!(
        store.run_movers(&run.run_id, "district", "330604", "2025-03").unwrap(),
        [(u.to_string(), 0.001)]
    );
    // Guarantee groups, largest amount first; one by id.
    assert_eq!(
        store.run_circles(&run.run_id, None).unwrap(),
        ["{\"g\":2}", "{\"g\":1}"]
    );
    assert_eq!(
        store.run_circles(&run.run_id, Some(&format!("G{u}"))).unwrap(),
        ["{\"g\":1}"]
    );
    assert!(store.run_circles(&run.run_id, Some("G-none")).unwrap().is_empty());
    // Writing the run again replaces it; its events are not duplicated.
    run.scores[0].grade = "B".into();
    store.put_run(&run).unwrap();
    assert_eq!(store.run_scores(&run.run_id).unwrap().len(), 1);
    assert_eq!(store.run_scores(&run.run_id).unwrap()[0].grade, "B");
    assert_eq!(store.credit_events(Some(u)).unwrap().len(), 1);
    assert_eq!(store.runs().unwrap().len(), 1);
    assert_eq!(store.run_circles(&run.run_id, None).unwrap().len(), 2);
    assert!(store.run_benchmarks("none").is_err());
    // A source's batches, latest delivery first; a batch's quarantine rows.
    let batches = store.batches_of("bank01").unwrap();
    assert!(!batches.is_empty());
    assert!(batches.windows(2).all(|w| w[0].0.delivered_on >= w[1].0.delivered_on));
    assert!(batches.iter().all(|(m, _)| m.source == "bank01"));
    assert!(store.batches_of("nobody").unwrap().is_empty());
    let (m, k) = &batches[0];
    let q = store.quarantine_of(&m.batch_id, 100).unwrap();
    assert_eq!(q.len() as u64, k.quarantined);
    assert!(q.iter().all(|r| r.batch_id == m.batch_id && r.reason == "date"));
    assert!(store.quarantine_of("no-such-batch", 100).unwrap().is_empty());
    rows_story(store);
}

fn user(id: &str, name: &str) -> rows::Row {
    use rows::Value::*;
    vec![
        Text(id.into()),
        Text("bank".into()),
        Text("bank01".into()),
        Text(name.into()),
        Text("$argon2id$x".into()),
        Null,
        Text("2026-01-01T00:00:00Z".into()),
        Int(0),
    ]
}

fn audit(seq: i64, uscc: Option<&str>) -> rows::Row {
    use rows::Value::*;
    vec![
        Int(seq),
        Text("2026-01-01T00:00:00.000Z".into()),
        Text("u1".into()),
        Text("bank".into()),
        Text("bank01".into()),
        Text("read".into()),
        rows::Value::opt_text(uscc),
        Text("/firm/x".into()),
        Null,
        Text("127.0.0.1".into()),
        Text("0".repeat(64)),
        Text(format!("{seq:064}")),
    ]
}

/// The generic rows of the spec'd tables: insert, replace, delete, equality reads in key order (and
/// reversed, limited), one transaction for a list of changes (a failing change leaves none), append-only
/// tables refuse replacement and deletion, bad rows are refused with the column named.
fn rows_story(store: &mut dyn Store) {
    use rows::{RowOp, RowQuery, Value};
    let users = RowQuery::all("users");
    store
        .apply_rows(&[
            RowOp::Insert {
                table: "users",
                row: user("u2", "李四"),
            },
            RowOp::Insert {
                table: "users",
                row: user("u1", "张三"),
            },
        ])
        .unwrap();
    assert_eq!(store.rows(&users).unwrap(), [user("u1", "张三"), user("u2", "李四")]);
    // Put replaces; Insert of an existing key fails, and the list it is in is undone as a whole.
    store
        .apply_rows(&[RowOp::Put {
            table: "users",
            row: user("u2", "李四 (改)"),
        }])
        .unwrap();
    let e = store
        .apply_rows(&[
            RowOp::Insert {
                table: "users",
                row: user("u3", "王五"),
            },
            RowOp::Insert {
                table: "users",
                row: user("u1", "again"),
            },
        ])
        .expect_err("a duplicate key");
    assert!(!e.to_string().is_empty());
    assert_eq!(
        store.rows(&users).unwrap(),
        [user("u1", "张三"), user("u2", "李四 (改)")]
    );
    // A bad row is refused before anything is written.
    let mut bad = user("u4", "x");
    bad[1] = Value::Null;
    let e = store
        .apply_rows(&[RowOp::Put {
            table: "users",
            row: bad,
        }])
        .unwrap_err();
    assert!(e.to_string().contains("role"), "{e}");
    // Equality reads; the key order; reversed and limited.
    let one = users.clone().eq("display_name", Value::text("张三"));
    assert_eq!(store.rows(&one).unwrap(), [user("u1", "张三")]);
    assert_eq!(store.rows(&users.clone().last(1)).unwrap(), [user("u2", "李四 (改)")]);
    assert_eq!(store.rows(&users.clone().limit(1)).unwrap(), [user("u1", "张三")]);
    store
        .apply_rows(&[RowOp::Delete {
            table: "users",
            key: vec![Value::text("u2")],
        }])
        .unwrap();
    assert_eq!(store.rows(&users).unwrap(), [user("u1", "张三")]);
    // The append-only audit log; integer keys in numeric order (10 after 9).
    let ops: Vec<RowOp> = (1..=10)
        .map(|i| RowOp::Insert {
            table: "audit_log",
            row: audit(i, if i % 2 == 0 { Some("91110000600037341L") } else { None }),
        })
        .collect();
    store.apply_rows(&ops).unwrap();
    let log = RowQuery::all("audit_log");
    fn seqs(store: &dyn Store, q: &RowQuery) -> Vec<i64> {
        store.rows(q).unwrap().iter().map(|r| r[0].as_int().unwrap()).collect()
    }
    assert_eq!(seqs(store, &log.clone().last(2)), [10, 9]);
    assert_eq!(
        seqs(store, &log.clone().eq("uscc", Value::text("91110000600037341L"))),
        [2, 4, 6, 8, 10]
    );
    // A cursor: the rows after a key, with or without equalities, at most `limit`.
    assert_eq!(seqs(store, &log.clone().after("seq", Value::Int(7))), [8, 9, 10]);
    assert_eq!(seqs(store, &log.clone().after("seq", Value::Int(3)).limit(2)), [4, 5]);
    assert_eq!(
        seqs(
            store,
            &log.clone()
                .eq("uscc", Value::text("91110000600037341L"))
                .after("seq", Value::Int(4))
        ),
        [6, 8, 10]
    );
    for op in [
        RowOp::Put {
            table: "audit_log",
            row: audit(3, None),
        },
        RowOp::Delete {
            table: "audit_log",
            key: vec![Value::Int(3)],
        },
    ] {
        let e = store.apply_rows(&[op]).unwrap_err();
        assert!(e.to_string().contains("append-only"), "{e}");
    }
    assert!(store
        .apply_rows(&[RowOp::Insert {
            table: "audit_log",
            row: audit(3, None),
        }])
        .is_err());
    assert_eq!(seqs(store, &log).len(), 10);
    // Compare-and-set: an update applies while the row is in the expected state, and fails the whole list
    // (nothing of it written) once it is not.
    let set_name = |name: &str, expect_disabled: i64| RowOp::Update {
        table: "users",
        key: vec![Value::text("u1")],
        set: vec![("display_name", Value::text(name))],
        expect: vec![("disabled", Value::Int(expect_disabled)), ("totp_secret", Value::Null)],
    };
    store.apply_rows(&[set_name("张三丰", 0)]).unwrap();
    let e = store
        .apply_rows(&[
            RowOp::Insert {
                table: "users",
                row: user("u9", "x"),
            },
            set_name("nope", 1),
        ])
        .unwrap_err();
    assert!(matches!(e, StoreError::Conflict(_)), "{e:?}");
    let names: Vec<rows::Row> = store.rows(&users).unwrap();
    assert_eq!(names.len(), 1, "the insert before the failed update was undone");
    assert_eq!(names[0][3], Value::text("张三丰"));
    assert!(store
        .apply_rows(&[RowOp::Update {
            table: "audit_log",
            key: vec![Value::Int(1)],
            set: vec![("action", Value::text("x"))],
            expect: vec![],
        }])
        .is_err());
    // A live session (never exported: see `round_trip`).
    store
        .apply_rows(&[RowOp::Insert {
            table: "sessions",
            row: vec![
                Value::text("f".repeat(64)),
                Value::text("u1"),
                Value::text("c".repeat(64)),
                Value::Int(1),
                Value::Int(1),
                Value::Int(0),
            ],
        }])
        .unwrap();
    // Reals come back exactly (a product's amount and PD bound).
    let product = vec![
        Value::text("p1"),
        Value::text("bank01"),
        Value::text("科技贷"),
        Value::Real(0.1 + 0.2),
        Value::Int(12),
        Value::text("BBB"),
        Value::Real(1e-7),
        Value::text(""),
        Value::text(""),
        Value::text("x"),
        Value::text("2026-01-01T00:00:00Z"),
        Value::text("u1"),
        Value::Int(1),
    ];
    store
        .apply_rows(&[RowOp::Put {
            table: "products",
            row: product.clone(),
        }])
        .unwrap();
    assert_eq!(store.rows(&RowQuery::all("products")).unwrap(), [product]);
    store
        .apply_rows(&[RowOp::Put {
            table: "subscriptions",
            row: vec![
                Value::text("u1"),
                Value::text("firm"),
                Value::text("91110000600037341L"),
                Value::text("2026-01-02"),
            ],
        }])
        .unwrap();
    // The live path's tables: a push key, a push's receipt, a firm's live state and its events, in one list.
    let t = |s: &str| Value::text(s);
    let event = |seq: i64, rule: Option<i64>| {
        vec![
            Value::Int(seq),
            t(&format!("ev{seq}")),
            t("91110000600037341L"),
            t("2026-01-31"),
            t("warning_raised"),
            rule.map_or(Value::Null, Value::Int),
            t(""),
            t("red"),
            t("push-1"),
            t("2026-02-01T00:00:00Z"),
        ]
    };
    store
        .apply_rows(&[
            RowOp::Insert {
                table: "push_keys",
                row: vec![t("pk_1"), t("court"), t("secret"), t("2026-01-01"), Value::Null],
            },
            RowOp::Insert {
                table: "pushes",
                row: vec![t("court"), t("push-1"), t("2026-02-01"), t("{}")],
            },
            RowOp::Put {
                table: "firm_state",
                row: vec![t("91110000600037341L"), t("{}"), t("push-1"), t("2026-02-01")],
            },
            RowOp::Insert {
                table: "outbox",
                row: event(1, Some(3)),
            },
            RowOp::Insert {
                table: "outbox",
                row: event(2, None),
            },
            RowOp::Insert {
                table: "webhooks",
                row: vec![
                    t("wh_1"),
                    t("u1"),
                    t("http://127.0.0.1:9/hook"),
                    t("secret"),
                    t("2026-02-01"),
                    Value::Int(1),
                    Value::Int(0),
                    Value::Int(0),
                    Value::Null,
                ],
            },
            RowOp::Put {
                table: "alert_marks",
                row: vec![
                    t("u1"),
                    t("91110000600037341L|warning_raised|3|red"),
                    t("handled"),
                    t("called the firm"),
                    t("2026-02-02"),
                ],
            },
        ])
        .unwrap();
    let out = RowQuery::all("outbox");
    assert_eq!(
        store.rows(&out.clone().after("seq", Value::Int(1))).unwrap(),
        [event(2, None)]
    );
    assert_eq!(store.rows(&out.last(1)).unwrap(), [event(2, None)]);
    // An objection with an attachment (bytes kept exactly), its log, and a repair application; the objection
    // answered later (a mutable row), the attachment and log append-only.
    let objection = |stage: &str, outcome: Value| {
        vec![
            t("OBJ1"),
            t("91110000600037341L"),
            Value::Int(42),
            t("amr.penalties"),
            t("amr"),
            t("u1"),
            t("enterprise"),
            t(""),
            t("the fine was paid and withdrawn"),
            t("credit_reporting"),
            t("2026-02-02"),
            t("2026-02-02T01:00:00Z"),
            Value::Int(0),
            t(stage),
            outcome,
            Value::Null,
            Value::Null,
            Value::Null,
            Value::Null,
        ]
    };
    let pdf = vec![0x25u8, 0x50, 0x44, 0x46, 0x00, 0xff, 0x0a];
    store
        .apply_rows(&[
            RowOp::Insert {
                table: "objections",
                row: objection("open", Value::Null),
            },
            RowOp::Insert {
                table: "objection_files",
                row: vec![
                    t("OBJ1"),
                    Value::Int(1),
                    t("回执.pdf"),
                    t("application/pdf"),
                    t("ab"),
                    Value::Bytes(pdf.clone()),
                ],
            },
            RowOp::Insert {
                table: "objection_log",
                row: vec![
                    t("OBJ1"),
                    Value::Int(1),
                    t("2026-02-02T01:00:00Z"),
                    t("2026-02-02"),
                    t("u1"),
                    t("filed"),
                    t(""),
                ],
            },
            RowOp::Insert {
                table: "objection_open",
                row: vec![t("91110000600037341L|amr|amr.penalties|k42"), t("OBJ1")],
            },
            RowOp::Insert {
                table: "repairs",
                row: vec![
                    t("REP1"),
                    t("91110000600037341L"),
                    Value::Int(42),
                    t("amr.penalties"),
                    t("amr"),
                    t("u1"),
                    t("corrected and paid"),
                    t("2026-02-03"),
                    t("2026-02-03T01:00:00Z"),
                    t("pending"),
                    Value::Null,
                    Value::Null,
                    Value::Null,
                ],
            },
        ])
        .unwrap();
    store
        .apply_rows(&[RowOp::Put {
            table: "objections",
            row: objection("answered", t("upheld")),
        }])
        .unwrap();
    let o = store
        .rows(&RowQuery::all("objections").eq("uscc", t("91110000600037341L")))
        .unwrap();
    assert_eq!(o, [objection("answered", t("upheld"))]);
    let f = store
        .rows(&RowQuery::all("objection_files").eq("objection_id", t("OBJ1")))
        .unwrap();
    assert_eq!(f[0][5], Value::Bytes(pdf), "attachment bytes round-trip");
    assert!(
        store
            .apply_rows(&[RowOp::Put {
                table: "objection_log",
                row: vec![t("OBJ1"), Value::Int(1), t("x"), t("x"), t("x"), t("x"), t("x")],
            }])
            .is_err(),
        "the log is append-only"
    );
    assert_eq!(
        store
            .rows(&RowQuery::all("repairs").eq("source", t("amr")))
            .unwrap()
            .len(),
        1
    );
    // One open objection a record: a second one for the same record fails on the key, nothing of its list written.
    let other = vec![
        t("REP9"),
        t("x"),
        Value::Int(1),
        t("x"),
        t("x"),
        t("x"),
        t("x"),
        t("x"),
        t("x"),
        t("pending"),
        Value::Null,
        Value::Null,
        Value::Null,
    ];
    assert!(store
        .apply_rows(&[
            RowOp::Put {
                table: "repairs",
                row: other,
            },
            RowOp::Insert {
                table: "objection_open",
                row: vec![t("91110000600037341L|amr|amr.penalties|k42"), t("OBJ2")],
            },
        ])
        .is_err());
    assert!(store
        .rows(&RowQuery::all("repairs").eq("repair_id", t("REP9")))
        .unwrap()
        .is_empty());
}

/// Bulk writing: the same batches written with `put_facts` into `bulk` and one `put_fact` at a time into
/// `one` (both fresh, of any backends) give the same outcomes and the same export — fact ids, history,
/// supersession links — across new keys, unchanged and replaced versions interleaved in one call, a late
/// (backdated) delivery, a key twice in one call, and calls of one fact and of none.
pub fn bulk(bulk: &mut dyn Store, one: &mut dyn Store) {
    use PutOutcome::*;
    let (u, v) = ("91110000600037341L", "91330604MA2C00002Y");
    let ds = "lender.bank.loans";
    let h = |k: &str, n: u32| format!("h-{k}-{n}");
    // (batch, delivered on, facts as (firm, key, version), expected outcomes)
    type Step<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str, u32)>, Vec<PutOutcome>);
    let steps: Vec<Step> = vec![
        (
            "b1",
            "2025-02-10",
            vec![(u, "A", 1), (u, "B", 1), (v, "C", 1), (v, "D", 1), (u, "E", 1)],
            vec![Inserted; 5],
        ),
        (
            "b2",
            "2025-03-10",
            vec![
                (u, "A", 1),
                (u, "B", 2),
                (v, "F", 1),
                (v, "C", 2),
                (u, "G", 1),
                (u, "E", 1),
            ],
            vec![Unchanged, Replaced, Inserted, Replaced, Inserted, Unchanged],
        ),
        // Between b1 and b2: B's late version is history; H is new.
        (
            "b3",
            "2025-02-20",
            vec![(u, "B", 9), (u, "H", 1)],
            vec![Backdated, Inserted],
        ),
        // A key twice in one call: the second replaces the first.
        (
            "b4",
            "2025-04-10",
            vec![(v, "I", 1), (u, "A", 2), (v, "I", 2)],
            vec![Inserted, Replaced, Replaced],
        ),
        ("b5", "2025-05-10", vec![(v, "D", 3)], vec![Replaced]),
        ("b6", "2025-06-10", vec![], vec![]),
    ];
    for (bid, date, facts, expected) in &steps {
        let m = meta(bid, ds, date);
        let fields: Vec<(String, String, String)> = facts
            .iter()
            .map(|(_, k, n)| (format!("k|2025-01|{k}"), format!("{{\"v\":{n}}}"), h(k, *n)))
            .collect();
        // Keys C and D are events (dates, no period, several source rows); the others monthly snapshots.
        let nf: Vec<NewFact<'_>> = facts
            .iter()
            .zip(&fields)
            .enumerate()
            .map(|(i, ((firm, k, _), (key, f, hash)))| {
                let mut x = fact(firm, key, "2025-01", f, hash, i as u64 + 2);
                if matches!(*k, "C" | "D") {
                    x.period = None;
                    x.date = Some("2024-12-03");
                    x.end_date = Some("2025-06-30");
                    x.n_rows = 3;
                }
                x
            })
            .collect();
        for (out, in_bulk) in [(write(bulk, &m, &nf, true), true), (write(one, &m, &nf, false), false)] {
            assert_eq!(&out, expected, "batch {bid}, bulk {in_bulk}");
        }
    }
    let (a, b) = (export_all(bulk), export_all(one));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "bulk and one at a time store the same");
    }
    assert_eq!(bulk.content_hash().unwrap(), one.content_hash().unwrap());
    assert_eq!(
        fields_as_of(bulk, u, Some("2025-02-25")),
        [
            "k|2025-01|A {\"v\":1}",
            "k|2025-01|B {\"v\":9}",
            "k|2025-01|E {\"v\":1}",
            "k|2025-01|H {\"v\":1}"
        ]
    );
}

/// One batch, in bulk or one fact at a time.
fn write(store: &mut dyn Store, m: &BatchMeta, facts: &[NewFact<'_>], in_bulk: bool) -> Vec<PutOutcome> {
    let mut w = store.begin().expect("begin");
    w.start_batch(m).expect("start");
    let out = if in_bulk {
        w.put_facts(facts).expect("put_facts")
    } else {
        facts.iter().map(|f| w.put_fact(f).expect("put")).collect()
    };
    w.end_batch(BatchCounts::default(), &[]).expect("end");
    w.commit().expect("commit");
    out
}

/// Every record of a store's export.
pub fn export_all(store: &dyn Store) -> Vec<Record> {
    let mut out = Vec::new();
    store
        .export(&mut |r| {
            out.push(r);
            Ok(())
        })
        .expect("export");
    out
}

/// Imports `records` (in order) into `store`.
pub fn import_all(store: &mut dyn Store, records: &[Record]) -> Result<u64> {
    let mut it = records.iter().cloned();
    store.import(&mut || Ok(it.next()))
}

/// Export and import: the story's content written to `a` (fresh), exported, imported into `b` (fresh, of
/// any backend) gives the same content hash, the same reads and (same backend) the same export; an import
/// into a store holding data, or of records that do not hash to the export's content hash, is refused and
/// leaves the store as it was; facts written after an import get ids after the imported ones.
pub fn round_trip(a: &mut dyn Store, b: &mut dyn Store) {
    run(a);
    // A later run stores an event whose id sorts before the story's: the export lists events in id order.
    a.put_run(&ScoreRun {
        run_id: "2025-04-30/5f-b".into(),
        as_of: "2025-04-30".into(),
        model_version: "5f-b".into(),
        created_at: "2025-05-01T00:00:00".into(),
        benchmarks: "{}".into(),
        events: vec![EventRow {
            id: "e0".into(),
            uscc: "91110000600037341L".into(),
            date: "2025-04-30".into(),
            kind: "grade_changed".into(),
            rule: None,
            before: "BB".into(),
            after: "B".into(),
        }],
        ..ScoreRun::default()
    })
    .unwrap();
    let records = export_all(a);
    let n = records.len() as u64 - 1;
    assert!(matches!(records.last(), Some(Record::ContentHash(h)) if *h == a.content_hash().unwrap()));
    for t in TABLES.into_iter().chain(rows::exported().map(|t| t.name)) {
        assert!(
            records.iter().any(|r| r.table() == t)
                || matches!(
                    t,
                    "sessions" | "authorisations" | "applications" | "api_tokens" | "changes" | "settings"
                ),
            "the story fills every table: no {t}"
        );
    }
    assert!(
        !records.iter().any(|r| r.table() == "sessions"),
        "sessions are not exported"
    );
    // Into a store holding data: refused, nothing changed.
    let e = import_all(a, &records).expect_err("import into a non-empty store");
    assert!(e.to_string().contains("not empty"), "{e}");
    assert_eq!(export_all(a), records);
    // Records that do not match their content hash: refused, nothing imported.
    let mut bad = records.clone();
    if let Some(Record::Fact(f)) = bad.iter_mut().find(|r| matches!(r, Record::Fact(_))) {
        f.content_hash.push('x');
    }
    let e = import_all(b, &bad).expect_err("a content hash mismatch");
    assert!(e.to_string().contains("hashes to"), "{e}");
    assert_eq!(
        b.stats().unwrap(),
        StoreStats::default(),
        "the failed import left nothing"
    );
    // The export into the fresh store.
    assert_eq!(import_all(b, &records).unwrap(), n);
    assert_eq!(b.content_hash().unwrap(), a.content_hash().unwrap());
    assert_eq!(b.stats().unwrap(), a.stats().unwrap());
    assert_eq!(b.runs().unwrap(), a.runs().unwrap());
    assert_eq!(b.model(None).unwrap(), a.model(None).unwrap());
    assert_eq!(b.credit_events(None).unwrap(), a.credit_events(None).unwrap());
    assert_eq!(
        b.quarantine_rows(None, u64::MAX).unwrap(),
        a.quarantine_rows(None, u64::MAX).unwrap()
    );
    for r in a.runs().unwrap() {
        let id = &r.run_id;
        assert_eq!(b.run_scores(id).unwrap(), a.run_scores(id).unwrap());
        assert_eq!(b.run_index(id, None).unwrap(), a.run_index(id, None).unwrap());
        assert_eq!(b.run_circles(id, None).unwrap(), a.run_circles(id, None).unwrap());
        assert_eq!(b.run_benchmarks(id).unwrap(), a.run_benchmarks(id).unwrap());
    }
    for t in rows::exported() {
        let q = rows::RowQuery::all(t.name);
        assert_eq!(b.rows(&q).unwrap(), a.rows(&q).unwrap(), "{}", t.name);
    }
    // Change events are exported in id order on every backend, whatever order the runs stored them in.
    let event_ids: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Event { row, .. } => Some(row.id.as_str()),
            _ => None,
        })
        .collect();
    assert!(
        !event_ids.is_empty() && event_ids.windows(2).all(|w| w[0] < w[1]),
        "events in id order"
    );
    let again = export_all(b);
    assert_eq!(again.len(), records.len());
    for t in TABLES.into_iter().chain(rows::exported().map(|t| t.name)) {
        let of = |v: &[Record]| v.iter().filter(|r| r.table() == t).cloned().collect::<Vec<_>>();
        let (x, y) = (of(&records), of(&again));
        assert_eq!(x.len(), y.len(), "{t}");
        // Rows without a key of their own may come out in another (deterministic) order on another backend.
        if !matches!(t, "warning_spans" | "index_movers") {
            assert_eq!(x, y, "{t}");
        }
    }
    // Writing goes on after an import: the next fact gets the next id.
    let max = records
        .iter()
        .filter_map(|r| match r {
            Record::Fact(f) => Some(f.fact_id),
            _ => None,
        })
        .max()
        .unwrap();
    let u = "91330604MA2C00002Y";
    batch(
        b,
        &meta("after-import", "lender.bank.loans", "2025-06-10"),
        &[fact(u, "k|2025-05|L9", "2025-05", "{}", "h-after", 2)],
        None,
    );
    assert_eq!(b.facts_of(u, None).unwrap()[0].fact_id, max + 1);
}

/// A pool on a fresh store (of any backend, at most `max_size` connections): many threads read and write at
/// once through it — every write lands, once; no more connections are open than the pool's size; a request
/// that finds every connection out waits, and fails with a clear error only after the configured wait.
pub fn pool(pool: &crate::pool::Pool, max_size: u32) {
    let u = "91110000600037341L";
    let writers = 4;
    std::thread::scope(|s| {
        for t in 0..12u32 {
            s.spawn(move || {
                let mut store = pool.get().expect("a pooled connection");
                if t < writers {
                    let m = meta(&format!("pool-{t}"), "lender.bank.loans", "2025-02-10");
                    let key = format!("k|2025-01|P{t}");
                    write(&mut **store, &m, &[fact(u, &key, "2025-01", "{}", "h", 2)], true);
                } else {
                    store.stats().expect("stats");
                    store.batch_ids().expect("batches");
                }
                let (open, _) = pool.state();
                assert!(open <= max_size, "{open} connections open, pool of {max_size}");
            });
        }
    });
    let store = pool.get().expect("a pooled connection");
    assert_eq!(
        store.batch_ids().unwrap().len(),
        writers as usize,
        "every write landed once"
    );
    assert_eq!(store.facts_of(u, None).unwrap().len(), writers as usize);
}

/// A pool of one connection with a short wait: a second request while the first holds it fails with the
/// pool's error; once it is given back, the next request gets it.
pub fn pool_wait(pool: &crate::pool::Pool) {
    let held = pool.get().expect("first");
    let t = std::time::Instant::now();
    let e = pool.get().err().expect("no second connection");
    assert!(e.to_string().contains("no store connection free"), "{e}");
    assert!(t.elapsed() >= std::time::Duration::from_millis(100), "it waited");
    drop(held);
    pool.get().expect("given back").ping().expect("ping");
}
