//! The credit score: labels from the lenders' feeds, training rows, the versioned model, and one firm's score
//! (points, PD, grade, force sub-scores, reasons with their records).

use crate::bench::Benchmarks;
use crate::data::{self, Day, FirmData, Month, Provenance};
use crate::features::{self, FeatureRow, Force};
use crate::warnings::{Colour, Warning};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use xinyong_scorecard::{Column, FitConfig, Table, Value};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GradeBand {
    pub grade: String,
    pub max_pd: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexWeights {
    pub ewpd: f64,
    pub troubled: f64,
    pub red: f64,
    pub defaults: f64,
    /// Exposure-weighted contagion add-on PD (the guarantee network's share of risk).
    #[serde(default)]
    pub contagion: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cluster {
    pub name: String,
    pub industries: Vec<String>,
    pub townships: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoringConfig {
    pub grades: Vec<GradeBand>,
    pub red_cap: String,
    pub reasons: usize,
    pub default_overdue_days: i64,
    pub horizon_months: i32,
    pub snapshot_every_months: i32,
    pub min_history_months: i32,
    pub index_months: usize,
    pub pd_threshold: f64,
    pub index_weights: IndexWeights,
    pub clusters: Vec<Cluster>,
    pub fit: FitConfig,
    /// Guarantee-network settings (catalogue/network.toml unless the scoring file gives its own).
    #[serde(default = "crate::network::NetworkConfig::builtin")]
    pub network: crate::network::NetworkConfig,
}

impl ScoringConfig {
    pub fn builtin() -> ScoringConfig {
        Self::parse(include_str!("../catalogue/scoring.toml")).expect("the built-in scoring config parses (tested)")
    }
    pub fn parse(text: &str) -> Result<ScoringConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
    pub fn grade(&self, pd: f64) -> String {
        self.grades
            .iter()
            .find(|g| pd < g.max_pd)
            .or(self.grades.last())
            .map(|g| g.grade.clone())
            .unwrap_or_default()
    }
    /// The worse of two grades (later in the band list is worse).
    pub fn worse(&self, a: &str, b: &str) -> String {
        let pos = |g: &str| self.grades.iter().position(|x| x.grade == g).unwrap_or(0);
        if pos(a) >= pos(b) {
            a.to_string()
        } else {
            b.to_string()
        }
    }
    pub fn cluster_of(&self, industry: &str, township: &str) -> Option<&str> {
        self.clusters
            .iter()
            .find(|c| c.townships.iter().any(|t| t == township) && c.industries.iter().any(|p| industry.starts_with(p)))
            .map(|c| c.name.as_str())
    }
}

/// The platform's default label: a loan reported `days` or more overdue (as known on `known_by`). The default
/// is dated when that overdue spell began (the report's month-end minus its days overdue), the first missed
/// payment, so that a firm already not paying is not counted as a future default. Returns the month the spell
/// began and the loan report that showed it.
pub fn default_month(firm: &FirmData, known_by: Day, days: i64) -> Option<(Month, i64)> {
    firm.loans
        .iter()
        .filter(|l| l.overdue_days >= days && l.known.at(known_by))
        .map(|l| {
            (
                data::month_of_day(data::month_end(l.month) - l.overdue_days as i32),
                l.fact,
            )
        })
        .min()
}

/// A borrower on day `t` (as known on `k`): some loan reported for a month by then.
pub fn borrower_at(firm: &FirmData, t: Day, k: Day) -> bool {
    let last = data::last_complete_month(t);
    firm.loans.iter().any(|l| l.month <= last && l.known.at(k.max(t)))
}

/// Training rows: firm snapshots with their labels.
pub struct TrainingSet {
    pub table: Table,
    pub target: Vec<u8>,
    /// (firm index, snapshot month) of each row.
    pub keys: Vec<(usize, Month)>,
    pub first: Option<Month>,
    pub last: Option<Month>,
}

/// The snapshot months a model trained with cut-off `cut` uses: every `snapshot_every_months` back from the
/// last month whose outcome window is complete by the cut, while enough history lies before it.
pub fn snapshot_months(first_data: Month, cut: Day, cfg: &ScoringConfig) -> Vec<Month> {
    // A default that began in the window's last month shows as 90+ days overdue 3 months later.
    let last = data::last_complete_month(cut) - cfg.horizon_months - label_lag(cfg);
    let mut v = Vec::new();
    let mut m = last;
    while m >= first_data + cfg.min_history_months - 1 {
        v.push(m);
        m -= cfg.snapshot_every_months.max(1);
    }
    v.reverse();
    v
}

/// Months between a default beginning and the lenders' feeds showing it as `default_overdue_days` overdue.
pub fn label_lag(cfg: &ScoringConfig) -> i32 {
    ((cfg.default_overdue_days + 29) / 30) as i32
}

/// Rows for snapshot months `months`: borrowers not yet in default, labelled 1 when they default (as known on
/// `cut`) within the horizon.
pub fn training_set(firms: &[FirmData], months: &[Month], cut: Day, cfg: &ScoringConfig) -> TrainingSet {
    let pairs: Vec<(usize, Month)> = firms
        .iter()
        .enumerate()
        .flat_map(|(i, _)| months.iter().map(move |&m| (i, m)))
        .collect();
    let rows: Vec<Option<(Vec<Option<f64>>, u8)>> = pairs
        .par_iter()
        .map(|&(i, m)| {
            let f = &firms[i];
            let t = data::month_end(m);
            if !borrower_at(f, t, cut) {
                return None;
            }
            let dm = default_month(f, cut, cfg.default_overdue_days).map(|d| d.0);
            if dm.is_some_and(|d| d <= m) {
                return None;
            }
            let label = dm.is_some_and(|d| d <= m + cfg.horizon_months) as u8;
            Some((features::compute_at(f, t, cut).values, label))
        })
        .collect();
    let mut cols: Vec<Vec<Option<f64>>> = vec![Vec::new(); features::N];
    let mut target = Vec::new();
    let mut keys = Vec::new();
    for (p, r) in pairs.iter().zip(rows) {
        if let Some((vals, label)) = r {
            for (j, v) in vals.into_iter().enumerate() {
                cols[j].push(v);
            }
            target.push(label);
            keys.push(*p);
        }
    }
    TrainingSet {
        table: Table {
            names: features::IDS.iter().map(|s| s.to_string()).collect(),
            columns: cols.into_iter().map(Column::Numeric).collect(),
        },
        target,
        keys,
        first: months.first().copied(),
        last: months.last().copied(),
    }
}

/// The scorecard settings for the credit model: unless the configuration says otherwise per indicator, each
/// indicator's bins follow the catalogue's direction (a higher value of a "higher is safer" indicator never
/// costs points), so that reason codes read the way a credit officer expects; an indicator whose data run the
/// other way gets a wrong-signed coefficient and is dropped.
pub fn fit_config(cfg: &ScoringConfig) -> FitConfig {
    let mut fit = cfg.fit.clone();
    // One shape per indicator: pair features would have no single indicator to cite in a reason code.
    fit.boost.interactions = 0;
    for f in features::catalogue() {
        fit.monotonic_by_feature
            .entry(f.id.clone())
            .or_insert(if f.direction > 0 {
                xinyong_scorecard::Monotonic::Descending
            } else {
                xinyong_scorecard::Monotonic::Ascending
            });
    }
    fit
}

/// Out-of-time validation figures recorded with a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    pub snapshot: String,
    pub rows: usize,
    pub bads: usize,
    pub auc: f64,
    pub ks: f64,
}

/// The versioned credit model: the scorecard, the configuration, the training window, validation figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreditModel {
    /// `5f-` and a hash of the rest of the model.
    pub version: String,
    pub trained_at_cut: String,
    pub first_snapshot: String,
    pub last_snapshot: String,
    pub rows: usize,
    pub bads: usize,
    pub config: ScoringConfig,
    pub card: xinyong_scorecard::Model,
    pub validation: Option<Validation>,
}

fn fnv(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

impl CreditModel {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
    /// Reads a model; every card feature must be an indicator of the catalogue (one shape per indicator).
    pub fn from_json(s: &str) -> Result<CreditModel, String> {
        let m: CreditModel = serde_json::from_str(s).map_err(|e| e.to_string())?;
        if let Some(f) = m.card.features.iter().find(|f| features::position(&f.name).is_none()) {
            return Err(format!(
                "the model's feature {:?} is not an indicator of the catalogue",
                f.name
            ));
        }
        Ok(m)
    }
    fn seal(mut self) -> CreditModel {
        self.version.clear();
        let h = fnv(self.to_json().as_bytes());
        self.version = format!("5f-{h:016x}");
        self
    }
    /// The card's feature positions in the catalogue.
    fn feature_positions(&self) -> Vec<usize> {
        self.card
            .features
            .iter()
            .map(|f| features::position(&f.name).unwrap_or(0))
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "no training rows: no borrower has {0} months of history and a complete outcome window before the cut-off"
    )]
    NoRows(i32),
    #[error("no defaults in the training window: a default is a loan {0} days overdue")]
    NoDefaults(i64),
    #[error("scorecard: {0}")]
    Card(String),
}

/// Trains the model on snapshots whose outcome windows close by `cut` (valid time), reading facts and labels as
/// known on `known_by` (`>= cut`; data backfilled after the cut still describes the months before it, and no
/// label looks past the cut).
pub fn train(firms: &[FirmData], cut: Day, known_by: Day, cfg: &ScoringConfig) -> Result<CreditModel, TrainError> {
    let first = firms
        .iter()
        .flat_map(|f| f.loans.iter().map(|l| l.month))
        .min()
        .unwrap_or(data::last_complete_month(cut));
    let months = snapshot_months(first, cut, cfg);
    if months.is_empty() {
        return Err(TrainError::NoRows(cfg.min_history_months));
    }
    let set = training_set(firms, &months, known_by.max(cut), cfg);
    let bads = set.target.iter().filter(|&&y| y == 1).count();
    if set.target.is_empty() {
        return Err(TrainError::NoRows(cfg.min_history_months));
    }
    if bads == 0 {
        return Err(TrainError::NoDefaults(cfg.default_overdue_days));
    }
    let card = xinyong_scorecard::fit(&set.table, &set.target, &fit_config(cfg))
        .map_err(|e| TrainError::Card(e.to_string()))?;
    let m = CreditModel {
        version: String::new(),
        trained_at_cut: data::day_str(cut),
        first_snapshot: data::month_str(months[0]),
        last_snapshot: data::month_str(*months.last().unwrap_or(&months[0])),
        rows: set.target.len(),
        bads,
        config: cfg.clone(),
        card,
        validation: None,
    };
    Ok(m.seal())
}

/// Out-of-time check: scores the snapshot `month` with `model` and labels from data known on `known_by`.
pub fn validate(model: &CreditModel, firms: &[FirmData], month: Month, known_by: Day) -> Option<Validation> {
    let set = training_set(firms, &[month], known_by, &model.config);
    let bads = set.target.iter().filter(|&&y| y == 1).count();
    if bads == 0 || bads == set.target.len() {
        return None;
    }
    let scored = model.card.score_table(&set.table).ok()?;
    let pd: Vec<f64> = scored.iter().map(|s| s.log_odds_bad).collect();
    Some(Validation {
        snapshot: data::month_str(month),
        rows: set.target.len(),
        bads,
        auc: xinyong_scorecard::metrics::auc(&pd, &set.target),
        ks: xinyong_scorecard::metrics::ks(&pd, &set.target),
    })
}

impl CreditModel {
    /// Records validation figures in the model (the version changes with them).
    pub fn with_validation(mut self, v: Option<Validation>) -> CreditModel {
        self.validation = v;
        self.seal()
    }
}

/// A reason code: an indicator that cost the firm points, with the records behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reason {
    pub indicator: String,
    pub name_zh: String,
    pub name_en: String,
    pub value: Option<f64>,
    pub points_lost: f64,
    /// The median of the firm's benchmark group, for comparison.
    pub industry_median: Option<f64>,
    pub evidence: Vec<Provenance>,
}

/// One firm's credit assessment as of a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FirmScore {
    pub uscc: String,
    pub as_of: String,
    pub borrower: bool,
    pub score: f64,
    pub pd: f64,
    /// The grade from the PD alone.
    pub grade_unadjusted: String,
    /// The grade after warnings (a red warning caps it).
    pub grade: String,
    pub colour: Option<Colour>,
    /// Capital, operating, profitability, solvency, development: 0–100.
    pub forces: [f64; 5],
    /// Each force's percentile in the benchmark group.
    pub force_percentiles: [Option<f64>; 5],
    pub benchmark_group: String,
    pub reasons: Vec<Reason>,
    pub warnings: Vec<Warning>,
    pub features: FeatureRow,
    /// The firm's place in the guarantee network (circle, patterns, contagion, risk paths).
    #[serde(default)]
    pub network: Option<crate::network::NetFirm>,
}

/// The points range of each card feature: (min, max) over its bins.
fn ranges(model: &CreditModel) -> Vec<(f64, f64)> {
    model
        .card
        .features
        .iter()
        .map(|f| {
            let lo = f.bins.iter().map(|b| b.points).fold(f64::INFINITY, f64::min);
            let hi = f.bins.iter().map(|b| b.points).fold(f64::NEG_INFINITY, f64::max);
            (lo, hi)
        })
        .collect()
}

/// The percentile of indicator `i` (value `v`) in a benchmark group, turned so that higher is safer.
pub fn safe_percentile(bm: &Benchmarks, keys: &[String], i: usize, v: f64) -> Option<f64> {
    let (_, g) = bm.group(keys)?;
    let d = g.dists.get(i)?.as_ref()?;
    let p = d.percentile(v);
    Some(if features::catalogue()[i].direction < 0 {
        100.0 - p
    } else {
        p
    })
}

/// How much of an assessment is kept: everything (the as-of state, a firm scored alone), or what the
/// month-ends of the index history keep — PDs, scores, grades, colours, forces and warnings, without reason
/// codes (and the provenance of every fact they cite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Full,
    History,
}

/// Scores one firm. `benchmarks` places it in its industry (from the same run, or a stored earlier one for
/// an incremental recompute); `warnings` are its active warnings.
#[allow(clippy::too_many_arguments)]
pub fn score_firm(
    model: &CreditModel,
    firm: &FirmData,
    t: Day,
    k: Day,
    row: FeatureRow,
    warnings: Vec<Warning>,
    benchmarks: &Benchmarks,
    detail: Detail,
) -> FirmScore {
    let pos = model.feature_positions();
    let values: Vec<Value> = pos
        .iter()
        .map(|&i| row.values[i].map_or(Value::Missing, Value::Num))
        .collect();
    let s = model.card.score_values(&values);
    let reg = firm.registration_at(t, k.max(t));
    let keys = crate::bench::keys(
        reg.map_or("", |r| r.industry.as_str()),
        reg.map_or("", |r| r.size_class.as_str()),
    );
    let cat = features::catalogue();
    // Force sub-scores: the share of the attainable points the firm earns on the force's card features;
    // forces without card features take the mean safe-side percentile of their indicators (50 when missing).
    let rg = ranges(model);
    let mut forces = [0.0; 5];
    for force in Force::ALL {
        let (mut got, mut span) = (0.0, 0.0);
        for (j, c) in s.contributions.iter().enumerate() {
            if cat[pos[j]].force == force {
                got += c.points - rg[j].0;
                span += rg[j].1 - rg[j].0;
            }
        }
        forces[force.index()] = if span > 0.0 {
            (got / span * 100.0).clamp(0.0, 100.0)
        } else {
            let ps: Vec<f64> = (0..features::N)
                .filter(|&i| cat[i].force == force)
                .map(|i| {
                    row.values[i]
                        .and_then(|v| safe_percentile(benchmarks, &keys, i, v))
                        .unwrap_or(50.0)
                })
                .collect();
            ps.iter().sum::<f64>() / ps.len().max(1) as f64
        };
    }
    let group = benchmarks.group(&keys);
    let force_percentiles = std::array::from_fn(|k| {
        group.and_then(|(_, g)| g.dists.get(features::N + k)?.as_ref().map(|d| d.percentile(forces[k])))
    });
    let reasons = if detail == Detail::History {
        Vec::new()
    } else {
        s.reasons(model.config.reasons)
            .into_iter()
            .map(|c| {
                let i = pos[c.feature];
                Reason {
                    indicator: cat[i].id.clone(),
                    name_zh: cat[i].name_zh.clone(),
                    name_en: cat[i].name_en.clone(),
                    value: row.values[i],
                    points_lost: c.points_lost,
                    industry_median: group.and_then(|(_, g)| g.dists.get(i)?.as_ref().map(|d| d.median())),
                    evidence: row.evidence[i].iter().filter_map(|f| firm.provenance(*f)).collect(),
                }
            })
            .collect()
    };
    let colour = crate::warnings::colour_of(&warnings);
    let grade_unadjusted = model.config.grade(s.pd);
    let grade = if colour == Some(Colour::Red) {
        model.config.worse(&grade_unadjusted, &model.config.red_cap)
    } else {
        grade_unadjusted.clone()
    };
    FirmScore {
        uscc: firm.uscc.clone(),
        as_of: data::day_str(t),
        borrower: borrower_at(firm, t, k),
        score: s.points,
        pd: s.pd,
        grade_unadjusted,
        grade,
        colour,
        forces,
        force_percentiles,
        benchmark_group: group.map(|(k, _)| k.to_string()).unwrap_or_default(),
        reasons,
        warnings,
        features: row,
        network: None,
    }
}

/// Adds the warnings of the network pass (rules 45–49) and the network context; colour and grade follow.
pub fn apply_network(model: &CreditModel, s: &mut FirmScore, extra: Vec<Warning>, net: crate::network::NetFirm) {
    s.warnings.extend(extra);
    s.warnings.sort_by_key(|w| w.rule);
    s.colour = crate::warnings::colour_of(&s.warnings);
    s.grade = if s.colour == Some(Colour::Red) {
        model.config.worse(&s.grade_unadjusted, &model.config.red_cap)
    } else {
        s.grade_unadjusted.clone()
    };
    s.network = Some(net);
}
