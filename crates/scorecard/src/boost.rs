//! The boosted additive card (EBM-style): fine bins per feature, then many rounds of cyclic gradient boosting in
//! which each step fits one feature's small tree over its ordered bins (own Newton steps for missing, special and
//! category bins) on the log-odds of bad. The sum of a feature's steps is its shape function: one value per bin,
//! so the result is still a table of points per bin. Bags are cross-fitted: bag k holds out fold k for early
//! stopping, the card is the bags' average, and the held-out log-odds feed the Platt calibration.

use crate::binning::{categorical_bins, category_cells, distinct, fill_stats, numeric_bins, numeric_values};
use crate::binning::{fmt_num, quantile_groups, woe_iv, Cell, Totals};
use crate::config::{FitConfig, Monotonic};
use crate::model::{sigmoid, BinKind, Feature, FeatureKind};
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
                BinKind::Other => Value::Cat("\u{0}other"),
            };
            -coarse.bins[coarse.bin_index(v)].logit
        })
        .collect();
    Fine {
        feature,
        codes,
        ordered,
        rising,
        start,
    }
}

/// One bag's result.
struct Bag {
    shapes: Vec<Vec<f64>>,
    init: f64,
    rounds: usize,
    /// Log-odds of bad of the held-out rows (in `val` order).
    val_eta: Vec<f64>,
}

fn logloss(eta: &[f64], y: &[f64]) -> f64 {
    eta.iter()
        .zip(y)
        .map(|(&e, &yi)| {
            let sp = if e > 0.0 { e + (-e).exp().ln_1p() } else { e.exp().ln_1p() };
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

fn run_bag(fines: &[Fine], start: f64, target: &[u8], train: &[usize], val: &[usize], cfg: &FitConfig) -> Bag {
    let m = fines.len();
    let yt: Vec<f64> = train.iter().map(|&i| target[i] as f64).collect();
    let yv: Vec<f64> = val.iter().map(|&i| target[i] as f64).collect();
    let codes_t: Vec<Vec<u32>> = fines.iter().map(|f| train.iter().map(|&i| f.codes[i]).collect()).collect();
    let codes_v: Vec<Vec<u32>> = fines.iter().map(|f| val.iter().map(|&i| f.codes[i]).collect()).collect();
    let init = start;
    let mut shapes: Vec<Vec<f64>> = fines.iter().map(|f| f.start.clone()).collect();
    let mut eta = vec![init; train.len()];
    let mut eta_v = vec![init; val.len()];
    for (j, f) in fines.iter().enumerate() {
        for (e, &c) in eta.iter_mut().zip(&codes_t[j]) {
            *e += f.start[c as usize];
        }
        for (e, &c) in eta_v.iter_mut().zip(&codes_v[j]) {
            *e += f.start[c as usize];
        }
    }
    let mut p: Vec<f64> = eta.iter().map(|&e| sigmoid(e)).collect();
    let mut best_loss = logloss(&eta_v, &yv);
    let mut best = (0usize, shapes.clone(), eta_v.clone());
    let (mut g, mut h, mut c) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=cfg.boost.max_rounds {
        for j in 0..m {
            let nb = shapes[j].len();
            g.clear();
            g.resize(nb, 0.0);
            h.clear();
            h.resize(nb, 0.0);
            c.clear();
            c.resize(nb, 0u64);
            for (r, &code) in codes_t[j].iter().enumerate() {
                let b = code as usize;
                g[b] += p[r] - yt[r];
                h[b] += p[r] * (1.0 - p[r]);
                c[b] += 1;
            }
            let delta = feature_step(&fines[j], &g, &h, &c, cfg, &shapes[j]);
            for (s, d) in shapes[j].iter_mut().zip(&delta) {
                *s += d;
            }
            for (r, &code) in codes_t[j].iter().enumerate() {
                eta[r] += delta[code as usize];
                p[r] = sigmoid(eta[r]);
            }
            for (r, &code) in codes_v[j].iter().enumerate() {
                eta_v[r] += delta[code as usize];
            }
        }
        let loss = logloss(&eta_v, &yv);
        if loss < best_loss - 1e-9 {
            best_loss = loss;
            best = (round, shapes.clone(), eta_v.clone());
        } else if round - best.0 >= cfg.boost.patience {
            break;
        }
    }
    Bag {
        shapes: best.1,
        init,
        rounds: best.0,
        val_eta: best.2,
    }
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

/// Fits the bags and averages them. `start` is the starting log-odds of bad (the WoE card's, or `None` for the
/// training bad rate).
pub(crate) fn fit(fines: Vec<Fine>, start: Option<f64>, target: &[u8], cfg: &FitConfig) -> Boosted {
    let n = target.len();
    let k = cfg.boost.bags;
    let folds = stratified_folds(target, k, cfg.seed);
    let threads = match cfg.boost.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    }
    .clamp(1, k);
    let mut bags: Vec<Option<(Vec<usize>, Bag)>> = (0..k).map(|_| None).collect();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let (fines, folds) = (&fines, &folds);
                s.spawn(move || {
                    let mut out = Vec::new();
                    for b in (t..k).step_by(threads) {
                        let train: Vec<usize> = (0..n).filter(|&i| folds[i] != b).collect();
                        let val: Vec<usize> = (0..n).filter(|&i| folds[i] == b).collect();
                        let bads = train.iter().filter(|&&i| target[i] == 1).count() as f64;
                        let init = start.unwrap_or(((bads + 0.5) / (train.len() as f64 - bads + 0.5)).ln());
                        let bag = run_bag(fines, init, target, &train, &val, cfg);
                        out.push((b, val, bag));
                    }
                    out
                })
            })
            .collect();
        for h in handles {
            for (b, val, bag) in h.join().expect("a boosting thread panicked") {
                bags[b] = Some((val, bag));
            }
        }
    });
    let bags: Vec<(Vec<usize>, Bag)> = bags.into_iter().map(|b| b.expect("every bag ran")).collect();
    let mut oof = vec![0.0; n];
    let mut rounds = Vec::with_capacity(k);
    let mut init = 0.0;
    let mut shapes: Vec<Vec<f64>> = fines.iter().map(|f| vec![0.0; f.feature.bins.len()]).collect();
    for (val, bag) in &bags {
        for (&i, &e) in val.iter().zip(&bag.val_eta) {
            oof[i] = e;
        }
        rounds.push(bag.rounds);
        init += bag.init / k as f64;
        for (s, bs) in shapes.iter_mut().zip(&bag.shapes) {
            for (x, y) in s.iter_mut().zip(bs) {
                *x += y / k as f64;
            }
        }
    }
    let t = Totals::of(target);
    let mut intercept_bad = init;
    let mut features = Vec::with_capacity(fines.len());
    for (f, mut shape) in fines.into_iter().zip(shapes) {
        let mut feature = f.feature;
        // Centre each shape on the training rows so a bin's points read as "above or below average".
        let total: f64 = feature.bins.iter().map(|b| b.count as f64).sum();
        let mean = feature.bins.iter().zip(&shape).map(|(b, s)| b.count as f64 * s).sum::<f64>() / total.max(1.0);
        for (s, b) in shape.iter_mut().zip(&feature.bins) {
            *s = if b.count > 0 { *s - mean } else { 0.0 };
        }
        intercept_bad += mean;
        for (b, s) in feature.bins.iter_mut().zip(&shape) {
            b.logit = -s;
        }
        merge_equal_ranges(&mut feature, t);
        features.push(feature);
    }
    Boosted {
        features,
        intercept: -intercept_bad,
        oof,
        rounds,
    }
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
