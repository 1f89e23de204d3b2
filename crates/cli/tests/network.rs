//! End-to-end tests of the guarantee network on a small generated district: the components of the district's
//! graph (built from the stored facts) and of a graph-only district equal networkx's (and igraph's) and every
//! firm's DebtRank equals a plain-Python DebtRank on the networkx graph (bench/network_vs_networkx.py); a
//! what-if from the command line explains who turns yellow or red with the guarantee paths; the firm-centred
//! view and a whole group come out as JSON.
//!
//! Needs python3 with networkx (`pip install networkx`; .ci/run installs it). A missing networkx fails the
//! test rather than skipping it.
//!
//! The tests that read a stored district run on both stores: a SQLite file and a database on the local PostgreSQL
//! server (see `common`; an unreachable server fails the test).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

mod common;
use common::{run, Db};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tmp(name: &str) -> PathBuf {
    common::tmp("network", name)
}

/// A small district (600 firms, 3 years), generated once per test binary.
fn district() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tmp("district");
        let mut c = xinyong_gen::GenConfig::demo(11);
        c.enterprises = 600;
        c.invoice_mean_yuan = 400_000.0;
        xinyong_gen::generate(&c, &d, &|_, _, _| {}).expect("generate");
        d
    })
}

fn ingest_and_score(db: Db) -> Db {
    run(&[
        "ingest",
        "--db",
        &db.arg(),
        district().join("sources").to_str().unwrap(),
    ]);
    run(&["score", "--db", &db.arg(), "--train"]);
    db
}

/// The district ingested and scored into each store once per test binary: the SQLite file, then a
/// PostgreSQL database (held for the whole run; the next run drops it, see `common::FreshDb`).
fn stores() -> [&'static Db; 2] {
    static LITE: OnceLock<Db> = OnceLock::new();
    static PG: OnceLock<Db> = OnceLock::new();
    [
        LITE.get_or_init(|| ingest_and_score(Db::sqlite(district().join("x.db")))),
        PG.get_or_init(|| ingest_and_score(Db::postgres())),
    ]
}

fn networkx_agrees(dir: &Path) {
    let ours = dir.join("ours.csv");
    run(&[
        "network",
        "--graph",
        dir.to_str().unwrap(),
        "--out",
        ours.to_str().unwrap(),
    ]);
    let out = Command::new("python3")
        .arg(root().join("bench/network_vs_networkx.py"))
        .arg(dir)
        .arg(&ours)
        .output()
        .expect("python3 runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "networkx cross-check failed:\n{text}");
    assert!(text.contains("components equal networkx's: yes"), "{text}");
    assert!(text.contains("all equal"), "{text}");
}

#[test]
fn the_district_graph_from_stored_facts_agrees_with_networkx() {
    for db in stores() {
        let _on = db.checking();
        let dir = tmp(&format!("export-{db}"));
        let out = run(&["network", "--db", &db.arg(), "--export-graph", dir.to_str().unwrap()]);
        assert!(out.contains("wrote the guarantee graph"), "[{db}] {out}");
        let edges = std::fs::read_to_string(dir.join("edges.csv")).unwrap();
        assert!(
            edges.lines().count() > 100,
            "[{db}] {} contracts",
            edges.lines().count()
        );
        networkx_agrees(&dir);
    }
}

#[test]
fn a_graph_only_district_agrees_with_networkx_and_is_reproducible() {
    let a = tmp("graph-a");
    let b = tmp("graph-b");
    for d in [&a, &b] {
        let out = run(&[
            "gen",
            "--graph-only",
            "--firms",
            "21000",
            "--seed",
            "5",
            "--out",
            d.to_str().unwrap(),
        ]);
        assert!(out.contains("guarantee contracts"), "{out}");
    }
    for f in ["nodes.csv", "edges.csv"] {
        assert_eq!(
            std::fs::read(a.join(f)).unwrap(),
            std::fs::read(b.join(f)).unwrap(),
            "{f} depends on the seed only"
        );
    }
    // Every named pattern is in the generated graph.
    let out = run(&["network", "--graph", a.to_str().unwrap()]);
    let line = out
        .lines()
        .find(|l| l.starts_with("firms by pattern: "))
        .unwrap_or_else(|| panic!("{out}"));
    for p in ["mutual", "joint", "chain", "cycle", "cross", "star", "group"] {
        let n: usize = line
            .split(", ")
            .find_map(|x| {
                x.trim_start_matches("firms by pattern: ")
                    .strip_prefix(&format!("{p} "))
            })
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("{p} in {line}"));
        assert!(n > 0, "no firm shows the {p} pattern: {line}");
    }
    networkx_agrees(&a);
}

#[test]
fn a_what_if_explains_who_turns_yellow_or_red_with_paths() {
    for db in stores() {
        let _on = db.checking();
        check_what_if(db);
    }
}

fn check_what_if(db: &Db) {
    let rules = xinyong_credit::warnings::builtin_rules();
    let s = db.open();
    let st = xinyong_app::network::state(&*s, None, &rules).expect("network state");
    let g = &st.net.graph;
    let cfg = st.config.contagion;
    // A guarantor below the yellow threshold whose exposure to one borrower alone carries it over: that
    // borrower failing must turn it yellow (or red), through that guarantee.
    let mut pick = None;
    for v in 0..g.len() as u32 {
        if g.nodes[v as usize].kind != xinyong_network::NodeKind::Firm || st.net.p_network[v as usize] >= cfg.yellow_pd
        {
            continue;
        }
        for &(b, amount) in g.borrowers(v) {
            let w = g.vulnerability(v, amount, cfg.unknown_vulnerability);
            if w >= cfg.yellow_pd * 1.5 {
                pick = Some((v, b));
                break;
            }
        }
        if pick.is_some() {
            break;
        }
    }
    let (v, b) =
        pick.unwrap_or_else(|| panic!("[{db}] a guarantor exposed to one borrower by more than the yellow threshold"));
    let (vid, bid) = (g.nodes[v as usize].id.clone(), g.nodes[b as usize].id.clone());
    let out = run(&["network", "--db", &db.arg(), "--what-if", &bid]);
    assert!(out.contains(&format!("what if {bid} fail")), "[{db}] {out}");
    let line = out
        .lines()
        .position(|l| l.contains("turns ") && l.contains(&vid))
        .unwrap_or_else(|| panic!("[{db}] {vid} should turn yellow or red when {bid} fails:\n{out}"));
    let why = out.lines().nth(line + 1).unwrap_or_default();
    assert!(
        why.contains("because") && why.trim_start().starts_with(&format!("because {vid}")) && why.contains(&bid),
        "[{db}] the path from {vid} to {bid}: {why}"
    );
    assert!(out.contains("lenders:"), "[{db}] {out}");
    // The same through the library: the stress result names the firm, with a path ending at the failed one.
    let s = st.what_if(std::slice::from_ref(&bid)).unwrap();
    let a = s.affected.iter().find(|a| a.node == v).expect("affected");
    assert!(
        a.pd_after > a.pd_before,
        "[{db}] {vid}: PD {} -> {}",
        a.pd_before,
        a.pd_after
    );
    assert_eq!(a.paths[0].nodes.first(), Some(&v), "[{db}]");
    assert_eq!(a.paths[0].nodes.last(), Some(&b), "[{db}]");
}

#[test]
fn the_firm_view_and_a_whole_group_come_out_as_json() {
    for db in stores() {
        let _on = db.checking();
        check_views(db);
    }
}

fn check_views(db: &Db) {
    let summary: serde_json::Value =
        serde_json::from_str(&run(&["network", "--db", &db.arg(), "--json", "--top", "3"])).unwrap();
    let group = &summary["top_groups"][0];
    let gid = group["id"].as_str().expect("a group id");
    let member = group["members"][0].as_str().unwrap();
    let whole: serde_json::Value =
        serde_json::from_str(&run(&["network", "--db", &db.arg(), "--circle", gid])).unwrap();
    assert_eq!(whole["id"], gid, "[{db}]");
    assert!(
        whole["contracts"].as_array().unwrap().len() + 1 >= whole["members"].as_array().unwrap().len(),
        "[{db}] {whole}"
    );
    let view: serde_json::Value = serde_json::from_str(&run(&[
        "network",
        "--db",
        &db.arg(),
        "--firm",
        member,
        "--depth",
        "2",
        "--per-page",
        "5",
    ]))
    .unwrap();
    assert_eq!(view["center"], member, "[{db}]");
    assert!(view["nodes"].as_array().unwrap().len() >= 2, "[{db}] {view}");
    assert!(
        view["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["depth"] == 1)
            .count()
            <= 5,
        "[{db}] {view}"
    );
    assert!(
        view["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "guarantee"),
        "[{db}] {view}"
    );
}

#[test]
fn the_live_paths_network_reproduces_the_stored_run() {
    for db in stores() {
        let _on = db.checking();
        let out = run(&["network", "--db", &db.arg(), "--check-live"]);
        assert!(out.contains("; 0 differences"), "[{db}] {out}");
        assert!(!out.contains("live network: 0 guarantee groups"), "[{db}] {out}");
    }
}
