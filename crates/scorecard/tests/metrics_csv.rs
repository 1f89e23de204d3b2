//! Metrics against brute force and known examples; the CSV reader's typing and error messages.

use xinyong_scorecard::metrics::{auc, bootstrap_auc_pair, calibration_table, gini, ks, psi, quantile, quantile_edges};
use xinyong_scorecard::{read_csv, Column, Error};

#[test]
fn auc_equals_the_pairwise_count() {
    // Scores with many ties.
    let mut s = Vec::new();
    let mut y = Vec::new();
    let mut x = 12345u64;
    for _ in 0..600 {
        x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let score = ((x >> 40) % 17) as f64;
        let bad = u8::from(((x >> 20) % 100) as f64 <= 20.0 + 3.0 * score);
        s.push(score);
        y.push(bad);
    }
    let mut wins = 0.0;
    let mut pairs = 0.0;
    for i in 0..s.len() {
        for j in 0..s.len() {
            if y[i] == 1 && y[j] == 0 {
                pairs += 1.0;
                if s[i] > s[j] {
                    wins += 1.0;
                } else if s[i] == s[j] {
                    wins += 0.5;
                }
            }
        }
    }
    let a = auc(&s, &y);
    assert!((a - wins / pairs).abs() < 1e-12, "{a} vs {}", wins / pairs);
    assert!((gini(a) - (2.0 * a - 1.0)).abs() < 1e-15);
    assert_eq!(auc(&[1.0, 2.0, 3.0], &[0, 1, 1]), 1.0);
    assert_eq!(auc(&[1.0, 1.0], &[0, 1]), 0.5);
    assert!(auc(&[1.0, 2.0], &[1, 1]).is_nan());
}

#[test]
fn ks_on_a_small_example() {
    // Sorted risky first: bad, bad, good, bad, good, good. After two rows: 2/3 of bads, 0 goods → KS 2/3.
    let s = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0];
    let y = [1, 1, 0, 1, 0, 0];
    assert!((ks(&s, &y) - 2.0 / 3.0).abs() < 1e-12);
    // Ties move together: all equal → 0.
    assert_eq!(ks(&[1.0; 4], &[1, 0, 1, 0]), 0.0);
}

#[test]
fn psi_on_a_known_example() {
    // Expected 1..=100 → quartile edges 26, 51, 76 → 25% each. Actual shares 10%, 20%, 30%, 40%:
    // PSI = (0.1−0.25)·ln(0.1/0.25) + (0.2−0.25)·ln(0.2/0.25) + (0.3−0.25)·ln(0.3/0.25) + (0.4−0.25)·ln(0.4/0.25)
    //     = 0.1374436 + 0.0111572 + 0.0091161 + 0.0705006 = 0.2282175
    let expected: Vec<f64> = (1..=100).map(f64::from).collect();
    assert_eq!(quantile_edges(&expected, 4), [26.0, 51.0, 76.0]);
    let mut actual = Vec::new();
    for (v, n) in [(1.0, 10), (30.0, 20), (60.0, 30), (90.0, 40)] {
        actual.extend(std::iter::repeat_n(v, n));
    }
    let p = psi(&expected, &actual, 4);
    assert!((p - 0.2282175).abs() < 1e-6, "{p}");
    assert!(psi(&expected, &expected, 10).abs() < 1e-15);
}

#[test]
fn calibration_bands() {
    let pd = [0.1, 0.1, 0.2, 0.2, 0.3, 0.3, 0.4, 0.9];
    let y = [0, 0, 0, 1, 0, 1, 1, 1];
    let t = calibration_table(&pd, &y, 4);
    assert_eq!(t.len(), 4);
    assert_eq!(t.iter().map(|b| b.count).sum::<u64>(), 8);
    assert_eq!((t[0].lo, t[0].hi, t[0].observed), (0.1, 0.1, 0.0));
    assert!((t[3].predicted - 0.65).abs() < 1e-12);
    assert_eq!(t[3].observed, 1.0);
    // Equal PDs never straddle two bands.
    let t = calibration_table(&[0.5; 5], &[0, 1, 0, 1, 0], 3);
    assert_eq!(t.len(), 1);
}

#[test]
fn csv_types_missing_and_infinity() {
    let text = "id,x,grade,junk,y\n\
                a,1.5,A,1,0\n\
                b,,B,two,1\n\
                c,inf,A,3,good\n\
                d,-inf,NA,4,BAD\n\
                e,NaN,C,five,0\n";
    let (t, y, ids) = read_csv(text.as_bytes(), "y", Some("id")).unwrap();
    assert_eq!(y, [0, 1, 0, 1, 0]);
    assert_eq!(ids.unwrap(), ["a", "b", "c", "d", "e"]);
    assert_eq!(t.names, ["x", "grade", "junk"]);
    assert_eq!(
        t.columns[0],
        Column::Numeric(vec![
            Some(1.5),
            None,
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None
        ])
    );
    match &t.columns[1] {
        Column::Categorical(v) => assert_eq!(v[3], None),
        c => panic!("{c:?}"),
    }
    // 3 of 5 cells numeric: below 95%, so categorical.
    assert!(matches!(t.columns[2], Column::Categorical(_)));
}

#[test]
fn csv_errors_name_the_row() {
    let e = read_csv("x,y\n1,0\n2,1\n3,maybe\n".as_bytes(), "y", None).unwrap_err();
    assert!(matches!(e, Error::BadTarget { row: 3, line: 4, .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("row 3") && msg.contains("maybe"), "{msg}");
    let e = read_csv("x,y\n1,0\n".as_bytes(), "target", None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("`target` not found") && e.contains("x, y"), "{e}");
    // One text cell among 40 numbers: a numeric column with a bad cell.
    let mut s = String::from("x,y\n");
    for i in 0..40 {
        s.push_str(&format!("{i},{}\n", i % 2));
    }
    s.push_str("oops,1\n");
    let e = read_csv(s.as_bytes(), "y", None).unwrap_err();
    assert!(matches!(e, Error::NotNumber { row: 41, .. }), "{e:?}");
    assert!(e.to_string().contains("`x`"));
    // Ragged rows are CSV errors, not panics.
    assert!(read_csv("x,y\n1,0,3\n".as_bytes(), "y", None).is_err());
    // An empty target cell is an error too.
    assert!(read_csv("x,y\n1,\n".as_bytes(), "y", None).is_err());
}

#[test]
fn quantiles_interpolate_between_order_statistics() {
    assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.5), 2.5);
    assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 0.0), 1.0);
    assert_eq!(quantile(&[4.0, 1.0, 3.0, 2.0], 1.0), 4.0);
    assert_eq!(quantile(&[5.0, 1.0, 3.0], 0.5), 3.0);
    assert!((quantile(&[0.0, 10.0], 0.975) - 9.75).abs() < 1e-12);
    assert!(quantile(&[], 0.5).is_nan());
}

/// The paired bootstrap resamples rows, keeping each row's two scores together: two equal scores get equal
/// AUCs in every resample, a perfect score gets 1, the same seed gives the same resamples, and the intervals
/// hold the full sample's AUC and narrow as the sample grows.
#[test]
fn the_paired_bootstrap_keeps_rows_together() {
    let sample = |n: usize| {
        let (mut s, mut y) = (Vec::new(), Vec::new());
        let mut x = 99u64;
        for _ in 0..n {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let score = ((x >> 33) % 1000) as f64 / 1000.0;
            let u = ((x >> 13) % 1000) as f64 / 1000.0;
            s.push(score);
            y.push(u8::from(u < 0.05 + 0.3 * score));
        }
        (s, y)
    };
    let (s, y) = sample(2000);
    let same = bootstrap_auc_pair(&s, &s, &y, 200, 7);
    assert_eq!(same.len(), 200);
    assert!(same.iter().all(|(a, b)| a == b));
    let perfect: Vec<f64> = y.iter().map(|&v| v as f64).collect();
    assert!(bootstrap_auc_pair(&perfect, &s, &y, 50, 7).iter().all(|p| p.0 == 1.0));
    assert_eq!(
        bootstrap_auc_pair(&s, &perfect, &y, 50, 7),
        bootstrap_auc_pair(&s, &perfect, &y, 50, 7)
    );
    assert_ne!(
        bootstrap_auc_pair(&s, &perfect, &y, 50, 7),
        bootstrap_auc_pair(&s, &perfect, &y, 50, 8)
    );
    let width = |n: usize| {
        let (s, y) = sample(n);
        let full = auc(&s, &y);
        let a: Vec<f64> = bootstrap_auc_pair(&s, &s, &y, 400, 1).iter().map(|p| p.0).collect();
        let (lo, hi) = (quantile(&a, 0.025), quantile(&a, 0.975));
        assert!(lo < full && full < hi, "{lo} {full} {hi}");
        hi - lo
    };
    let (narrow, wide) = (width(8000), width(500));
    assert!(narrow < wide / 2.0, "{narrow} {wide}");
    // One class only: no resample can have an AUC.
    assert!(bootstrap_auc_pair(&s, &s, &vec![0; s.len()], 10, 7).is_empty());
}
