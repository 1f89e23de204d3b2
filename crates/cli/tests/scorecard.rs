//! Integration tests of `xinyong scorecard`: fit, eval and show on German credit and a Polish validation split,
//! the `AUC x` last line against the reference, and clear errors (no panics) on bad input.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_xinyong");
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data");

fn run(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("scorecard")
        .args(args)
        .output()
        .expect("run xinyong")
}

fn ok(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "xinyong scorecard {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn last_auc(stdout: &str) -> f64 {
    let last = stdout.lines().last().expect("some output");
    let v = last
        .strip_prefix("AUC ")
        .unwrap_or_else(|| panic!("last line `{last}`"));
    v.parse().unwrap_or_else(|_| panic!("last line `{last}`"))
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn german_fit_eval_show() {
    let dir = tmp();
    let model: PathBuf = dir.path().join("german.json");
    let csv = format!("{DATA}/german_credit.csv");
    for method in ["woe", "boosted"] {
        let fit = ok(&[
            "fit",
            "--csv",
            &csv,
            "--target",
            "creditability",
            "--out",
            s(&model),
            "--method",
            method,
        ]);
        assert!(fit.contains("rows        1000 (300 bad"), "{fit}");
        assert!(fit.contains("status_of_existing_checking_account"), "{fit}");
        assert!(fit.contains("train AUC"), "{fit}");
        let scores = dir.path().join("scores.csv");
        let eval = ok(&[
            "eval",
            "--model",
            s(&model),
            "--csv",
            &csv,
            "--target",
            "creditability",
            "--scores",
            s(&scores),
        ]);
        assert!(
            eval.contains("KS") && eval.contains("Gini") && eval.contains("calibration"),
            "{eval}"
        );
        let auc = last_auc(&eval);
        assert!(auc > 0.8, "{method}: in-sample AUC {auc}");
        // The rows' scores, in the file's order: the same AUC from the points, PDs rising with the log-odds.
        let text = std::fs::read_to_string(&scores).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("points,log_odds_bad,pd"));
        let rows: Vec<[f64; 3]> = lines
            .map(|l| {
                let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
                [v[0], v[1], v[2]]
            })
            .collect();
        assert_eq!(rows.len(), 1000);
        let mut rdr = csv::Reader::from_path(&csv).unwrap();
        let col = rdr
            .headers()
            .unwrap()
            .iter()
            .position(|h| h == "creditability")
            .unwrap();
        let target: Vec<u8> = rdr
            .records()
            .map(|r| u8::from(r.unwrap()[col].trim() == "bad"))
            .collect();
        let risk: Vec<f64> = rows.iter().map(|r| -r[0]).collect();
        let from_file = xinyong_scorecard::metrics::auc(&risk, &target);
        assert!((from_file - auc).abs() < 1e-6, "{from_file} {auc}");
        assert!(rows.iter().all(|r| (0.0..=1.0).contains(&r[2])));
        let show = ok(&["show", "--model", s(&model)]);
        assert!(show.contains("Factor 28.8539, Offset 487.123"), "{show}");
        assert!(show.contains("no checking account"), "{show}");
        assert!(show.contains("IV 0.6660"), "{show}");
    }
}

#[test]
fn polish_split_reaches_the_reference() {
    let dir = tmp();
    let model = dir.path().join("p5.json");
    let v = format!("{DATA}/validation");
    ok(&[
        "fit",
        "--csv",
        &format!("{v}/polish_bankruptcy_5year_train.csv"),
        "--target",
        "class",
        "--out",
        s(&model),
    ]);
    let eval = ok(&[
        "eval",
        "--model",
        s(&model),
        "--csv",
        &format!("{v}/polish_bankruptcy_5year_test.csv"),
        "--target",
        "class",
    ]);
    // optbinning BinningProcess + WoE + logistic regression on the same split: 0.8775.
    let auc = last_auc(&eval);
    assert!(auc >= 0.8775, "test AUC {auc}");
}

#[test]
fn config_file_and_fixed_splits() {
    let dir = tmp();
    let cfg = dir.path().join("card.toml");
    std::fs::write(
        &cfg,
        "method = \"woe_logistic\"\niv_min = 0.0\n[fixed_splits]\nduration_in_month = [12, 24, 36]\n",
    )
    .unwrap();
    let model = dir.path().join("m.json");
    let csv = format!("{DATA}/german_credit.csv");
    ok(&[
        "fit",
        "--csv",
        &csv,
        "--target",
        "creditability",
        "--out",
        s(&model),
        "--config",
        s(&cfg),
    ]);
    let show = ok(&["show", "--model", s(&model)]);
    for label in ["[-inf, 12)", "[12, 24)", "[24, 36)", "[36, inf)"] {
        assert!(show.contains(label), "{label} in\n{show}");
    }
}

#[test]
fn malformed_input_is_a_clear_error() {
    let dir = tmp();
    let bad = dir.path().join("bad.csv");
    let mut text = String::from("a,b,target\n");
    for i in 0..50 {
        text.push_str(&format!("{i},{},{}\n", i % 7, i % 2));
    }
    text.push_str("51,3,perhaps\n");
    std::fs::write(&bad, text).unwrap();
    let model = dir.path().join("m.json");
    let out = run(&["fit", "--csv", s(&bad), "--target", "target", "--out", s(&model)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 51") && err.contains("perhaps"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!model.exists());

    let out = run(&["fit", "--csv", s(&bad), "--target", "nope", "--out", s(&model)]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`nope` not found") && !err.contains("panicked"), "{err}");

    std::fs::write(&model, "{\"version\": 1, \"features\": 3}").unwrap();
    let out = run(&["show", "--model", s(&model)]);
    assert!(!out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
}
