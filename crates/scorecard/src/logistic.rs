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
        // Row by row, the cells before column k and those after it move down over the gap (in place: a row's
        // new place never starts after its old one).
        for i in 0..n {
            let (from, to) = (i * d, i * (d - 1));
            self.rows.copy_within(from..from + k, to);
            self.rows.copy_within(from + k + 1..from + d, to + k);
        }
        self.rows.truncate(n * (d - 1));
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

/// The row loops below (`gram`, `evaluate`) run compiled for the widest vector instructions this CPU has (AVX2
/// where present, detected at run time by `pulp`, whose `vectorize` compiles them with the AVX2 target
/// features): they are written so that the compiler vectorises them, and wider vectors halve their
/// instructions. The results are bit-identical on every path: Rust never fuses a
/// multiply and an add, and the loops fix their order of operations, so only the width of the registers
/// changes. Everything `vectorize` runs is `#[inline(always)]`, so that it is compiled with those features
/// (a closure would not be).
struct Gram<'a> {
    rows: &'a [f64],
    d: usize,
    w: &'a [f64],
    h: &'a mut [f64],
}

impl pulp::NullaryFnOnce for Gram<'_> {
    type Output = ();
    #[inline(always)]
    fn call(self) {
        gram_rows(self.rows, self.d, self.w, self.h)
    }
}

/// Rows `i` to `i + 3` of a row-major matrix `d` wide.
#[inline(always)]
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
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return simd.vectorize(Gram { rows, d, w, h });
    }
    gram_rows(rows, d, w, h)
}

#[inline(always)]
fn gram_rows(rows: &[f64], d: usize, w: &[f64], h: &mut [f64]) {
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

/// `z·beta` for one row: four partial sums over the chunks of four (lane `k` takes elements `4c + k`), added as
/// `(s0 + s1) + (s2 + s3)`, then the remainder in order. A fixed order (deterministic) that vectorises.
#[inline(always)]
fn dot(z: &[f64], beta: &[f64]) -> f64 {
    let mut acc = [0.0f64; 4];
    let (zc, zr) = z.as_chunks::<4>();
    let (bc, br) = beta.as_chunks::<4>();
    for (x, b) in zc.iter().zip(bc) {
        acc = [
            acc[0] + x[0] * b[0],
            acc[1] + x[1] * b[1],
            acc[2] + x[2] * b[2],
            acc[3] + x[3] * b[3],
        ];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for (x, b) in zr.iter().zip(br) {
        s += x * b;
    }
    s
}

/// [`dot`] for four rows at once (each `beta` chunk is loaded once), with the same order of operations per row.
#[inline(always)]
fn dot4(z: [&[f64]; 4], beta: &[f64]) -> [f64; 4] {
    let mut acc = [[0.0f64; 4]; 4];
    let (bc, br) = beta.as_chunks::<4>();
    let zc = z.map(|r| r.as_chunks::<4>().0);
    for (c, b) in bc.iter().enumerate() {
        for (a, r) in acc.iter_mut().zip(&zc) {
            let x = &r[c];
            *a = [
                a[0] + x[0] * b[0],
                a[1] + x[1] * b[1],
                a[2] + x[2] * b[2],
                a[3] + x[3] * b[3],
            ];
        }
    }
    let tail = bc.len() * 4;
    let mut out = [0.0; 4];
    for ((o, a), r) in out.iter_mut().zip(&acc).zip(z) {
        let mut s = (a[0] + a[1]) + (a[2] + a[3]);
        for (x, b) in r[tail..].iter().zip(br) {
            s += x * b;
        }
        *o = s;
    }
    out
}

/// At `beta`: the negative log-likelihood plus the penalty (returned), each row's probability `σ(z_i·β)` into
/// `prob`, and the log-likelihood's gradient `Σ_i (y_i − p_i)·z_i` (no penalty) into `grad`, in one pass over
/// the rows.
fn evaluate(rows: &[f64], d: usize, beta: &[f64], y: &[f64], l2: f64, prob: &mut [f64], grad: &mut [f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if let Some(simd) = pulp::x86::V3::try_new() {
        return simd.vectorize(Evaluate {
            lanes: Avx(simd),
            rows,
            d,
            beta,
            y,
            l2,
            prob,
            grad,
        });
    }
    evaluate_rows(Plain, rows, d, beta, y, l2, prob, grad)
}

/// [`evaluate`]'s arguments, for the vectorised dispatch (see [`Gram`]).
struct Evaluate<'a, L> {
    lanes: L,
    rows: &'a [f64],
    d: usize,
    beta: &'a [f64],
    y: &'a [f64],
    l2: f64,
    prob: &'a mut [f64],
    grad: &'a mut [f64],
}

impl<L: Dot4> pulp::NullaryFnOnce for Evaluate<'_, L> {
    type Output = f64;
    #[inline(always)]
    fn call(self) -> f64 {
        evaluate_rows(
            self.lanes, self.rows, self.d, self.beta, self.y, self.l2, self.prob, self.grad,
        )
    }
}

/// Four rows' dot products with `beta`, in [`dot`]'s order of operations.
trait Dot4: Copy {
    fn dot4(self, z: [&[f64]; 4], beta: &[f64]) -> [f64; 4];
}

/// [`dot4`] as written: what the compiler makes of it.
#[derive(Clone, Copy)]
struct Plain;

impl Dot4 for Plain {
    #[inline(always)]
    fn dot4(self, z: [&[f64]; 4], beta: &[f64]) -> [f64; 4] {
        dot4(z, beta)
    }
}

/// [`dot4`] in AVX registers: lane `k` of a row's register is its partial sum `k`, so the result is [`Plain`]'s,
/// bit for bit (the compiler, left to itself, shuffles the four rows' partial sums across registers).
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx(pulp::x86::V3);

#[cfg(target_arch = "x86_64")]
impl Dot4 for Avx {
    #[inline(always)]
    fn dot4(self, z: [&[f64]; 4], beta: &[f64]) -> [f64; 4] {
        use std::arch::x86_64::__m256d;
        let avx = self.0.avx;
        let mut acc: [__m256d; 4] = [pulp::cast([0.0f64; 4]); 4];
        let (bc, br) = beta.as_chunks::<4>();
        let zc = z.map(|r| r.as_chunks::<4>().0);
        for (c, b) in bc.iter().enumerate() {
            let b: __m256d = pulp::cast(*b);
            for (a, r) in acc.iter_mut().zip(&zc) {
                *a = avx._mm256_add_pd(*a, avx._mm256_mul_pd(pulp::cast(r[c]), b));
            }
        }
        let tail = bc.len() * 4;
        let mut out = [0.0; 4];
        for ((o, a), r) in out.iter_mut().zip(acc).zip(z) {
            let a: [f64; 4] = pulp::cast(a);
            let mut s = (a[0] + a[1]) + (a[2] + a[3]);
            for (x, b) in r[tail..].iter().zip(br) {
                s += x * b;
            }
            *o = s;
        }
        out
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn evaluate_rows(
    lanes: impl Dot4,
    rows: &[f64],
    d: usize,
    beta: &[f64],
    y: &[f64],
    l2: f64,
    prob: &mut [f64],
    grad: &mut [f64],
) -> f64 {
    grad.iter_mut().for_each(|v| *v = 0.0);
    // The loss is Σ softplus(e) − y·e with softplus(e) = max(e, 0) + ln(1 + exp(−|e|)). The logarithms are
    // taken of products of the factors 1 + exp(−|e|) (each in [1, 2]), one per PRODUCT_ROWS rows: the
    // product stays far from overflow, and the loss differs from a sum of `ln_1p` by rounding only (about
    // 1e-16 of each factor), far below the 1e-12 of the loss the line search compares with.
    const PRODUCT_ROWS: usize = 512;
    let (mut l, mut product, mut factors) = (0.0, 1.0, 0);
    let mut row = |e: f64, yi: f64, p: &mut f64| -> f64 {
        // σ(e) (as `model::sigmoid` computes it) from exp(−|e|).
        let x = (-e.abs()).exp();
        let one_x = 1.0 + x;
        *p = if e >= 0.0 { 1.0 / one_x } else { x / one_x };
        l += e.max(0.0) - yi * e;
        product *= one_x;
        factors += 1;
        if factors == PRODUCT_ROWS {
            l += product.ln();
            (product, factors) = (1.0, 0);
        }
        yi - *p
    };
    // Four rows at a time into the gradient (as in `gram`).
    let n = y.len();
    let mut i = 0;
    while i + 4 <= n {
        let z = four_rows(rows, d, i);
        let e = lanes.dot4(z, beta);
        let [z0, z1, z2, z3] = z;
        let ps = &mut prob[i..i + 4];
        let r0 = row(e[0], y[i], &mut ps[0]);
        let r1 = row(e[1], y[i + 1], &mut ps[1]);
        let r2 = row(e[2], y[i + 2], &mut ps[2]);
        let r3 = row(e[3], y[i + 3], &mut ps[3]);
        for ((((gj, &x0), &x1), &x2), &x3) in grad.iter_mut().zip(z0).zip(z1).zip(z2).zip(z3) {
            *gj += (r0 * x0 + r1 * x1) + (r2 * x2 + r3 * x3);
        }
        i += 4;
    }
    for i in i..n {
        let z = &rows[i * d..(i + 1) * d];
        let r = row(dot(z, beta), y[i], &mut prob[i]);
        for (gj, &zj) in grad.iter_mut().zip(z) {
            *gj += r * zj;
        }
    }
    l += product.ln();
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic design: `n` rows of `d` cells (the first 1) with varied magnitudes and signs.
    fn design(n: usize, d: usize) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut s = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        };
        let rows: Vec<f64> = (0..n * d)
            .map(|k| if k % d == 0 { 1.0 } else { next() * 3.0 })
            .collect();
        let y: Vec<f64> = (0..n).map(|_| f64::from(next() > 0.3)).collect();
        let beta: Vec<f64> = (0..d).map(|_| next()).collect();
        (rows, y, beta)
    }

    #[test]
    fn every_instruction_set_gives_the_same_bits() {
        for d in [1, 2, 3, 4, 5, 7, 8, 13, 44] {
            let n = 103;
            let (rows, y, beta) = design(n, d);
            let (mut p1, mut g1) = (vec![0.0; n], vec![0.0; d]);
            let (mut p2, mut g2) = (vec![0.0; n], vec![0.0; d]);
            let l1 = evaluate(&rows, d, &beta, &y, 0.5, &mut p1, &mut g1);
            let l2 = evaluate_rows(Plain, &rows, d, &beta, &y, 0.5, &mut p2, &mut g2);
            assert_eq!(l1.to_bits(), l2.to_bits(), "loss, d = {d}");
            assert!(
                p1.iter().zip(&p2).all(|(a, b)| a.to_bits() == b.to_bits()),
                "probabilities, d = {d}"
            );
            assert!(
                g1.iter().zip(&g2).all(|(a, b)| a.to_bits() == b.to_bits()),
                "gradient, d = {d}"
            );
            // And four rows at once are each row alone.
            for i in 0..n / 4 {
                let z = four_rows(&rows, d, 4 * i);
                let e = Plain.dot4(z, &beta);
                for (k, zk) in z.iter().enumerate() {
                    assert_eq!(e[k].to_bits(), dot(zk, &beta).to_bits(), "row {}, d = {d}", 4 * i + k);
                }
                #[cfg(target_arch = "x86_64")]
                if let Some(simd) = pulp::x86::V3::try_new() {
                    let a = simd.vectorize(|| Avx(simd).dot4(z, &beta));
                    assert_eq!(
                        a.map(f64::to_bits),
                        e.map(f64::to_bits),
                        "AVX, rows {}.., d = {d}",
                        4 * i
                    );
                }
            }
        }
    }

    #[test]
    fn the_hessian_is_the_same_on_every_instruction_set() {
        for d in [1, 3, 4, 5, 13, 44] {
            let n = 103;
            let (rows, _, w) = design(n, d);
            let w: Vec<f64> = (0..n).map(|i| 0.1 + w[i % d].abs()).collect();
            let (mut h1, mut h2) = (vec![0.0; d * d], vec![0.0; d * d]);
            gram(&rows, d, &w, &mut h1);
            gram_rows(&rows, d, &w, &mut h2);
            assert!(h1.iter().zip(&h2).all(|(a, b)| a.to_bits() == b.to_bits()), "d = {d}");
        }
    }

    #[test]
    fn the_loss_from_products_is_the_sum_of_softplus_terms() {
        // β = 0: every factor is exactly 2, so a product of more than 1,023 rows would overflow; the loss is
        // n·ln 2 (the flush every PRODUCT_ROWS rows is what keeps it finite).
        let (n, d) = (2000, 3);
        let (rows, y, _) = design(n, d);
        let (mut p, mut g) = (vec![0.0; n], vec![0.0; d]);
        let l = evaluate(&rows, d, &[0.0; 3], &y, 0.0, &mut p, &mut g);
        let want = n as f64 * std::f64::consts::LN_2;
        assert!((l - want).abs() <= 1e-12 * want, "{l} vs {want}");
        for n in [1, 5, 511, 512, 513, 2000] {
            let d = 6;
            let (rows, y, beta) = design(n, d);
            let (mut p, mut g) = (vec![0.0; n], vec![0.0; d]);
            let l = evaluate(&rows, d, &beta, &y, 0.0, &mut p, &mut g);
            let direct: f64 = (0..n)
                .map(|i| {
                    let e = dot(&rows[i * d..(i + 1) * d], &beta);
                    let softplus = e.max(0.0) + (-e.abs()).exp().ln_1p();
                    softplus - y[i] * e
                })
                .sum();
            assert!(
                (l - direct).abs() <= 1e-13 * direct.abs().max(1.0),
                "n = {n}: {l} vs {direct}"
            );
        }
    }
}
