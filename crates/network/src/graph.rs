//! The relation graph: firms (in the district or linked in from province-wide records) and persons; guarantee
//! contracts (guarantor → borrower); shareholdings, legal representatives, controllers and parent companies.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// A firm registered in the district.
    Firm,
    /// A firm outside the district that the province-wide records link in (a guarantor, a shareholder).
    Outside,
    /// A natural person (legal representative, shareholder, controller), keyed by a pseudonymous id.
    Person,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Node {
    /// USCC for firms; the person's id for persons.
    pub id: String,
    pub name: String,
    pub kind: NodeKind,
    /// Owners' equity in yuan, where known.
    pub equity: Option<f64>,
    /// Own 12-month probability of default (the credit model's), before contagion.
    pub pd: f64,
    /// Worst active warning colour of the credit models: 0 none, 1 blue, 2 yellow, 3 red.
    pub colour: u8,
    /// In default now (90+ days overdue in the lenders' feeds).
    pub defaulted: bool,
    /// Loan balances by lender (yuan).
    pub loans: Vec<(String, f64)>,
}

impl Node {
    pub fn new(id: &str, kind: NodeKind) -> Node {
        Node {
            id: id.to_string(),
            name: String::new(),
            kind,
            equity: None,
            pd: 0.0,
            colour: 0,
            defaulted: false,
            loans: Vec::new(),
        }
    }
}

/// One guarantee contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GuaranteeEdge {
    pub guarantor: u32,
    pub borrower: u32,
    /// Guaranteed amount, yuan.
    pub amount: f64,
    /// The lender whose loan it secures.
    pub lender: String,
    /// single (一般保证), joint_liability (连带责任保证), joint_group (联保).
    pub kind: String,
    /// The stored fact it came from (0 when generated).
    pub fact: i64,
    pub start: Option<String>,
    pub end: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    /// from holds `share` of to.
    Shareholder,
    /// from (a person) is to's legal representative.
    LegalRep,
    /// from (a person or firm) controls to.
    Controller,
    /// from is to's parent company (隶属企业).
    Parent,
}

/// A non-guarantee relation: `from` → `to` (holder → firm, person → firm, parent → subsidiary).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Link {
    pub from: u32,
    pub to: u32,
    pub kind: LinkKind,
    /// Shareholding share (0–1); 0 for other kinds.
    pub share: f64,
    pub fact: i64,
}

/// The graph, with compressed adjacency of the guarantee part aggregated per (guarantor, borrower) pair.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub guarantees: Vec<GuaranteeEdge>,
    pub links: Vec<Link>,
    index: FxHashMap<String, u32>,
    /// CSR of guarantor → (borrower, summed amount), sorted by borrower.
    out_off: Vec<u32>,
    out_adj: Vec<(u32, f64)>,
    /// CSR of borrower → (guarantor, summed amount), sorted by guarantor.
    in_off: Vec<u32>,
    in_adj: Vec<(u32, f64)>,
    /// Contracts per node (given and received), edge indices.
    edge_off: Vec<u32>,
    edge_adj: Vec<u32>,
    /// Links per node (either end), link indices.
    link_off: Vec<u32>,
    link_adj: Vec<u32>,
    finished: bool,
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// An empty graph with room for `nodes` nodes.
    pub fn with_capacity(nodes: usize) -> Graph {
        let mut g = Graph::default();
        g.nodes.reserve(nodes);
        g.index.reserve(nodes);
        g
    }

    /// The node with this id, added (with `kind`) if new.
    pub fn node(&mut self, id: &str, kind: NodeKind) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = self.nodes.len() as u32;
        self.nodes.push(Node::new(id, kind));
        self.index.insert(id.to_string(), i);
        self.finished = false;
        i
    }

    pub fn find(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    pub fn add_guarantee(&mut self, e: GuaranteeEdge) {
        self.guarantees.push(e);
        self.finished = false;
    }

    pub fn add_link(&mut self, l: Link) {
        self.links.push(l);
        self.finished = false;
    }

    /// Builds the adjacency; call after the last node and edge, before any analysis.
    pub fn finish(&mut self) {
        let n = self.nodes.len();
        let mut pairs: Vec<(u32, u32, f64)> = self
            .guarantees
            .iter()
            .filter(|e| e.guarantor != e.borrower)
            .map(|e| (e.guarantor, e.borrower, e.amount.max(0.0)))
            .collect();
        // Amounts in a fixed order inside each pair, so sums do not depend on contract order.
        pairs.sort_unstable_by_key(|a| (a.0, a.1, a.2.to_bits()));
        let mut agg: Vec<(u32, u32, f64)> = Vec::with_capacity(pairs.len());
        for (g, b, a) in pairs {
            match agg.last_mut() {
                Some(l) if l.0 == g && l.1 == b => l.2 += a,
                _ => agg.push((g, b, a)),
            }
        }
        let (out_off, out_adj) = csr(n, agg.iter().map(|&(g, b, a)| (g, (b, a))));
        let mut rev: Vec<(u32, u32, f64)> = agg.iter().map(|&(g, b, a)| (b, g, a)).collect();
        rev.sort_unstable_by_key(|a| (a.0, a.1));
        let (in_off, in_adj) = csr(n, rev.iter().map(|&(b, g, a)| (b, (g, a))));
        let mut ends: Vec<(u32, u32)> = Vec::with_capacity(self.guarantees.len() * 2);
        for (i, e) in self.guarantees.iter().enumerate() {
            ends.push((e.guarantor, i as u32));
            if e.borrower != e.guarantor {
                ends.push((e.borrower, i as u32));
            }
        }
        ends.sort_unstable();
        let (edge_off, edge_adj) = csr(n, ends.into_iter());
        let mut lends: Vec<(u32, u32)> = Vec::with_capacity(self.links.len() * 2);
        for (i, l) in self.links.iter().enumerate() {
            lends.push((l.from, i as u32));
            if l.to != l.from {
                lends.push((l.to, i as u32));
            }
        }
        lends.sort_unstable();
        let (link_off, link_adj) = csr(n, lends.into_iter());
        self.out_off = out_off;
        self.out_adj = out_adj;
        self.in_off = in_off;
        self.in_adj = in_adj;
        self.edge_off = edge_off;
        self.edge_adj = edge_adj;
        self.link_off = link_off;
        self.link_adj = link_adj;
        self.finished = true;
    }

    fn check(&self) {
        assert!(self.finished, "Graph::finish must be called before analysis");
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The borrowers `g` guarantees, with the total guaranteed amount per borrower.
    pub fn borrowers(&self, g: u32) -> &[(u32, f64)] {
        self.check();
        &self.out_adj[self.out_off[g as usize] as usize..self.out_off[g as usize + 1] as usize]
    }

    /// The guarantors of `b`, with the total amount each guarantees.
    pub fn guarantors(&self, b: u32) -> &[(u32, f64)] {
        self.check();
        &self.in_adj[self.in_off[b as usize] as usize..self.in_off[b as usize + 1] as usize]
    }

    /// Guarantee contracts given or received by `v` (indices into `guarantees`).
    pub fn contracts(&self, v: u32) -> &[u32] {
        self.check();
        &self.edge_adj[self.edge_off[v as usize] as usize..self.edge_off[v as usize + 1] as usize]
    }

    /// Links at either end of `v` (indices into `links`).
    pub fn links_of(&self, v: u32) -> &[u32] {
        self.check();
        &self.link_adj[self.link_off[v as usize] as usize..self.link_off[v as usize + 1] as usize]
    }

    /// The number of distinct (guarantor, borrower) pairs.
    pub fn pair_count(&self) -> usize {
        self.out_adj.len()
    }

    /// The guarantor's vulnerability to the borrower's failure: min(1, amount / equity). Non-positive equity
    /// makes any call ruinous (1); unknown equity gives `unknown`.
    pub fn vulnerability(&self, g: u32, amount: f64, unknown: f64) -> f64 {
        if amount <= 0.0 {
            return 0.0;
        }
        match self.nodes[g as usize].equity {
            Some(e) if e > 0.0 => (amount / e).min(1.0),
            Some(_) => 1.0,
            None => unknown,
        }
    }
}

/// Compressed sparse rows from (row, value) pairs sorted by row.
fn csr<T>(n: usize, items: impl Iterator<Item = (u32, T)>) -> (Vec<u32>, Vec<T>) {
    let mut off = vec![0u32; n + 1];
    let mut adj = Vec::new();
    let mut row = 0usize;
    for (r, v) in items {
        let r = r as usize;
        while row < r {
            row += 1;
            off[row] = adj.len() as u32;
        }
        adj.push(v);
    }
    while row < n {
        row += 1;
        off[row] = adj.len() as u32;
    }
    (off, adj)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_contracts_are_summed_per_pair() {
        let mut g = Graph::new();
        let a = g.node("A", NodeKind::Firm);
        let b = g.node("B", NodeKind::Firm);
        for amount in [10.0, 5.0] {
            g.add_guarantee(GuaranteeEdge {
                guarantor: a,
                borrower: b,
                amount,
                lender: "bank01".into(),
                kind: "single".into(),
                fact: 0,
                start: None,
                end: None,
            });
        }
        g.finish();
        assert_eq!(g.borrowers(a), &[(b, 15.0)]);
        assert_eq!(g.guarantors(b), &[(a, 15.0)]);
        assert!(g.borrowers(b).is_empty());
        assert_eq!(g.contracts(a).len(), 2);
    }
}
