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

/// A person's node id: a pseudonym of name and (usually masked) id number together — exports mask resident
/// ids (region, stars, last four), so the id alone would merge different people. The platform never shows an
/// id number in the graph.
pub fn person_id(name: &str, raw_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(format!("xinyong-person|{}|{}", name.trim(), raw_id.trim()).as_bytes());
    format!("P{}", hex::encode(&h[..6]))
}

/// A holder or parent id as a graph node: a valid USCC stays (a firm), anything else is pseudonymised.
fn entity_id(name: &str, raw_id: &str) -> (String, NodeKind) {
    if xinyong_domain::uscc::Uscc::parse(raw_id).is_ok() {
        (raw_id.to_string(), NodeKind::Outside)
    } else {
        (person_id(name, raw_id), NodeKind::Person)
    }
}

/// Owners' equity (yuan) from the indicators (cap_net_assets is a signed log of 10,000 yuan).
pub fn equity_of(s: &FirmScore) -> Option<f64> {
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

/// Days overdue that make a loan in default (the training label's definition).
pub const DEFAULT_DAYS: i64 = 90;

/// In default at `t`: a loan report 90+ days overdue in the last three reported months, as known on `k`.
pub fn defaulted_at(f: &FirmData, t: Day, k: Day, days: i64) -> bool {
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
/// and equity; firms without a score get the configured outside PD; a firm in default counts with PD 1.
///
/// Deterministic whatever the fact numbering: nodes are numbered by (kind, id) — district firms, then outside
/// firms, then persons — and contracts are added in (guarantor, borrower, amount, dates, kind) order, so two
/// stores holding the same facts under different ids give bit-identical results.
pub fn build_graph(firms: &[FirmData], scores: &[Option<&FirmScore>], t: Day, k: Day, cfg: &NetworkConfig) -> Graph {
    let default_days = DEFAULT_DAYS;
    let in_firms: rustc_hash::FxHashSet<&str> = firms.iter().map(|f| f.uscc.as_str()).collect();
    let firm_kind = |f: &FirmData| {
        if f.registration_at(t, k.max(t)).is_some() && crate::run::in_scope(f, t, k) {
            NodeKind::Firm
        } else {
            NodeKind::Outside
        }
    };
    // Every relation, with node ids first (then numbered in order).
    // Ids are borrowed from the firms' records where they can be: the graph is built for every month-end.
    struct G<'a> {
        guarantor: &'a str,
        borrower: &'a str,
        e: GuaranteeEdge,
    }
    let mut contracts: Vec<G> = Vec::new();
    let mut links: Vec<(String, NodeKind, &str, &str, LinkKind, f64, i64)> = Vec::new(); // from, kind, name, to, ...
    let edge = |x: &data::Guarantee| GuaranteeEdge {
        guarantor: 0,
        borrower: 0,
        amount: x.amount,
        lender: x.lender.clone(),
        kind: x.kind.clone(),
        fact: x.fact,
        start: x.start.map(data::day_str),
        end: x.end.map(data::day_str),
    };
    for f in firms {
        for x in f.guarantees_received.iter().filter(|x| x.known.at(k) && x.active(t)) {
            contracts.push(G {
                guarantor: &x.guarantor,
                borrower: &f.uscc,
                e: edge(x),
            });
        }
        // Guarantees it gave to borrowers outside the district (stored under them; not loaded as firms).
        for x in f.guarantees_given.iter().filter(|x| x.known.at(k) && x.active(t)) {
            if !in_firms.contains(x.borrower.as_str()) {
                contracts.push(G {
                    guarantor: &f.uscc,
                    borrower: &x.borrower,
                    e: edge(x),
                });
            }
        }
        for h in f.holdings_at(t, k) {
            if h.holder_id.is_empty() {
                continue;
            }
            let (id, kind) = entity_id(&h.holder_name, &h.holder_id);
            let name = if kind == NodeKind::Person {
                h.holder_name.as_str()
            } else {
                ""
            };
            links.push((id, kind, name, &f.uscc, LinkKind::Shareholder, h.share, h.fact));
        }
        if let Some(r) = f.registration_at(t, k.max(t)) {
            if !r.legal_rep_id.is_empty() || !r.legal_rep.is_empty() {
                let id = person_id(&r.legal_rep, &r.legal_rep_id);
                links.push((
                    id,
                    NodeKind::Person,
                    &r.legal_rep,
                    &f.uscc,
                    LinkKind::LegalRep,
                    0.0,
                    r.fact,
                ));
            }
            if !r.parent_id.is_empty() && r.parent_id != f.uscc {
                let (id, kind) = entity_id("", &r.parent_id);
                links.push((id, kind, "", &f.uscc, LinkKind::Parent, 0.0, r.fact));
            }
        }
    }
    // Nodes in (kind, id) order.
    let rank = |k: NodeKind| match k {
        NodeKind::Firm => 0u8,
        NodeKind::Outside => 1,
        NodeKind::Person => 2,
    };
    // Each id once, with the kind it was first given: a firm's own (the last firm of a repeated id), else
    // outside for a party to a contract, else the link's. A stable sort keeps the first of equal ids first.
    let mut ids: Vec<(&str, NodeKind)> = Vec::with_capacity(firms.len() + 2 * contracts.len() + links.len());
    ids.extend(firms.iter().rev().map(|f| (f.uscc.as_str(), firm_kind(f))));
    for c in &contracts {
        ids.push((c.guarantor, NodeKind::Outside));
        ids.push((c.borrower, NodeKind::Outside));
    }
    ids.extend(links.iter().map(|l| (l.0.as_str(), l.1)));
    ids.sort_by(|a, b| a.0.cmp(b.0));
    ids.dedup_by(|a, b| a.0 == b.0);
    let mut order: Vec<(u8, &str, NodeKind)> = ids.iter().map(|&(id, kd)| (rank(kd), id, kd)).collect();
    order.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    let mut g = Graph::with_capacity(order.len());
    for (_, id, kind) in order {
        let v = g.node(id, kind) as usize;
        g.nodes[v].pd = cfg.contagion.outside_pd;
    }
    for (i, f) in firms.iter().enumerate() {
        let v = g.find(&f.uscc).unwrap_or(0) as usize;
        let reg = f.registration_at(t, k.max(t));
        let node = &mut g.nodes[v];
        if let Some(r) = reg {
            node.name = r.name.clone();
        }
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
        if node.defaulted {
            // A firm in default has failed: its guarantors are being called now, whatever its model PD says.
            node.pd = 1.0;
        }
        node.loans = balances(f, t, k);
    }
    contracts.sort_by(|a, b| {
        (
            &a.guarantor,
            &a.borrower,
            a.e.amount.to_bits(),
            &a.e.start,
            &a.e.end,
            &a.e.kind,
            &a.e.lender,
        )
            .cmp(&(
                &b.guarantor,
                &b.borrower,
                b.e.amount.to_bits(),
                &b.e.start,
                &b.e.end,
                &b.e.kind,
                &b.e.lender,
            ))
    });
    for c in contracts {
        let mut e = c.e;
        e.guarantor = g.find(c.guarantor).unwrap_or(0);
        e.borrower = g.find(c.borrower).unwrap_or(0);
        g.add_guarantee(e);
    }
    links.sort_by(|a, b| (&a.0, &a.3, a.4, a.5.to_bits()).cmp(&(&b.0, &b.3, b.4, b.5.to_bits())));
    for (from, _, name, to, kind, share, fact) in links {
        let fv = g.find(&from).unwrap_or(0);
        if !name.is_empty() && g.nodes[fv as usize].name.is_empty() {
            g.nodes[fv as usize].name = name.to_string();
        }
        let tv = g.find(to).unwrap_or(0);
        g.add_link(Link {
            from: fv,
            to: tv,
            kind,
            share,
            fact,
        });
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
    /// Firms it guarantees or that guarantee it that are red, and the contracts between them.
    pub neighbours_red: Vec<String>,
    pub neighbour_contracts: Vec<i64>,
    /// Own PD (the model's; 1 for a firm in default), contagion-adjusted PD (vulnerable-node model) and the
    /// add-on between them.
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
    /// Each firm's view of its network. After a scoring pass (`run`), the views of the firms it scored have
    /// moved into their scores (`FirmScore::network`); only the others' are left here.
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
    // Firms (not persons) of each corporate group, built once.
    let mut corp_members: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for (w, &r) in corp.iter().enumerate() {
        if graph.nodes[w].kind != NodeKind::Person {
            corp_members.entry(r).or_default().push(w as u32);
        }
    }
    // Sources' distress for risk paths: own PD (1 in default, as in the graph).
    let distress: Vec<f64> = graph.nodes.iter().map(|n| n.pd).collect();
    // The same day 12 months earlier (month arithmetic; the 29th of February falls back to the 28th).
    let t12 = same_day_months_back(t, 12);
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
            debtrank: debtrank[v],
            ..NetFirm::default()
        };
        guarantee_part(&graph, &components, v32, &p_network, &distress, cfg, &mut nf);
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
            if let Some(ms) = corp_members.get(&corp[v]) {
                related.extend(ms.iter().copied().filter(|&w| w != v32));
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
        // Its circle's patterns (the patterns of its members).
        if fnet.in_circle {
            let s = components.scc_of[v];
            for &w in &components.sccs[s as usize] {
                for p in network.firms[w as usize].pattern_list() {
                    if !nf.circle_patterns.contains(&p) {
                        nf.circle_patterns.push(p);
                    }
                }
            }
            nf.circle_patterns.sort();
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

/// The fields of a firm's place in the network that follow from its guarantee group alone — the members'
/// own PDs and colours and the contracts between them: its own and contagion-adjusted PD, the red members of
/// its circle and neighbourhood (with the contracts), and the risk paths. `analyse` calls it for the
/// whole district, and `LiveGroup` for one group between full runs (the same function, so both agree).
/// The red members of its whole guarantee group are not listed per firm: no rule reads them, and in a group of
/// thousands every member would hold the same list of up to a thousand ids (half of a stored district run's score
/// details).
pub fn guarantee_part(
    graph: &Graph,
    components: &Components,
    v32: u32,
    p_network: &[f64],
    distress: &[f64],
    cfg: &NetworkConfig,
    nf: &mut NetFirm,
) {
    let v = v32 as usize;
    let node = &graph.nodes[v];
    nf.pd_self = node.pd;
    nf.pd_network = p_network[v];
    nf.contagion = (p_network[v] - node.pd).max(0.0);
    nf.neighbours_red.clear();
    nf.neighbour_contracts.clear();
    nf.circle_red.clear();
    nf.circle_contracts.clear();
    nf.path_contracts.clear();
    nf.paths.clear();
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
            nf.neighbour_contracts.extend(contracts_between(graph, v32, w));
        }
    }
    // Its circle: red members, the contracts inside it.
    let s = components.scc_of[v];
    let members = &components.sccs[s as usize];
    if members.len() >= 2 {
        for &w in members {
            if w != v32 && graph.nodes[w as usize].colour == 3 {
                nf.circle_red.push(graph.nodes[w as usize].id.clone());
            }
        }
        for &e in graph.contracts(v32) {
            let e = &graph.guarantees[e as usize];
            if components.scc_of[e.guarantor as usize] == s && components.scc_of[e.borrower as usize] == s {
                nf.circle_contracts.push(e.fact);
            }
        }
    }
    if nf.contagion >= cfg.path_threshold {
        for p in net::risk_paths(graph, v32, distress, &cfg.contagion) {
            for w in p.nodes.windows(2) {
                for f in contracts_between(graph, w[0], w[1]) {
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
    /// Each member's owners' equity as the network used it (same order as `members`; the live path rebuilds
    /// the group's vulnerabilities from it). Empty in runs stored before it was kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub equity: Vec<Option<f64>>,
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
                    equity: c.members.iter().map(|&v| g.nodes[v as usize].equity).collect(),
                }
            })
            .collect()
    }
}

/// The same day `n` months before `t` (clamped to the month's last day).
pub fn same_day_months_back(t: Day, n: i32) -> Day {
    let m = data::month_of_day(t);
    let first = data::month_end(m - 1) + 1;
    let dom = t - first; // 0-based day of month
    let target = m - n;
    let start = data::month_end(target - 1) + 1;
    (start + dom).min(data::month_end(target))
}
