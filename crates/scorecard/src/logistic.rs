//! Logistic regression by Newton's method (IRLS) with an L2 penalty on the coefficients, by hand: the problems
//! are small (tens of features), and a fixed sequence of operations keeps the fit deterministic.

use crate::model::sigmoid;

/// Fits `P(y = 1) = σ(b0 + Σ b_j x_j)`. `x` is column-major (one `Vec` per feature), `y` is 0/1. The penalty is
/// `½·l2·Σ b_j²` (the intercept is not penalised). `start` (intercept first) warm-starts the iterations.
/// Returns `(b0, b)`.
pub fn fit(x: &[Vec<f64>], y: &[f64], l2: f64, start: Option<&[f64]>) -> (f64, Vec<f64>) {
    let n = y.len();
    let p = x.len();
    let ybar = (y.iter().sum::<f64>() / n.max(1) as f64).clamp(1e-9, 1.0 - 1e-9);
    let mut beta = match start {
        Some(s) if s.len() == p + 1 => s.to_vec(),
        _ => {
            let mut b = vec![0.0; p + 1];
            b[0] = (ybar / (1.0 - ybar)).ln();
            b
        }
    };
    let mut eta = linear(x, &beta, n);
    let mut loss = penalised_loss(&eta, y, &beta, l2);
    for _ in 0..100 {
        // Gradient and Hessian of the penalised log-likelihood (to maximise), column by column (contiguous
        // loops the compiler vectorises).
        let d = p + 1;
        let mut w = vec![0.0; n];
        let mut r = vec![0.0; n];
        for i in 0..n {
            let pi = sigmoid(eta[i]);
            w[i] = (pi * (1.0 - pi)).max(1e-12);
            r[i] = y[i] - pi;
        }
        let mut g = vec![0.0; d];
        let mut h = vec![0.0; d * d];
        g[0] = r.iter().sum();
        h[0] = w.iter().sum();
        let mut wx = vec![0.0; n];
        for a in 1..d {
            let xa = &x[a - 1];
            g[a] = dot(xa, &r);
            for ((v, &wi), &xi) in wx.iter_mut().zip(&w).zip(xa) {
                *v = wi * xi;
            }
            h[a * d] = wx.iter().sum();
            h[a] = h[a * d];
            for b in 1..=a {
                let v = dot(&wx, &x[b - 1]);
                h[a * d + b] = v;
                h[b * d + a] = v;
            }
        }
        for j in 1..d {
            g[j] -= l2 * beta[j];
            h[j * d + j] += l2;
        }
        let Some(step) = solve_spd(&h, &g, d) else {
            break;
        };
        // Newton step with halving until the penalised loss does not increase.
        let mut t = 1.0;
        let mut accepted = false;
        for _ in 0..30 {
            let cand: Vec<f64> = beta.iter().zip(&step).map(|(b, s)| b + t * s).collect();
            let cand_eta = linear(x, &cand, n);
            let l = penalised_loss(&cand_eta, y, &cand, l2);
            if l <= loss + 1e-12 * loss.abs().max(1.0) {
                beta = cand;
                eta = cand_eta;
                loss = l;
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        let max_step = step.iter().fold(0.0f64, |m, s| m.max((t * s).abs()));
        if !accepted || max_step < 1e-10 {
            break;
        }
    }
    (beta[0], beta[1..].to_vec())
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

fn linear(x: &[Vec<f64>], beta: &[f64], n: usize) -> Vec<f64> {
    let mut eta = vec![beta[0]; n];
    for (j, col) in x.iter().enumerate() {
        let b = beta[j + 1];
        for (e, v) in eta.iter_mut().zip(col) {
            *e += b * v;
        }
    }
    eta
}

/// Negative log-likelihood plus the penalty.
fn penalised_loss(eta: &[f64], y: &[f64], beta: &[f64], l2: f64) -> f64 {
    let mut l = 0.0;
    for (&e, &yi) in eta.iter().zip(y) {
        // log(1 + exp(e)) − y·e, computed stably.
        let softplus = if e > 0.0 {
            e + (-e).exp().ln_1p()
        } else {
            e.exp().ln_1p()
        };
        l += softplus - yi * e;
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
