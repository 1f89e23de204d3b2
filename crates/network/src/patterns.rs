//! Guarantee groups (weakly connected components with at least one guarantee), their circles (strongly
//! connected components of size ≥ 2), the named patterns per group and per firm, corporate groups and the
//! metrics of each group.
//!
//! Pattern definitions (docs/network.md works an example of each):
//! - mutual (互保): two firms guarantee each other (a 2-cycle), unless both are in the same joint clique or the same
//!   joint-guarantee contract group;
//! - joint (联保): a joint-guarantee contract group (contract kind `joint_group`, ≥ 3 firms connected by such
//!   contracts) or a clique of ≥ 3 firms in which every firm guarantees every other;
//! - cycle (循环担保): a circle of ≥ 3 firms, not a clique, that contains a directed cycle of length ≥ 3;
//! - cross (交叉担保): a circle of ≥ 3 firms, not a clique, with a cycle of length ≥ 3 and more guarantee
//!   pairs than firms, i.e. more than one cycle (cycles that cross; a row of mutual pairs A↔B↔C is not one);
//! - chain (担保链): a guarantee path through ≥ 3 firms of the group's condensation (A guarantees B, which
//!   guarantees C; a circle counts as one firm);
//! - star (担保星形): one guarantor backing at least `star_min` borrowers outside its own circle (the hub and
//!   those borrowers);
//! - group (集团担保): a guarantee between two firms of one corporate group (parent company, a holder of
//!   ≥ `control_share`, or a common controller).

use crate::components::Components;
use crate::graph::{Graph, LinkKind, NodeKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    Mutual,
    Joint,
    Chain,
    Cycle,
    Cross,
    Star,
    Group,
}

impl Pattern {
    pub const ALL: [Pattern; 7] = [
        Pattern::Mutual,
        Pattern::Joint,
        Pattern::Chain,
        Pattern::Cycle,
        Pattern::Cross,
        Pattern::Star,
        Pattern::Group,
    ];
    fn bit(self) -> u8 {
        1 << (self as u8)
    }
    pub fn key(self) -> &'static str {
        match self {
            Pattern::Mutual => "mutual",
            Pattern::Joint => "joint",
            Pattern::Chain => "chain",
            Pattern::Cycle => "cycle",
            Pattern::Cross => "cross",
            Pattern::Star => "star",
            Pattern::Group => "group",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Pattern::Mutual => "互保",
            Pattern::Joint => "联保",
            Pattern::Chain => "担保链",
            Pattern::Cycle => "循环担保",
            Pattern::Cross => "交叉担保",
            Pattern::Star => "星形担保",
            Pattern::Group => "集团担保圈",
        }
    }
    pub fn from_bits(bits: u8) -> Vec<Pattern> {
        Pattern::ALL.iter().copied().filter(|p| bits & p.bit() != 0).collect()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PatternConfig {
    /// Borrowers one guarantor backs to make a star.
    pub star_min: usize,
    /// Share that makes a holder a controller (corporate groups).
    pub control_share: f64,
}

impl Default for PatternConfig {
    fn default() -> Self {
        PatternConfig {
            star_min: 3,
            control_share: 0.5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CircleMetrics {
    /// Firms in the group.
    pub size: usize,
    /// Firms in its circles (SCCs of size ≥ 2).
    pub in_circles: usize,
    /// Guarantee contracts, and distinct guarantor → borrower pairs.
    pub contracts: usize,
    pub pairs: usize,
    /// Sum of the contracts' guaranteed amounts, yuan.
    pub total_amount: f64,
    /// pairs / (size · (size − 1)).
    pub density: f64,
    /// The most firms on a guarantee path through the condensation (a circle counts as one).
    pub longest_chain: usize,
    /// Firms (ids) whose colour is red, and yellow.
    pub red: Vec<String>,
    pub yellow: Vec<String>,
    /// Guaranteed amount per lender, largest first.
    pub exposure_by_lender: Vec<(String, f64)>,
}

/// A guarantee group: a weakly connected component of the guarantee graph with at least two firms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Circle {
    /// Stable: "G" + the smallest member id.
    pub id: String,
    pub members: Vec<u32>,
    /// Its circles (strongly connected components of size ≥ 2), each sorted.
    pub cores: Vec<Vec<u32>>,
    pub patterns: Vec<Pattern>,
    pub metrics: CircleMetrics,
}

/// One node's place in the network.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FirmNet {
    /// Index into `Network::groups`.
    pub group: Option<u32>,
    /// In a circle (SCC of size ≥ 2).
    pub in_circle: bool,
    /// Pattern bits (`Pattern::from_bits`).
    pub patterns: u8,
    /// Corporate group (index of its smallest member), for firms linked by control.
    pub corporate: Option<u32>,
    /// Distinct borrowers it guarantees, and guarantors it has.
    pub out_degree: usize,
    pub in_degree: usize,
}

impl FirmNet {
    pub fn has(&self, p: Pattern) -> bool {
        self.patterns & p.bit() != 0
    }
    pub fn pattern_list(&self) -> Vec<Pattern> {
        Pattern::from_bits(self.patterns)
    }
}

#[derive(Debug, Clone, Default)]
pub struct Network {
    pub groups: Vec<Circle>,
    pub firms: Vec<FirmNet>,
    /// Steps of the longest condensation path through each node's SCC.
    pub chain_len: Vec<usize>,
}

/// Union-find: the root of `x`, halving the path.
fn find(p: &mut [u32], mut x: u32) -> u32 {
    while p[x as usize] != x {
        let q = p[p[x as usize] as usize];
        p[x as usize] = q;
        x = q;
    }
    x
}

/// Corporate groups: union of parent links and control (a holder of ≥ `control_share`, a controller).
pub fn corporate_groups(g: &Graph, cfg: &PatternConfig) -> Vec<u32> {
    let n = g.len();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    for l in &g.links {
        let control = match l.kind {
            LinkKind::Parent | LinkKind::Controller => true,
            LinkKind::Shareholder => l.share >= cfg.control_share,
            LinkKind::LegalRep => false,
        };
        if control {
            let (a, b) = (find(&mut parent, l.from), find(&mut parent, l.to));
            if a != b {
                let (lo, hi) = if a < b { (a, b) } else { (b, a) };
                parent[hi as usize] = lo;
            }
        }
    }
    (0..n as u32).map(|v| find(&mut parent, v)).collect()
}

/// Groups, circles, patterns and metrics.
pub fn analyse(g: &Graph, c: &Components, cfg: &PatternConfig) -> Network {
    let n = g.len();
    let corp = corporate_groups(g, cfg);
    // Size of each corporate group, to tell real groups from singletons.
    // Firms (not persons) in each corporate group: a firm and its majority owner are not a group.
    let mut corp_size = vec![0u32; n];
    for (v, &r) in corp.iter().enumerate() {
        if g.nodes[v].kind != NodeKind::Person {
            corp_size[r as usize] += 1;
        }
    }
    let mut bits = vec![0u8; n];
    // Longest chain: DP over the condensation in Tarjan order (successors first).
    let ns = c.sccs.len();
    let mut down = vec![1usize; ns]; // steps from this SCC onwards
    for (s, members) in c.sccs.iter().enumerate() {
        for &v in members {
            for &(w, _) in g.borrowers(v) {
                let t = c.scc_of[w as usize] as usize;
                if t != s {
                    down[s] = down[s].max(1 + down[t]);
                }
            }
        }
    }
    let mut up = vec![1usize; ns]; // steps up to and including this SCC
    for s in (0..ns).rev() {
        for &v in &c.sccs[s] {
            for &(w, _) in g.borrowers(v) {
                let t = c.scc_of[w as usize] as usize;
                if t != s {
                    up[t] = up[t].max(up[s] + 1);
                }
            }
        }
    }
    let chain_len: Vec<usize> = (0..n)
        .map(|v| {
            let s = c.scc_of[v] as usize;
            up[s] + down[s] - 1
        })
        .collect();
    for v in 0..n {
        if chain_len[v] >= 3 {
            bits[v] |= Pattern::Chain.bit();
        }
    }
    // The joint clique (SCC index) and the joint-guarantee contract group (its root) of each node, if any: a
    // 2-cycle is absorbed into the joint pattern only when both ends are in the same one.
    const NONE: u32 = u32::MAX;
    let mut clique_of = vec![NONE; n];
    let mut joint_of = vec![NONE; n];
    // Cliques, cycles and crosses per SCC.
    for members in &c.sccs {
        let k = members.len();
        if k < 2 {
            continue;
        }
        let s = c.scc_of[members[0] as usize];
        let mut pairs = 0usize;
        let mut unreciprocated = false;
        let mut recip_pairs = 0usize;
        for &v in members {
            for &(w, _) in g.borrowers(v) {
                if c.scc_of[w as usize] != s {
                    continue;
                }
                pairs += 1;
                if g.borrowers(w).binary_search_by_key(&v, |x| x.0).is_ok() {
                    recip_pairs += 1;
                } else {
                    unreciprocated = true;
                }
            }
        }
        if k < 3 {
            continue;
        }
        let clique = pairs == k * (k - 1);
        if clique {
            for &v in members {
                clique_of[v as usize] = s;
                bits[v as usize] |= Pattern::Joint.bit();
            }
            continue;
        }
        // Undirected reciprocated edges: recip_pairs / 2; a cycle among them needs at least k of them
        // (a connected graph on k nodes with ≥ k edges has a cycle; all-reciprocated SCCs are connected).
        let has_long_cycle = unreciprocated || recip_pairs / 2 >= k;
        for &v in members {
            if has_long_cycle {
                bits[v as usize] |= Pattern::Cycle.bit();
            }
            if pairs > k && has_long_cycle {
                bits[v as usize] |= Pattern::Cross.bit();
            }
        }
    }
    // Joint-guarantee contract groups: components of joint_group contracts with ≥ 3 firms.
    {
        let mut p: Vec<u32> = (0..n as u32).collect();
        let mut touched = Vec::new();
        for e in &g.guarantees {
            if e.kind == "joint_group" && e.guarantor != e.borrower {
                let (a, b) = (find(&mut p, e.guarantor), find(&mut p, e.borrower));
                if a != b {
                    p[a.max(b) as usize] = a.min(b);
                }
                touched.push(e.guarantor);
                touched.push(e.borrower);
            }
        }
        let mut size: BTreeMap<u32, usize> = BTreeMap::new();
        touched.sort_unstable();
        touched.dedup();
        for &v in &touched {
            *size.entry(find(&mut p, v)).or_default() += 1;
        }
        for &v in &touched {
            let root = find(&mut p, v);
            if size[&root] >= 3 {
                bits[v as usize] |= Pattern::Joint.bit();
                joint_of[v as usize] = root;
            }
        }
    }
    // Mutual pairs, stars, group guarantees.
    for v in 0..n as u32 {
        let out = g.borrowers(v);
        // A star's spokes are borrowers outside the hub's own circle (inside it they are joint or cycle).
        let sv = c.scc_of[v as usize];
        if out.iter().filter(|x| c.scc_of[x.0 as usize] != sv).count() >= cfg.star_min {
            bits[v as usize] |= Pattern::Star.bit();
            for &(w, _) in out {
                if c.scc_of[w as usize] != sv {
                    bits[w as usize] |= Pattern::Star.bit();
                }
            }
        }
        for &(w, _) in out {
            if w > v
                && g.borrowers(w).binary_search_by_key(&v, |x| x.0).is_ok()
                && !(clique_of[v as usize] != NONE && clique_of[v as usize] == clique_of[w as usize])
                && !(joint_of[v as usize] != NONE && joint_of[v as usize] == joint_of[w as usize])
            {
                bits[v as usize] |= Pattern::Mutual.bit();
                bits[w as usize] |= Pattern::Mutual.bit();
            }
            if corp[v as usize] == corp[w as usize] && corp_size[corp[v as usize] as usize] >= 2 {
                bits[v as usize] |= Pattern::Group.bit();
                bits[w as usize] |= Pattern::Group.bit();
            }
        }
    }
    // Groups.
    let mut firms: Vec<FirmNet> = (0..n)
        .map(|v| FirmNet {
            group: None,
            in_circle: c.sccs[c.scc_of[v] as usize].len() >= 2,
            patterns: bits[v],
            corporate: (corp_size[corp[v] as usize] >= 2).then_some(corp[v]),
            out_degree: g.borrowers(v as u32).len(),
            in_degree: g.guarantors(v as u32).len(),
        })
        .collect();
    let mut groups = Vec::new();
    let mut core_seen = vec![false; c.sccs.len()];
    for members in &c.wccs {
        if members.len() < 2 {
            continue;
        }
        let gi = groups.len() as u32;
        let mut cores: Vec<Vec<u32>> = Vec::new();
        let mut seen_scc: Vec<u32> = Vec::new(); // few per group; checked against `core_seen` below
        let mut group_bits = 0u8;
        let mut pairs = 0usize;
        let mut longest = 0usize;
        let mut red = Vec::new();
        let mut yellow = Vec::new();
        for &v in members {
            firms[v as usize].group = Some(gi);
            group_bits |= bits[v as usize];
            pairs += g.borrowers(v).len();
            longest = longest.max(chain_len[v as usize]);
            let s = c.scc_of[v as usize];
            if c.sccs[s as usize].len() >= 2 && !core_seen[s as usize] {
                core_seen[s as usize] = true;
                seen_scc.push(s);
                cores.push(c.sccs[s as usize].clone());
            }
            let node = &g.nodes[v as usize];
            match node.colour {
                3 => red.push(node.id.clone()),
                2 => yellow.push(node.id.clone()),
                _ => {}
            }
        }
        cores.sort();
        let mut contracts = 0usize;
        let mut total = 0.0;
        let mut by_lender: BTreeMap<String, f64> = BTreeMap::new();
        for &v in members {
            for &e in g.contracts(v) {
                let e = &g.guarantees[e as usize];
                // Each contract once: counted at its guarantor.
                if e.guarantor != v {
                    continue;
                }
                contracts += 1;
                total += e.amount;
                *by_lender.entry(e.lender.clone()).or_default() += e.amount;
            }
        }
        let mut exposure_by_lender: Vec<(String, f64)> = by_lender.into_iter().collect();
        exposure_by_lender.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let size = members.len();
        let id_node = members
            .iter()
            .map(|&v| &g.nodes[v as usize])
            .filter(|n| n.kind != NodeKind::Person)
            .map(|n| n.id.as_str())
            .min()
            .unwrap_or("");
        groups.push(Circle {
            id: format!("G{id_node}"),
            members: members.clone(),
            metrics: CircleMetrics {
                size,
                in_circles: cores.iter().map(|c| c.len()).sum(),
                contracts,
                pairs,
                total_amount: total,
                density: pairs as f64 / (size as f64 * (size as f64 - 1.0)),
                longest_chain: longest,
                red,
                yellow,
                exposure_by_lender,
            },
            cores,
            patterns: Pattern::from_bits(group_bits),
        });
    }
    Network {
        groups,
        firms,
        chain_len,
    }
}
