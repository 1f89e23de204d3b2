//! The catalogues are data: they parse, and the code computes exactly the indicators the catalogue documents.

use xinyong_credit::bench::{Benchmarks, Dist};
use xinyong_credit::data::{self, FirmData, Names, RawFact};
use xinyong_credit::features::{self, Force};
use xinyong_credit::score::ScoringConfig;

#[test]
fn the_code_computes_the_catalogue_in_order() {
    let cat = features::catalogue();
    let ids: Vec<&str> = cat.iter().map(|f| f.id.as_str()).collect();
    assert_eq!(ids, features::IDS, "catalogue/features.toml and features::IDS differ");
    assert!(cat.len() >= 40);
    for f in cat {
        assert!(f.direction == 1 || f.direction == -1, "{}", f.id);
        assert!(!f.formula.is_empty() && !f.sources.is_empty() && !f.window.is_empty() && !f.missing.is_empty());
        let prefix = match f.force {
            Force::Capital => "cap_",
            Force::Operating => "ops_",
            Force::Profitability => "pro_",
            Force::Solvency => "sol_",
            Force::Development => "dev_",
        };
        assert!(f.id.starts_with(prefix), "{} is filed under {:?}", f.id, f.force);
    }
    for force in Force::ALL {
        assert!(cat.iter().filter(|f| f.force == force).count() >= 5, "{force:?}");
    }
}

#[test]
fn the_builtin_configuration_parses() {
    let c = ScoringConfig::builtin();
    assert!(c.grades.windows(2).all(|w| w[0].max_pd < w[1].max_pd));
    assert_eq!(c.grade(0.0), "AAA");
    assert_eq!(c.grade(0.5), "C");
    assert_eq!(c.worse("BB", "C"), "C");
    assert_eq!(c.worse("CC", "B"), "CC");
    assert_eq!(c.cluster_of("4119", "330604007"), Some("崧厦伞艺小镇"));
    assert_eq!(c.cluster_of("4119", "330604001"), None);
    assert_eq!(xinyong_credit::warnings::builtin_rules().len(), 49);
}

fn fact(id: i64, dataset: &str, period: Option<&str>, date: Option<&str>, fields: &str) -> RawFact {
    RawFact {
        fact_id: id,
        uscc: "91330604MA2B7Y8F54".into(),
        source: dataset.split('.').next().unwrap_or("x").into(),
        dataset: dataset.into(),
        period: period.map(str::to_string),
        event_date: date.map(str::to_string),
        end_date: None,
        fields: fields.into(),
        known_from: "2025-01-10".into(),
        known_to: None,
    }
}

#[test]
fn indicators_worked_by_hand() {
    let mut f = FirmData::new("91330604MA2B7Y8F54");
    let mut names = Names::default();
    let reg = r#"{"name":"x","industry":"3441","township":"330604001","status":"active","founded":"2015-07-01","reg_capital":10000000,"paid_in_capital":2500000,"size_class":"small"}"#;
    f.add(&fact(1, "amr.registration", None, None, reg), &mut names)
        .unwrap();
    // Power: 100 kWh a month in 2023, 130 in 2024 (months 2024-01..2024-12).
    let mut id = 10;
    for y in [2023, 2024] {
        for m in 1..=12 {
            let p = format!("{y}-{m:02}");
            let v = if y == 2023 { 100.0 } else { 130.0 };
            let j = format!(r#"{{"period":"{p}","metric:power_kwh":{v}}}"#);
            f.add(&fact(id, "power.daily", Some(&p), None, &j), &mut names).unwrap();
            id += 1;
        }
    }
    f.add(
        &fact(
            100,
            "amr.annual_reports",
            Some("2024"),
            None,
            r#"{"metric:total_assets":2000000,"metric:total_liabilities":1500000,"metric:revenue":3000000,"metric:profit":-60000}"#,
        ),
        &mut names,
    )
    .unwrap();
    f.finish();
    let t = data::day("2025-01-15").unwrap();
    let row = features::compute(&f, t);
    let v = |id: &str| row.values[features::position(id).unwrap()];
    assert_eq!(v("cap_paid_in_ratio"), Some(0.25));
    assert_eq!(v("cap_reg_capital"), Some((1.0f64 + 1000.0).ln()));
    let years = v("cap_years").unwrap();
    assert!((years - 9.54).abs() < 0.01, "{years}");
    assert_eq!(v("ops_power_level"), Some((1.0f64 + 130.0).ln()));
    // Last 3 months (Oct–Dec 2024, 390) against the same months of 2023 (300).
    assert_eq!(v("ops_power_yoy"), Some(390.0 / 300.0 - 1.0));
    assert_eq!(v("dev_power_growth"), Some(1560.0 / 1200.0 - 1.0));
    assert_eq!(v("ops_power_cv"), Some(0.0));
    assert_eq!(v("sol_debt_ratio"), Some(0.75));
    assert_eq!(v("cap_equity_ratio"), Some(0.25));
    assert_eq!(v("pro_margin"), Some(-0.02));
    assert_eq!(v("pro_loss_years"), Some(1.0));
    assert_eq!(v("ops_asset_turnover"), Some(1.5));
    // No court records: zero, not missing; no statements from the tax bureau: missing.
    assert_eq!(v("sol_court_debtor_24m"), Some(0.0));
    assert_eq!(v("sol_current_ratio"), None);
    // Evidence cites the facts used.
    assert_eq!(row.evidence[features::position("sol_debt_ratio").unwrap()], vec![100]);
    // As of a date before the report was delivered, the report is not known.
    let early = features::compute(&f, data::day("2025-01-09").unwrap());
    assert_eq!(early.values[features::position("sol_debt_ratio").unwrap()], None);
}

/// Growth ratios compare only the months present in both windows: a month missing from the base year is left
/// out of the current window too (it does not read as a rise), and a window missing two of three months has no
/// ratio.
#[test]
fn a_month_missing_from_one_window_is_left_out_of_both() {
    let power = |skip: &[&str]| {
        let mut f = FirmData::new("91330604MA2B7Y8F54");
        let mut names = Names::default();
        let mut id = 10;
        for y in [2023, 2024] {
            for m in 1..=12 {
                let p = format!("{y}-{m:02}");
                id += 1;
                if skip.contains(&p.as_str()) {
                    continue;
                }
                let v = if y == 2023 { 100.0 } else { 130.0 };
                let j = format!(r#"{{"period":"{p}","metric:power_kwh":{v}}}"#);
                f.add(&fact(id, "power.daily", Some(&p), None, &j), &mut names).unwrap();
            }
        }
        f.finish();
        let row = features::compute(&f, data::day("2025-01-15").unwrap());
        let v = |id: &str| row.values[features::position(id).unwrap()];
        (v("ops_power_yoy"), v("dev_power_growth"))
    };
    // All months: 390 / 300 and 1560 / 1200.
    assert_eq!(power(&[]), (Some(390.0 / 300.0 - 1.0), Some(1560.0 / 1200.0 - 1.0)));
    // November 2023 missing: October and December of both years (260 / 200), 11 months of each (1430 / 1100);
    // comparing the whole current window with the partial base would have read a 95 % rise.
    assert_eq!(
        power(&["2023-11"]),
        (Some(260.0 / 200.0 - 1.0), Some(1430.0 / 1100.0 - 1.0))
    );
    // December 2024 missing: the same months are left out of the base year.
    assert_eq!(
        power(&["2024-12"]),
        (Some(260.0 / 200.0 - 1.0), Some(1430.0 / 1100.0 - 1.0))
    );
    // One month missing from each window, different months: one pair of three left, too few.
    assert_eq!(power(&["2023-10", "2024-12"]).0, None);
}

#[test]
fn percentiles_from_stored_quantiles() {
    let mut v: Vec<f64> = (1..=101).map(|x| x as f64).collect();
    let d = Dist::of(&mut v).unwrap();
    assert_eq!(d.median(), 51.0);
    assert_eq!(d.quartiles(), (26.0, 76.0));
    assert_eq!(d.percentile(51.0), 50.0);
    assert_eq!(d.percentile(0.0), 0.0);
    assert_eq!(d.percentile(1000.0), 100.0);
    assert!((d.percentile(53.5) - 52.5).abs() < 1e-9);
    // A point mass takes the middle of its run.
    let mut z = vec![0.0; 50];
    z.extend((1..=50).map(|x| x as f64));
    let d = Dist::of(&mut z).unwrap();
    assert!(
        d.percentile(0.0) > 20.0 && d.percentile(0.0) < 30.0,
        "{}",
        d.percentile(0.0)
    );
    // Small groups fall back to broader ones.
    let rows: Vec<(Vec<String>, Vec<Option<f64>>)> = (0..13)
        .map(|i| {
            let keys = xinyong_credit::bench::keys(if i < 3 { "3441" } else { "2614" }, "small");
            (keys, vec![Some(i as f64)])
        })
        .collect();
    let bm = Benchmarks::build(&rows, 1);
    assert!(bm.groups.contains_key("div:26:small") && !bm.groups.contains_key("div:34:small"));
    let (k, g) = bm.group(&xinyong_credit::bench::keys("3441", "small")).unwrap();
    assert_eq!((k, g.n), ("sec:C:small", 13));
}

#[test]
fn a_past_date_reads_the_register_as_it_stood_then() {
    let mut f = FirmData::new("91330604MA2B7Y8F54");
    let mut names = Names::default();
    let reg = |cap: u64| {
        format!(
            r#"{{"name":"x","industry":"3441","status":"active","founded":"2015-07-01","reg_capital":{cap},"paid_in_capital":1000000}}"#
        )
    };
    let mut v1 = fact(1, "amr.registration", None, None, &reg(10_000_000));
    v1.known_to = Some("2025-06-10".into());
    let mut v2 = fact(2, "amr.registration", None, None, &reg(2_000_000));
    v2.known_from = "2025-06-10".into();
    f.add(&v1, &mut names).unwrap();
    f.add(&v2, &mut names).unwrap();
    f.finish();
    let cap = |t: &str, k: &str| {
        let row = features::compute_at(&f, data::day(t).unwrap(), data::day(k).unwrap());
        row.values[features::position("cap_reg_capital").unwrap()]
    };
    let before = Some((1.0f64 + 1000.0).ln());
    let after = Some((1.0f64 + 200.0).ln());
    // A snapshot before the capital reduction, seen with later knowledge, keeps the register of its date.
    assert_eq!(cap("2025-03-31", "2026-01-10"), before);
    // Before the register was first delivered (a backfill): the first version delivered, never a later one.
    assert_eq!(cap("2024-06-30", "2026-01-10"), before);
    assert_eq!(cap("2025-07-01", "2025-07-01"), after);
}
