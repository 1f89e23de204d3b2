//! The logistic fit: it reaches the penalised optimum whatever Hessian it is warm-started with, and the WoE
//! card's drop loop (loosely converged intermediate fits) decides exactly as fully converged fits did.

use std::fs::File;
use xinyong_scorecard::logistic::{self, Design};
use xinyong_scorecard::{fit, read_csv, FitConfig, Method};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

/// A reproducible problem: `p` correlated columns, a few of them with few distinct values (as WoE columns).
fn problem(n: usize, p: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
    let mut s = seed;
    let mut u = || {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((s >> 11) as f64) / ((1u64 << 53) as f64)
    };
    let mut x = vec![vec![0.0; n]; p];
    let mut y = vec![0.0; n];
    for i in 0..n {
        let common = u() - 0.5;
        let mut eta = -2.5;
        for (j, col) in x.iter_mut().enumerate() {
            let v = if j % 3 == 0 {
                ((u() * 5.0).floor() - 2.0) * 0.4
            } else {
                common + u() - 0.5
            };
            col[i] = v;
            eta += v * (j as f64 - p as f64 / 2.0) / p as f64;
        }
        y[i] = if u() < 1.0 / (1.0 + (-eta).exp()) { 1.0 } else { 0.0 };
    }
    (x, y)
}

/// The largest entry of the penalised log-likelihood's gradient at `(b0, b)`: zero at the optimum.
fn kkt(x: &[Vec<f64>], y: &[f64], l2: f64, b0: f64, b: &[f64]) -> f64 {
    let n = y.len();
    let r: Vec<f64> = (0..n)
        .map(|i| {
            let e = b0 + x.iter().zip(b).map(|(c, bj)| c[i] * bj).sum::<f64>();
            y[i] - 1.0 / (1.0 + (-e).exp())
        })
        .collect();
    let mut worst = r.iter().sum::<f64>().abs();
    for (c, bj) in x.iter().zip(b) {
        let g: f64 = c.iter().zip(&r).map(|(a, b)| a * b).sum::<f64>() - l2 * bj;
        worst = worst.max(g.abs());
    }
    worst
}

#[test]
fn the_fit_reaches_the_penalised_optimum_from_any_warm_start() {
    let (x, y) = problem(3001, 13, 7);
    let l2 = 1.0;
    let (b0, b) = logistic::fit(&x, &y, l2, None);
    assert!(
        kkt(&x, &y, l2, b0, &b) < 1e-6,
        "gradient {} at the cold fit",
        kkt(&x, &y, l2, b0, &b)
    );
    // Warm-started from far away with the Hessian of another problem (another outcome): the same optimum.
    let (_, y2) = problem(3001, 13, 99);
    let other = logistic::fit_warm(&x, &y2, l2, None, None);
    let start = vec![1.0; 14];
    let warm = logistic::fit_warm(&x, &y, l2, Some(&start), Some(other.hessian));
    assert!((warm.intercept - b0).abs() < 1e-8);
    for (a, c) in warm.coefficients.iter().zip(&b) {
        assert!((a - c).abs() < 1e-8, "{a} vs {c}");
    }
    // A Hessian of the wrong size is ignored, not trusted.
    let odd = logistic::fit_warm(&x, &y, l2, None, Some(vec![1.0; 3]));
    assert!((odd.intercept - b0).abs() < 1e-8);
}

#[test]
fn removing_a_feature_from_a_design_equals_building_it_without() {
    let (mut x, y) = problem(1003, 6, 3);
    let mut d = Design::from_columns(&x, y.len());
    d.remove_feature(2);
    x.remove(2);
    assert_eq!(d.features(), 5);
    let a = logistic::fit_design(&d, &y, 0.5, None, None, logistic::TOLERANCE);
    let (b0, b) = logistic::fit(&x, &y, 0.5, None);
    assert_eq!(a.intercept.to_bits(), b0.to_bits());
    assert_eq!(a.coefficients, b);
}

/// `tests/data/polish1_woe_card.json` holds the card of the Polish year-1 file as fitted when every fit of the
/// drop loop was converged in full: the same features dropped in the same order with the same reasons, the same
/// features kept, and coefficients equal to 1e-8.
#[test]
fn the_drop_loop_decides_as_fully_converged_fits_did() {
    let golden: serde_json::Value = serde_json::from_reader(
        File::open(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/polish1_woe_card.json")).unwrap(),
    )
    .unwrap();
    let f = File::open(format!("{DATA}/polish_bankruptcy_1year.csv")).expect("polish_bankruptcy_1year.csv");
    let (t, y, _) = read_csv(f, "class", None).unwrap();
    let cfg = FitConfig {
        method: Method::WoeLogistic,
        ..FitConfig::default()
    };
    let m = fit(&t, &y, &cfg).unwrap();
    let dropped: Vec<(String, String)> = m
        .training
        .dropped
        .iter()
        .map(|d| (d.name.clone(), d.reason.clone()))
        .collect();
    let want_dropped: Vec<(String, String)> = golden["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d[0].as_str().unwrap().to_string(), d[1].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(dropped, want_dropped);
    let kept = golden["kept"].as_array().unwrap();
    assert_eq!(m.features.len(), kept.len());
    for (f, k) in m.features.iter().zip(kept) {
        assert_eq!(f.name, k[0].as_str().unwrap());
        assert!((f.coefficient - k[1].as_f64().unwrap()).abs() < 1e-8, "{}", f.name);
    }
    assert!((m.intercept - golden["intercept"].as_f64().unwrap()).abs() < 1e-8);
}
