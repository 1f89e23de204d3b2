//! Discrimination, stability and calibration metrics. Scores are "bad high" (higher = riskier), target 1 = bad.

use serde::{Deserialize, Serialize};

/// Area under the ROC curve: the probability that a random bad scores above a random good, ties counting
/// one half (mid-ranks). NaN when either class is absent.
pub fn auc(scores_bad_high: &[f64], target: &[u8]) -> f64 {
    let n = scores_bad_high.len().min(target.len());
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores_bad_high[a].total_cmp(&scores_bad_high[b]));
    let (mut rank_sum_bad, mut n_bad) = (0.0f64, 0u64);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && scores_bad_high[idx[j + 1]] == scores_bad_high[idx[i]] {
            j += 1;
        }
        // Ranks i+1 ..= j+1 share their mean.
        let mid = (i + j + 2) as f64 / 2.0;
        for &k in &idx[i..=j] {
            if target[k] == 1 {
                rank_sum_bad += mid;
                n_bad += 1;
            }
        }
        i = j + 1;
    }
    let n_good = n as u64 - n_bad;
    if n_bad == 0 || n_good == 0 {
        return f64::NAN;
    }
    let nb = n_bad as f64;
    (rank_sum_bad - nb * (nb + 1.0) / 2.0) / (nb * n_good as f64)
}

/// A paired bootstrap of two scores' AUCs on the same rows: `reps` resamples of the rows with replacement (a
/// deterministic generator seeded by `seed`), each giving (AUC of `a`, AUC of `b`) on the same resampled rows, so
/// that their difference or ratio keeps the correlation of the two scores. A resample holding one class only is
/// drawn again.
pub fn bootstrap_auc_pair(a: &[f64], b: &[f64], target: &[u8], reps: usize, seed: u64) -> Vec<(f64, f64)> {
    let n = a.len().min(b.len()).min(target.len());
    let bads = target[..n].iter().filter(|&&y| y == 1).count();
    if bads == 0 || bads == n {
        return Vec::new();
    }
    let mut rng = crate::boost::SplitMix64(seed);
    let (mut ra, mut rb, mut ry) = (vec![0.0; n], vec![0.0; n], vec![0u8; n]);
    let mut out = Vec::with_capacity(reps);
    while out.len() < reps {
        for k in 0..n {
            let i = (rng.next() % n as u64) as usize;
            (ra[k], rb[k], ry[k]) = (a[i], b[i], target[i]);
        }
        let (x, y) = (auc(&ra, &ry), auc(&rb, &ry));
        if x.is_finite() && y.is_finite() {
            out.push((x, y));
        }
    }
    out
}

/// The `q` quantile (0..=1) of `values` by linear interpolation between order statistics; NaN when empty.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut v = values.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    quantile_sorted(&v, q)
}

/// [`quantile`] of values already sorted ascending (several quantiles of one sort).
pub fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let pos = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Gini = 2·AUC − 1.
pub fn gini(auc: f64) -> f64 {
    2.0 * auc - 1.0
}

/// Kolmogorov–Smirnov statistic: the largest gap between the cumulative shares of bads and goods over score
/// thresholds (tied scores move together). NaN when either class is absent.
pub fn ks(scores_bad_high: &[f64], target: &[u8]) -> f64 {
    let n = scores_bad_high.len().min(target.len());
    let nb = target[..n].iter().filter(|&&y| y == 1).count() as f64;
    let ng = n as f64 - nb;
    if nb == 0.0 || ng == 0.0 {
        return f64::NAN;
    }
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| scores_bad_high[b].total_cmp(&scores_bad_high[a]));
    let (mut cb, mut cg, mut best) = (0.0, 0.0, 0.0f64);
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j < n && scores_bad_high[idx[j]] == scores_bad_high[idx[i]] {
            if target[idx[j]] == 1 {
                cb += 1.0;
            } else {
                cg += 1.0;
            }
            j += 1;
        }
        best = best.max((cb / nb - cg / ng).abs());
        i = j;
    }
    best
}

/// Shares below which a PSI cell is floored (an empty cell would make the index infinite).
pub const PSI_FLOOR: f64 = 1e-4;

/// Population stability index of `actual` against `expected`: `bins` quantile bins of `expected` (fewer when
/// values tie), `PSI = Σ (A% − E%)·ln(A% / E%)`, shares floored at [`PSI_FLOOR`].
pub fn psi(expected: &[f64], actual: &[f64], bins: usize) -> f64 {
    let edges = quantile_edges(expected, bins);
    psi_with_edges(&edges, expected, actual)
}

/// Inner edges of up to `bins` quantile bins (bin `i` = `[e_{i-1}, e_i)`).
pub fn quantile_edges(values: &[f64], bins: usize) -> Vec<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    let mut edges = Vec::new();
    if v.is_empty() {
        return edges;
    }
    for k in 1..bins.max(1) {
        let e = v[(k * v.len() / bins).min(v.len() - 1)];
        if e > v[0] && edges.last().is_none_or(|&l| e > l) {
            edges.push(e);
        }
    }
    edges
}

/// Shares of `values` in the bins given by inner `edges`.
pub fn shares(edges: &[f64], values: &[f64]) -> Vec<f64> {
    let mut c = vec![0.0; edges.len() + 1];
    let mut n = 0.0;
    for &x in values.iter().filter(|x| !x.is_nan()) {
        c[edges.partition_point(|&e| e <= x)] += 1.0;
        n += 1.0;
    }
    if n > 0.0 {
        for v in &mut c {
            *v /= n;
        }
    }
    c
}

/// PSI between two share vectors (same bins).
pub fn psi_shares(expected: &[f64], actual: &[f64]) -> f64 {
    expected
        .iter()
        .zip(actual)
        .map(|(&e, &a)| {
            let (e, a) = (e.max(PSI_FLOOR), a.max(PSI_FLOOR));
            (a - e) * (a / e).ln()
        })
        .sum()
}

/// PSI of `actual` against `expected` on given inner edges.
pub fn psi_with_edges(edges: &[f64], expected: &[f64], actual: &[f64]) -> f64 {
    psi_shares(&shares(edges, expected), &shares(edges, actual))
}

/// One band of a calibration table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// Lowest and highest PD in the band.
    pub lo: f64,
    pub hi: f64,
    pub count: u64,
    /// Mean predicted PD.
    pub predicted: f64,
    /// Observed bad rate.
    pub observed: f64,
}

/// Rows sorted by PD and cut into `n_bands` bands of (nearly) equal counts; equal PDs stay in one band.
pub fn calibration_table(pd: &[f64], target: &[u8], n_bands: usize) -> Vec<Band> {
    let n = pd.len().min(target.len());
    let mut idx: Vec<usize> = (0..n).collect();
    idx.sort_by(|&a, &b| pd[a].total_cmp(&pd[b]));
    let mut out = Vec::new();
    let mut start = 0;
    let k = n_bands.max(1);
    for b in 1..=k {
        let mut end = (b * n / k).max(start);
        if b == k {
            end = n;
        }
        while end > start && end < n && pd[idx[end]] == pd[idx[end - 1]] {
            end += 1;
        }
        if end <= start {
            continue;
        }
        let rows = &idx[start..end];
        let count = rows.len() as f64;
        out.push(Band {
            lo: pd[rows[0]],
            hi: pd[rows[rows.len() - 1]],
            count: rows.len() as u64,
            predicted: rows.iter().map(|&i| pd[i]).sum::<f64>() / count,
            observed: rows.iter().filter(|&&i| target[i] == 1).count() as f64 / count,
        });
        start = end;
    }
    out
}
