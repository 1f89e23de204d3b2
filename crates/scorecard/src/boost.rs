//! The boosted additive card (EBM-style): fine bins per feature, then many rounds of cyclic gradient boosting in
//! which each step fits one feature's small tree over its ordered bins (own Newton steps for missing, special and
//! category bins) on the log-odds of bad. The sum of a feature's steps is its shape function: one value per bin,
//! so the result is still a table of points per bin. Bags are cross-fitted: bag k holds out fold k for early
//! stopping, the card is the bags' average, and the held-out log-odds feed the Platt calibration.

use crate::binning::{categorical_bins, category_cells, distinct, fill_stats, numeric_bins, numeric_values};
use crate::binning::{fmt_num, quantile_groups, woe_iv, Cell, Totals};
use crate::config::{FitConfig, Monotonic};
use crate::model::{sigmoid, Bin, BinKind, Feature, FeatureKind};
use crate::table::{Column, Value};

/// One feature on fine bins, with each training row's bin.
pub(crate) struct Fine {
    pub feature: Feature,
    codes: Vec<u32>,
    /// Bins `0..ordered` are value ranges in order; the others stand alone.
    ordered: usize,
    /// `Some(true)`: the shape (log-odds of bad) must not fall over the ordered bins; `Some(false)`: not rise.
    rising: Option<bool>,
    /// The starting shape (log-odds of bad per bin): the WoE card's logits, or zeros.
    start: Vec<f64>,
    /// The coarse bins (the WoE card's), as an axis of pair features, and each row's coarse bin.
    axis: Feature,
    axis_codes: Vec<u32>,
}

/// The fine bins of one column. They refine the coarse (WoE card) bins: every coarse split is a fine split and
/// every category with a coarse bin of its own has a fine bin, so `coarse`'s logits (zero when the feature is
/// not in the WoE card) give the starting shape.
pub(crate) fn fine_feature(name: &str, col: &Column, target: &[u8], cfg: &FitConfig, coarse: &Feature) -> Fine {
    let t = Totals::of(target);
    let bins = match col {
        Column::Numeric(v) => {
            let specials: &[f64] = cfg.special_values.get(name).map_or(&[], |s| s.as_slice());
            let mut splits = match cfg.fixed_splits.get(name) {
                Some(f) => f.clone(),
                None => quantile_groups(&distinct(numeric_values(v, target, specials)), cfg.boost.bins).0,
            };
            for b in &coarse.bins {
                if let BinKind::Range { lo, .. } = b.kind {
                    if lo > f64::NEG_INFINITY {
                        splits.push(lo);
                    }
                }
            }
            splits.sort_by(f64::total_cmp);
            splits.dedup();
            numeric_bins(&splits, specials)
        }
        Column::Categorical(v) => {
            let in_coarse = |k: &str| {
                coarse
                    .bins
                    .iter()
                    .any(|b| matches!(&b.kind, BinKind::Categories(c) if c.iter().any(|c| c == k)))
            };
            let groups = category_cells(v, target)
                .into_iter()
                .filter(|(k, c)| c.count >= cfg.boost.min_category_count as u64 || in_coarse(k))
                .map(|(k, _)| vec![k])
                .collect();
            categorical_bins(groups)
        }
    };
    let mut feature = Feature {
        name: name.to_string(),
        kind: coarse.kind,
        iv: 0.0,
        bins,
        coefficient: 1.0,
        axes: Vec::new(),
    };
    let (codes, _) = fill_stats(&mut feature, col, target, t);
    feature.iv = coarse.iv;
    let ordered = feature
        .bins
        .iter()
        .take_while(|b| matches!(b.kind, BinKind::Range { .. }))
        .count();
    let rising = if feature.kind == FeatureKind::Numeric {
        match cfg.monotonic_by_feature.get(name).unwrap_or(&cfg.boost.monotonic) {
            Monotonic::Ascending => Some(true),
            Monotonic::Descending => Some(false),
            Monotonic::Auto => {
                // The coarse card's direction: WoE (log-odds of good) falling = bad rate rising.
                let w: Vec<f64> = coarse
                    .bins
                    .iter()
                    .filter(|b| matches!(b.kind, BinKind::Range { .. }) && b.count > 0)
                    .map(|b| b.woe)
                    .collect();
                Some(w.first().zip(w.last()).is_none_or(|(a, b)| a >= b))
            }
            Monotonic::Off => None,
        }
    } else {
        None
    };
    let start = feature
        .bins
        .iter()
        .map(|b| {
            let v = match &b.kind {
                BinKind::Range { lo, .. } => Value::Num(*lo),
                BinKind::Special(x) => Value::Num(*x),
                BinKind::Categories(c) => Value::Cat(&c[0]),
                BinKind::Missing => Value::Missing,
                BinKind::Other | BinKind::Cell { .. } => Value::Cat("\u{0}other"),
            };
            -coarse.bins[coarse.bin_index(v)].logit
        })
        .collect();
    let mut axis = coarse.clone();
    axis.coefficient = 0.0;
    for b in &mut axis.bins {
        b.logit = 0.0;
        b.points = 0.0;
    }
    let axis_codes = (0..target.len()).map(|i| axis.bin_index(col.value(i)) as u32).collect();
    Fine {
        feature,
        codes,
        ordered,
        rising,
        start,
        axis,
        axis_codes,
    }
}

/// A boosted term: a main effect on a feature's fine bins, or a pair on two features' coarse bins.
enum Term<'a> {
    Main(&'a Fine),
    Pair { a: &'a Fine, b: &'a Fine, codes: Vec<u32> },
}

impl Term<'_> {
    fn bins(&self) -> usize {
        match self {
            Term::Main(f) => f.feature.bins.len(),
            Term::Pair { a, b, .. } => a.axis.bins.len() * b.axis.bins.len(),
        }
    }

    fn codes(&self) -> &[u32] {
        match self {
            Term::Main(f) => &f.codes,
            Term::Pair { codes, .. } => codes,
        }
    }

    fn step(&self, g: &[f64], h: &[f64], c: &[u64], cfg: &FitConfig, shape: &[f64]) -> Vec<f64> {
        match self {
            Term::Main(f) => feature_step(f, g, h, c, cfg, shape),
            Term::Pair { b, .. } => {
                pair_step(b.axis.bins.len(), g, h, c, cfg).map_or_else(|| vec![0.0; g.len()], |s| s.1)
            }
        }
    }
}

fn pair_term<'a>(a: &'a Fine, b: &'a Fine) -> Term<'a> {
    let nb = b.axis.bins.len() as u32;
    let codes = a
        .axis_codes
        .iter()
        .zip(&b.axis_codes)
        .map(|(&x, &y)| x * nb + y)
        .collect();
    Term::Pair { a, b, codes }
}

/// The best cut of a pair's grid into four quadrants (first-axis bins `< ca` or not, second-axis `< cb` or not,
/// in bin order) by Newton gain, each quadrant holding `min_leaf_count` rows: `(gain, step per cell)`.
fn pair_step(nb: usize, g: &[f64], h: &[f64], c: &[u64], cfg: &FitConfig) -> Option<(f64, Vec<f64>)> {
    let b = &cfg.boost;
    let na = g.len() / nb;
    // Inclusive 2-D prefix sums: s[i][j] = sum over cells (< i, < j).
    let w = nb + 1;
    let mut sg = vec![0.0; (na + 1) * w];
    let mut sh = vec![0.0; (na + 1) * w];
    let mut sc = vec![0u64; (na + 1) * w];
    for i in 0..na {
        for j in 0..nb {
            let k = i * nb + j;
            let (d, l, u, ul) = ((i + 1) * w + j + 1, (i + 1) * w + j, i * w + j + 1, i * w + j);
            sg[d] = g[k] + sg[l] + sg[u] - sg[ul];
            sh[d] = h[k] + sh[l] + sh[u] - sh[ul];
            sc[d] = c[k] + sc[l] + sc[u] - sc[ul];
        }
    }
    let rect = |s: &[f64], i0: usize, i1: usize, j0: usize, j1: usize| {
        s[i1 * w + j1] - s[i0 * w + j1] - s[i1 * w + j0] + s[i0 * w + j0]
    };
    let rc = |i0: usize, i1: usize, j0: usize, j1: usize| {
        sc[i1 * w + j1] + sc[i0 * w + j0] - sc[i0 * w + j1] - sc[i1 * w + j0]
    };
    let score = |gg: f64, hh: f64| gg * gg / (hh + b.l2);
    let whole = score(rect(&sg, 0, na, 0, nb), rect(&sh, 0, na, 0, nb));
    let min = b.min_leaf_count as u64;
    let mut best: Option<(f64, usize, usize)> = None;
    for ca in 1..na {
        for cb in 1..nb {
            let quads = [(0, ca, 0, cb), (0, ca, cb, nb), (ca, na, 0, cb), (ca, na, cb, nb)];
            if quads.iter().any(|&(i0, i1, j0, j1)| rc(i0, i1, j0, j1) < min) {
                continue;
            }
            let gain: f64 = quads
                .iter()
                .map(|&(i0, i1, j0, j1)| score(rect(&sg, i0, i1, j0, j1), rect(&sh, i0, i1, j0, j1)))
                .sum::<f64>()
                - whole;
            if gain > 1e-12 && best.is_none_or(|(bg, _, _)| gain > bg) {
                best = Some((gain, ca, cb));
            }
        }
    }
    let (gain, ca, cb) = best?;
    let mut delta = vec![0.0; g.len()];
    for (i0, i1, j0, j1) in [(0, ca, 0, cb), (0, ca, cb, nb), (ca, na, 0, cb), (ca, na, cb, nb)] {
        let step = -b.learning_rate * rect(&sg, i0, i1, j0, j1) / (rect(&sh, i0, i1, j0, j1) + b.l2);
        for i in i0..i1 {
            for d in &mut delta[i * nb + j0..i * nb + j1] {
                *d = step;
            }
        }
    }
    Some((gain, delta))
}

/// One boosting stage of one bag.
struct Stage {
    /// The terms' shapes at the round with the best held-out loss.
    shapes: Vec<Vec<f64>>,
    rounds: usize,
    /// Held-out log-odds of bad at that round (in `val` order).
    val_eta: Vec<f64>,
    /// Training log-odds of bad at that round (in `train` order).
    train_eta: Vec<f64>,
}

/// Cyclic boosting of `terms` from the given shapes and log-odds, with early stopping on the held-out rows.
#[allow(clippy::too_many_arguments)]
fn boost_stage(
    terms: &[Term],
    start: Vec<Vec<f64>>,
    mut eta: Vec<f64>,
    mut eta_v: Vec<f64>,
    target: &[u8],
    train: &[usize],
    val: &[usize],
    cfg: &FitConfig,
) -> Stage {
    let yt: Vec<f64> = train.iter().map(|&i| target[i] as f64).collect();
    let yv: Vec<f64> = val.iter().map(|&i| target[i] as f64).collect();
    let codes_t: Vec<Vec<u32>> = terms
        .iter()
        .map(|t| train.iter().map(|&i| t.codes()[i]).collect())
        .collect();
    let codes_v: Vec<Vec<u32>> = terms
        .iter()
        .map(|t| val.iter().map(|&i| t.codes()[i]).collect())
        .collect();
    let mut shapes = start;
    let mut p: Vec<f64> = eta.iter().map(|&e| sigmoid(e)).collect();
    let mut best_loss = logloss(&eta_v, &yv);
    let mut best = (0usize, shapes.clone(), eta_v.clone(), eta.clone());
    // Bin counts are fixed; gradient and Hessian sums of the next term are gathered in the same pass that
    // applies the current term's step (one sweep over the rows per step).
    let counts: Vec<Vec<u64>> = terms
        .iter()
        .zip(&codes_t)
        .map(|(t, codes)| {
            let mut c = vec![0u64; t.bins()];
            for &code in codes {
                c[code as usize] += 1;
            }
            c
        })
        .collect();
    let m = terms.len();
    let (mut g, mut h) = (vec![0.0; terms[0].bins()], vec![0.0; terms[0].bins()]);
    for (r, &code) in codes_t[0].iter().enumerate() {
        g[code as usize] += p[r] - yt[r];
        h[code as usize] += p[r] * (1.0 - p[r]);
    }
    for round in 1..=cfg.boost.max_rounds {
        for (j, term) in terms.iter().enumerate() {
            let next = (j + 1) % m;
            let delta = term.step(&g, &h, &counts[j], cfg, &shapes[j]);
            let (mut gn, mut hn) = (vec![0.0; terms[next].bins()], vec![0.0; terms[next].bins()]);
            if delta.iter().all(|&d| d == 0.0) {
                for (r, &code) in codes_t[next].iter().enumerate() {
                    gn[code as usize] += p[r] - yt[r];
                    hn[code as usize] += p[r] * (1.0 - p[r]);
                }
            } else {
                for (s, d) in shapes[j].iter_mut().zip(&delta) {
                    *s += d;
                }
                for (r, (&code, &cn)) in codes_t[j].iter().zip(&codes_t[next]).enumerate() {
                    eta[r] += delta[code as usize];
                    let pr = 1.0 / (1.0 + (-eta[r]).exp());
                    p[r] = pr;
                    gn[cn as usize] += pr - yt[r];
                    hn[cn as usize] += pr * (1.0 - pr);
                }
                for (r, &code) in codes_v[j].iter().enumerate() {
                    eta_v[r] += delta[code as usize];
                }
            }
            g = gn;
            h = hn;
        }
        let loss = logloss(&eta_v, &yv);
        if loss < best_loss - 1e-9 {
            best_loss = loss;
            best = (round, shapes.clone(), eta_v.clone(), eta.clone());
        } else if round - best.0 >= cfg.boost.patience {
            break;
        }
    }
    Stage {
        shapes: best.1,
        rounds: best.0,
        val_eta: best.2,
        train_eta: best.3,
    }
}

/// The starting log-odds of bad of `rows`: `init` plus each main's starting shape.
fn start_eta(fines: &[Fine], init: f64, rows: &[usize]) -> Vec<f64> {
    let mut eta = vec![init; rows.len()];
    for f in fines {
        for (e, &i) in eta.iter_mut().zip(rows) {
            *e += f.start[f.codes[i] as usize];
        }
    }
    eta
}

fn logloss(eta: &[f64], y: &[f64]) -> f64 {
    eta.iter()
        .zip(y)
        .map(|(&e, &yi)| {
            let sp = if e > 0.0 {
                e + (-e).exp().ln_1p()
            } else {
                e.exp().ln_1p()
            };
            sp - yi * e
        })
        .sum::<f64>()
        / eta.len().max(1) as f64
}

/// Weighted pool-adjacent-violators: the closest (weighted least squares) non-decreasing sequence.
fn isotonic(v: &[f64], w: &[f64], rising: bool) -> Vec<f64> {
    let sign = if rising { 1.0 } else { -1.0 };
    let mut blocks: Vec<(f64, f64, usize)> = Vec::new();
    for (&x, &wx) in v.iter().zip(w) {
        let wx = wx.max(1e-9);
        blocks.push((sign * x * wx, wx, 1));
        while blocks.len() > 1 {
            let (s1, w1, n1) = blocks[blocks.len() - 1];
            let (s0, w0, n0) = blocks[blocks.len() - 2];
            if s0 / w0 > s1 / w1 {
                blocks.pop();
                let last = blocks.len() - 1;
                blocks[last] = (s0 + s1, w0 + w1, n0 + n1);
            } else {
                break;
            }
        }
    }
    let mut out = Vec::with_capacity(v.len());
    for (s, w, n) in blocks {
        out.extend(std::iter::repeat_n(sign * s / w, n));
    }
    out
}

/// The step for one feature from its per-bin gradient sums.
fn feature_step(f: &Fine, g: &[f64], h: &[f64], c: &[u64], cfg: &FitConfig, shape: &[f64]) -> Vec<f64> {
    let b = &cfg.boost;
    let lr = b.learning_rate;
    let nb = g.len();
    let mut delta = vec![0.0; nb];
    let k = f.ordered;
    if k > 0 {
        // Prefix sums over the ordered bins.
        let mut pg = vec![0.0; k + 1];
        let mut ph = vec![0.0; k + 1];
        let mut pc = vec![0u64; k + 1];
        for i in 0..k {
            pg[i + 1] = pg[i] + g[i];
            ph[i + 1] = ph[i] + h[i];
            pc[i + 1] = pc[i] + c[i];
        }
        let score = |a: usize, z: usize| {
            let gg = pg[z] - pg[a];
            gg * gg / (ph[z] - ph[a] + b.l2)
        };
        let min = b.min_leaf_count as u64;
        let mut segs: Vec<(usize, usize)> = vec![(0, k)];
        for _ in 1..b.max_leaves {
            let mut best: Option<(f64, usize, usize)> = None;
            for (si, &(a, z)) in segs.iter().enumerate() {
                let whole = score(a, z);
                for s in a + 1..z {
                    if pc[s] - pc[a] < min || pc[z] - pc[s] < min {
                        continue;
                    }
                    let gain = score(a, s) + score(s, z) - whole;
                    if gain > 1e-12 && best.is_none_or(|(bg, _, _)| gain > bg) {
                        best = Some((gain, si, s));
                    }
                }
            }
            let Some((_, si, s)) = best else { break };
            let (a, z) = segs[si];
            segs[si] = (a, s);
            segs.insert(si + 1, (s, z));
        }
        for (a, z) in segs {
            let step = -lr * (pg[z] - pg[a]) / (ph[z] - ph[a] + b.l2);
            for d in &mut delta[a..z] {
                *d = step;
            }
        }
    }
    for i in k..nb {
        if c[i] > 0 {
            delta[i] = -lr * g[i] / (h[i] + b.l2);
        }
    }
    if let Some(rising) = f.rising {
        if k > 1 {
            let target: Vec<f64> = (0..k).map(|i| shape[i] + delta[i]).collect();
            let w: Vec<f64> = c[..k].iter().map(|&x| x as f64).collect();
            let proj = isotonic(&target, &w, rising);
            for i in 0..k {
                delta[i] = proj[i] - shape[i];
            }
        }
    }
    delta
}

/// Stratified fold of every row (0..k), shuffled by `seed`.
pub fn stratified_folds(target: &[u8], k: usize, seed: u64) -> Vec<usize> {
    let k = k.max(1);
    let mut rng = SplitMix64(seed ^ 0x5EED_5C0E_ECAD);
    let mut folds = vec![0usize; target.len()];
    let mut offset = 0;
    for class in [1u8, 0u8] {
        let mut rows: Vec<usize> = (0..target.len()).filter(|&i| target[i] == class).collect();
        for i in (1..rows.len()).rev() {
            let j = (rng.next() % (i as u64 + 1)) as usize;
            rows.swap(i, j);
        }
        for (n, &r) in rows.iter().enumerate() {
            folds[r] = (n + offset) % k;
        }
        offset = (offset + rows.len()) % k;
    }
    folds
}

/// A small deterministic generator (SplitMix64).
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49EB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// The fitted boosted card before scaling.
pub(crate) struct Boosted {
    pub features: Vec<Feature>,
    /// On `ln(odds_good)`.
    pub intercept: f64,
    /// Out-of-fold log-odds of bad per training row.
    pub oof: Vec<f64>,
    pub rounds: Vec<usize>,
}

/// Runs `work(bag)` for every bag on up to `threads` threads; results in bag order (independent of threads).
pub(crate) fn per_bag<T: Send>(k: usize, threads: usize, work: &(dyn Fn(usize) -> T + Sync)) -> Vec<T> {
    let mut out: Vec<Option<T>> = (0..k).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| s.spawn(move || (t..k).step_by(threads).map(|b| (b, work(b))).collect::<Vec<_>>()))
            .collect();
        for h in handles {
            for (b, r) in h.join().expect("a fitting thread panicked") {
                out[b] = Some(r);
            }
        }
    });
    out.into_iter().map(|r| r.expect("every bag ran")).collect()
}

/// Pairs of mains ranked by the best quadrant gain on the gradient of `eta` (FAST, Lou et al. 2013), best first.
fn rank_pairs(fines: &[Fine], eta: &[f64], target: &[u8], cfg: &FitConfig) -> Vec<(usize, usize)> {
    let g: Vec<f64> = eta.iter().zip(target).map(|(&e, &y)| sigmoid(e) - y as f64).collect();
    let h: Vec<f64> = eta.iter().map(|&e| sigmoid(e) * (1.0 - sigmoid(e))).collect();
    // Candidates: the 40 features of highest IV (fines are in IV order).
    let m = fines.len().min(40);
    let mut scored = Vec::new();
    for a in 0..m {
        for b in a + 1..m {
            let t = pair_term(&fines[a], &fines[b]);
            let nb = t.bins();
            let (mut gg, mut hh, mut cc) = (vec![0.0; nb], vec![0.0; nb], vec![0u64; nb]);
            for (i, &code) in t.codes().iter().enumerate() {
                gg[code as usize] += g[i];
                hh[code as usize] += h[i];
                cc[code as usize] += 1;
            }
            if let Some((gain, _)) = pair_step(fines[b].axis.bins.len(), &gg, &hh, &cc, cfg) {
                scored.push((gain, a, b));
            }
        }
    }
    scored.sort_by(|x, y| y.0.total_cmp(&x.0).then((x.1, x.2).cmp(&(y.1, y.2))));
    scored.into_iter().map(|(_, a, b)| (a, b)).collect()
}

/// Fits the bags and averages them. `start` is the starting log-odds of bad (the WoE card's, or `None` for the
/// training bad rate). Stage 1 boosts the mains; stage 2 (when `boost.interactions > 0`) boosts the best pairs
/// on top of each bag's mains.
pub(crate) fn fit(fines: Vec<Fine>, start: Option<f64>, target: &[u8], cfg: &FitConfig) -> Boosted {
    let n = target.len();
    let k = cfg.boost.bags;
    let folds = stratified_folds(target, k, cfg.seed);
    let threads = cfg.boost.worker_threads().clamp(1, k);
    let split = |b: usize| -> (Vec<usize>, Vec<usize>) {
        (
            (0..n).filter(|&i| folds[i] != b).collect(),
            (0..n).filter(|&i| folds[i] == b).collect(),
        )
    };
    let mains: Vec<Term> = fines.iter().map(Term::Main).collect();
    let starts: Vec<Vec<f64>> = fines.iter().map(|f| f.start.clone()).collect();
    let inits: Vec<f64> = (0..k)
        .map(|b| {
            let train = split(b).0;
            let bads = train.iter().filter(|&&i| target[i] == 1).count() as f64;
            start.unwrap_or(((bads + 0.5) / (train.len() as f64 - bads + 0.5)).ln())
        })
        .collect();
    let stage1 = per_bag(k, threads, &|b| {
        let (train, val) = split(b);
        let (et, ev) = (start_eta(&fines, inits[b], &train), start_eta(&fines, inits[b], &val));
        boost_stage(&mains, starts.clone(), et, ev, target, &train, &val, cfg)
    });
    let mut rounds: Vec<usize> = stage1.iter().map(|s| s.rounds).collect();
    let init = inits.iter().sum::<f64>() / k as f64;
    let mut shapes = average(stage1.iter().map(|s| &s.shapes), k);
    // Stage 2: pairs on top of each bag's mains.
    let mut pairs: Vec<(usize, usize)> = Vec::new();
    let mut pair_shapes: Vec<Vec<f64>> = Vec::new();
    let mut oof = vec![0.0; n];
    if cfg.boost.interactions > 0 && fines.len() >= 2 {
        let mut eta = vec![init; n];
        for (f, s) in fines.iter().zip(&shapes) {
            for (e, &c) in eta.iter_mut().zip(&f.codes) {
                *e += s[c as usize];
            }
        }
        pairs = rank_pairs(&fines, &eta, target, cfg);
        pairs.truncate(cfg.boost.interactions);
    }
    if !pairs.is_empty() {
        let terms: Vec<Term> = pairs.iter().map(|&(a, b)| pair_term(&fines[a], &fines[b])).collect();
        let zero: Vec<Vec<f64>> = terms.iter().map(|t| vec![0.0; t.bins()]).collect();
        let stage2 = per_bag(k, threads, &|b| {
            let (train, val) = split(b);
            let s1 = &stage1[b];
            boost_stage(
                &terms,
                zero.clone(),
                s1.train_eta.clone(),
                s1.val_eta.clone(),
                target,
                &train,
                &val,
                cfg,
            )
        });
        for (b, s2) in stage2.iter().enumerate() {
            for (&i, &e) in split(b).1.iter().zip(&s2.val_eta) {
                oof[i] = e;
            }
        }
        rounds.extend(stage2.iter().map(|s| s.rounds));
        pair_shapes = average(stage2.iter().map(|s| &s.shapes), k);
    } else {
        for (b, s1) in stage1.iter().enumerate() {
            for (&i, &e) in split(b).1.iter().zip(&s1.val_eta) {
                oof[i] = e;
            }
        }
    }
    let t = Totals::of(target);
    let mut intercept_bad = init;
    let mut features = Vec::with_capacity(fines.len() + pairs.len());
    for (f, shape) in fines.iter().zip(shapes.iter_mut()) {
        let mut feature = f.feature.clone();
        intercept_bad += centre(&feature.bins.iter().map(|b| b.count).collect::<Vec<_>>(), shape);
        for (b, s) in feature.bins.iter_mut().zip(shape.iter()) {
            b.logit = -s;
        }
        merge_equal_ranges(&mut feature, t);
        features.push(feature);
    }
    for (&(a, b), shape) in pairs.iter().zip(pair_shapes.iter_mut()) {
        let (fa, fb) = (&fines[a], &fines[b]);
        let term = pair_term(fa, fb);
        let mut cells = vec![Cell::default(); term.bins()];
        for (&code, &y) in term.codes().iter().zip(target) {
            cells[code as usize].push(y);
        }
        intercept_bad += centre(&cells.iter().map(|c| c.count).collect::<Vec<_>>(), shape);
        let nb = fb.axis.bins.len();
        let mut iv = 0.0;
        let bins = cells
            .iter()
            .zip(shape.iter())
            .enumerate()
            .map(|(i, (c, s))| {
                let (w, v) = woe_iv(*c, t);
                iv += v;
                let (ia, ib) = (i / nb, i % nb);
                Bin {
                    label: format!("{} × {}", fa.axis.bins[ia].label, fb.axis.bins[ib].label),
                    kind: BinKind::Cell { a: ia, b: ib },
                    count: c.count,
                    bads: c.bads,
                    woe: w,
                    logit: -s,
                    points: 0.0,
                }
            })
            .collect();
        features.push(Feature {
            name: format!("{} × {}", fa.feature.name, fb.feature.name),
            kind: FeatureKind::Pair,
            iv,
            bins,
            coefficient: 1.0,
            axes: vec![fa.axis.clone(), fb.axis.clone()],
        });
    }
    Boosted {
        features,
        intercept: -intercept_bad,
        oof,
        rounds,
    }
}

/// The element-wise mean of `k` sets of shapes.
fn average<'a>(sets: impl Iterator<Item = &'a Vec<Vec<f64>>>, k: usize) -> Vec<Vec<f64>> {
    let mut out: Vec<Vec<f64>> = Vec::new();
    for set in sets {
        if out.is_empty() {
            out = set.iter().map(|s| vec![0.0; s.len()]).collect();
        }
        for (o, s) in out.iter_mut().zip(set) {
            for (x, y) in o.iter_mut().zip(s) {
                *x += y / k as f64;
            }
        }
    }
    out
}

/// Centres a shape on the training rows (weights = bin counts; empty bins get 0) and returns the mean removed,
/// so a bin's points read as "above or below average".
fn centre(counts: &[u64], shape: &mut [f64]) -> f64 {
    let total: f64 = counts.iter().map(|&c| c as f64).sum();
    let mean = counts.iter().zip(shape.iter()).map(|(&c, s)| c as f64 * s).sum::<f64>() / total.max(1.0);
    for (s, &c) in shape.iter_mut().zip(counts) {
        *s = if c > 0 { *s - mean } else { 0.0 };
    }
    mean
}

/// Merges neighbouring value ranges whose logit is identical (no tree step ever separated them): lossless.
fn merge_equal_ranges(f: &mut Feature, t: Totals) {
    let mut i = 0;
    while i + 1 < f.bins.len() {
        let (a, b) = (&f.bins[i], &f.bins[i + 1]);
        if let (BinKind::Range { lo, .. }, BinKind::Range { hi, .. }) = (&a.kind, &b.kind) {
            if a.logit == b.logit {
                let (lo, hi) = (*lo, *hi);
                let nb = f.bins.remove(i + 1);
                let a = &mut f.bins[i];
                a.kind = BinKind::Range { lo, hi };
                a.label = format!("[{}, {})", fmt_num(lo), fmt_num(hi));
                a.count += nb.count;
                a.bads += nb.bads;
                a.woe = woe_iv(
                    Cell {
                        count: a.count,
                        bads: a.bads,
                    },
                    t,
                )
                .0;
                continue;
            }
        }
        i += 1;
    }
}
