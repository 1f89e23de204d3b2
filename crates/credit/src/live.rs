//! The live state of a firm between full runs, and the events a change of it makes (the real-time path:
//! pushed records → the firm rescored → each change of its warnings, colour or grade an event). The kinds are
//! the full run's (`run::CreditEvent`): warning_raised, warning_cleared, warning_colour, colour, grade.

use crate::data::FirmData;
use crate::network::{GroupView, NetFirm, NetworkConfig};
use crate::run::CreditEvent;
use crate::score::FirmScore;
use crate::warnings::{Colour, Rule, Warning};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use xinyong_network::{self as net, Components, Graph, GuaranteeEdge, NodeKind};

/// What subscribers are told about: a firm's warnings (rule → colour), colour, grade and PD.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveState {
    pub warnings: BTreeMap<u32, String>,
    pub colour: Option<String>,
    pub grade: String,
    pub pd: f64,
    /// The firm's own part (kept so that a neighbour's change can recompose this state without its facts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own: Option<Own>,
}

impl LiveState {
    pub fn of(s: &FirmScore) -> LiveState {
        LiveState {
            warnings: s
                .warnings
                .iter()
                .map(|w| (w.rule, w.colour.key().to_string()))
                .collect(),
            colour: s.colour.map(|c| c.key().to_string()),
            grade: s.grade.clone(),
            pd: s.pd,
            own: None,
        }
    }

    /// The state from a firm's own part and the warnings of its network rules, as the full run composes it
    /// (`score::apply_network`): the colour is the worst warning, and a red one caps the grade.
    pub fn compose(own: &Own, network: &BTreeMap<u32, Colour>, cfg: &crate::score::ScoringConfig) -> LiveState {
        let mut all: BTreeMap<u32, Colour> = own.warnings.clone();
        all.extend(network.iter().map(|(r, c)| (*r, *c)));
        let colour = all.values().copied().max();
        LiveState {
            warnings: all.iter().map(|(r, c)| (*r, c.key().to_string())).collect(),
            colour: colour.map(|c| c.key().to_string()),
            grade: if colour == Some(Colour::Red) {
                cfg.worse(&own.grade_unadjusted, &cfg.red_cap)
            } else {
                own.grade_unadjusted.clone()
            },
            pd: own.pd,
            own: Some(own.clone()),
        }
    }

    /// The warnings of the network rules in this state (rule → colour).
    pub fn network_part(&self, rules: &[Rule]) -> BTreeMap<u32, Colour> {
        network_part(
            rules,
            self.warnings.iter().filter_map(|(r, c)| Some((*r, colour_of_key(c)?))),
        )
    }
}

fn colour_of_key(k: &str) -> Option<Colour> {
    match k {
        "blue" => Some(Colour::Blue),
        "yellow" => Some(Colour::Yellow),
        "red" => Some(Colour::Red),
        _ => None,
    }
}

fn network_part(rules: &[Rule], ws: impl Iterator<Item = (u32, Colour)>) -> BTreeMap<u32, Colour> {
    ws.filter(|(r, _)| rules.iter().any(|x| x.id == *r && x.uses_network()))
        .collect()
}

/// A firm's own part of its state: what its own facts give — the model's PD and grade, its standing in
/// default, and the warnings of the rules without network conditions. Its guarantee neighbours read the PD
/// (1 in default) and the colour of these warnings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Own {
    pub pd: f64,
    pub defaulted: bool,
    pub grade_unadjusted: String,
    pub warnings: BTreeMap<u32, Colour>,
}

impl Own {
    /// From a score (first pass or full): the warnings of the network rules are left out.
    pub fn of(s: &FirmScore, rules: &[Rule], defaulted: bool) -> Own {
        Own {
            pd: s.pd,
            defaulted,
            grade_unadjusted: s.grade_unadjusted.clone(),
            warnings: s
                .warnings
                .iter()
                .filter(|w| !rules.iter().any(|r| r.id == w.rule && r.uses_network()))
                .map(|w| (w.rule, w.colour))
                .collect(),
        }
    }

    /// The PD its guarantors carry from it (1 in default), as the network is built.
    pub fn node_pd(&self) -> f64 {
        if self.defaulted {
            1.0
        } else {
            self.pd
        }
    }

    fn colour_code(&self) -> u8 {
        match self.warnings.values().max() {
            None => 0,
            Some(Colour::Blue) => 1,
            Some(Colour::Yellow) => 2,
            Some(Colour::Red) => 3,
        }
    }
}

/// The network rules' warnings from a firm's place in the network alone. Only for rules that read nothing
/// else (`Rule::network_only`); the caller evaluates a firm's other network rules with its facts.
pub fn network_warnings(rules: &[Rule], nf: &NetFirm, t: crate::data::Day, uscc: &str) -> BTreeMap<u32, Colour> {
    let only: Vec<Rule> = rules.iter().filter(|r| r.network_only()).cloned().collect();
    let firm = FirmData::new(uscc);
    let row = crate::features::FeatureRow {
        values: Vec::new(),
        evidence: Vec::new(),
    };
    let pct = |_: usize, _: f64| None;
    let cx = crate::warnings::Context {
        firm: &firm,
        t,
        k: t,
        row: &row,
        pct: &pct,
        net: Some(nf),
    };
    crate::warnings::evaluate_network(&only, &cx)
        .into_iter()
        .map(|w| (w.rule, w.colour))
        .collect()
}

/// The warnings as a map (rule → colour).
pub fn colours(ws: &[Warning]) -> BTreeMap<u32, Colour> {
    ws.iter().map(|w| (w.rule, w.colour)).collect()
}

/// One firm rescored from its own facts (the parallel part of the live path): its first-pass score, its
/// facts (its network rules are evaluated with them), its standing in default, and its place in the
/// network as the latest full run found it.
pub struct Rescored {
    pub uscc: String,
    pub first: FirmScore,
    pub firm: FirmData,
    pub defaulted: bool,
    pub base: Option<NetFirm>,
}

/// The live path's rescoring, in two steps: `own` rescores firms from their own facts (called on several
/// connections at once), `settle` puts them in the guarantee network and returns every state that changed —
/// the firms' own and their guarantee neighbours' (called once per push). `O` and `T` are the two function
/// types, which name the store trait that this crate does not (`app::credit::LiveRescorer`).
pub struct Rescorer<O: ?Sized, T: ?Sized> {
    pub own: Arc<O>,
    pub settle: Arc<T>,
}

impl<O: ?Sized, T: ?Sized> Clone for Rescorer<O, T> {
    fn clone(&self) -> Self {
        Rescorer {
            own: self.own.clone(),
            settle: self.settle.clone(),
        }
    }
}

/// One member of a guarantee group as the live path starts from it.
pub struct Member {
    pub id: String,
    /// Its owners' equity as the run's network used it.
    pub equity: Option<f64>,
    /// A district firm the run scored: its place in the network as the run found it, its own part now
    /// (the latest live state's, else the run's) and the warnings of its network rules as last told.
    pub firm: Option<(NetFirm, Own, BTreeMap<u32, Colour>)>,
}

/// A guarantee group held between full runs: the run's contracts, each member's own part as it is now, and
/// what each firm was last told. A push sets the own parts of the firms it changed; `recompute` then gives
/// every member's place in the network anew (`network::guarantee_part` on the group alone: a group is a
/// weakly connected component of the guarantees, so its contagion does not depend on anything outside it).
pub struct LiveGroup {
    pub id: String,
    graph: Graph,
    components: Components,
    base: Vec<Option<NetFirm>>,
    own: Vec<Option<Own>>,
    told: Vec<BTreeMap<u32, Colour>>,
    /// Each node's contagion-adjusted PD now (kept so that an update recomputes only what can move).
    p: Vec<f64>,
}

impl LiveGroup {
    /// The group from the run's view of it and its members. Nodes are numbered as the full run numbers
    /// them (district firms, then the others, each by id), so the group alone computes what the run did.
    pub fn new(view: &GroupView, members: Vec<Member>, cfg: &NetworkConfig) -> LiveGroup {
        let mut members = members;
        members.sort_by(|a, b| (a.firm.is_none(), &a.id).cmp(&(b.firm.is_none(), &b.id)));
        let own_pd: FxHashMap<&str, f64> = view.contagion.iter().map(|(id, p, _)| (id.as_str(), *p)).collect();
        let mut g = Graph::new();
        let (mut base, mut own, mut told) = (Vec::new(), Vec::new(), Vec::new());
        for m in members {
            let kind = if m.firm.is_some() {
                NodeKind::Firm
            } else {
                NodeKind::Outside
            };
            let v = g.node(&m.id, kind) as usize;
            let n = &mut g.nodes[v];
            n.equity = m.equity;
            match m.firm {
                Some((b, o, t)) => {
                    n.pd = o.node_pd();
                    n.colour = o.colour_code();
                    n.defaulted = o.defaulted;
                    base.push(Some(b));
                    own.push(Some(o));
                    told.push(t);
                }
                None => {
                    n.pd = own_pd.get(m.id.as_str()).copied().unwrap_or(cfg.contagion.outside_pd);
                    base.push(None);
                    own.push(None);
                    told.push(BTreeMap::new());
                }
            }
        }
        for (gu, bo, amount, lender, kind, fact) in &view.contracts {
            let (Some(a), Some(b)) = (g.find(gu), g.find(bo)) else {
                continue;
            };
            g.add_guarantee(GuaranteeEdge {
                guarantor: a,
                borrower: b,
                amount: *amount,
                lender: lender.clone(),
                kind: kind.clone(),
                fact: *fact,
                start: None,
                end: None,
            });
        }
        g.finish();
        let components = net::components(&g);
        let p_self: Vec<f64> = g.nodes.iter().map(|n| n.pd).collect();
        let p = net::vulnerable(&g, &components, &p_self, &cfg.contagion);
        LiveGroup {
            id: view.id.clone(),
            graph: g,
            components,
            base,
            own,
            told,
            p,
        }
    }

    /// Sets a member firm's own part (after its facts changed); false if it is not a member firm here.
    pub fn set_own(&mut self, uscc: &str, o: Own) -> bool {
        let Some(v) = self.graph.find(uscc).map(|v| v as usize) else {
            return false;
        };
        if self.base[v].is_none() {
            return false;
        }
        let n = &mut self.graph.nodes[v];
        n.pd = o.node_pd();
        n.colour = o.colour_code();
        n.defaulted = o.defaulted;
        self.own[v] = Some(o);
        true
    }

    /// Every member firm's place in the network now: the run's, with the part that follows from the
    /// group recomputed from the members' own parts.
    pub fn recompute(&self, cfg: &NetworkConfig) -> Vec<(String, NetFirm)> {
        let p_self: Vec<f64> = self.graph.nodes.iter().map(|n| n.pd).collect();
        let p = net::vulnerable(&self.graph, &self.components, &p_self, &cfg.contagion);
        let mut out = Vec::new();
        for (v, b) in self.base.iter().enumerate() {
            let Some(b) = b else { continue };
            let mut nf = b.clone();
            crate::network::guarantee_part(&self.graph, &self.components, v as u32, &p, &p_self, cfg, &mut nf);
            out.push((self.graph.nodes[v].id.clone(), nf));
        }
        out
    }

    /// After `changed` firms' own parts were set: the place in the network of every member firm that can
    /// have moved — the changed firms, their guarantee neighbours and circle members (red flags), and every
    /// firm that reaches them along the guarantees (contagion and risk paths). The others cannot have moved
    /// (`network::vulnerable_update` recomputes exactly the components that reach a change).
    pub fn update(&mut self, changed: &[&str], cfg: &NetworkConfig) -> Vec<(String, NetFirm)> {
        let idx: Vec<u32> = changed.iter().filter_map(|u| self.graph.find(u)).collect();
        let p_self: Vec<f64> = self.graph.nodes.iter().map(|n| n.pd).collect();
        let reach = net::vulnerable_update(
            &self.graph,
            &self.components,
            &p_self,
            &cfg.contagion,
            &mut self.p,
            &idx,
        );
        let mut touch: std::collections::BTreeSet<u32> = reach.into_iter().collect();
        for &v in &idx {
            touch.insert(v);
            touch.extend(
                self.graph
                    .borrowers(v)
                    .iter()
                    .chain(self.graph.guarantors(v))
                    .map(|x| x.0),
            );
            let scc = &self.components.sccs[self.components.scc_of[v as usize] as usize];
            if scc.len() >= 2 {
                touch.extend(scc.iter().copied());
            }
        }
        let mut out = Vec::new();
        for v in touch {
            let Some(b) = &self.base[v as usize] else { continue };
            let mut nf = b.clone();
            crate::network::guarantee_part(&self.graph, &self.components, v, &self.p, &p_self, cfg, &mut nf);
            out.push((self.graph.nodes[v as usize].id.clone(), nf));
        }
        out
    }

    /// A member firm's own part now.
    pub fn own_of(&self, uscc: &str) -> Option<&Own> {
        self.own[self.graph.find(uscc)? as usize].as_ref()
    }

    /// Records what a member firm was told of its network rules; true if that differs from before.
    pub fn tell(&mut self, uscc: &str, network: &BTreeMap<u32, Colour>) -> bool {
        let Some(v) = self.graph.find(uscc).map(|v| v as usize) else {
            return false;
        };
        if &self.told[v] == network {
            return false;
        }
        self.told[v] = network.clone();
        true
    }

    /// What a member firm was last told of its network rules.
    pub fn told(&self, uscc: &str) -> Option<&BTreeMap<u32, Colour>> {
        Some(&self.told[self.graph.find(uscc)? as usize])
    }
}

/// A stable event id: the same change from the same cause (a pushed batch) is the same event, so a recompute
/// repeated after a crash makes no new ids.
pub fn event_id(uscc: &str, cause: &str, kind: &str, rule: Option<u32>, before: &str, after: &str) -> String {
    let h = Sha256::digest(format!(
        "{uscc}\u{1f}{cause}\u{1f}{kind}\u{1f}{rule:?}\u{1f}{before}\u{1f}{after}"
    ));
    h[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The events from `before` to `after` of `uscc`, dated `date`, caused by `cause`; none when nothing changed.
pub fn transitions(uscc: &str, date: &str, cause: &str, before: &LiveState, after: &LiveState) -> Vec<CreditEvent> {
    let mut out = Vec::new();
    let mut ev = |kind: &str, rule: Option<u32>, b: &str, a: &str| {
        out.push(CreditEvent {
            id: event_id(uscc, cause, kind, rule, b, a),
            uscc: uscc.to_string(),
            date: date.to_string(),
            kind: kind.to_string(),
            rule,
            before: b.to_string(),
            after: a.to_string(),
        })
    };
    for (rule, c) in &before.warnings {
        match after.warnings.get(rule) {
            None => ev("warning_cleared", Some(*rule), c, ""),
            Some(n) if n != c => ev("warning_colour", Some(*rule), c, n),
            _ => {}
        }
    }
    for (rule, c) in &after.warnings {
        if !before.warnings.contains_key(rule) {
            ev("warning_raised", Some(*rule), "", c);
        }
    }
    if before.colour != after.colour {
        let k = |c: &Option<String>| c.clone().unwrap_or_else(|| "none".into());
        ev("colour", None, &k(&before.colour), &k(&after.colour));
    }
    if before.grade != after.grade && !before.grade.is_empty() && !after.grade.is_empty() {
        ev("grade", None, &before.grade, &after.grade);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(ws: &[(u32, &str)], colour: Option<&str>, grade: &str) -> LiveState {
        LiveState {
            warnings: ws.iter().map(|(r, c)| (*r, c.to_string())).collect(),
            colour: colour.map(String::from),
            grade: grade.into(),
            pd: 0.01,
            own: None,
        }
    }

    #[test]
    fn each_change_is_one_event_and_no_change_none() {
        let a = st(&[(3, "yellow"), (7, "blue")], Some("yellow"), "BBB");
        assert!(transitions("f", "2026-02-01", "b1", &a, &a).is_empty());
        let b = st(&[(3, "red"), (9, "blue")], Some("red"), "C");
        let kinds: Vec<(String, Option<u32>)> = transitions("f", "2026-02-01", "b1", &a, &b)
            .into_iter()
            .map(|e| (e.kind, e.rule))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("warning_colour".into(), Some(3)),
                ("warning_cleared".into(), Some(7)),
                ("warning_raised".into(), Some(9)),
                ("colour".into(), None),
                ("grade".into(), None),
            ]
        );
    }

    #[test]
    fn ids_are_stable_per_cause() {
        let a = st(&[], None, "A");
        let b = st(&[(1, "red")], Some("red"), "C");
        let x = transitions("f", "d", "b1", &a, &b);
        assert_eq!(
            x,
            transitions("f", "d", "b1", &a, &b),
            "the same recompute, the same ids"
        );
        let y = transitions("f", "d", "b2", &a, &b);
        assert!(x.iter().zip(&y).all(|(p, q)| p.id != q.id), "another cause, other ids");
    }
}
