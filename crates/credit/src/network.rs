//! The guarantee network as of a date, from the firms' facts and their scores: the relation graph, circles and
//! patterns, contagion (vulnerable-node PD, DebtRank, risk paths), and what the network warnings (45–49) read.

use crate::data::{self, Day, FirmData};
use crate::features;
use crate::score::FirmScore;
use crate::warnings::Colour;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use xinyong_network::{
    self as net, Components, Graph, GuaranteeEdge, Link, LinkKind, Network, NodeKind, Pattern, PatternConfig,
    StressConfig,
};

/// Network settings (catalogue/network.toml).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    pub patterns: PatternSettings,
    pub contagion: StressConfig,
    /// Firms whose contagion add-on PD is at least this get their risk paths stored.
    pub path_threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternSettings {
    pub star_min: usize,
    pub control_share: f64,
}

impl NetworkConfig {
    pub fn builtin() -> NetworkConfig {
        toml::from_str(include_str!("../catalogue/network.toml")).expect("the built-in network settings parse (tested)")
    }
    pub fn pattern_config(&self) -> PatternConfig {
        PatternConfig {
            star_min: self.patterns.star_min,
            control_share: self.patterns.control_share,
        }
    }
}

/// A person's node id: a pseudonym (the platform never shows an id number in the graph).
pub fn person_id(raw: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in raw.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("P{:012x}", h & 0xffff_ffff_ffff)
}

/// Owners' equity (yuan) from the indicators (cap_net_assets is a signed log of 10,000 yuan).
fn equity_of(s: &FirmScore) -> Option<f64> {
    let i = features::position("cap_net_assets")?;
    s.features
        .values
        .get(i)
        .copied()
        .flatten()
        .map(|v| v.signum() * (v.abs().exp() - 1.0) * 1e4)
}

fn colour_code(c: Option<Colour>) -> u8 {
    match c {
        None => 0,
        Some(Colour::Blue) => 1,
        Some(Colour::Yellow) => 2,
        Some(Colour::Red) => 3,
    }
}

/// In default at `t`: a loan report 90+ days overdue in the last three reported months, as known on `k`.
fn defaulted_at(f: &FirmData, t: Day, k: Day, days: i64) -> bool {
    let m = data::last_complete_month(t);
    f.loans
        .iter()
        .any(|l| l.known.at(k) && l.month <= m && l.month > m - 3 && l.overdue_days >= days)
}

/// Loan balances by lender in the latest month reported by `t` (as known on `k`).
fn balances(f: &FirmData, t: Day, k: Day) -> Vec<(String, f64)> {
    let m = data::last_complete_month(t);
    let latest = f
        .loans
        .iter()
        .filter(|l| l.known.at(k) && l.month <= m)
        .map(|l| l.month)
        .max();
    let Some(latest) = latest else {
        return Vec::new();
    };
    let mut by: std::collections::BTreeMap<String, f64> = Default::default();
    for l in f.loans.iter().filter(|l| l.known.at(k) && l.month == latest) {
        *by.entry(l.source.to_string()).or_default() += l.balance;
    }
    by.into_iter().filter(|x| x.1 > 0.0).collect()
}

/// The relation graph at `t` as known on `k`. `scores` (same order as `firms`, or empty) give PDs, colours
/// and equity; firms without a score get the configured outside PD.
pub fn build_graph(firms: &[FirmData], scores: &[Option<&FirmScore>], t: Day, k: Day, cfg: &NetworkConfig) -> Graph {
    let mut g = Graph::new();
    let default_days = 90;
    for (i, f) in firms.iter().enumerate() {
        let reg = f.registration_at(t, k.max(t));
        let kind = if reg.is_some() && crate::run::in_scope(f, t, k) {
            NodeKind::Firm
        } else {
            NodeKind::Outside
        };
        let v = g.node(&f.uscc, kind) as usize;
        let node = &mut g.nodes[v];
        node.kind = kind;
        if let Some(r) = reg {
            node.name = r.name.clone();
        }
        node.pd = cfg.contagion.outside_pd;
        if let Some(Some(s)) = scores.get(i) {
            node.pd = s.pd;
            node.colour = colour_code(s.colour);
            node.equity = equity_of(s);
        }
        if node.equity.is_none() {
            node.equity = reg
                .and_then(|r| r.paid_in_capital.or(r.reg_capital))
                .filter(|x| *x > 0.0);
        }
        node.defaulted = defaulted_at(f, t, k, default_days);
        node.loans = balances(f, t, k);
    }
    let in_firms: rustc_hash::FxHashSet<&str> = firms.iter().map(|f| f.uscc.as_str()).collect();
    for f in firms {
        let b = g.find(&f.uscc).unwrap_or(0);
        for x in f.guarantees_received.iter().filter(|x| x.known.at(k) && x.active(t)) {
            let gi = g.node(&x.guarantor, NodeKind::Outside);
            if g.nodes[gi as usize].kind == NodeKind::Outside && g.nodes[gi as usize].pd == 0.0 {
                g.nodes[gi as usize].pd = cfg.contagion.outside_pd;
            }
            g.add_guarantee(GuaranteeEdge {
                guarantor: gi,
                borrower: b,
                amount: x.amount,
                lender: x.lender.clone(),
                kind: x.kind.clone(),
                fact: x.fact,
                start: x.start.map(data::day_str),
                end: x.end.map(data::day_str),
            });
        }
        // Guarantees it gave to borrowers outside the district (stored under them; not loaded as firms).
        for x in f.guarantees_given.iter().filter(|x| x.known.at(k) && x.active(t)) {
            if !in_firms.contains(x.borrower.as_str()) {
                let bi = g.node(&x.borrower, NodeKind::Outside);
                g.nodes[bi as usize].pd = cfg.contagion.outside_pd;
                g.add_guarantee(GuaranteeEdge {
                    guarantor: b,
                    borrower: bi,
                    amount: x.amount,
                    lender: x.lender.clone(),
                    kind: x.kind.clone(),
                    fact: x.fact,
                    start: x.start.map(data::day_str),
                    end: x.end.map(data::day_str),
                });
            }
        }
        for h in f.holdings_at(t, k) {
            if h.holder_id.is_empty() {
                continue;
            }
            let (id, kind) = if h.holder_type == "person" {
                (person_id(&h.holder_id), NodeKind::Person)
            } else {
                (h.holder_id.clone(), NodeKind::Outside)
            };
            let from = g.node(&id, kind);
            g.add_link(Link {
                from,
                to: b,
                kind: LinkKind::Shareholder,
                share: h.share,
                fact: h.fact,
            });
        }
        if let Some(r) = f.registration_at(t, k.max(t)) {
            if !r.legal_rep_id.is_empty() {
                let p = g.node(&person_id(&r.legal_rep_id), NodeKind::Person);
                if g.nodes[p as usize].name.is_empty() {
                    g.nodes[p as usize].name = r.legal_rep.clone();
                }
                g.add_link(Link {
                    from: p,
                    to: b,
                    kind: LinkKind::LegalRep,
                    share: 0.0,
                    fact: r.fact,
                });
            }
            if !r.parent_id.is_empty() && r.parent_id != f.uscc {
                let p = g.node(&r.parent_id, NodeKind::Outside);
                g.add_link(Link {
                    from: p,
                    to: b,
                    kind: LinkKind::Parent,
                    share: 0.0,
                    fact: r.fact,
                });
            }
        }
    }
    g.finish();
    g
}

/// What the network warnings read about one firm (stored with the run so that one firm scored alone sees
/// exactly what the batch saw).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetFirm {
    /// The guarantee group (its stable id) and whether the firm is in a circle (SCC ≥ 2).
    pub group: Option<String>,
    pub in_circle: bool,
    /// The firm's own patterns, its circle's (the patterns of its SCC's members) and its group's.
    pub patterns: Vec<Pattern>,
    pub circle_patterns: Vec<Pattern>,
    pub group_patterns: Vec<Pattern>,
    /// Other members of its circle that are red, and the contracts inside the circle it is party to.
    pub circle_red: Vec<String>,
    pub circle_contracts: Vec<i64>,
    /// Other members of its group that are red, with the contracts that link the group (evidence).
    pub group_red: Vec<String>,
    /// Firms it guarantees or that guarantee it that are red, and the contracts between them.
    pub neighbours_red: Vec<String>,
    pub neighbour_contracts: Vec<i64>,
    /// Own PD, contagion-adjusted PD (vulnerable-node model) and the add-on between them.
    pub pd_self: f64,
    pub pd_network: f64,
    pub contagion: f64,
    /// Value-weighted distress its failure alone would cause (DebtRank).
    pub debtrank: f64,
    /// Related or group companies in default, and the facts behind the relation.
    pub related_defaulted: Vec<String>,
    /// The facts of its relations (shareholdings, registration) that make those firms related.
    pub related_facts: Vec<i64>,
    /// Guarantees within its corporate group (either side) in force now, and 12 months earlier.
    pub intra_group_amount: f64,
    pub intra_group_amount_12m_ago: f64,
    pub intra_group_contracts: Vec<i64>,
    /// Contract facts along the strongest risk paths (evidence for the contagion warning).
    pub path_contracts: Vec<i64>,
    /// The strongest paths that carry risk to it: ids from the firm to the distressed source, with weight.
    pub paths: Vec<PathView>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathView {
    pub firms: Vec<String>,
    pub amounts: Vec<f64>,
    pub weight: f64,
}

/// The whole network as of a date.
#[derive(Debug, Clone, Default)]
pub struct NetRun {
    pub graph: Graph,
    pub components: Components,
    pub network: Network,
    pub p_network: Vec<f64>,
    pub debtrank: Vec<f64>,
    pub firms: FxHashMap<String, NetFirm>,
}

/// Contracts (fact ids) between `a` and `b`, either direction.
fn contracts_between(g: &Graph, a: u32, b: u32) -> Vec<i64> {
    g.contracts(a)
        .iter()
        .map(|&i| &g.guarantees[i as usize])
        .filter(|e| (e.guarantor == a && e.borrower == b) || (e.guarantor == b && e.borrower == a))
        .map(|e| e.fact)
        .collect()
}

/// Analyses the network at `t` (as known on `k`).
pub fn analyse(firms: &[FirmData], scores: &[Option<&FirmScore>], t: Day, k: Day, cfg: &NetworkConfig) -> NetRun {
    let graph = build_graph(firms, scores, t, k, cfg);
    let components = net::components(&graph);
    let network = net::analyse(&graph, &components, &cfg.pattern_config());
    let p_self: Vec<f64> = graph.nodes.iter().map(|n| n.pd).collect();
    let p_network = net::vulnerable(&graph, &components, &p_self, &cfg.contagion);
    let values = net::economic_values(&graph);
    let debtrank = net::debtrank_each(&graph, &values, &cfg.contagion);
    let corp = net::corporate_groups(&graph, &cfg.pattern_config());
    let t12 = t - 365;
    let by_uscc: FxHashMap<&str, usize> = firms.iter().enumerate().map(|(i, f)| (f.uscc.as_str(), i)).collect();
    let mut out: FxHashMap<String, NetFirm> = FxHashMap::default();
    for (v, node) in graph.nodes.iter().enumerate() {
        if node.kind != NodeKind::Firm {
            continue;
        }
        let v32 = v as u32;
        let fnet = &network.firms[v];
        let group = fnet.group.map(|gi| &network.groups[gi as usize]);
        let mut nf = NetFirm {
            group: group.map(|c| c.id.clone()),
            in_circle: fnet.in_circle,
            patterns: fnet.pattern_list(),
            group_patterns: group.map(|c| c.patterns.clone()).unwrap_or_default(),
            pd_self: node.pd,
            pd_network: p_network[v],
            contagion: (p_network[v] - node.pd).max(0.0),
            debtrank: debtrank[v],
            ..NetFirm::default()
        };
        if let Some(c) = group {
            nf.group_red = c
                .members
                .iter()
                .filter(|&&w| w != v32 && graph.nodes[w as usize].colour == 3)
                .map(|&w| graph.nodes[w as usize].id.clone())
                .collect();
        }
        let mut neighbours: Vec<u32> = graph
            .borrowers(v32)
            .iter()
            .chain(graph.guarantors(v32))
            .map(|x| x.0)
            .collect();
        neighbours.sort_unstable();
        neighbours.dedup();
        for w in neighbours {
            if graph.nodes[w as usize].colour == 3 {
                nf.neighbours_red.push(graph.nodes[w as usize].id.clone());
                nf.neighbour_contracts.extend(contracts_between(&graph, v32, w));
            }
        }
        // Related companies: the same corporate group, or a direct shareholding either way.
        let mut related: Vec<u32> = Vec::new();
        let mut link_facts: Vec<i64> = Vec::new();
        for &l in graph.links_of(v32) {
            let l = &graph.links[l as usize];
            if l.kind != LinkKind::LegalRep && !link_facts.contains(&l.fact) {
                link_facts.push(l.fact);
            }
            if l.kind == LinkKind::Shareholder || l.kind == LinkKind::Parent {
                let w = if l.from == v32 { l.to } else { l.from };
                if graph.nodes[w as usize].kind != NodeKind::Person {
                    related.push(w);
                }
            }
        }
        if fnet.corporate.is_some() {
            // Members of the corporate group that appear in the guarantee graph or hold links.
            for (w, &r) in corp.iter().enumerate() {
                if r == corp[v] && w != v && graph.nodes[w].kind != NodeKind::Person {
                    related.push(w as u32);
                }
            }
        }
        related.sort_unstable();
        related.dedup();
        for w in related {
            if w != v32 && graph.nodes[w as usize].defaulted {
                nf.related_defaulted.push(graph.nodes[w as usize].id.clone());
            }
        }
        if !nf.related_defaulted.is_empty() {
            nf.related_facts = link_facts;
        }
        if fnet.corporate.is_some() {
            for &e in graph.contracts(v32) {
                let e = &graph.guarantees[e as usize];
                if corp[e.guarantor as usize] == corp[e.borrower as usize] && e.guarantor != e.borrower {
                    nf.intra_group_amount += e.amount;
                    nf.intra_group_contracts.push(e.fact);
                }
            }
            if let Some(f) = by_uscc.get(node.id.as_str()).map(|&i| &firms[i]) {
                let same = |other: &str| graph.find(other).is_some_and(|w| corp[w as usize] == corp[v]);
                nf.intra_group_amount_12m_ago = f
                    .guarantees_given
                    .iter()
                    .filter(|x| same(&x.borrower))
                    .chain(f.guarantees_received.iter().filter(|x| same(&x.guarantor)))
                    .filter(|x| x.known.at(k) && x.active(t12) && x.guarantor != x.borrower)
                    .map(|x| x.amount)
                    .sum();
            }
        }
        // Its circle: members' patterns, red members, the contracts inside it.
        if fnet.in_circle {
            let s = components.scc_of[v];
            let members = &components.sccs[s as usize];
            for &w in members {
                for p in network.firms[w as usize].pattern_list() {
                    if !nf.circle_patterns.contains(&p) {
                        nf.circle_patterns.push(p);
                    }
                }
                if w != v32 && graph.nodes[w as usize].colour == 3 {
                    nf.circle_red.push(graph.nodes[w as usize].id.clone());
                }
            }
            nf.circle_patterns.sort();
            for &e in graph.contracts(v32) {
                let e = &graph.guarantees[e as usize];
                if components.scc_of[e.guarantor as usize] == s && components.scc_of[e.borrower as usize] == s {
                    nf.circle_contracts.push(e.fact);
                }
            }
        }
        if nf.contagion >= cfg.path_threshold {
            let distress: Vec<f64> = graph
                .nodes
                .iter()
                .map(|n| if n.defaulted { 1.0 } else { n.pd })
                .collect();
            for p in net::risk_paths(&graph, v32, &distress, &cfg.contagion) {
                for w in p.nodes.windows(2) {
                    for f in contracts_between(&graph, w[0], w[1]) {
                        if !nf.path_contracts.contains(&f) {
                            nf.path_contracts.push(f);
                        }
                    }
                }
                nf.paths.push(PathView {
                    firms: p.nodes.iter().map(|&w| graph.nodes[w as usize].id.clone()).collect(),
                    amounts: p.amounts.clone(),
                    weight: p.weight,
                });
            }
        }
        out.insert(node.id.clone(), nf);
    }
    NetRun {
        graph,
        components,
        network,
        p_network,
        debtrank,
        firms: out,
    }
}

/// A guarantee group for display and storage: members by id, its circles, patterns, metrics and contracts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupView {
    pub id: String,
    pub members: Vec<String>,
    pub names: Vec<String>,
    /// Circles (SCCs of size ≥ 2), members by id.
    pub cores: Vec<Vec<String>>,
    pub patterns: Vec<Pattern>,
    pub metrics: net::CircleMetrics,
    /// Contracts: guarantor, borrower, amount, lender, kind, fact id.
    pub contracts: Vec<(String, String, f64, String, String, i64)>,
    /// Members by contagion add-on PD, highest first (id, own PD, network PD).
    pub contagion: Vec<(String, f64, f64)>,
}

impl NetRun {
    /// Every guarantee group as a view.
    pub fn group_views(&self) -> Vec<GroupView> {
        let g = &self.graph;
        let id = |v: u32| g.nodes[v as usize].id.clone();
        self.network
            .groups
            .iter()
            .map(|c| {
                let mut contracts = Vec::new();
                for &v in &c.members {
                    for &e in g.contracts(v) {
                        let e = &g.guarantees[e as usize];
                        if e.guarantor == v {
                            contracts.push((
                                id(e.guarantor),
                                id(e.borrower),
                                e.amount,
                                e.lender.clone(),
                                e.kind.clone(),
                                e.fact,
                            ));
                        }
                    }
                }
                contracts.sort_by(|a, b| (&a.0, &a.1, a.5).cmp(&(&b.0, &b.1, b.5)));
                let mut contagion: Vec<(String, f64, f64)> = c
                    .members
                    .iter()
                    .map(|&v| (id(v), g.nodes[v as usize].pd, self.p_network[v as usize]))
                    .collect();
                contagion.sort_by(|a, b| (b.2 - b.1).total_cmp(&(a.2 - a.1)).then(a.0.cmp(&b.0)));
                GroupView {
                    id: c.id.clone(),
                    members: c.members.iter().map(|&v| id(v)).collect(),
                    names: c.members.iter().map(|&v| g.nodes[v as usize].name.clone()).collect(),
                    cores: c.cores.iter().map(|k| k.iter().map(|&v| id(v)).collect()).collect(),
                    patterns: c.patterns.clone(),
                    metrics: c.metrics.clone(),
                    contracts,
                    contagion,
                }
            })
            .collect()
    }
}
