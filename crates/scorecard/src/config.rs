//! The fit configuration. Every field has a default, so a config file names only what it changes.

use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How the card is fitted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The standard card: coarse monotone bins, WoE encoding, logistic regression.
    WoeLogistic,
    /// Fine bins, cyclic gradient boosting of one shape function per feature (EBM-style); still a table of
    /// points per bin per feature.
    #[default]
    BoostedAdditive,
}

/// A monotonicity requirement on the bad rate as the value increases.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Monotonic {
    /// Whichever of ascending and descending gives the larger IV.
    #[default]
    Auto,
    /// The bad rate rises (points fall) as the value rises.
    Ascending,
    /// The bad rate falls (points rise) as the value rises.
    Descending,
    /// No constraint.
    Off,
}

/// Points scaling: `Score = Offset + Factor·ln(odds_good)`, `Factor = pdo / ln 2`,
/// `Offset = points0 − Factor·ln(odds0)`; `odds0` is good:bad.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scaling {
    pub points0: f64,
    pub odds0: f64,
    pub pdo: f64,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            points0: 600.0,
            odds0: 50.0,
            pdo: 20.0,
        }
    }
}

impl Scaling {
    pub fn factor(&self) -> f64 {
        self.pdo / std::f64::consts::LN_2
    }

    pub fn offset(&self) -> f64 {
        self.points0 - self.factor() * self.odds0.ln()
    }

    /// The score for a log-odds of good.
    pub fn points(&self, ln_odds_good: f64) -> f64 {
        self.offset() + self.factor() * ln_odds_good
    }
}

/// How the PD is calibrated after the fit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// `none` for the WoE card (a logistic regression is calibrated on its training data), `platt` for the
    /// boosted card (its in-sample log-odds are over-confident).
    #[default]
    Auto,
    /// The PD is the model's own logistic transform.
    None,
    /// Platt scaling on out-of-fold log-odds: `pd = σ(a + b·log_odds_bad)`.
    Platt,
}

/// Settings of the boosted additive method.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoostConfig {
    /// Quantile bins per numeric feature (plus missing and special-value bins).
    pub bins: usize,
    pub learning_rate: f64,
    pub max_rounds: usize,
    /// Stop a bag when its held-out log-loss has not improved for this many rounds.
    pub patience: usize,
    /// Cross-fitted bags: bag k holds out fold k (of `bags`) for early stopping; the card is their average.
    pub bags: usize,
    /// Leaves of the one-feature tree fitted to the ordered bins in each step.
    pub max_leaves: usize,
    /// Rows each leaf must hold.
    pub min_leaf_count: usize,
    /// Added to the Hessian sum of every leaf (Newton step regularisation).
    pub l2: f64,
    /// A category needs this many training rows for a bin of its own; the others share "other".
    pub min_category_count: usize,
    /// Worker threads for the bags, the columns' coarse binning, and the WoE card and its calibration folds
    /// (0 = all cores). The model does not depend on it.
    pub threads: usize,
    /// The shape constraint of numeric features not named in `monotonic_by_feature`: `off` (none), `auto` (the
    /// WoE card's direction), `ascending` or `descending`.
    pub monotonic: Monotonic,
    /// Start from the WoE card (its bins refine into the fine bins, its logits are the starting shapes) and boost
    /// corrections on top; otherwise (the default) start from the training bad rate. The WoE card is fitted on all
    /// rows, so the bags' early stopping then validates on rows the start has seen.
    pub start_from_woe: bool,
    /// Pair features (two columns' coarse bins crossed) boosted after the mains: the best by FAST gain among the
    /// 40 features of highest IV; 0 = none.
    pub interactions: usize,
}

impl BoostConfig {
    /// The threads to run on: `threads`, or all cores for 0.
    pub fn worker_threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            t => t,
        }
        .max(1)
    }
}

impl Default for BoostConfig {
    fn default() -> Self {
        BoostConfig {
            bins: 64,
            learning_rate: 0.05,
            max_rounds: 2000,
            patience: 50,
            bags: 6,
            max_leaves: 2,
            min_leaf_count: 20,
            l2: 1.0,
            min_category_count: 20,
            threads: 0,
            monotonic: Monotonic::Off,
            start_from_woe: false,
            interactions: 10,
        }
    }
}

/// Everything `fit` takes besides the data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FitConfig {
    pub method: Method,
    /// WoE card: at most this many value bins per feature (missing, special and "other" bins not counted).
    pub max_bins: usize,
    /// WoE card: quantile pre-bins before merging.
    pub prebins: usize,
    /// WoE card: every value bin holds at least this share of the rows; categories below it go to "other".
    pub min_bin_share: f64,
    /// WoE card: the event-rate trend of numeric bins.
    pub monotonic: Monotonic,
    /// Per-column monotonic requirement: overrides `monotonic` for the WoE card and `boost.monotonic` for the
    /// boosted card (isotonic pooling of the shape function after every step; `auto` takes the WoE card's
    /// direction).
    pub monotonic_by_feature: BTreeMap<String, Monotonic>,
    /// User-fixed split points per column, used verbatim (bins `[s_i, s_{i+1})`).
    pub fixed_splits: BTreeMap<String, Vec<f64>>,
    /// Values that get a bin of their own per column (e.g. -999 for "not applicable").
    pub special_values: BTreeMap<String, Vec<f64>>,
    /// Columns never used as features.
    pub exclude: Vec<String>,
    /// Features need at least this IV (measured on the WoE card's bins).
    pub iv_min: f64,
    /// Keep at most this many features (highest IV first).
    pub max_features: Option<usize>,
    /// WoE card: L2 penalty `½·l2·Σβ²` on the logistic coefficients (not the intercept).
    pub l2: f64,
    /// WoE card: drop features whose coefficient is not positive (wrong sign after WoE encoding) and refit.
    pub drop_wrong_sign: bool,
    pub scaling: Scaling,
    pub calibration: CalibrationMethod,
    /// Seeds the fold assignment of cross-fitted bags and calibration.
    pub seed: u64,
    pub boost: BoostConfig,
}

impl Default for FitConfig {
    fn default() -> Self {
        FitConfig {
            method: Method::default(),
            max_bins: 8,
            prebins: 20,
            min_bin_share: 0.05,
            monotonic: Monotonic::Auto,
            monotonic_by_feature: BTreeMap::new(),
            fixed_splits: BTreeMap::new(),
            special_values: BTreeMap::new(),
            exclude: Vec::new(),
            iv_min: 0.02,
            max_features: None,
            l2: 1.0,
            drop_wrong_sign: true,
            scaling: Scaling::default(),
            calibration: CalibrationMethod::Auto,
            seed: 0,
            boost: BoostConfig::default(),
        }
    }
}

impl FitConfig {
    /// The standard WoE + logistic card with default settings.
    pub fn woe() -> Self {
        FitConfig {
            method: Method::WoeLogistic,
            ..FitConfig::default()
        }
    }

    /// Reads a config from JSON (text starting with `{`) or TOML. Fields not given keep their defaults.
    pub fn parse(text: &str) -> Result<FitConfig, Error> {
        if text.trim_start().starts_with('{') {
            serde_json::from_str(text).map_err(|e| Error::Config(format!("JSON: {e}")))
        } else {
            toml::from_str(text).map_err(|e| Error::Config(format!("TOML: {e}")))
        }
    }

    pub(crate) fn check(&self) -> Result<(), Error> {
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if self.max_bins < 1 || self.prebins < 1 {
            return bad("max_bins and prebins must be at least 1");
        }
        if !(0.0..0.5).contains(&self.min_bin_share) {
            return bad("min_bin_share must be in [0, 0.5)");
        }
        if !(self.l2 >= 0.0 && self.boost.l2 >= 0.0) {
            return bad("l2 must be non-negative");
        }
        if !(self.scaling.pdo > 0.0 && self.scaling.odds0 > 0.0 && self.scaling.points0.is_finite()) {
            return bad("scaling needs pdo > 0, odds0 > 0 and a finite points0");
        }
        let b = &self.boost;
        if b.bins < 1 || b.bags < 2 || b.max_leaves < 1 || b.max_rounds < 1 {
            return bad("boost needs bins >= 1, bags >= 2, max_leaves >= 1, max_rounds >= 1");
        }
        if !(b.learning_rate > 0.0 && b.learning_rate <= 1.0) {
            return bad("boost.learning_rate must be in (0, 1]");
        }
        for (name, s) in &self.fixed_splits {
            if s.iter().any(|x| x.is_nan()) {
                return Err(Error::Config(format!("fixed_splits for `{name}` holds NaN")));
            }
        }
        Ok(())
    }
}
