//! Model validation against the generator's hidden truth (used only here, never to train): out-of-time AUC
//! beside the oracle's, calibration by grade, each warning rule's hit rate, false-alarm rate and lead time, the
//! macro index's lead over realised defaults, and score stability (PSI) between scoring dates.

use crate::credit::{self, ScoreError};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use xinyong_credit::data::{self, Day, FirmData, Month};
use xinyong_credit::run;
use xinyong_credit::score::{self, CreditModel, ScoringConfig};
use xinyong_credit::warnings::{Colour, Rule};
use xinyong_scorecard::metrics;
use xinyong_store::Store;

#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    #[error(transparent)]
    Score(#[from] ScoreError),
    #[error("truth file {0}: {1}")]
    Truth(String, String),
    #[error("not enough data: {0}")]
    Data(String),
}

/// The hidden truth: each firm's true default date and monthly 12-month PD.
pub struct Truth {
    pub default: HashMap<String, Day>,
    pub borrower: HashMap<String, bool>,
    pub pd12: HashMap<(String, Month), f64>,
}

pub fn read_truth(dir: &Path) -> Result<Truth, ValidateError> {
    let err = |p: &Path, e: String| ValidateError::Truth(p.display().to_string(), e);
    let p = dir.join("firms.csv");
    let text = std::fs::read_to_string(&p).map_err(|e| err(&p, e.to_string()))?;
    let mut default = HashMap::new();
    let mut borrower = HashMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        if c.len() < 5 {
            return Err(err(&p, format!("short line {line:?}")));
        }
        borrower.insert(c[0].to_string(), c[2] == "true");
        if let Some(d) = data::day(c[4]) {
            default.insert(c[0].to_string(), d);
        }
    }
    let p = dir.join("pd_monthly.csv");
    let text = std::fs::read_to_string(&p).map_err(|e| err(&p, e.to_string()))?;
    let mut pd12 = HashMap::new();
    for line in text.lines().skip(1) {
        let c: Vec<&str> = line.split(',').collect();
        if c.len() < 4 {
            return Err(err(&p, format!("short line {line:?}")));
        }
        let m = data::month(c[1]).ok_or_else(|| err(&p, format!("month {:?}", c[1])))?;
        let v: f64 = c[3].parse().map_err(|_| err(&p, format!("pd12 {:?}", c[3])))?;
        pd12.insert((c[0].to_string(), m), v);
    }
    Ok(Truth {
        default,
        borrower,
        pd12,
    })
}

#[derive(Debug, Clone, Default)]
pub struct RuleStat {
    pub rule: u32,
    pub name: String,
    pub colour: String,
    /// Firms the rule flags at the validation date.
    pub flagged: usize,
    /// Share of the firms defaulting within 12 months that it flagged at the validation date.
    pub hit_rate: f64,
    /// Share of the firms not defaulting that it flagged.
    pub false_alarm_rate: f64,
    /// Median months between the rule's first month active (in the 24 months before) and the default.
    pub median_lead_months: Option<f64>,
    pub defaulters_ever_flagged: usize,
}

#[derive(Debug, Clone, Default)]
pub struct Report {
    pub snapshot: String,
    pub train_cut: String,
    pub population: usize,
    pub defaults: usize,
    pub auc: f64,
    pub ks: f64,
    pub oracle_auc: f64,
    /// How sure the AUC and its ratio to the oracle's are: a paired bootstrap of the population (model and
    /// oracle AUC on the same resampled firms).
    pub bootstrap: Option<Bootstrap>,
    pub platform_label_auc: Option<f64>,
    /// (grade, firms, mean predicted PD, observed default rate)
    pub by_grade: Vec<(String, usize, f64, f64)>,
    pub rules: Vec<RuleStat>,
    /// (colour, hit rate, false-alarm rate, median lead months)
    pub colours: Vec<(String, f64, f64, Option<f64>)>,
    /// Months by which the district index leads the realised default rate (the lag of best correlation), and
    /// that correlation.
    pub index_lead: Option<(i32, f64)>,
    pub psi: Option<(String, String, f64)>,
    pub model: String,
    pub card_features: usize,
    /// Does the guarantee network predict guarantors' defaults beyond the credit score?
    pub contagion: Option<ContagionCheck>,
    /// Each firm of the population: what the model said, what the oracle said, what happened.
    pub firms: Vec<FirmRow>,
}

/// One firm of the validation population.
#[derive(Debug, Clone, Default)]
pub struct FirmRow {
    pub uscc: String,
    pub pd: f64,
    pub score: f64,
    pub grade: String,
    /// The hidden 12-month PD at the validation month.
    pub oracle_pd: f64,
    /// 1 when the firm truly defaulted within the horizon.
    pub default: u8,
}

impl Report {
    /// The calibration table's total: (firms, mean predicted PD, observed default rate) over all grades,
    /// each grade weighted by its firms; `None` without firms.
    pub fn overall_calibration(&self) -> Option<(usize, f64, f64)> {
        let n: usize = self.by_grade.iter().map(|g| g.1).sum();
        let mean = |f: fn(&(String, usize, f64, f64)) -> f64| {
            self.by_grade.iter().map(|g| g.1 as f64 * f(g)).sum::<f64>() / n as f64
        };
        (n > 0).then(|| (n, mean(|g| g.2), mean(|g| g.3)))
    }
}

/// 95 % percentile intervals of a paired bootstrap (firms resampled with replacement).
#[derive(Debug, Clone, Default)]
pub struct Bootstrap {
    pub reps: usize,
    pub auc: (f64, f64),
    pub oracle_auc: (f64, f64),
    pub ratio: (f64, f64),
    /// Share of the resamples whose ratio of the model's AUC to the oracle's is at least 0.95.
    pub ratio_goal_share: f64,
}

/// Resamples of the validation population; the seed fixes them, so the report is reproducible.
const BOOTSTRAP_REPS: usize = 1000;
const BOOTSTRAP_SEED: u64 = 20151231;

fn bootstrap(pd: &[f64], oracle: &[f64], label: &[u8]) -> Option<Bootstrap> {
    let pairs = metrics::bootstrap_auc_pair(pd, oracle, label, BOOTSTRAP_REPS, BOOTSTRAP_SEED);
    if pairs.is_empty() {
        return None;
    }
    let ci = |mut v: Vec<f64>| {
        v.sort_unstable_by(f64::total_cmp);
        (metrics::quantile_sorted(&v, 0.025), metrics::quantile_sorted(&v, 0.975))
    };
    let ratios: Vec<f64> = pairs.iter().map(|(m, o)| m / o).collect();
    Some(Bootstrap {
        reps: pairs.len(),
        auc: ci(pairs.iter().map(|p| p.0).collect()),
        oracle_auc: ci(pairs.iter().map(|p| p.1).collect()),
        ratio_goal_share: ratios.iter().filter(|&&r| r >= 0.95).count() as f64 / ratios.len() as f64,
        ratio: ci(ratios),
    })
}

/// Among firms of the population that guarantee others at the validation date: AUC of the own PD, of the
/// network PD (own PD and contagion through guarantees, vulnerable-node model) and of the contagion add-on
/// alone, against true defaults in the 12 months after.
#[derive(Debug, Clone, Default)]
pub struct ContagionCheck {
    pub guarantors: usize,
    pub defaults: usize,
    pub auc_own: f64,
    pub auc_network: f64,
    pub auc_addon: f64,
    /// The same over the whole population.
    pub auc_own_all: f64,
    pub auc_network_all: f64,
    /// 5-fold cross-validated AUC among guarantors of a logistic regression on logit(own PD) alone, and on
    /// logit(own PD) and the add-on together: what the add-on adds when its weight is fitted.
    pub cv_auc_own: f64,
    pub cv_auc_with_addon: f64,
}

/// Out-of-fold predictions of a logistic regression on `x` (column-major), 5 folds by position.
fn cv_predictions(x: &[Vec<f64>], y: &[u8]) -> Vec<f64> {
    let n = y.len();
    let mut out = vec![0.0; n];
    for fold in 0..5 {
        let train: Vec<usize> = (0..n).filter(|i| i % 5 != fold).collect();
        let xt: Vec<Vec<f64>> = x.iter().map(|c| train.iter().map(|&i| c[i]).collect()).collect();
        let yt: Vec<f64> = train.iter().map(|&i| y[i] as f64).collect();
        let (b0, b) = xinyong_scorecard::logistic::fit(&xt, &yt, 1e-3, None);
        for i in (0..n).filter(|i| i % 5 == fold) {
            let z = b0 + b.iter().zip(x).map(|(bj, c)| bj * c[i]).sum::<f64>();
            out[i] = 1.0 / (1.0 + (-z).exp());
        }
    }
    out
}

fn median(v: Vec<f64>) -> Option<f64> {
    (!v.is_empty()).then(|| metrics::quantile(&v, 0.5))
}

/// Validates on the snapshot 12 months before the data cut-off: trains on data known then (labels whose outcome
/// windows closed by it), scores the snapshot, and compares with what truly happened in the 12 months after.
pub fn validate(
    store: &dyn Store,
    truth: &Truth,
    cfg: &ScoringConfig,
    rules: &[Rule],
) -> Result<Report, ValidateError> {
    let cutoff = store
        .data_cutoff()
        .map_err(ScoreError::from)?
        .ok_or_else(|| ValidateError::Data("empty store".into()))?;
    let k = credit::parse_day(&cutoff)?;
    let firms = credit::load(store, &cutoff)?.firms;
    let v = data::last_complete_month(k) - cfg.horizon_months;
    let tv = data::month_end(v);
    // Training: snapshots whose outcome windows close by the validation date, labels as known then.
    let model: CreditModel = score::train(&firms, tv, k, cfg).map_err(ScoreError::from)?;
    // The population at the validation date: true borrowers, operating, not yet truly in default.
    let pop: Vec<usize> = (0..firms.len())
        .filter(|&i| {
            let f = &firms[i];
            truth.borrower.get(&f.uscc).copied().unwrap_or(false)
                && run::in_scope(f, tv, k)
                && truth.pd12.contains_key(&(f.uscc.clone(), v))
                && truth.default.get(&f.uscc).is_none_or(|d| *d > tv)
        })
        .collect();
    let horizon_end = data::month_end(v + cfg.horizon_months);
    let label: Vec<u8> = pop
        .iter()
        .map(|&i| truth.default.get(&firms[i].uscc).is_some_and(|d| *d <= horizon_end) as u8)
        .collect();
    let defaults = label.iter().filter(|&&y| y == 1).count();
    if defaults == 0 {
        return Err(ValidateError::Data(
            "no true defaults in the 12 months after the validation date".into(),
        ));
    }
    // Scores at the validation date as known on it (strict as-of) would miss backfilled history; use the
    // cut-off's knowledge of facts valid by the date, as training does.
    let (scores, _, net) = run::assess_network(&firms, tv, k, &model, rules);
    let pd: Vec<f64> = pop.iter().map(|&i| scores[i].pd).collect();
    let oracle: Vec<f64> = pop
        .iter()
        .map(|&i| truth.pd12.get(&(firms[i].uscc.clone(), v)).copied().unwrap_or(0.0))
        .collect();
    let mut rep = Report {
        snapshot: data::month_str(v),
        train_cut: data::day_str(tv),
        population: pop.len(),
        defaults,
        auc: metrics::auc(&pd, &label),
        ks: metrics::ks(&pd, &label),
        oracle_auc: metrics::auc(&oracle, &label),
        bootstrap: bootstrap(&pd, &oracle, &label),
        model: model.version.clone(),
        card_features: model.card.features.len(),
        firms: pop
            .iter()
            .zip(&oracle)
            .zip(&label)
            .map(|((&i, &oracle_pd), &default)| FirmRow {
                uscc: firms[i].uscc.clone(),
                pd: scores[i].pd,
                score: scores[i].score,
                grade: scores[i].grade.clone(),
                oracle_pd,
                default,
            })
            .collect(),
        ..Default::default()
    };
    // The guarantee network beyond the credit score.
    {
        let npd = |i: usize| scores[i].network.as_ref().map_or(scores[i].pd, |n| n.pd_network);
        let add = |i: usize| scores[i].network.as_ref().map_or(0.0, |n| n.contagion);
        let guarantor = |i: usize| {
            net.graph
                .find(&firms[i].uscc)
                .is_some_and(|v| !net.graph.borrowers(v).is_empty())
        };
        let js: Vec<usize> = (0..pop.len()).filter(|&j| guarantor(pop[j])).collect();
        let y: Vec<u8> = js.iter().map(|&j| label[j]).collect();
        if y.contains(&1) && y.contains(&0) {
            let own: Vec<f64> = js.iter().map(|&j| pd[j]).collect();
            let nw: Vec<f64> = js.iter().map(|&j| npd(pop[j])).collect();
            let ad: Vec<f64> = js.iter().map(|&j| add(pop[j])).collect();
            let all_nw: Vec<f64> = pop.iter().map(|&i| npd(i)).collect();
            let logit: Vec<f64> = own
                .iter()
                .map(|p| {
                    let p = p.clamp(1e-6, 1.0 - 1e-6);
                    (p / (1.0 - p)).ln()
                })
                .collect();
            let cv_own = cv_predictions(std::slice::from_ref(&logit), &y);
            let cv_both = cv_predictions(&[logit.clone(), ad.clone()], &y);
            rep.contagion = Some(ContagionCheck {
                guarantors: js.len(),
                defaults: y.iter().filter(|&&x| x == 1).count(),
                auc_own: metrics::auc(&own, &y),
                auc_network: metrics::auc(&nw, &y),
                auc_addon: metrics::auc(&ad, &y),
                auc_own_all: rep.auc,
                auc_network_all: metrics::auc(&all_nw, &label),
                cv_auc_own: metrics::auc(&cv_own, &y),
                cv_auc_with_addon: metrics::auc(&cv_both, &y),
            });
        }
    }
    // The platform's own label on the same population (90+ days overdue within 12 months, known by cut-off).
    let plat: Vec<u8> = pop
        .iter()
        .map(|&i| {
            score::default_month(&firms[i], k, cfg.default_overdue_days)
                .is_some_and(|(m, _)| m > v && m <= v + cfg.horizon_months) as u8
        })
        .collect();
    if plat.contains(&1) {
        rep.platform_label_auc = Some(metrics::auc(&pd, &plat));
    }
    // Calibration by grade.
    let mut g: BTreeMap<usize, (String, usize, f64, usize)> = BTreeMap::new();
    for (j, &i) in pop.iter().enumerate() {
        let grade = scores[i].grade_unadjusted.clone();
        let pos = cfg.grades.iter().position(|x| x.grade == grade).unwrap_or(0);
        let e = g.entry(pos).or_insert((grade, 0, 0.0, 0));
        e.1 += 1;
        e.2 += pd[j];
        e.3 += label[j] as usize;
    }
    rep.by_grade = g
        .into_values()
        .map(|(grade, n, p, d)| (grade, n, p / n as f64, d as f64 / n as f64))
        .collect();
    // Warnings: flagged at the validation date; lead times from month-end evaluations over 24 months.
    let months: Vec<Month> = ((v - 23)..=(v + cfg.horizon_months)).collect();
    let mut active: Vec<Vec<Vec<(u32, Colour)>>> = Vec::new(); // [month][pop j]
    let popf: Vec<FirmData> = pop.iter().map(|&i| firms[i].clone()).collect();
    for &m in &months {
        // Every firm is assessed (the guarantee network needs them all); the population's warnings are kept.
        let (sc, _) = run::assess(&firms, data::month_end(m), k, &model, rules);
        active.push(
            pop.iter()
                .map(|&i| sc[i].warnings.iter().map(|w| (w.rule, w.colour)).collect())
                .collect(),
        );
    }
    let at_v = months.iter().position(|&m| m == v).unwrap_or(0);
    let (nd, ng) = (defaults as f64, (pop.len() - defaults) as f64);
    type Matcher<'m> = &'m dyn Fn(&[(u32, Colour)]) -> bool;
    let stat = |matches: Matcher| -> (usize, f64, f64, Option<f64>, usize) {
        let mut flagged = 0;
        let (mut hit, mut fa) = (0usize, 0usize);
        let mut leads = Vec::new();
        for j in 0..pop.len() {
            let on = matches(&active[at_v][j]);
            flagged += on as usize;
            if label[j] == 1 {
                hit += on as usize;
            } else {
                fa += on as usize;
            }
            if let Some(d) = truth.default.get(&popf[j].uscc) {
                if label[j] == 1 {
                    let dm = data::month_of_day(*d);
                    if let Some(first) = months
                        .iter()
                        .enumerate()
                        .filter(|(_, &m)| m <= dm && m > dm - 24)
                        .find(|(x, _)| matches(&active[*x][j]))
                        .map(|(_, &m)| m)
                    {
                        leads.push((dm - first) as f64);
                    }
                }
            }
        }
        let ever = leads.len();
        (flagged, hit as f64 / nd, fa as f64 / ng.max(1.0), median(leads), ever)
    };
    for r in rules {
        let (flagged, hit, fa, lead, ever) = stat(&|ws: &[(u32, Colour)]| ws.iter().any(|w| w.0 == r.id));
        rep.rules.push(RuleStat {
            rule: r.id,
            name: r.name_en.clone(),
            colour: r.colour.key().into(),
            flagged,
            hit_rate: hit,
            false_alarm_rate: fa,
            median_lead_months: lead,
            defaulters_ever_flagged: ever,
        });
    }
    for c in [Colour::Red, Colour::Yellow, Colour::Blue] {
        // "yellow" = yellow or worse, "blue" = any warning.
        let (_, hit, fa, lead, _) = stat(&|ws: &[(u32, Colour)]| ws.iter().any(|w| w.1 >= c));
        rep.colours.push((format!("{} or worse", c.key()), hit, fa, lead));
    }
    // The index's lead: district index from the monthly PDs vs the realised true default rate.
    let out = run::recompute(&firms, k, &model, rules);
    let idx: BTreeMap<String, f64> = out
        .index
        .iter()
        .filter(|p| p.dimension == "district")
        .map(|p| (p.month.clone(), p.value))
        .collect();
    let mut realised: BTreeMap<String, f64> = BTreeMap::new();
    for m in idx.keys() {
        let mm = data::month(m).unwrap_or(0);
        let n = truth.default.values().filter(|d| data::month_of_day(**d) == mm).count();
        realised.insert(m.clone(), n as f64);
    }
    let xs: Vec<f64> = idx.values().copied().collect();
    let ys: Vec<f64> = realised.values().copied().collect();
    let mut best: Option<(i32, f64)> = None;
    for lag in 0..=6i32 {
        let n = xs.len().saturating_sub(lag as usize);
        if n < 6 {
            break;
        }
        let c = corr(&xs[..n], &ys[lag as usize..]);
        if best.is_none_or(|b| c > b.1) {
            best = Some((lag, c));
        }
    }
    rep.index_lead = best;
    // Stability: score distributions at the validation date and at the cut-off.
    let now: Vec<f64> = out.scores.iter().map(|s| s.score).collect();
    let then: Vec<f64> = scores
        .iter()
        .zip(&firms)
        .filter(|(_, f)| run::in_scope(f, tv, k))
        .map(|(s, _)| s.score)
        .collect();
    rep.psi = Some((data::month_str(v), out.as_of.clone(), metrics::psi(&then, &now, 10)));
    Ok(rep)
}

fn corr(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let ma = a.iter().sum::<f64>() / n;
    let mb = b.iter().sum::<f64>() / n;
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa <= 0.0 || sbb <= 0.0 {
        0.0
    } else {
        sab / (saa * sbb).sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_calibration_total_weights_each_grade_by_its_firms() {
        let mut r = Report::default();
        assert_eq!(r.overall_calibration(), None);
        r.by_grade = vec![("A".into(), 300, 0.01, 0.02), ("B".into(), 100, 0.05, 0.02)];
        let (n, p, o) = r.overall_calibration().unwrap();
        assert_eq!(n, 400);
        assert!((p - 0.02).abs() < 1e-12 && (o - 0.02).abs() < 1e-12, "{p} {o}");
    }
}
