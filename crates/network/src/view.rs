//! The graph for display: a firm-centred view (the mother cell and its child cells) to a depth, with edge
//! types and amounts, paginated for firms with thousands of links.

use crate::graph::{Graph, LinkKind, NodeKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EgoNode {
    pub id: String,
    pub name: String,
    pub kind: NodeKind,
    /// Steps from the centre (0 = the mother cell).
    pub depth: usize,
    pub colour: u8,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EgoEdge {
    pub from: String,
    pub to: String,
    /// guarantee, shareholder, legal_rep, controller, parent.
    pub kind: String,
    /// Guaranteed amount (yuan) summed over contracts, or the share held (0–1).
    pub amount: f64,
    pub contracts: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EgoView {
    pub center: String,
    pub nodes: Vec<EgoNode>,
    pub edges: Vec<EgoEdge>,
    /// Direct neighbours in all (the child cells), and the page shown.
    pub total_children: usize,
    pub offset: usize,
    pub limit: usize,
}

fn link_kind(k: LinkKind) -> &'static str {
    match k {
        LinkKind::Shareholder => "shareholder",
        LinkKind::LegalRep => "legal_rep",
        LinkKind::Controller => "controller",
        LinkKind::Parent => "parent",
    }
}

/// Aggregated relations of `v`: neighbour → (edge kind, direction out?, amount, contracts).
fn relations(g: &Graph, v: u32) -> BTreeMap<(u32, &'static str, bool), (f64, usize)> {
    let mut m: BTreeMap<(u32, &'static str, bool), (f64, usize)> = BTreeMap::new();
    for &e in g.contracts(v) {
        let e = &g.guarantees[e as usize];
        let (w, out) = if e.guarantor == v {
            (e.borrower, true)
        } else {
            (e.guarantor, false)
        };
        if w == v {
            continue;
        }
        let x = m.entry((w, "guarantee", out)).or_default();
        x.0 += e.amount;
        x.1 += 1;
    }
    for &l in g.links_of(v) {
        let l = &g.links[l as usize];
        let (w, out) = if l.from == v { (l.to, true) } else { (l.from, false) };
        if w == v {
            continue;
        }
        let x = m.entry((w, link_kind(l.kind), out)).or_default();
        x.0 += l.share;
        x.1 += 1;
    }
    m
}

/// The view around `center` to `depth` steps. The centre's direct neighbours (child cells) are ordered by
/// relation weight (guarantees by amount first, then holdings by share) and paginated by `offset`/`limit`;
/// deeper levels expand only the children shown, each to at most `limit` of its own neighbours.
pub fn ego(g: &Graph, center: u32, depth: usize, offset: usize, limit: usize) -> EgoView {
    let limit = limit.max(1);
    let mut depth_of: BTreeMap<u32, usize> = BTreeMap::new();
    depth_of.insert(center, 0);
    let mut edges: Vec<EgoEdge> = Vec::new();
    let mut seen_edge: std::collections::BTreeSet<(u32, u32, &'static str)> = Default::default();
    let mut push_edge =
        |edges: &mut Vec<EgoEdge>, v: u32, w: u32, kind: &'static str, out: bool, amt: f64, n: usize| {
            let (from, to) = if out { (v, w) } else { (w, v) };
            if seen_edge.insert((from, to, kind)) {
                edges.push(EgoEdge {
                    from: g.nodes[from as usize].id.clone(),
                    to: g.nodes[to as usize].id.clone(),
                    kind: kind.to_string(),
                    amount: amt,
                    contracts: n,
                });
            }
        };
    let order = |rel: &BTreeMap<(u32, &'static str, bool), (f64, usize)>| -> Vec<u32> {
        // Neighbours by their strongest relation: guarantees (by amount) before other links (by share).
        let mut best: BTreeMap<u32, (u8, f64)> = BTreeMap::new();
        for (&(w, kind, _), &(amt, _)) in rel {
            let key = (u8::from(kind != "guarantee"), -amt);
            let e = best.entry(w).or_insert(key);
            if key.0 < e.0 || (key.0 == e.0 && key.1 < e.1) {
                *e = key;
            }
        }
        let mut ws: Vec<(u32, (u8, f64))> = best.into_iter().collect();
        ws.sort_by(|a, b| a.1 .0.cmp(&b.1 .0).then(a.1 .1.total_cmp(&b.1 .1)).then(a.0.cmp(&b.0)));
        ws.into_iter().map(|x| x.0).collect()
    };
    let rel = relations(g, center);
    let children = order(&rel);
    let total_children = children.len();
    let page: Vec<u32> = children.into_iter().skip(offset).take(limit).collect();
    if depth >= 1 {
        for &w in &page {
            depth_of.entry(w).or_insert(1);
            for (&(x, kind, out), &(amt, n)) in rel.range((w, "", false)..=(w, "\u{10ffff}", true)) {
                push_edge(&mut edges, center, x, kind, out, amt, n);
            }
        }
    }
    let mut frontier = page;
    for d in 2..=depth {
        let mut next = Vec::new();
        for &v in &frontier {
            let rel = relations(g, v);
            for w in order(&rel).into_iter().take(limit) {
                if let std::collections::btree_map::Entry::Vacant(e) = depth_of.entry(w) {
                    e.insert(d);
                    next.push(w);
                }
                for (&(x, kind, out), &(amt, n)) in rel.range((w, "", false)..=(w, "\u{10ffff}", true)) {
                    push_edge(&mut edges, v, x, kind, out, amt, n);
                }
            }
        }
        frontier = next;
    }
    let mut nodes: Vec<EgoNode> = depth_of
        .iter()
        .map(|(&v, &d)| {
            let n = &g.nodes[v as usize];
            EgoNode {
                id: n.id.clone(),
                name: n.name.clone(),
                kind: n.kind,
                depth: d,
                colour: n.colour,
            }
        })
        .collect();
    nodes.sort_by(|a, b| a.depth.cmp(&b.depth).then(a.id.cmp(&b.id)));
    EgoView {
        center: g.nodes[center as usize].id.clone(),
        nodes,
        edges,
        total_children,
        offset,
        limit,
    }
}
