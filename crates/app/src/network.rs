//! The guarantee network for commands and the web platform: the network as of a date (from the stored facts
//! and the stored model), summaries, "what if these firms fail", the firm-centred view and whole groups.

use crate::credit::{self, parse_day, ScoreError};
use xinyong_credit::network::{GroupView, NetRun};
use xinyong_credit::run;
use xinyong_credit::score::{CreditModel, FirmScore};
use xinyong_credit::warnings::Rule;
use xinyong_network as net;
use xinyong_store::Store;

/// The network as of a date with every firm's score (the latest stored model; one is trained when none).
pub struct NetworkState {
    pub as_of: String,
    pub model_version: String,
    pub scores: Vec<FirmScore>,
    pub net: NetRun,
    pub config: xinyong_credit::network::NetworkConfig,
}

/// Loads the facts known on `as_of` (default: the data cut-off) and assesses every firm with the stored model.
pub fn state(store: &dyn Store, as_of: Option<&str>, rules: &[Rule]) -> Result<NetworkState, ScoreError> {
    let as_of = match as_of {
        Some(d) => d.to_string(),
        None => store
            .data_cutoff()?
            .ok_or_else(|| ScoreError::NoFirms("the data cut-off".into()))?,
    };
    let t = parse_day(&as_of)?;
    let (_, mjson) = credit::latest_model(store)?
        .ok_or_else(|| ScoreError::Model("no stored model: run `xinyong score` first".into()))?;
    let model = CreditModel::from_json(&mjson).map_err(ScoreError::Model)?;
    let loaded = credit::load(store, &as_of)?;
    if loaded.firms.is_empty() {
        return Err(ScoreError::NoFirms(as_of));
    }
    let (scores, _, net) = run::assess_network(&loaded.firms, t, t, &model, rules);
    Ok(NetworkState {
        as_of,
        model_version: model.version.clone(),
        scores,
        net,
        config: model.config.network.clone(),
    })
}

/// Counts for the summary.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub firms: usize,
    pub outside_firms: usize,
    pub persons: usize,
    pub contracts: usize,
    pub pairs: usize,
    pub groups: usize,
    pub circles: usize,
    pub firms_in_groups: usize,
    pub firms_in_circles: usize,
    pub largest_group: usize,
    /// Groups showing each pattern, and firms showing it.
    pub pattern_groups: Vec<(String, usize)>,
    pub pattern_firms: Vec<(String, usize)>,
    /// Groups by size: (size, count).
    pub group_sizes: Vec<(usize, usize)>,
}

impl NetworkState {
    pub fn summary(&self) -> Summary {
        let g = &self.net.graph;
        let nw = &self.net.network;
        let mut s = Summary {
            contracts: g.guarantees.len(),
            pairs: g.pair_count(),
            groups: nw.groups.len(),
            circles: self.net.components.sccs.iter().filter(|c| c.len() >= 2).count(),
            ..Summary::default()
        };
        for n in &g.nodes {
            match n.kind {
                net::NodeKind::Firm => s.firms += 1,
                net::NodeKind::Outside => s.outside_firms += 1,
                net::NodeKind::Person => s.persons += 1,
            }
        }
        let mut sizes = std::collections::BTreeMap::new();
        for c in &nw.groups {
            s.firms_in_groups += c.metrics.size;
            s.firms_in_circles += c.metrics.in_circles;
            s.largest_group = s.largest_group.max(c.metrics.size);
            *sizes.entry(c.metrics.size).or_insert(0usize) += 1;
        }
        s.group_sizes = sizes.into_iter().collect();
        for p in net::Pattern::ALL {
            let groups = nw.groups.iter().filter(|c| c.patterns.contains(&p)).count();
            let firms = nw.firms.iter().filter(|f| f.has(p)).count();
            s.pattern_groups.push((p.key().to_string(), groups));
            s.pattern_firms.push((p.key().to_string(), firms));
        }
        s
    }

    /// Firms by contagion add-on PD, highest first.
    pub fn top_contagion(&self, n: usize) -> Vec<&FirmScore> {
        let mut v: Vec<&FirmScore> = self.scores.iter().filter(|s| s.network.is_some()).collect();
        let add = |s: &FirmScore| s.network.as_ref().map_or(0.0, |n| n.contagion);
        v.sort_by(|a, b| add(b).total_cmp(&add(a)).then(a.uscc.cmp(&b.uscc)));
        v.truncate(n);
        v
    }

    pub fn groups(&self) -> Vec<GroupView> {
        self.net.group_views()
    }

    /// Node index of a firm id.
    pub fn node(&self, id: &str) -> Option<u32> {
        self.net.graph.find(id)
    }

    /// "If these firms fail".
    pub fn what_if(&self, failed: &[String]) -> Result<net::Stress, String> {
        let mut ids = Vec::new();
        for f in failed {
            ids.push(
                self.node(f)
                    .ok_or_else(|| format!("{f}: not in the guarantee network on {}", self.as_of))?,
            );
        }
        Ok(net::stress(
            &self.net.graph,
            &self.net.components,
            &ids,
            &self.config.contagion,
        ))
    }

    /// The firm-centred view.
    pub fn ego(&self, id: &str, depth: usize, offset: usize, limit: usize) -> Result<net::EgoView, String> {
        let v = self
            .node(id)
            .ok_or_else(|| format!("{id}: not in the network on {}", self.as_of))?;
        Ok(net::ego(&self.net.graph, v, depth, offset, limit))
    }
}
