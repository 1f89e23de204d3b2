//! Logistic regression by Newton's method (IRLS) with an L2 penalty on the coefficients, by hand: the problems
//! are small (tens of features), and a fixed sequence of operations keeps the fit deterministic.

/// Fits `P(y = 1) = σ(b0 + Σ b_j x_j)`. `x` is column-major (one `Vec` per feature), `y` is 0/1. The penalty is
/// `½·l2·Σ b_j²` (the intercept is not penalised). `start` (intercept first) warm-starts the iterations.
/// Returns `(b0, b)`.
pub fn fit(x: &[Vec<f64>], y: &[f64], l2: f64, start: Option<&[f64]>) -> (f64, Vec<f64>) {
    let f = fit_warm(x, y, l2, start, None);
    (f.intercept, f.coefficients)
}

/// A fit, with the last Hessian it used (penalty included; `(p+1)²`, row-major, intercept first) for the next
/// fit of a nearby problem.
pub struct Fitted {
    pub intercept: f64,
    pub coefficients: Vec<f64>,
    pub hessian: Vec<f64>,
    /// Stopped at the tolerance (or where no step lowers the loss), not at the iteration cap or on a Hessian
    /// that could not be solved.
    pub converged: bool,
}

/// The rows of a design matrix as `[1, x_1 … x_p]`, contiguous: the Hessian is accumulated a row block at a
/// time into a lower triangle that stays in the L1 cache (a dot product per pair of columns would re-read each
/// column p times).
pub struct Design {
    rows: Vec<f64>,
    d: usize,
}

impl Design {
    /// From column-major features (one `Vec` per feature, all of one length).
    pub fn from_columns(x: &[Vec<f64>], n: usize) -> Design {
        let d = x.len() + 1;
        let mut rows = vec![1.0; n * d];
        for (i, z) in rows.chunks_exact_mut(d).enumerate() {
            for (v, col) in z[1..].iter_mut().zip(x) {
                *v = col[i];
            }
        }
        Design { rows, d }
    }

    /// `n` rows of `p` features, each row's features written by `row(i, out)`.
    pub fn from_rows(n: usize, p: usize, mut row: impl FnMut(usize, &mut [f64])) -> Design {
        let d = p + 1;
        let mut rows = vec![1.0; n * d];
        for (i, z) in rows.chunks_exact_mut(d).enumerate() {
            row(i, &mut z[1..]);
        }
        Design { rows, d }
    }

    /// Features (excluding the intercept).
    pub fn features(&self) -> usize {
        self.d - 1
    }

    /// Removes feature `j` (0-based, not counting the intercept) from every row, in place.
    pub fn remove_feature(&mut self, j: usize) {
        assert!(j < self.features(), "feature {j} of {}", self.features());
        let (d, k) = (self.d, j + 1);
        let n = self.rows.len() / d;
        let mut at = 0;
        for i in 0..n {
            for c in 0..d {
                if c != k {
                    self.rows[at] = self.rows[i * d + c];
                    at += 1;
                }
            }
        }
        self.rows.truncate(at);
        self.d -= 1;
    }
}

/// As [`fit`], also warm-started with a Hessian (`(p+1)²`, from [`Fitted::hessian`] of a nearby problem, e.g.
/// the same fit with one feature more, its row and column removed): it is used while its steps converge fast,
/// then refreshed, so the result is the same optimum.
pub fn fit_warm(x: &[Vec<f64>], y: &[f64], l2: f64, start: Option<&[f64]>, hessian: Option<Vec<f64>>) -> Fitted {
    fit_design(&Design::from_columns(x, y.len()), y, l2, start, hessian, TOLERANCE)
}

/// The fit stops when no coefficient moves by more than this in a step.
pub const TOLERANCE: f64 = 1e-10;

/// As [`fit_warm`], on a design built once (e.g. kept across fits that each drop a feature), stopping when no
/// coefficient moves by more than `tol` in a step ([`TOLERANCE`] for a final fit).
pub fn fit_design(
    design: &Design,
    y: &[f64],
    l2: f64,
    start: Option<&[f64]>,
    hessian: Option<Vec<f64>>,
    tol: f64,
) -> Fitted {
    let n = y.len();
    let (rows, d) = (&design.rows[..], design.d);
    let p = d - 1;
    let ybar = (y.iter().sum::<f64>() / n.max(1) as f64).clamp(1e-9, 1.0 - 1e-9);
    let mut beta = match start {
        Some(s) if s.len() == p + 1 => s.to_vec(),
        _ => {
            let mut b = vec![0.0; p + 1];
            b[0] = (ybar / (1.0 - ybar)).ln();
            b
        }
    };
    // One pass over the rows gives the loss, the probabilities and the gradient at a point.
    let mut prob = vec![0.0; n];
    let mut grad = vec![0.0; d];
    let mut loss = evaluate(rows, d, &beta, y, l2, &mut prob, &mut grad);
    let mut cand_prob = vec![0.0; n];
    let mut cand_grad = vec![0.0; d];
    let mut w = vec![0.0; n];
    // Modified Newton: the Hessian (the O(n·d²) part) is refreshed whenever a step has not shrunk at least
    // fourfold; near the optimum, and after a warm start, one Hessian serves several steps (each O(n·d)). The
    // optimum is the same: the fit stops at the same tolerance, and only on a trusted step (below).
    let mut h: Option<Vec<f64>> = hessian.filter(|m| m.len() == d * d);
    let mut last_step = f64::INFINITY;
    let mut used = Vec::new();
    let mut converged = false;
    for _ in 0..200 {
        // Gradient of the penalised log-likelihood (to maximise), and its Hessian when refreshed.
        let mut g = grad.clone();
        let fresh = h.is_none();
        let hess = match h.take() {
            Some(old) => old,
            None => {
                for (wi, &pi) in w.iter_mut().zip(&prob) {
                    *wi = (pi * (1.0 - pi)).max(1e-12);
                }
                let mut hn = vec![0.0; d * d];
                gram(rows, d, &w, &mut hn);
                for j in 1..d {
                    hn[j * d + j] += l2;
                }
                hn
            }
        };
        for j in 1..d {
            g[j] -= l2 * beta[j];
        }
        let Some(step) = solve_spd(&hess, &g, d) else {
            if !fresh {
                last_step = f64::INFINITY;
                continue;
            }
            // Not positive definite even with a ridge: the fit stops where it is (not converged).
            used = hess;
            break;
        };
        // Step with halving until the penalised loss does not increase.
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let cand: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + t * s).collect();
            let l = evaluate(rows, d, &cand, y, l2, &mut cand_prob, &mut cand_grad);
            if l <= loss + 1e-12 * loss.abs().max(1.0) {
                beta = cand;
                std::mem::swap(&mut prob, &mut cand_prob);
                std::mem::swap(&mut grad, &mut cand_grad);
                loss = l;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            if !fresh {
                // A stale Hessian that no longer gives a descent step: refresh it before giving up.
                last_step = f64::INFINITY;
                continue;
            }
            // No step along Newton's direction lowers the loss: the optimum to machine precision.
            converged = true;
            used = hess;
            break;
        }
        let max_step = step.iter().fold(0.0f64, |m, s| m.max((t * s).abs()));
        // A small step says the fit is converged only from a fresh Hessian, or from a stale one that has shown
        // fast convergence (a full step, at least fourfold shorter than the one before with it): the distance
        // left is then at most a third of the step. Otherwise the Hessian is refreshed and the fit goes on.
        let fast = t == 1.0 && last_step.is_finite() && max_step <= 0.25 * last_step;
        if max_step < tol {
            if fresh || fast {
                converged = true;
                used = hess;
                break;
            }
            used = hess;
            last_step = f64::INFINITY;
            continue;
        }
        if t == 1.0 && max_step <= 0.25 * last_step {
            h = Some(hess);
        } else {
            used = hess;
        }
        last_step = max_step;
    }
    if let Some(m) = h {
        used = m;
    }
    Fitted {
        intercept: beta[0],
        coefficients: beta[1..].to_vec(),
        hessian: used,
        converged,
    }
}

/// Rows `i` to `i + 3` of a row-major matrix `d` wide.
fn four_rows(rows: &[f64], d: usize, i: usize) -> [&[f64]; 4] {
    let z = &rows[i * d..(i + 4) * d];
    let (z0, z) = z.split_at(d);
    let (z1, z) = z.split_at(d);
    let (z2, z3) = z.split_at(d);
    [z0, z1, z2, z3]
}

/// `h = Σ_i w_i·z_i·z_iᵀ` over the rows `z_i` (each `d` long) of `rows`. Four rows at a
/// time into the lower triangle, which is then mirrored: a fixed order of operations (deterministic), and an
/// inner loop over contiguous memory that the compiler vectorises.
fn gram(rows: &[f64], d: usize, w: &[f64], h: &mut [f64]) {
    let n = w.len();
    let mut i = 0;
    while i + 4 <= n {
        let [z0, z1, z2, z3] = four_rows(rows, d, i);
        for a in 0..d {
            let s = [w[i] * z0[a], w[i + 1] * z1[a], w[i + 2] * z2[a], w[i + 3] * z3[a]];
            let lower = &mut h[a * d..a * d + a + 1];
            for ((((hb, &x0), &x1), &x2), &x3) in lower
                .iter_mut()
                .zip(&z0[..=a])
                .zip(&z1[..=a])
                .zip(&z2[..=a])
                .zip(&z3[..=a])
            {
                *hb += (s[0] * x0 + s[1] * x1) + (s[2] * x2 + s[3] * x3);
            }
        }
        i += 4;
    }
    for i in i..n {
        let z = &rows[i * d..(i + 1) * d];
        for a in 0..d {
            let s = w[i] * z[a];
            for (hb, &x) in h[a * d..a * d + a + 1].iter_mut().zip(&z[..=a]) {
                *hb += s * x;
            }
        }
    }
    for a in 0..d {
        for b in 0..a {
            h[b * d + a] = h[a * d + b];
        }
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    // Four accumulators: a fixed order (deterministic) that still vectorises.
    let mut acc = [0.0f64; 4];
    let mut ca = a.chunks_exact(4);
    let mut cb = b.chunks_exact(4);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for k in 0..4 {
            acc[k] += x[k] * y[k];
        }
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, y) in ca.remainder().iter().zip(cb.remainder()) {
        s += x * y;
    }
    s
}

/// At `beta`: the negative log-likelihood plus the penalty (returned), each row's probability `σ(z_i·β)` into
/// `prob`, and the log-likelihood's gradient `Σ_i (y_i − p_i)·z_i` (no penalty) into `grad`, in one pass over
/// the rows.
fn evaluate(rows: &[f64], d: usize, beta: &[f64], y: &[f64], l2: f64, prob: &mut [f64], grad: &mut [f64]) -> f64 {
    grad.iter_mut().for_each(|v| *v = 0.0);
    let mut l = 0.0;
    let mut row = |z: &[f64], yi: f64, p: &mut f64| -> f64 {
        let e = dot(z, beta);
        // log(1 + exp(e)) − y·e, computed stably, and σ(e) (as `model::sigmoid` computes it) from the same
        // exp(−|e|).
        let x = (-e.abs()).exp();
        let softplus = if e > 0.0 { e + x.ln_1p() } else { x.ln_1p() };
        *p = if e >= 0.0 { 1.0 / (1.0 + x) } else { x / (1.0 + x) };
        l += softplus - yi * e;
        yi - *p
    };
    // Four rows at a time into the gradient (as in `gram`).
    let n = y.len();
    let mut i = 0;
    while i + 4 <= n {
        let [z0, z1, z2, z3] = four_rows(rows, d, i);
        let ps = &mut prob[i..i + 4];
        let r0 = row(z0, y[i], &mut ps[0]);
        let r1 = row(z1, y[i + 1], &mut ps[1]);
        let r2 = row(z2, y[i + 2], &mut ps[2]);
        let r3 = row(z3, y[i + 3], &mut ps[3]);
        for ((((gj, &x0), &x1), &x2), &x3) in grad.iter_mut().zip(z0).zip(z1).zip(z2).zip(z3) {
            *gj += (r0 * x0 + r1 * x1) + (r2 * x2 + r3 * x3);
        }
        i += 4;
    }
    for i in i..n {
        let z = &rows[i * d..(i + 1) * d];
        let r = row(z, y[i], &mut prob[i]);
        for (gj, &zj) in grad.iter_mut().zip(z) {
            *gj += r * zj;
        }
    }
    l + 0.5 * l2 * beta[1..].iter().map(|b| b * b).sum::<f64>()
}

/// Solves `H·s = g` for a symmetric positive definite `H` (Cholesky; a small ridge is added if needed).
pub(crate) fn solve_spd(h: &[f64], g: &[f64], d: usize) -> Option<Vec<f64>> {
    let scale = (0..d).map(|i| h[i * d + i].abs()).fold(0.0f64, f64::max).max(1e-300);
    for jitter in [0.0, 1e-10, 1e-8, 1e-6, 1e-4] {
        let mut l = vec![0.0; d * d];
        let mut ok = true;
        'outer: for i in 0..d {
            for j in 0..=i {
                let mut s = h[i * d + j];
                if i == j {
                    s += jitter * scale;
                }
                for k in 0..j {
                    s -= l[i * d + k] * l[j * d + k];
                }
                if i == j {
                    if s <= 0.0 || !s.is_finite() {
                        ok = false;
                        break 'outer;
                    }
                    l[i * d + i] = s.sqrt();
                } else {
                    l[i * d + j] = s / l[j * d + j];
                }
            }
        }
        if !ok {
            continue;
        }
        let mut z = vec![0.0; d];
        for i in 0..d {
            let mut s = g[i];
            for k in 0..i {
                s -= l[i * d + k] * z[k];
            }
            z[i] = s / l[i * d + i];
        }
        let mut x = vec![0.0; d];
        for i in (0..d).rev() {
            let mut s = z[i];
            for k in i + 1..d {
                s -= l[k * d + i] * x[k];
            }
            x[i] = s / l[i * d + i];
        }
        return Some(x);
    }
    None
}

/// Platt scaling: fits `P(bad) = σ(a + b·s)` on scores `s` (log-odds of bad). Returns `(a, b)`.
pub(crate) fn platt(s: &[f64], y: &[u8]) -> (f64, f64) {
    let yf: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    let (a, b) = fit(&[s.to_vec()], &yf, 0.0, None);
    (a, b[0])
}
