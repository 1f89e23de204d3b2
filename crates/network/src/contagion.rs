//! Contagion: the vulnerable-node probability model, DebtRank, the paths that carry risk and stress tests.

use crate::components::Components;
use crate::graph::Graph;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StressConfig {
    /// A guarantor's vulnerability to a borrower when its equity is unknown.
    pub unknown_vulnerability: f64,
    /// Own PD of firms with no score (outside the district); applied where the graph is built from facts.
    pub outside_pd: f64,
    /// Contagion-adjusted PD at which a firm counts as yellow, and red, in a stress test.
    pub yellow_pd: f64,
    pub red_pd: f64,
    /// Paths: most returned, longest searched, smallest weight kept, most nodes expanded per search.
    pub paths: usize,
    pub path_depth: usize,
    pub path_min_weight: f64,
    pub path_budget: usize,
}

impl Default for StressConfig {
    fn default() -> Self {
        StressConfig {
            unknown_vulnerability: 0.5,
            outside_pd: 0.02,
            yellow_pd: 0.10,
            red_pd: 0.30,
            paths: 3,
            path_depth: 5,
            path_min_weight: 1e-4,
            path_budget: 20_000,
        }
    }
}

/// The vulnerable-node probability model (Cheng et al., VulnDS):
/// p(v) = 1 − (1 − p_self(v)) · Π_b (1 − W[v][b] · p(b)) over the borrowers b that v guarantees,
/// solved SCC by SCC in the order distress spreads (borrowers first). `p_self` is each node's own PD.
///
/// Inside a circle (an SCC of ≥ 2 firms) the plain fixed-point iteration counts each firm's own risk again
/// every time it comes back round the cycle: with full vulnerability (W = 1) on every edge of a cycle the only
/// fixed point is p = 1 for every member, whatever their own PDs (a mutual pair of firms with 0.1 % PDs
/// gets 100 %). So inside a circle each member u first gets its "entry" probability e(u) — its own PD and the
/// distress arriving from outside the circle, by the formula above — and then
/// p(v) = 1 − (1 − e(v)) · Π_{u ≠ v} (1 − e(u) · ρ(v, u)),
/// where ρ(v, u) is the strongest chain of guarantees inside the circle from v to u (the largest product of
/// W along a simple path). Nobody's risk returns to itself; on a mutual pair this is the exact cascade
/// probability, and where every W is 1 a member fails when any member fails.
pub fn vulnerable(g: &Graph, c: &Components, p_self: &[f64], cfg: &StressConfig) -> Vec<f64> {
    let mut p: Vec<f64> = p_self.iter().map(|x| x.clamp(0.0, 1.0)).collect();
    for members in &c.sccs {
        solve_scc(g, c, p_self, cfg, members, &mut p);
    }
    p
}

/// [`vulnerable`] again after the own PDs of the nodes `changed` moved: `p` holds the previous result and is
/// updated in place. Only the strongly connected components of nodes that reach a changed node along the
/// guarantees (its guarantors, theirs, and so on) can move; they are solved again in the same order, with
/// the same arithmetic, so the result equals a full recompute bit for bit. Returns those nodes.
pub fn vulnerable_update(
    g: &Graph,
    c: &Components,
    p_self: &[f64],
    cfg: &StressConfig,
    p: &mut [f64],
    changed: &[u32],
) -> Vec<u32> {
    let mut mark = vec![false; g.len()];
    let mut stack: Vec<u32> = Vec::new();
    for &v in changed {
        if (v as usize) < mark.len() && !mark[v as usize] {
            mark[v as usize] = true;
            stack.push(v);
        }
    }
    while let Some(v) = stack.pop() {
        for &(w, _) in g.guarantors(v) {
            if !mark[w as usize] {
                mark[w as usize] = true;
                stack.push(w);
            }
        }
    }
    for members in &c.sccs {
        if members.iter().any(|&v| mark[v as usize]) {
            solve_scc(g, c, p_self, cfg, members, p);
        }
    }
    (0..g.len() as u32).filter(|&v| mark[v as usize]).collect()
}

/// One strongly connected component of [`vulnerable`], its borrowers outside it already solved in `p`.
fn solve_scc(g: &Graph, c: &Components, p_self: &[f64], cfg: &StressConfig, members: &[u32], p: &mut [f64]) {
    // Own PD and distress from borrowers outside `scc` (all borrowers when `scc` is None).
    let entry = |v: u32, scc: Option<u32>, p: &[f64]| -> f64 {
        let mut survive = 1.0 - p_self[v as usize].clamp(0.0, 1.0);
        for &(b, amount) in g.borrowers(v) {
            if scc.is_some_and(|s| c.scc_of[b as usize] == s) {
                continue;
            }
            let w = g.vulnerability(v, amount, cfg.unknown_vulnerability);
            survive *= 1.0 - w * p[b as usize];
        }
        1.0 - survive
    };
    if members.len() == 1 {
        let v = members[0];
        p[v as usize] = entry(v, None, p);
        return;
    }
    let s = c.scc_of[members[0] as usize];
    let e: Vec<f64> = members.iter().map(|&u| entry(u, Some(s), p)).collect();
    let mut out = Vec::with_capacity(members.len());
    for (i, &v) in members.iter().enumerate() {
        let rho = strongest_chains(g, c, members, v, cfg);
        let mut survive = 1.0 - e[i];
        for (j, &u) in members.iter().enumerate() {
            if u != v {
                survive *= 1.0 - e[j] * rho[j];
            }
        }
        out.push(1.0 - survive);
    }
    for (i, &v) in members.iter().enumerate() {
        p[v as usize] = out[i];
    }
}

/// ρ(v, u) for every member u of v's circle (`members`, sorted): the largest product of vulnerabilities
/// along a guarantee path from v to u inside the circle (max-product Dijkstra with a heap; products only
/// shrink, so the best path is simple). ρ(v, v) = 1.
fn strongest_chains(g: &Graph, c: &Components, members: &[u32], v: u32, cfg: &StressConfig) -> Vec<f64> {
    use std::cmp::Ordering;
    use std::collections::BinaryHeap;
    #[derive(PartialEq)]
    struct Item(f64, usize);
    impl Eq for Item {}
    impl PartialOrd for Item {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl Ord for Item {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.total_cmp(&o.0).then(o.1.cmp(&self.1))
        }
    }
    let s = c.scc_of[v as usize];
    let n = members.len();
    let idx = |u: u32| members.binary_search(&u).unwrap_or(0);
    let mut best = vec![0.0f64; n];
    let mut done = vec![false; n];
    let start = idx(v);
    best[start] = 1.0;
    let mut heap = BinaryHeap::new();
    heap.push(Item(1.0, start));
    while let Some(Item(w, j)) = heap.pop() {
        if done[j] || w < best[j] {
            continue;
        }
        done[j] = true;
        let x = members[j];
        for &(b, amount) in g.borrowers(x) {
            if c.scc_of[b as usize] != s {
                continue;
            }
            let k = idx(b);
            let nw = w * g.vulnerability(x, amount, cfg.unknown_vulnerability);
            if !done[k] && nw > best[k] {
                best[k] = nw;
                heap.push(Item(nw, k));
            }
        }
    }
    best
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebtRank {
    /// Final distress of every node (0–1).
    pub h: Vec<f64>,
    /// Value-weighted distress caused beyond the initial shock: Σ v_i h_i(T) − Σ v_i h_i(1).
    pub induced: f64,
    /// Rounds until no node was newly distressed.
    pub rounds: usize,
}

/// Relative economic value of each node: its share of total positive equity (unknown equity counts as the
/// median of the known; persons count 0).
pub fn economic_values(g: &Graph) -> Vec<f64> {
    let mut known: Vec<f64> = g.nodes.iter().filter_map(|n| n.equity.filter(|e| *e > 0.0)).collect();
    known.sort_by(f64::total_cmp);
    let median = known.get(known.len() / 2).copied().unwrap_or(1.0);
    // Persons carry no economic value here (their assets are not in the data).
    let raw: Vec<f64> = g
        .nodes
        .iter()
        .map(|n| match (n.kind, n.equity) {
            (crate::graph::NodeKind::Person, _) => 0.0,
            (_, Some(e)) if e > 0.0 => e,
            (_, Some(_)) => 0.0,
            (_, None) => median,
        })
        .collect();
    let total: f64 = raw.iter().sum();
    if total <= 0.0 {
        return vec![0.0; raw.len()];
    }
    raw.iter().map(|x| x / total).collect()
}

/// DebtRank's state, with buffers reused across shocks: only the nodes a shock reaches are touched and reset.
struct Spread {
    h: Vec<f64>,
    /// 0 undistressed, 1 distressed (spreads next round), 2 inactive.
    state: Vec<u8>,
    touched: Vec<u32>,
    front: Vec<u32>,
    prev: Vec<(u32, f64)>,
}

impl Spread {
    fn new(n: usize) -> Spread {
        Spread {
            h: vec![0.0; n],
            state: vec![0; n],
            touched: Vec::new(),
            front: Vec::new(),
            prev: Vec::new(),
        }
    }

    /// Runs one shock to the end; returns the rounds. Leaves `h` and `touched` for the caller to read.
    fn run(&mut self, g: &Graph, shock: &[(u32, f64)], cfg: &StressConfig) -> usize {
        for &(v, x) in shock {
            let x = x.clamp(0.0, 1.0);
            let v = v as usize;
            if self.state[v] == 0 && self.h[v] == 0.0 {
                self.touched.push(v as u32);
            }
            if x > self.h[v] {
                self.h[v] = x;
            }
            if self.state[v] == 0 && x > 0.0 {
                self.state[v] = 1;
                self.front.push(v as u32);
            }
        }
        let mut rounds = 0;
        while !self.front.is_empty() {
            rounds += 1;
            // Distress each front node passes on: its level at the end of the previous round.
            self.prev.clear();
            let h = &self.h;
            self.prev.extend(self.front.iter().map(|&j| (j, h[j as usize])));
            self.front.clear();
            for &(j, hj) in &self.prev {
                for &(i, amount) in g.guarantors(j) {
                    let iu = i as usize;
                    if self.state[iu] == 2 {
                        continue;
                    }
                    let w = g.vulnerability(i, amount, cfg.unknown_vulnerability);
                    if w <= 0.0 {
                        continue;
                    }
                    let x = (self.h[iu] + w * hj).min(1.0);
                    if x > self.h[iu] {
                        if self.state[iu] == 0 && self.h[iu] == 0.0 {
                            self.touched.push(i);
                        }
                        self.h[iu] = x;
                        if self.state[iu] == 0 {
                            self.state[iu] = 1;
                            self.front.push(i);
                        }
                    }
                }
            }
            for &(j, _) in &self.prev {
                self.state[j as usize] = 2;
            }
            // Front nodes that were also distressed this round became inactive above; only new ones spread.
            let state = &self.state;
            self.front.retain(|&i| state[i as usize] == 1);
        }
        rounds
    }

    fn reset(&mut self) {
        for &v in &self.touched {
            self.h[v as usize] = 0.0;
            self.state[v as usize] = 0;
        }
        self.touched.clear();
    }
}

/// DebtRank (Battiston et al. 2012) from an initial shock (node, distress in 0–1): each round, every node
/// distressed in the previous round passes its distress once to the guarantors exposed to it,
/// h_i ← min(1, h_i + Σ_j W[i][j] h_j), then becomes inactive; it stops when no node is newly distressed.
pub fn debtrank(g: &Graph, shock: &[(u32, f64)], values: &[f64], cfg: &StressConfig) -> DebtRank {
    let mut sp = Spread::new(g.len());
    let mut initial_h: Vec<(u32, f64)> = Vec::new();
    for &(v, x) in shock {
        let x = x.clamp(0.0, 1.0);
        match initial_h.iter_mut().find(|e| e.0 == v) {
            Some(e) => e.1 = e.1.max(x),
            None => initial_h.push((v, x)),
        }
    }
    let initial: f64 = initial_h
        .iter()
        .filter(|e| e.1 > 0.0)
        .map(|&(v, x)| values[v as usize] * x)
        .sum();
    let rounds = sp.run(g, shock, cfg);
    let total: f64 = sp.h.iter().zip(values).map(|(x, v)| x * v).sum();
    DebtRank {
        h: sp.h,
        induced: total - initial,
        rounds,
    }
}

/// Every node's DebtRank when it alone fails (distress 1): its systemic importance, value-weighted.
pub fn debtrank_each(g: &Graph, values: &[f64], cfg: &StressConfig) -> Vec<f64> {
    let n = g.len();
    let mut out = vec![0.0; n];
    let mut sp = Spread::new(n);
    for s in 0..n as u32 {
        if g.guarantors(s).is_empty() {
            continue;
        }
        sp.run(g, &[(s, 1.0)], cfg);
        out[s as usize] = sp
            .touched
            .iter()
            .filter(|&&v| v != s)
            .map(|&v| sp.h[v as usize] * values[v as usize])
            .sum();
        sp.reset();
    }
    out
}

/// A path that carries risk to a firm: `nodes[0]` is the firm, each next node a borrower the previous one
/// guarantees, the last the distressed source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskPath {
    pub nodes: Vec<u32>,
    /// Guaranteed amount on each step (yuan), and the vulnerability it gives.
    pub amounts: Vec<f64>,
    pub vulnerabilities: Vec<f64>,
    /// The source's distress (its PD, 1 when failed) times the vulnerabilities along the path.
    pub weight: f64,
}

/// The strongest paths from distressed firms to `target` (by weight, at most `cfg.paths`), searched
/// depth-first along the guarantees `target` gave, up to `cfg.path_depth` steps. `distress` is each node's
/// distress as a source (e.g. its own PD, or 1 for a failed firm).
pub fn risk_paths(g: &Graph, target: u32, distress: &[f64], cfg: &StressConfig) -> Vec<RiskPath> {
    let mut best: Vec<RiskPath> = Vec::new();
    let mut path = vec![target];
    let mut amounts = Vec::new();
    let mut vulns = Vec::new();
    let mut budget = cfg.path_budget;
    #[allow(clippy::too_many_arguments)]
    fn dfs(
        g: &Graph,
        distress: &[f64],
        cfg: &StressConfig,
        w: f64,
        path: &mut Vec<u32>,
        amounts: &mut Vec<f64>,
        vulns: &mut Vec<f64>,
        best: &mut Vec<RiskPath>,
        budget: &mut usize,
    ) {
        let v = *path.last().unwrap_or(&0);
        for &(b, amount) in g.borrowers(v) {
            if *budget == 0 {
                return;
            }
            *budget -= 1;
            if path.contains(&b) {
                continue;
            }
            let vul = g.vulnerability(v, amount, cfg.unknown_vulnerability);
            let ww = w * vul;
            if ww < cfg.path_min_weight {
                continue;
            }
            path.push(b);
            amounts.push(amount);
            vulns.push(vul);
            let weight = ww * distress[b as usize];
            if weight >= cfg.path_min_weight {
                // One path per source, the strongest (the first found among equals): many routes to one source
                // must not crowd the other sources out of the kept few.
                let stronger = |x: &RiskPath| x.weight > weight || (x.weight == weight && x.nodes.len() <= path.len());
                match best.iter().position(|x| x.nodes.last() == Some(&b)) {
                    Some(i) if stronger(&best[i]) => {}
                    found => {
                        if let Some(i) = found {
                            best.remove(i);
                        }
                        best.push(RiskPath {
                            nodes: path.clone(),
                            amounts: amounts.clone(),
                            vulnerabilities: vulns.clone(),
                            weight,
                        });
                        best.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.nodes.len().cmp(&b.nodes.len())));
                        best.truncate(cfg.paths);
                    }
                }
            }
            if path.len() <= cfg.path_depth {
                dfs(g, distress, cfg, ww, path, amounts, vulns, best, budget);
            }
            path.pop();
            amounts.pop();
            vulns.pop();
        }
    }
    dfs(
        g,
        distress,
        cfg,
        1.0,
        &mut path,
        &mut amounts,
        &mut vulns,
        &mut best,
        &mut budget,
    );
    best
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StressFirm {
    pub node: u32,
    pub pd_before: f64,
    pub pd_after: f64,
    /// "red" or "yellow": the colour it turns (it was below that threshold before).
    pub turns: String,
    pub debtrank_distress: f64,
    pub paths: Vec<RiskPath>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LenderLoss {
    pub lender: String,
    /// Balances of the failed firms (the shocked ones and those the shock turns red), yuan.
    pub defaulted_exposure: f64,
    /// Guarantees securing this lender's loans given by failed firms.
    pub guarantee_cover_lost: f64,
    /// Loss after the surviving guarantors pay: Σ over failed borrowers of max(0, balance − surviving cover).
    pub loss: f64,
    /// Σ over all borrowers of (PD after − PD before) × balance at this lender.
    pub expected_loss_increase: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stress {
    pub failed: Vec<u32>,
    /// Firms that turn red or yellow, strongest change first.
    pub affected: Vec<StressFirm>,
    pub lenders: Vec<LenderLoss>,
    /// DebtRank of the shock: value-weighted distress beyond the failed firms.
    pub debtrank: f64,
}

/// "If these firms fail": their PD set to 1, the vulnerable-node model re-solved; who crosses the yellow and
/// red thresholds (with the paths that carry it), DebtRank of the shock and the exposure each lender loses.
pub fn stress(g: &Graph, c: &Components, failed: &[u32], cfg: &StressConfig) -> Stress {
    let base: Vec<f64> = g.nodes.iter().map(|n| n.pd).collect();
    let before = vulnerable(g, c, &base, cfg);
    let mut shocked = base.clone();
    for &f in failed {
        shocked[f as usize] = 1.0;
    }
    let after = vulnerable(g, c, &shocked, cfg);
    let values = economic_values(g);
    let shock: Vec<(u32, f64)> = failed.iter().map(|&f| (f, 1.0)).collect();
    let dr = debtrank(g, &shock, &values, cfg);
    // Path search: the shocked firms are the sources.
    let mut source = vec![0.0; g.len()];
    for &f in failed {
        source[f as usize] = 1.0;
    }
    let mut affected = Vec::new();
    for v in 0..g.len() {
        if failed.contains(&(v as u32)) {
            continue;
        }
        let turns = if after[v] >= cfg.red_pd && before[v] < cfg.red_pd {
            "red"
        } else if after[v] >= cfg.yellow_pd && before[v] < cfg.yellow_pd {
            "yellow"
        } else {
            continue;
        };
        affected.push(StressFirm {
            node: v as u32,
            pd_before: before[v],
            pd_after: after[v],
            turns: turns.to_string(),
            debtrank_distress: dr.h[v],
            paths: risk_paths(g, v as u32, &source, cfg),
        });
    }
    affected.sort_by(|a, b| {
        (b.pd_after - b.pd_before)
            .total_cmp(&(a.pd_after - a.pd_before))
            .then(a.node.cmp(&b.node))
    });
    // Lenders.
    let mut down = vec![false; g.len()];
    for &f in failed {
        down[f as usize] = true;
    }
    for a in &affected {
        if a.turns == "red" {
            down[a.node as usize] = true;
        }
    }
    let mut by: BTreeMap<String, LenderLoss> = BTreeMap::new();
    for (v, node) in g.nodes.iter().enumerate() {
        let dpd = after[v] - before[v];
        for (lender, bal) in &node.loans {
            let e = by.entry(lender.clone()).or_insert_with(|| LenderLoss {
                lender: lender.clone(),
                defaulted_exposure: 0.0,
                guarantee_cover_lost: 0.0,
                loss: 0.0,
                expected_loss_increase: 0.0,
            });
            e.expected_loss_increase += dpd.max(0.0) * bal;
            if down[v] {
                e.defaulted_exposure += bal;
                let cover: f64 = g
                    .contracts(v as u32)
                    .iter()
                    .map(|&i| &g.guarantees[i as usize])
                    .filter(|x| x.borrower == v as u32 && &x.lender == lender && !down[x.guarantor as usize])
                    .map(|x| x.amount)
                    .sum();
                e.loss += (bal - cover).max(0.0);
            }
        }
    }
    for x in &g.guarantees {
        if down[x.guarantor as usize] && x.guarantor != x.borrower {
            let e = by.entry(x.lender.clone()).or_insert_with(|| LenderLoss {
                lender: x.lender.clone(),
                defaulted_exposure: 0.0,
                guarantee_cover_lost: 0.0,
                loss: 0.0,
                expected_loss_increase: 0.0,
            });
            e.guarantee_cover_lost += x.amount;
        }
    }
    let mut lenders: Vec<LenderLoss> = by
        .into_values()
        .filter(|l| l.defaulted_exposure > 0.0 || l.guarantee_cover_lost > 0.0 || l.expected_loss_increase > 0.0)
        .collect();
    lenders.sort_by(|a, b| {
        b.loss
            .total_cmp(&a.loss)
            .then(b.expected_loss_increase.total_cmp(&a.expected_loss_increase))
            .then(a.lender.cmp(&b.lender))
    });
    let mut failed = failed.to_vec();
    failed.sort_unstable();
    failed.dedup();
    Stress {
        failed,
        affected,
        lenders,
        debtrank: dr.induced,
    }
}
