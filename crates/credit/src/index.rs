//! The macro risk index: monthly, base period (the first month of the window) = 100, for the district and by
//! industry section, township, cluster, size class and force.
//!
//! Components per group and month, each divided by the district's value in the base month:
//! - `ewpd`: exposure-weighted mean PD (exposure = loan balance; firms without loans weigh as the smallest
//!   positive exposure so that non-borrowers still count a little),
//! - `troubled`: the share of firms with PD above the threshold (the Kamakura troubled-company index),
//! - `red`: the share of firms with an active red warning,
//! - `defaults`: the share of borrowers whose first default (the month its overdue spell began, as later 90+ day
//!   reports known on the run's date show) falls in the trailing 12 months,
//! - `contagion`: the exposure-weighted contagion add-on PD (the guarantee network's vulnerable-node PD minus
//!   the firm's own PD).
//!
//! Index = 100 × Σ weight_c × component_c / district_base_c, over components whose district base is positive
//! (weights renormalised). Force indices: 100 × mean(100 − force score) / the district's base-month value.
//! Movers: the firms whose change in exposure × PD moved their group's `ewpd` most since the month before.

use crate::data::{self, Day, FirmData, Month};
use crate::features::Force;
use crate::score::{FirmScore, ScoringConfig};
use crate::warnings::Colour;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One firm in one month.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirmMonth {
    pub uscc: String,
    pub month: String,
    pub pd: f64,
    pub score: f64,
    pub grade: String,
    pub colour: Option<Colour>,
    pub exposure: f64,
    pub borrower: bool,
    /// First default (dated from the start of the overdue spell) within the 12 months up to this one.
    pub defaulted_12m: bool,
    pub forces: [f64; 5],
    /// Contagion add-on PD from the guarantee network (0 outside any group).
    #[serde(default)]
    pub contagion: f64,
    pub section: String,
    pub township: String,
    pub cluster: String,
    pub size: String,
}

/// One firm's month `m`, as known on `k`.
pub fn firm_month(f: &FirmData, m: Month, k: Day, s: &FirmScore, cfg: &ScoringConfig) -> FirmMonth {
    let t = data::month_end(m);
    let k = k.max(t);
    let reg = f.registration_at(t, k);
    let industry = reg.map_or("", |r| r.industry.as_str());
    let township = reg.map_or("", |r| r.township.as_str());
    let exposure: f64 = f
        .loans
        .iter()
        .filter(|l| l.month == m && l.known.at(k))
        .map(|l| l.balance)
        .sum();
    let dm = crate::score::default_month(f, k, cfg.default_overdue_days).map(|d| d.0);
    FirmMonth {
        uscc: f.uscc.clone(),
        month: data::month_str(m),
        pd: s.pd,
        score: s.score,
        grade: s.grade.clone(),
        colour: s.colour,
        exposure,
        borrower: s.borrower,
        defaulted_12m: dm.is_some_and(|d| d > m - 12 && d <= m),
        forces: s.forces,
        contagion: s.network.as_ref().map_or(0.0, |n| n.contagion),
        section: xinyong_domain::industry::section_of(industry)
            .map(|x| x.code.clone())
            .unwrap_or_default(),
        township: township.to_string(),
        cluster: cfg.cluster_of(industry, township).unwrap_or("").to_string(),
        size: reg.map_or("", |r| r.size_class.as_str()).to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexPoint {
    pub month: String,
    /// district, industry, township, cluster, size, force.
    pub dimension: String,
    pub member: String,
    pub value: f64,
    pub firms: usize,
    pub ewpd: f64,
    pub troubled: f64,
    pub red: f64,
    pub defaults: f64,
    #[serde(default)]
    pub contagion: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mover {
    pub month: String,
    pub dimension: String,
    pub member: String,
    pub uscc: String,
    /// The firm's change in exposure × PD divided by the group's exposure: its share of the group's ewpd move.
    pub delta: f64,
}

#[derive(Default, Clone, Copy)]
struct Acc {
    n: usize,
    w: f64,
    wpd: f64,
    troubled: usize,
    red: usize,
    borrowers: usize,
    defaults: usize,
    wcontagion: f64,
    anti_force: [f64; 5],
}

fn weight(fm: &FirmMonth) -> f64 {
    // Non-borrowers weigh as 10,000 yuan of exposure.
    fm.exposure.max(1e4)
}

fn members(fm: &FirmMonth) -> Vec<(&'static str, String)> {
    let mut v = vec![("district", "330604".to_string())];
    if !fm.section.is_empty() {
        v.push(("industry", fm.section.clone()));
    }
    if !fm.township.is_empty() {
        v.push(("township", fm.township.clone()));
    }
    if !fm.cluster.is_empty() {
        v.push(("cluster", fm.cluster.clone()));
    }
    if !fm.size.is_empty() {
        v.push(("size", fm.size.clone()));
    }
    v
}

pub fn build(history: &[FirmMonth], months: &[Month], cfg: &ScoringConfig) -> (Vec<IndexPoint>, Vec<Mover>) {
    let mut acc: BTreeMap<(String, &'static str, String), Acc> = BTreeMap::new();
    let mut by_month_firm: BTreeMap<(&str, &str), &FirmMonth> = BTreeMap::new();
    for fm in history {
        by_month_firm.insert((fm.month.as_str(), fm.uscc.as_str()), fm);
        for (dim, mem) in members(fm) {
            let a = acc.entry((fm.month.clone(), dim, mem)).or_default();
            a.n += 1;
            a.w += weight(fm);
            a.wpd += weight(fm) * fm.pd;
            a.troubled += (fm.pd > cfg.pd_threshold) as usize;
            a.red += (fm.colour == Some(Colour::Red)) as usize;
            a.borrowers += fm.borrower as usize;
            a.defaults += (fm.borrower && fm.defaulted_12m) as usize;
            a.wcontagion += weight(fm) * fm.contagion;
            for k in 0..5 {
                a.anti_force[k] += 100.0 - fm.forces[k];
            }
        }
    }
    let comps = |a: &Acc| -> [f64; 5] {
        [
            if a.w > 0.0 { a.wpd / a.w } else { 0.0 },
            a.troubled as f64 / a.n.max(1) as f64,
            a.red as f64 / a.n.max(1) as f64,
            a.defaults as f64 / a.borrowers.max(1) as f64,
            if a.w > 0.0 { a.wcontagion / a.w } else { 0.0 },
        ]
    };
    let Some(first) = months.first().map(|m| data::month_str(*m)) else {
        return (Vec::new(), Vec::new());
    };
    let base = acc
        .get(&(first.clone(), "district", "330604".to_string()))
        .copied()
        .unwrap_or_default();
    let base_c = comps(&base);
    let w = &cfg.index_weights;
    let weights = [w.ewpd, w.troubled, w.red, w.defaults, w.contagion];
    let used: f64 = (0..5).filter(|&c| base_c[c] > 0.0).map(|c| weights[c]).sum();
    let mut points = Vec::new();
    for ((month, dim, mem), a) in &acc {
        let c = comps(a);
        let mut value = 0.0;
        for k in 0..5 {
            if base_c[k] > 0.0 && used > 0.0 {
                value += weights[k] / used * c[k] / base_c[k];
            }
        }
        points.push(IndexPoint {
            month: month.clone(),
            dimension: dim.to_string(),
            member: mem.clone(),
            value: 100.0 * value,
            firms: a.n,
            ewpd: c[0],
            troubled: c[1],
            red: c[2],
            defaults: c[3],
            contagion: c[4],
        });
        if *dim == "district" {
            for f in Force::ALL {
                let k = f.index();
                let b = base.anti_force[k] / base.n.max(1) as f64;
                let v = a.anti_force[k] / a.n.max(1) as f64;
                points.push(IndexPoint {
                    month: month.clone(),
                    dimension: "force".into(),
                    member: f.key().into(),
                    value: if b > 0.0 { 100.0 * v / b } else { 100.0 },
                    firms: a.n,
                    ewpd: c[0],
                    troubled: c[1],
                    red: c[2],
                    defaults: c[3],
                    contagion: c[4],
                });
            }
        }
    }
    // Movers: per group and month, the 10 firms whose exposure × PD changed most since the month before.
    let mut movers = Vec::new();
    let month_strs: Vec<String> = months.iter().map(|m| data::month_str(*m)).collect();
    for pair in month_strs.windows(2) {
        let (prev, cur) = (&pair[0], &pair[1]);
        let mut deltas: BTreeMap<(&'static str, String), Vec<(f64, &str)>> = BTreeMap::new();
        let firms: BTreeSet<&str> = history
            .iter()
            .filter(|h| &h.month == cur)
            .map(|h| h.uscc.as_str())
            .collect();
        for u in firms {
            let Some(now) = by_month_firm.get(&(cur.as_str(), u)) else {
                continue;
            };
            let before = by_month_firm.get(&(prev.as_str(), u)).map_or(0.0, |b| weight(b) * b.pd);
            let d = weight(now) * now.pd - before;
            for (dim, mem) in members(now) {
                deltas.entry((dim, mem)).or_default().push((d, u));
            }
        }
        for ((dim, mem), mut v) in deltas {
            let total = acc.get(&(cur.clone(), dim, mem.clone())).map_or(1.0, |a| a.w.max(1.0));
            v.sort_by(|a, b| b.0.abs().total_cmp(&a.0.abs()).then(a.1.cmp(b.1)));
            for (d, u) in v.into_iter().take(10).filter(|x| x.0 != 0.0) {
                movers.push(Mover {
                    month: cur.clone(),
                    dimension: dim.to_string(),
                    member: mem.clone(),
                    uscc: u.to_string(),
                    delta: d / total,
                });
            }
        }
    }
    (points, movers)
}
