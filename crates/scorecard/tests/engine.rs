//! The engine on small hand-made tables: scaling, WoE and IV, binning rules, missing and special values, scoring.

use std::collections::BTreeMap;
use xinyong_scorecard::{
    fit, BinKind, Column, Error, FeatureKind, FitConfig, Method, Model, Monotonic, Scaling, Table, Value,
};

/// A small deterministic generator for synthetic tables.
struct Lcg(u64);

impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn woe_cfg() -> FitConfig {
    FitConfig {
        iv_min: 0.0,
        ..FitConfig::woe()
    }
}

#[test]
fn worked_scaling_check() {
    // 600 points at 50:1 (good:bad), 20 points to double the odds.
    let s = Scaling::default();
    assert_eq!((s.points0, s.odds0, s.pdo), (600.0, 50.0, 20.0));
    // Factor = 20 / ln 2 = 28.853900817779268; Offset = 600 − 28.8539·ln 50 = 600 − 112.8771 = 487.1229.
    assert!((s.factor() - 28.8539).abs() < 5e-5, "factor {}", s.factor());
    assert!((s.offset() - 487.123).abs() < 5e-4, "offset {}", s.offset());
    assert!((s.points(50f64.ln()) - 600.0).abs() < 1e-9);
    assert!((s.points(100f64.ln()) - 620.0).abs() < 1e-9);
    assert!((s.points(25f64.ln()) - 580.0).abs() < 1e-9);
}

/// Category A: 4 rows, 1 bad; B: 4 rows, 2 bad; C: 2 rows, 2 bad. 5 goods, 5 bads in all.
fn tiny() -> (Table, Vec<u8>) {
    let cats = ["A", "A", "A", "A", "B", "B", "B", "B", "C", "C"];
    let y = vec![1, 0, 0, 0, 1, 1, 0, 0, 1, 1];
    let t = Table {
        names: vec!["c".into()],
        columns: vec![Column::Categorical(cats.iter().map(|s| Some(s.to_string())).collect())],
    };
    (t, y)
}

#[test]
fn woe_and_iv_by_hand() {
    let (t, y) = tiny();
    let m = fit(&t, &y, &woe_cfg()).unwrap();
    let f = &m.features[0];
    // WoE = ln(%good / %bad):
    //   A: %good 3/5, %bad 1/5 → ln 3 = 1.0986123
    //   B: 2/5, 2/5 → 0
    //   C: no goods → 0.5 added to both counts: (0.5/5) / (2.5/5) → ln 0.2 = −1.6094379
    // IV = (0.6 − 0.2)·ln 3 + 0 + (0.1 − 0.5)·ln 0.2 = 0.4394449 + 0.6437752 = 1.0832201
    let woe = |name: &str| {
        let b = f
            .bins
            .iter()
            .find(|b| b.kind == BinKind::Categories(vec![name.to_string()]))
            .unwrap();
        b.woe
    };
    assert!((woe("A") - 3f64.ln()).abs() < 1e-12);
    assert!(woe("B").abs() < 1e-12);
    assert!((woe("C") - 0.2f64.ln()).abs() < 1e-12);
    assert!((f.iv - 1.0832201).abs() < 1e-6, "iv {}", f.iv);
    // Categories in event-rate order, then other and missing (empty, WoE 0).
    let labels: Vec<&str> = f.bins.iter().map(|b| b.label.as_str()).collect();
    assert_eq!(labels, ["A", "B", "C", "other", "missing"]);
    assert_eq!((f.bins[3].count, f.bins[3].woe), (0, 0.0));
    // An unseen category scores as "other".
    let s = m.score(&|_| Value::Cat("Z"));
    assert_eq!(s.contributions[0].bin, 3);
}

/// x uniform on [0, 1000); P(bad) rises with x with a wobble, so raw quantile bins are not monotone.
fn wobbly(n: usize, seed: u64) -> (Table, Vec<u8>) {
    let mut r = Lcg(seed);
    let mut xs = Vec::new();
    let mut y = Vec::new();
    for _ in 0..n {
        let x = (r.unit() * 1000.0).floor();
        let p = 0.05 + 0.3 * x / 1000.0 + 0.08 * (x / 40.0).sin();
        xs.push(Some(x));
        y.push(u8::from(r.unit() < p));
    }
    (
        Table {
            names: vec!["x".into()],
            columns: vec![Column::Numeric(xs)],
        },
        y,
    )
}

fn range_rates(m: &Model) -> Vec<f64> {
    m.features[0]
        .bins
        .iter()
        .filter(|b| matches!(b.kind, BinKind::Range { .. }))
        .map(|b| b.bads as f64 / b.count as f64)
        .collect()
}

#[test]
fn monotonic_binning_gives_monotone_event_rates() {
    let (t, y) = wobbly(5000, 7);
    for (mono, rising) in [
        (Monotonic::Auto, Some(true)),
        (Monotonic::Ascending, Some(true)),
        (Monotonic::Descending, Some(false)),
    ] {
        let cfg = FitConfig {
            monotonic: mono,
            drop_wrong_sign: false,
            ..woe_cfg()
        };
        let m = fit(&t, &y, &cfg).unwrap();
        let r = range_rates(&m);
        assert!(!r.is_empty() && r.len() <= cfg.max_bins);
        for w in r.windows(2) {
            match rising {
                Some(true) => assert!(w[0] < w[1], "{mono:?}: {r:?}"),
                _ => assert!(w[0] > w[1], "{mono:?}: {r:?}"),
            }
        }
        if mono == Monotonic::Auto {
            assert!(r.len() >= 4, "the rising trend keeps several bins: {r:?}");
        }
        for b in &m.features[0].bins {
            if matches!(b.kind, BinKind::Range { .. }) {
                assert!(b.count as f64 >= 0.05 * 5000.0, "bin {} holds {}", b.label, b.count);
            }
        }
    }
    // Without the constraint the wobble shows.
    let cfg = FitConfig {
        monotonic: Monotonic::Off,
        max_bins: 20,
        drop_wrong_sign: false,
        ..woe_cfg()
    };
    let r = range_rates(&fit(&t, &y, &cfg).unwrap());
    assert!(r.windows(2).any(|w| w[0] > w[1]), "{r:?}");
}

#[test]
fn fixed_splits_are_used_verbatim() {
    let (t, y) = wobbly(2000, 3);
    let mut fixed = BTreeMap::new();
    fixed.insert("x".to_string(), vec![700.0, 100.0, 250.5]);
    for method in [Method::WoeLogistic, Method::BoostedAdditive] {
        let cfg = FitConfig {
            fixed_splits: fixed.clone(),
            method,
            drop_wrong_sign: false,
            ..woe_cfg()
        };
        let m = fit(&t, &y, &cfg).unwrap();
        let ranges: Vec<(f64, f64)> = m.features[0]
            .bins
            .iter()
            .filter_map(|b| match b.kind {
                BinKind::Range { lo, hi } => Some((lo, hi)),
                _ => None,
            })
            .collect();
        if method == Method::WoeLogistic {
            let inf = f64::INFINITY;
            assert_eq!(ranges, [(-inf, 100.0), (100.0, 250.5), (250.5, 700.0), (700.0, inf)]);
            assert_eq!(m.features[0].bins[1].label, "[100, 250.5)");
        } else {
            // The boosted card refines them: every fixed split is a bin edge.
            for s in [100.0, 250.5, 700.0] {
                assert!(ranges.iter().any(|r| r.0 == s), "{s} in {ranges:?}");
            }
        }
    }
}

#[test]
fn missing_and_special_values_get_their_own_bins() {
    let mut r = Lcg(11);
    let mut xs = Vec::new();
    let mut y = Vec::new();
    for i in 0..3000 {
        let (x, p) = match i % 10 {
            0 => (None, 0.6),
            1 => (Some(-999.0), 0.02),
            _ => {
                let x = r.unit() * 100.0;
                (Some(x), 0.1 + 0.2 * x / 100.0)
            }
        };
        xs.push(x);
        y.push(u8::from(r.unit() < p));
    }
    let t = Table {
        names: vec!["x".into()],
        columns: vec![Column::Numeric(xs)],
    };
    let mut special = BTreeMap::new();
    special.insert("x".to_string(), vec![-999.0]);
    let cfg = FitConfig {
        special_values: special,
        ..woe_cfg()
    };
    let m = fit(&t, &y, &cfg).unwrap();
    let f = &m.features[0];
    assert_eq!(f.kind, FeatureKind::Numeric);
    let sp = f.bins.iter().position(|b| b.kind == BinKind::Special(-999.0)).unwrap();
    let mi = f.bins.iter().position(|b| b.kind == BinKind::Missing).unwrap();
    assert_eq!(f.bins[sp].count, 300);
    assert_eq!(f.bins[mi].count, 300);
    assert!(f.bins[sp].woe > 1.0, "specials are safe: {}", f.bins[sp].woe);
    assert!(f.bins[mi].woe < -0.5, "missing is risky: {}", f.bins[mi].woe);
    // No range bin holds the special value.
    assert!(f.bins.iter().all(|b| match b.kind {
        BinKind::Range { lo, .. } => lo > -999.0 || lo == f64::NEG_INFINITY,
        _ => true,
    }));
    let bin = |v: Value| m.score(&|_| v).contributions[0].bin;
    assert_eq!(bin(Value::Missing), mi);
    assert_eq!(bin(Value::Num(f64::NAN)), mi);
    assert_eq!(bin(Value::Cat("not a number")), mi);
    assert_eq!(bin(Value::Cat("")), mi);
    assert_eq!(bin(Value::Num(-999.0)), sp);
    assert_eq!(bin(Value::Cat("-999")), sp);
    // ±inf are extreme values: the first and last ranges.
    assert_eq!(bin(Value::Num(f64::NEG_INFINITY)), 0);
    let last = f
        .bins
        .iter()
        .rposition(|b| matches!(b.kind, BinKind::Range { .. }))
        .unwrap();
    assert_eq!(bin(Value::Num(f64::INFINITY)), last);
    assert_eq!(bin(Value::Cat("inf")), last);
}

#[test]
fn points_add_up_to_the_scaled_linear_predictor() {
    let (t, y) = wobbly(3000, 5);
    for method in [Method::WoeLogistic, Method::BoostedAdditive] {
        let cfg = FitConfig { method, ..woe_cfg() };
        let m = fit(&t, &y, &cfg).unwrap();
        for s in m.score_table(&t).unwrap() {
            let expect = m.scaling.offset() + m.scaling.factor() * (-s.log_odds_bad);
            assert!((s.points - expect).abs() < 1e-9, "{} vs {expect}", s.points);
            let sum: f64 = s.contributions.iter().map(|c| c.points).sum();
            assert_eq!(sum.to_bits(), s.points.to_bits());
        }
    }
}

#[test]
fn bad_input_is_an_error_not_a_panic() {
    let (t, _) = tiny();
    let all_good = vec![0u8; 10];
    assert!(matches!(fit(&t, &all_good, &woe_cfg()), Err(Error::OneClass { .. })));
    assert!(matches!(fit(&t, &[0, 1], &woe_cfg()), Err(Error::Shape(_))));
    let mut bad = vec![0u8; 10];
    bad[3] = 2;
    assert!(fit(&t, &bad, &woe_cfg()).is_err());
    let mut cfg = woe_cfg();
    cfg.fixed_splits.insert("nope".into(), vec![1.0]);
    let e = fit(&t, &tiny().1, &cfg).unwrap_err().to_string();
    assert!(e.contains("nope"), "{e}");
    let (t, y) = tiny();
    let m = fit(&t, &y, &woe_cfg()).unwrap();
    let other = Table {
        names: vec!["d".into()],
        columns: vec![Column::Numeric(vec![Some(1.0)])],
    };
    let e = m.score_table(&other).unwrap_err().to_string();
    assert!(e.contains("`c` not found"), "{e}");
    assert!(FitConfig::parse("max_bins = \"x\"").is_err());
    assert!(FitConfig::parse("{\"no_such_field\": 1}").is_err());
}

#[test]
fn config_reads_toml_and_json() {
    let c = FitConfig::parse("method = \"woe_logistic\"\nmax_bins = 5\n[fixed_splits]\nage = [25, 40]\n").unwrap();
    assert_eq!((c.method, c.max_bins), (Method::WoeLogistic, 5));
    assert_eq!(c.fixed_splits["age"], [25.0, 40.0]);
    assert_eq!(c.min_bin_share, 0.05);
    let j = FitConfig::parse("{\"boost\": {\"bins\": 16}, \"scaling\": {\"pdo\": 40}}").unwrap();
    assert_eq!((j.boost.bins, j.scaling.pdo, j.scaling.points0), (16, 40.0, 600.0));
}

#[test]
fn tiny_and_degenerate_tables_do_not_panic() {
    // 10 rows, 6 bags, pairs requested: some bags hold out no bad, no pair can be cut with 20 rows a quadrant.
    let (mut t, y) = tiny();
    t.names.push("n".into());
    t.columns
        .push(Column::Numeric((0..10).map(|i| Some(i as f64)).collect()));
    t.names.push("constant".into());
    t.columns.push(Column::Numeric(vec![Some(1.0); 10]));
    t.names.push("empty".into());
    t.columns.push(Column::Numeric(vec![None; 10]));
    for method in [Method::WoeLogistic, Method::BoostedAdditive] {
        let cfg = FitConfig { method, ..woe_cfg() };
        let m = fit(&t, &y, &cfg).unwrap();
        assert_eq!(m.score_table(&t).unwrap().len(), 10);
        assert!(m.score(&|_| Value::Missing).points.is_finite());
    }
    // Two rows only.
    let two = t.select_rows(&[0, 8]);
    for method in [Method::WoeLogistic, Method::BoostedAdditive] {
        let cfg = FitConfig { method, ..woe_cfg() };
        let m = fit(&two, &[0, 1], &cfg).unwrap();
        assert!(m.score_table(&two).unwrap().iter().all(|s| s.pd.is_finite()));
    }
    // No feature columns at all.
    let none = Table::default();
    assert!(matches!(fit(&none, &[0, 1], &woe_cfg()), Err(Error::NoFeatures(_))));
    // Nothing reaches iv_min.
    let cfg = FitConfig {
        iv_min: 10.0,
        ..woe_cfg()
    };
    assert!(matches!(fit(&t, &y, &cfg), Err(Error::NoFeatures(_))));
}
