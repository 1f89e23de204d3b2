//! The fitted card: features, bins, points; scoring, reason codes, JSON.

use crate::config::{FitConfig, Method, Scaling};
use crate::table::{parse_number, Table, Value};
use crate::Error;
use serde::{Deserialize, Serialize};

/// The model file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Whether a feature's bins hold value ranges, category sets, or the cells of two columns' bins.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FeatureKind {
    Numeric,
    Categorical,
    /// An interaction of two columns (boosted card): its bins are the cells of `axes[0]`'s bins × `axes[1]`'s.
    Pair,
}

/// What a bin holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BinKind {
    /// `lo <= x < hi`; the first range starts at `-inf` and the last one ends at `+inf` and holds `+inf` itself.
    Range {
        #[serde(with = "inf_f64")]
        lo: f64,
        #[serde(with = "inf_f64")]
        hi: f64,
    },
    /// These categories (exact match on the trimmed text).
    Categories(Vec<String>),
    /// Exactly this special value.
    Special(#[serde(with = "inf_f64")] f64),
    /// Missing cells (and, for numeric features, text that is no number).
    Missing,
    /// Categories not listed in any other bin: the small ones at fit time, and any new one at scoring time.
    Other,
    /// A cell of a pair feature: bin `a` of the first axis and bin `b` of the second (index `a·len(b bins) + b`).
    Cell { a: usize, b: usize },
}

/// One bin of a feature with its training counts, WoE and points.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bin {
    pub label: String,
    pub kind: BinKind,
    /// Training rows in the bin.
    pub count: u64,
    /// Training bads in the bin.
    pub bads: u64,
    /// Training WoE, `ln(%good / %bad)` (0.5 added to both counts when either is 0; 0 for an empty bin).
    pub woe: f64,
    /// The bin's contribution to the linear predictor `ln(odds_good)`: `coefficient·woe` for the WoE card,
    /// the shape function's value for the boosted card.
    pub logit: f64,
    /// `Factor·logit + (Offset + Factor·intercept) / number of features`.
    pub points: f64,
}

/// One feature of the card.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    /// The column name.
    pub name: String,
    pub kind: FeatureKind,
    /// Information value on the WoE card's (coarse) bins of this column.
    pub iv: f64,
    /// Numeric: the value ranges in order, then special values, then missing. Categorical: category groups,
    /// then other, then missing. Every feature has a missing bin; every categorical one an other bin.
    pub bins: Vec<Bin>,
    /// Logistic coefficient on the WoE (1 for the boosted card).
    pub coefficient: f64,
    /// Pair features only: the two columns, each with its own (coarse) bins; their points are all zero.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axes: Vec<Feature>,
}

/// How the PD is obtained from the model's log-odds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Calibration {
    /// `pd = σ(log_odds_bad)`.
    None,
    /// `pd = σ(a + b·log_odds_bad)`, fitted on out-of-fold log-odds.
    Platt { a: f64, b: f64 },
}

impl Calibration {
    pub fn pd(&self, log_odds_bad: f64) -> f64 {
        match *self {
            Calibration::None => sigmoid(log_odds_bad),
            Calibration::Platt { a, b } => sigmoid(a + b * log_odds_bad),
        }
    }
}

pub(crate) fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// A feature left out of the card, and why.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dropped {
    pub name: String,
    pub iv: f64,
    pub reason: String,
}

/// What the card was fitted on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingInfo {
    pub rows: u64,
    pub bads: u64,
    /// AUC of the points on the training rows (bad = low points).
    pub auc: f64,
    pub ks: f64,
    pub config: FitConfig,
    pub dropped: Vec<Dropped>,
    /// Boosted card: the rounds each bag kept (early stopping).
    pub rounds: Vec<usize>,
    /// Deciles of the training points (9 inner edges) for a population stability index at evaluation.
    pub score_edges: Vec<f64>,
}

/// A fitted scorecard. Serialised as JSON (`to_json`, `from_json`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// The file format ([`FORMAT_VERSION`]).
    pub version: u32,
    pub method: Method,
    pub features: Vec<Feature>,
    /// The linear predictor's constant, on `ln(odds_good)`.
    pub intercept: f64,
    pub scaling: Scaling,
    pub calibration: Calibration,
    pub training: TrainingInfo,
}

/// One feature's part of a score.
#[derive(Clone, Debug, PartialEq)]
pub struct Contribution {
    /// Index into `Model::features`.
    pub feature: usize,
    /// Index into that feature's bins.
    pub bin: usize,
    pub points: f64,
    /// Points below the feature's best bin (among bins with training rows): the reason-code ranking.
    pub points_lost: f64,
}

/// The score of one row.
#[derive(Clone, Debug, PartialEq)]
pub struct Scored {
    /// Total points, the sum of the contributions' points; higher = safer.
    pub points: f64,
    /// `−(intercept + Σ bin logits)`: the model's log-odds of bad.
    pub log_odds_bad: f64,
    /// Calibrated probability of bad.
    pub pd: f64,
    /// One per feature, in `Model::features` order.
    pub contributions: Vec<Contribution>,
}

impl Scored {
    /// The `n` contributions that lose the most points against their feature's best bin (ties: feature order);
    /// contributions losing nothing are left out.
    pub fn reasons(&self, n: usize) -> Vec<&Contribution> {
        let mut v: Vec<&Contribution> = self.contributions.iter().filter(|c| c.points_lost > 0.0).collect();
        v.sort_by(|a, b| b.points_lost.total_cmp(&a.points_lost).then(a.feature.cmp(&b.feature)));
        v.truncate(n);
        v
    }
}

impl Feature {
    fn missing_bin(&self) -> usize {
        self.bins
            .iter()
            .position(|b| b.kind == BinKind::Missing)
            .unwrap_or(self.bins.len() - 1)
    }

    /// The columns this feature reads: its own name, or a pair's two columns.
    pub fn inputs(&self) -> Vec<&str> {
        if self.kind == FeatureKind::Pair {
            self.axes.iter().map(|a| a.name.as_str()).collect()
        } else {
            vec![self.name.as_str()]
        }
    }

    /// The bin of a row given as a lookup from column name to value.
    pub fn bin_of<'a>(&self, row: &dyn Fn(&str) -> Value<'a>) -> usize {
        if self.kind == FeatureKind::Pair {
            let (a, b) = (&self.axes[0], &self.axes[1]);
            a.bin_index(row(&a.name)) * b.bins.len() + b.bin_index(row(&b.name))
        } else {
            self.bin_index(row(&self.name))
        }
    }

    /// The bin a value falls in (for a pair feature: a missing first axis and this value on the second).
    pub fn bin_index(&self, v: Value) -> usize {
        match self.kind {
            FeatureKind::Pair => {
                let (a, b) = (&self.axes[0], &self.axes[1]);
                a.bin_index(Value::Missing) * b.bins.len() + b.bin_index(v)
            }
            FeatureKind::Numeric => match v {
                Value::Num(x) => self.numeric_bin(x),
                Value::Cat(s) => match parse_number(s) {
                    Ok(Some(x)) => self.numeric_bin(x),
                    _ => self.missing_bin(),
                },
                Value::Missing => self.missing_bin(),
            },
            FeatureKind::Categorical => match v {
                Value::Cat(s) => self.category_bin(s.trim()),
                Value::Num(x) if x.is_nan() => self.missing_bin(),
                Value::Num(x) => self.category_bin(&format!("{x}")),
                Value::Missing => self.missing_bin(),
            },
        }
    }

    fn numeric_bin(&self, x: f64) -> usize {
        if x.is_nan() {
            return self.missing_bin();
        }
        if let Some(i) = self.bins.iter().position(|b| b.kind == BinKind::Special(x)) {
            return i;
        }
        let mut last_range = None;
        for (i, b) in self.bins.iter().enumerate() {
            if let BinKind::Range { lo, hi } = b.kind {
                if x >= lo && x < hi {
                    return i;
                }
                last_range = Some(i);
            }
        }
        // +inf (hi of the last range is +inf), or a value outside hand-edited ranges: nearest end.
        match (
            self.bins.iter().position(|b| matches!(b.kind, BinKind::Range { .. })),
            last_range,
        ) {
            (Some(first), Some(last)) => match self.bins[first].kind {
                BinKind::Range { lo, .. } if x < lo => first,
                _ => last,
            },
            _ => self.missing_bin(),
        }
    }

    fn category_bin(&self, s: &str) -> usize {
        let mut other = None;
        for (i, b) in self.bins.iter().enumerate() {
            match &b.kind {
                BinKind::Categories(c) if c.iter().any(|c| c == s) => return i,
                BinKind::Other => other = Some(i),
                _ => {}
            }
        }
        other.unwrap_or_else(|| self.missing_bin())
    }

    /// The best points among bins with training rows (the reason-code reference).
    pub fn best_points(&self) -> f64 {
        self.bins
            .iter()
            .filter(|b| b.count > 0)
            .map(|b| b.points)
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

impl Model {
    /// The columns the card reads, each once, in the order `score_values` expects: the features' names, with a
    /// pair feature contributing its two columns (usually features of their own already).
    pub fn feature_names(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for f in &self.features {
            for name in f.inputs() {
                if !out.contains(&name) {
                    out.push(name);
                }
            }
        }
        out
    }

    /// Scores one row given as a lookup from column name to value (called once or twice per feature).
    pub fn score<'a>(&self, row: &dyn Fn(&str) -> Value<'a>) -> Scored {
        let bins: Vec<usize> = self.features.iter().map(|f| f.bin_of(row)).collect();
        self.score_bins(&bins)
    }

    /// Scores one row given as values aligned with [`Model::feature_names`] (absent trailing values are missing).
    pub fn score_values(&self, values: &[Value]) -> Scored {
        let names = self.feature_names();
        let row = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .and_then(|i| values.get(i).copied())
                .unwrap_or(Value::Missing)
        };
        self.score(&row)
    }

    /// Scores every row of a table (columns found by name; other columns ignored). Gives the same points, bit
    /// for bit, as scoring each row alone.
    pub fn score_table(&self, table: &Table) -> Result<Vec<Scored>, Error> {
        let n = table.check()?;
        let col = |name: &str| {
            table.column(name).ok_or_else(|| Error::MissingColumn {
                column: name.to_string(),
                available: table.names.join(", "),
            })
        };
        // Per feature: its column, or a pair's two columns.
        let cols = self
            .features
            .iter()
            .map(|f| f.inputs().into_iter().map(col).collect::<Result<Vec<_>, _>>())
            .collect::<Result<Vec<_>, _>>()?;
        let mut bins = vec![0usize; self.features.len()];
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            for (j, f) in self.features.iter().enumerate() {
                bins[j] = match f.kind {
                    FeatureKind::Pair => {
                        let (a, b) = (&f.axes[0], &f.axes[1]);
                        a.bin_index(cols[j][0].value(i)) * b.bins.len() + b.bin_index(cols[j][1].value(i))
                    }
                    _ => f.bin_index(cols[j][0].value(i)),
                };
            }
            out.push(self.score_bins(&bins));
        }
        Ok(out)
    }

    /// The score for given bin indices, one per feature.
    pub fn score_bins(&self, bins: &[usize]) -> Scored {
        let mut points = 0.0;
        let mut logit = self.intercept;
        let mut contributions = Vec::with_capacity(self.features.len());
        for (j, (f, &b)) in self.features.iter().zip(bins).enumerate() {
            let bin = &f.bins[b];
            points += bin.points;
            logit += bin.logit;
            contributions.push(Contribution {
                feature: j,
                bin: b,
                points: bin.points,
                points_lost: (f.best_points() - bin.points).max(0.0),
            });
        }
        let log_odds_bad = -logit;
        Scored {
            points,
            log_odds_bad,
            pd: self.calibration.pd(log_odds_bad),
            contributions,
        }
    }

    /// The points of a score with every feature in a bin of logit 0 (`Offset + Factor·intercept`).
    pub fn base_points(&self) -> f64 {
        self.scaling.points(self.intercept)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a model always serialises")
    }

    pub fn from_json(s: &str) -> Result<Model, Error> {
        #[derive(Deserialize)]
        struct Head {
            version: u32,
        }
        let head: Head = serde_json::from_str(s).map_err(|e| Error::Json(e.to_string()))?;
        if head.version != FORMAT_VERSION {
            return Err(Error::Version {
                found: head.version,
                supported: FORMAT_VERSION,
            });
        }
        let m: Model = serde_json::from_str(s).map_err(|e| Error::Json(e.to_string()))?;
        for f in &m.features {
            let ok = match f.kind {
                FeatureKind::Pair => {
                    f.axes.len() == 2
                        && f.axes.iter().all(|a| !a.bins.is_empty() && a.kind != FeatureKind::Pair)
                        && f.bins.len() == f.axes[0].bins.len() * f.axes[1].bins.len()
                }
                _ => !f.bins.is_empty(),
            };
            if !ok {
                return Err(Error::Json(format!("feature `{}` has inconsistent bins", f.name)));
            }
        }
        Ok(m)
    }
}

/// `±inf` as the strings `"-inf"`/`"inf"` (JSON has no infinity); finite values as numbers.
mod inf_f64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else if x.is_nan() {
            s.serialize_str("nan")
        } else if *x > 0.0 {
            s.serialize_str("inf")
        } else {
            s.serialize_str("-inf")
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum F {
            N(f64),
            S(String),
        }
        match F::deserialize(d)? {
            F::N(x) => Ok(x),
            F::S(s) => s
                .parse::<f64>()
                .map_err(|_| serde::de::Error::custom(format!("`{s}` is not a number"))),
        }
    }
}
