//! Hand-worked cases, kept as data: every `tests/fixtures/*.toml` holds one small graph and the results worked
//! out by hand (the arithmetic is in the fixture's comments). `check` builds the graph, runs every analysis the
//! fixture has expectations for and compares; floats to 1e-9.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use xinyong_network::{
    analyse, components, debtrank, debtrank_each, economic_values, ego, risk_paths, stress, vulnerable,
    vulnerable_update, Graph, GuaranteeEdge, Link, LinkKind, NodeKind, Pattern, PatternConfig, StressConfig,
};

const EPS: f64 = 1e-9;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    name: String,
    #[serde(default)]
    #[allow(dead_code)]
    description: String,
    #[serde(default)]
    pattern_config: PatternOverride,
    #[serde(default)]
    stress_config: StressConfig,
    nodes: Vec<FNode>,
    #[serde(default)]
    guarantees: Vec<FGuarantee>,
    #[serde(default)]
    links: Vec<FLink>,
    expect: Expect,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct PatternOverride {
    star_min: Option<usize>,
    control_share: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FNode {
    id: String,
    kind: NodeKind,
    #[serde(default)]
    name: String,
    equity: Option<f64>,
    #[serde(default)]
    pd: f64,
    #[serde(default)]
    colour: u8,
    #[serde(default)]
    defaulted: bool,
    #[serde(default)]
    loans: Vec<(String, f64)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FGuarantee {
    guarantor: String,
    borrower: String,
    amount: f64,
    lender: String,
    kind: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FLink {
    from: String,
    to: String,
    kind: LinkKind,
    #[serde(default)]
    share: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expect {
    /// Strongly connected components of size ≥ 2, as sorted id lists.
    sccs: Vec<Vec<String>>,
    /// Weakly connected components of size ≥ 2.
    wccs: Vec<Vec<String>>,
    /// Patterns of every node (all nodes must be listed).
    firms: BTreeMap<String, Vec<Pattern>>,
    /// Every guarantee group, matched by id.
    groups: Vec<FGroup>,
    /// Corporate groups of size ≥ 2 (sorted ids), when given.
    corporate: Option<Vec<Vec<String>>>,
    /// `Network::chain_len` per node (all nodes), when given.
    chain_len: Option<BTreeMap<String, usize>>,
    /// `economic_values` per node (all nodes), when given.
    values: Option<BTreeMap<String, f64>>,
    /// `vulnerable` with the nodes' own PDs (all nodes), when given.
    vulnerable: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    debtrank: Vec<FDebtRank>,
    /// `debtrank_each` per node (all nodes), when given.
    debtrank_each: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    risk_paths: Vec<FRiskPaths>,
    stress: Option<FStress>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FGroup {
    id: String,
    members: Vec<String>,
    cores: Vec<Vec<String>>,
    patterns: Vec<Pattern>,
    size: usize,
    in_circles: usize,
    contracts: usize,
    pairs: usize,
    total_amount: f64,
    density: f64,
    longest_chain: usize,
    #[serde(default)]
    red: Vec<String>,
    #[serde(default)]
    yellow: Vec<String>,
    exposure_by_lender: Vec<(String, f64)>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FDebtRank {
    shock: BTreeMap<String, f64>,
    /// Final distress of the nodes it reaches; every node not listed must end at 0.
    h: BTreeMap<String, f64>,
    induced: f64,
    rounds: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FRiskPaths {
    target: String,
    /// Source distress per node (unlisted: 0), or the nodes' own PDs with `distress_from_pd`.
    #[serde(default)]
    distress: BTreeMap<String, f64>,
    #[serde(default)]
    distress_from_pd: bool,
    paths: Vec<FPath>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FPath {
    nodes: Vec<String>,
    weight: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FStress {
    failed: Vec<String>,
    debtrank: f64,
    affected: Vec<FAffected>,
    lenders: Vec<FLender>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FAffected {
    node: String,
    turns: String,
    pd_before: f64,
    pd_after: f64,
    debtrank_distress: f64,
    paths: Option<Vec<FPath>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FLender {
    lender: String,
    defaulted_exposure: f64,
    guarantee_cover_lost: f64,
    loss: f64,
    expected_loss_increase: f64,
}

/// Collects mismatches, each naming the fixture and the field.
struct Report {
    fixture: String,
    errors: Vec<String>,
}

impl Report {
    fn fail(&mut self, field: &str, msg: String) {
        self.errors.push(format!("{}: {field}: {msg}", self.fixture));
    }
    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, field: &str, expected: T, got: T) {
        if expected != got {
            self.fail(field, format!("expected {expected:?}, got {got:?}"));
        }
    }
    fn close(&mut self, field: &str, expected: f64, got: f64) {
        let diff = (expected - got).abs();
        if diff.is_nan() || diff > EPS {
            self.fail(
                field,
                format!("expected {expected:.15}, got {got:.15} (diff {:e})", got - expected),
            );
        }
    }
    /// A per-node map that must list exactly the graph's nodes.
    fn all_nodes<T>(&mut self, field: &str, g: &Graph, m: &BTreeMap<String, T>) -> bool {
        let want: Vec<&str> = {
            let mut v: Vec<&str> = g.nodes.iter().map(|n| n.id.as_str()).collect();
            v.sort_unstable();
            v
        };
        let have: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
        if want != have {
            self.fail(field, format!("must list every node {want:?}, lists {have:?}"));
            return false;
        }
        true
    }
}

fn ids(g: &Graph, vs: &[u32]) -> Vec<String> {
    let mut out: Vec<String> = vs.iter().map(|&v| g.nodes[v as usize].id.clone()).collect();
    out.sort();
    out
}

fn sorted_lists(mut v: Vec<Vec<String>>) -> Vec<Vec<String>> {
    for l in &mut v {
        l.sort();
    }
    v.sort();
    v
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn node_of(g: &Graph, fixture: &str, id: &str) -> u32 {
    g.find(id)
        .unwrap_or_else(|| panic!("{fixture}: unknown node id {id:?}"))
}

fn check_paths(r: &mut Report, field: &str, g: &Graph, expected: &[FPath], got: &[xinyong_network::RiskPath]) {
    let got_nodes: Vec<Vec<String>> = got
        .iter()
        .map(|p| p.nodes.iter().map(|&v| g.nodes[v as usize].id.clone()).collect())
        .collect();
    let want_nodes: Vec<Vec<String>> = expected.iter().map(|p| p.nodes.clone()).collect();
    if want_nodes != got_nodes {
        r.fail(
            &format!("{field}.nodes"),
            format!("expected {want_nodes:?}, got {got_nodes:?}"),
        );
        return;
    }
    for (i, (w, p)) in expected.iter().zip(got).enumerate() {
        r.close(&format!("{field}[{i}].weight"), w.weight, p.weight);
    }
}

/// Loads one fixture, builds its graph, runs every analysis it has expectations for; returns the mismatches.
fn check(path: &Path) -> Vec<String> {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{file}: {e}"));
    let fx: Fixture = toml::from_str(&text).unwrap_or_else(|e| panic!("{file}: bad fixture: {e}"));
    let fixture = format!("{file} ({})", fx.name);
    let mut r = Report {
        fixture: fixture.clone(),
        errors: Vec::new(),
    };
    assert!((3..=8).contains(&fx.nodes.len()), "{fixture}: a fixture has 3-8 nodes");

    // Build.
    let mut g = Graph::new();
    for n in &fx.nodes {
        assert!(g.find(&n.id).is_none(), "{fixture}: node {} twice", n.id);
        let i = g.node(&n.id, n.kind) as usize;
        let node = &mut g.nodes[i];
        node.name = n.name.clone();
        node.equity = n.equity;
        node.pd = n.pd;
        node.colour = n.colour;
        node.defaulted = n.defaulted;
        node.loans = n.loans.clone();
    }
    for e in &fx.guarantees {
        let edge = GuaranteeEdge {
            guarantor: node_of(&g, &fixture, &e.guarantor),
            borrower: node_of(&g, &fixture, &e.borrower),
            amount: e.amount,
            lender: e.lender.clone(),
            kind: e.kind.clone(),
            fact: 0,
            start: None,
            end: None,
        };
        g.add_guarantee(edge);
    }
    for l in &fx.links {
        let link = Link {
            from: node_of(&g, &fixture, &l.from),
            to: node_of(&g, &fixture, &l.to),
            kind: l.kind,
            share: l.share,
            fact: 0,
        };
        g.add_link(link);
    }
    g.finish();
    let ex = &fx.expect;
    let mut pcfg = PatternConfig::default();
    if let Some(s) = fx.pattern_config.star_min {
        pcfg.star_min = s;
    }
    if let Some(s) = fx.pattern_config.control_share {
        pcfg.control_share = s;
    }
    let scfg = fx.stress_config;
    let n = g.len();
    let id = |v: usize| g.nodes[v].id.clone();

    // Components.
    let c = components(&g);
    let sccs: Vec<Vec<String>> = c.sccs.iter().filter(|s| s.len() >= 2).map(|s| ids(&g, s)).collect();
    r.eq("sccs", sorted_lists(ex.sccs.clone()), sorted_lists(sccs));
    let wccs: Vec<Vec<String>> = c.wccs.iter().filter(|s| s.len() >= 2).map(|s| ids(&g, s)).collect();
    r.eq("wccs", sorted_lists(ex.wccs.clone()), sorted_lists(wccs));

    // Patterns.
    let net = analyse(&g, &c, &pcfg);
    if r.all_nodes("firms", &g, &ex.firms) {
        for (fid, want) in &ex.firms {
            let v = node_of(&g, &fixture, fid) as usize;
            r.eq(
                &format!("firms.{fid}"),
                sorted(want.clone()),
                sorted(net.firms[v].pattern_list()),
            );
        }
    }
    if let Some(want) = &ex.chain_len {
        if r.all_nodes("chain_len", &g, want) {
            for (fid, &len) in want {
                let v = node_of(&g, &fixture, fid) as usize;
                r.eq(&format!("chain_len.{fid}"), len, net.chain_len[v]);
            }
        }
    }
    if let Some(want) = &ex.corporate {
        let mut by: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for (v, f) in net.firms.iter().enumerate() {
            if let Some(root) = f.corporate {
                by.entry(root).or_default().push(v as u32);
            }
        }
        let got: Vec<Vec<String>> = by.values().map(|m| ids(&g, m)).collect();
        r.eq("corporate", sorted_lists(want.clone()), sorted_lists(got));
    }
    let got_ids: Vec<String> = sorted(net.groups.iter().map(|x| x.id.clone()).collect());
    let want_ids: Vec<String> = sorted(ex.groups.iter().map(|x| x.id.clone()).collect());
    r.eq("groups (ids)", want_ids, got_ids);
    for w in &ex.groups {
        let Some(got) = net.groups.iter().find(|x| x.id == w.id) else {
            continue;
        };
        let f = |name: &str| format!("groups.{}.{name}", w.id);
        let m = &got.metrics;
        r.eq(&f("members"), sorted(w.members.clone()), ids(&g, &got.members));
        let cores: Vec<Vec<String>> = got.cores.iter().map(|x| ids(&g, x)).collect();
        r.eq(&f("cores"), sorted_lists(w.cores.clone()), sorted_lists(cores));
        r.eq(&f("patterns"), sorted(w.patterns.clone()), sorted(got.patterns.clone()));
        r.eq(&f("size"), w.size, m.size);
        r.eq(&f("in_circles"), w.in_circles, m.in_circles);
        r.eq(&f("contracts"), w.contracts, m.contracts);
        r.eq(&f("pairs"), w.pairs, m.pairs);
        r.close(&f("total_amount"), w.total_amount, m.total_amount);
        r.close(&f("density"), w.density, m.density);
        r.eq(&f("longest_chain"), w.longest_chain, m.longest_chain);
        r.eq(&f("red"), sorted(w.red.clone()), sorted(m.red.clone()));
        r.eq(&f("yellow"), sorted(w.yellow.clone()), sorted(m.yellow.clone()));
        let want_l: Vec<&str> = w.exposure_by_lender.iter().map(|x| x.0.as_str()).collect();
        let got_l: Vec<&str> = m.exposure_by_lender.iter().map(|x| x.0.as_str()).collect();
        r.eq(&f("exposure_by_lender (lenders, in order)"), want_l, got_l);
        for (a, b) in w.exposure_by_lender.iter().zip(&m.exposure_by_lender) {
            r.close(&f(&format!("exposure_by_lender.{}", a.0)), a.1, b.1);
        }
    }

    // Economic values, the vulnerable-node model.
    let values = economic_values(&g);
    if let Some(want) = &ex.values {
        if r.all_nodes("values", &g, want) {
            for (fid, &x) in want {
                r.close(&format!("values.{fid}"), x, values[node_of(&g, &fixture, fid) as usize]);
            }
        }
    }
    if let Some(want) = &ex.vulnerable {
        let own: Vec<f64> = g.nodes.iter().map(|x| x.pd).collect();
        let p = vulnerable(&g, &c, &own, &scfg);
        // After one node's own PD moves, the update (only the components that reach it) equals a full
        // recompute, bit for bit.
        for v in 0..g.len() as u32 {
            let mut own2 = own.clone();
            own2[v as usize] = (own2[v as usize] + 0.37).min(1.0);
            let mut q = p.clone();
            vulnerable_update(&g, &c, &own2, &scfg, &mut q, &[v]);
            let full = vulnerable(&g, &c, &own2, &scfg);
            assert!(
                q.iter().zip(&full).all(|(a, b)| a.to_bits() == b.to_bits()),
                "{fixture}: the update after node {v} moved equals a full recompute"
            );
        }
        if r.all_nodes("vulnerable", &g, want) {
            for (fid, &x) in want {
                r.close(&format!("vulnerable.{fid}"), x, p[node_of(&g, &fixture, fid) as usize]);
            }
        }
    }

    // DebtRank.
    for (k, d) in ex.debtrank.iter().enumerate() {
        let shock: Vec<(u32, f64)> = d.shock.iter().map(|(s, &x)| (node_of(&g, &fixture, s), x)).collect();
        let got = debtrank(&g, &shock, &values, &scfg);
        let f = |name: &str| format!("debtrank[{k}].{name}");
        for v in 0..n {
            let want = d.h.get(&id(v)).copied().unwrap_or(0.0);
            r.close(&f(&format!("h.{}", id(v))), want, got.h[v]);
        }
        for s in d.h.keys() {
            node_of(&g, &fixture, s);
        }
        r.close(&f("induced"), d.induced, got.induced);
        r.eq(&f("rounds"), d.rounds, got.rounds);
    }
    if let Some(want) = &ex.debtrank_each {
        let got = debtrank_each(&g, &values, &scfg);
        if r.all_nodes("debtrank_each", &g, want) {
            for (fid, &x) in want {
                r.close(
                    &format!("debtrank_each.{fid}"),
                    x,
                    got[node_of(&g, &fixture, fid) as usize],
                );
            }
        }
    }

    // Risk paths.
    for (k, rp) in ex.risk_paths.iter().enumerate() {
        let distress: Vec<f64> = if rp.distress_from_pd {
            g.nodes.iter().map(|x| x.pd).collect()
        } else {
            let mut d = vec![0.0; n];
            for (s, &x) in &rp.distress {
                d[node_of(&g, &fixture, s) as usize] = x;
            }
            d
        };
        let got = risk_paths(&g, node_of(&g, &fixture, &rp.target), &distress, &scfg);
        check_paths(
            &mut r,
            &format!("risk_paths[{k}] (target {})", rp.target),
            &g,
            &rp.paths,
            &got,
        );
    }

    // Stress.
    if let Some(st) = &ex.stress {
        let failed: Vec<u32> = st.failed.iter().map(|s| node_of(&g, &fixture, s)).collect();
        let got = stress(&g, &c, &failed, &scfg);
        r.eq("stress.failed", sorted(st.failed.clone()), ids(&g, &got.failed));
        r.close("stress.debtrank", st.debtrank, got.debtrank);
        let want_a: Vec<(&str, &str)> = st
            .affected
            .iter()
            .map(|a| (a.node.as_str(), a.turns.as_str()))
            .collect();
        let got_a: Vec<(String, String)> = got
            .affected
            .iter()
            .map(|a| (id(a.node as usize), a.turns.clone()))
            .collect();
        let got_a: Vec<(&str, &str)> = got_a.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        r.eq("stress.affected (node, turns, in order)", want_a, got_a);
        for (w, a) in st.affected.iter().zip(&got.affected) {
            let f = |name: &str| format!("stress.affected.{}.{name}", w.node);
            r.close(&f("pd_before"), w.pd_before, a.pd_before);
            r.close(&f("pd_after"), w.pd_after, a.pd_after);
            r.close(&f("debtrank_distress"), w.debtrank_distress, a.debtrank_distress);
            if let Some(p) = &w.paths {
                check_paths(&mut r, &f("paths"), &g, p, &a.paths);
            }
        }
        let want_l: Vec<&str> = st.lenders.iter().map(|l| l.lender.as_str()).collect();
        let got_l: Vec<&str> = got.lenders.iter().map(|l| l.lender.as_str()).collect();
        r.eq("stress.lenders (in order)", want_l, got_l);
        for (w, l) in st.lenders.iter().zip(&got.lenders) {
            let f = |name: &str| format!("stress.lenders.{}.{name}", w.lender);
            r.close(&f("defaulted_exposure"), w.defaulted_exposure, l.defaulted_exposure);
            r.close(
                &f("guarantee_cover_lost"),
                w.guarantee_cover_lost,
                l.guarantee_cover_lost,
            );
            r.close(&f("loss"), w.loss, l.loss);
            r.close(
                &f("expected_loss_increase"),
                w.expected_loss_increase,
                l.expected_loss_increase,
            );
        }
    }
    r.errors
}

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn hand_worked_fixtures() {
    let files = fixtures();
    let errors: Vec<String> = files.iter().flat_map(|p| check(p)).collect();
    assert!(errors.is_empty(), "{} mismatches:\n{}", errors.len(), errors.join("\n"));
    assert!(
        files.len() >= 12,
        "expected at least 12 fixtures, found {}",
        files.len()
    );
}

// The display view.

/// A star of 10: hub H guarantees B01..B10 with amounts 10, 20, …, 100 (so the children rank B10 first);
/// outside firm X guarantees B01, and person P holds 40% of B02.
fn star_of_ten() -> (Graph, u32) {
    let mut g = Graph::new();
    let h = g.node("H", NodeKind::Firm);
    let mut bs = Vec::new();
    for i in 1..=10 {
        bs.push(g.node(&format!("B{i:02}"), NodeKind::Firm));
    }
    let x = g.node("X", NodeKind::Outside);
    let p = g.node("P", NodeKind::Person);
    let guarantee = |guarantor: u32, borrower: u32, amount: f64| GuaranteeEdge {
        guarantor,
        borrower,
        amount,
        lender: "bank01".into(),
        kind: "single".into(),
        fact: 0,
        start: None,
        end: None,
    };
    for (i, &b) in bs.iter().enumerate() {
        g.add_guarantee(guarantee(h, b, 10.0 * (i + 1) as f64));
    }
    g.add_guarantee(guarantee(x, bs[0], 5.0));
    g.add_link(Link {
        from: p,
        to: bs[1],
        kind: LinkKind::Shareholder,
        share: 0.4,
        fact: 0,
    });
    g.finish();
    (g, h)
}

fn at_depth(v: &xinyong_network::EgoView, d: usize) -> Vec<&str> {
    v.nodes.iter().filter(|n| n.depth == d).map(|n| n.id.as_str()).collect()
}

#[test]
fn ego_paginates_a_star_of_ten() {
    let (g, h) = star_of_ten();
    // Page 1: the four largest guarantees.
    let v = ego(&g, h, 1, 0, 4);
    assert_eq!(v.center, "H");
    assert_eq!(v.total_children, 10);
    assert_eq!((v.offset, v.limit), (0, 4));
    assert_eq!(at_depth(&v, 0), ["H"]);
    assert_eq!(at_depth(&v, 1), ["B07", "B08", "B09", "B10"]);
    let edges: Vec<(&str, &str, &str, f64, usize)> = v
        .edges
        .iter()
        .map(|e| (e.from.as_str(), e.to.as_str(), e.kind.as_str(), e.amount, e.contracts))
        .collect();
    assert_eq!(
        edges,
        [
            ("H", "B10", "guarantee", 100.0, 1),
            ("H", "B09", "guarantee", 90.0, 1),
            ("H", "B08", "guarantee", 80.0, 1),
            ("H", "B07", "guarantee", 70.0, 1),
        ]
    );
    // Page 2 and the last, short page; past the end, only the centre.
    assert_eq!(at_depth(&ego(&g, h, 1, 4, 4), 1), ["B03", "B04", "B05", "B06"]);
    assert_eq!(at_depth(&ego(&g, h, 1, 8, 4), 1), ["B01", "B02"]);
    let past = ego(&g, h, 1, 12, 4);
    assert_eq!(past.total_children, 10);
    assert_eq!(past.nodes.len(), 1);
    assert!(past.edges.is_empty());
    // Depth 0: the centre alone, though the children are still counted.
    let d0 = ego(&g, h, 0, 0, 4);
    assert_eq!(d0.nodes.len(), 1);
    assert_eq!(d0.total_children, 10);
}

#[test]
fn ego_returns_depth_two_nodes() {
    let (g, h) = star_of_ten();
    // The last page's children bring in their own neighbours: X (guarantees B01) and P (holds B02).
    let v = ego(&g, h, 2, 8, 4);
    assert_eq!(at_depth(&v, 1), ["B01", "B02"]);
    assert_eq!(at_depth(&v, 2), ["P", "X"]);
    let x = v.nodes.iter().find(|n| n.id == "X").expect("X");
    assert_eq!(x.kind, NodeKind::Outside);
    assert!(v
        .edges
        .iter()
        .any(|e| (e.from.as_str(), e.to.as_str(), e.kind.as_str(), e.amount) == ("X", "B01", "guarantee", 5.0)));
    assert!(v
        .edges
        .iter()
        .any(|e| (e.from.as_str(), e.to.as_str(), e.kind.as_str(), e.amount) == ("P", "B02", "shareholder", 0.4)));
    // Edges are not repeated when reached from both ends.
    let mut keys: Vec<(String, String, String)> = v
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone(), e.kind.clone()))
        .collect();
    let total = keys.len();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), total);
    assert_eq!(total, 4);

    // Centred on a leaf: the hub at depth 1, then the hub's strongest borrowers at depth 2.
    let b05 = g.find("B05").expect("B05");
    let v = ego(&g, b05, 2, 0, 3);
    assert_eq!(v.total_children, 1);
    assert_eq!(at_depth(&v, 1), ["H"]);
    assert_eq!(at_depth(&v, 2), ["B08", "B09", "B10"]);
    // Depth 1 only: no depth-2 nodes.
    assert!(at_depth(&ego(&g, b05, 1, 0, 3), 2).is_empty());
}
