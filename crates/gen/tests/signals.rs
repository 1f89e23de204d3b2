//! Every source record the warning engine's rules (warning points 1–44 of
//! `shared/design/warning-signals.md`) rely on occurs in the demo district (1,500 firms, 3 years, the
//! default seed) for at least three firms, and the distress-driven ones hit defaulting firms more often
//! than the others. The rows are the generator's own (`emit::rows_of`: the files' values before
//! formatting and injected defects), so no ingest is needed.

use chrono::{Datelike, NaiveDate};
use std::collections::{BTreeMap, BTreeSet};
use xinyong_gen::emit::{rows_of, RowOf, Val};
use xinyong_gen::world::World;
use xinyong_registry::Registry;

/// Record-level needs, as data: (warning points, source (a lender kind such as `bank` stands for all of
/// them), dataset, conditions on canonical fields (each field must hold one of the values; an empty
/// list means any row), whether the rate rises with distress).
type Need = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static [&'static str])],
    bool,
);

const NEEDS: &[Need] = &[
    (
        "1",
        "court",
        "court.dishonest",
        &[("category", &["dishonest_debtor"])],
        true,
    ),
    (
        "2",
        "court",
        "court.dishonest",
        &[("category", &["consumption_restriction"])],
        true,
    ),
    (
        "3",
        "court",
        "court.cases",
        &[("category", &["enforcement"]), ("status", &["debtor", "defendant"])],
        true,
    ),
    (
        "4",
        "court",
        "court.cases",
        &[("category", &["freeze"]), ("status", &["debtor", "defendant"])],
        true,
    ),
    (
        "4",
        "realestate",
        "realestate.rights",
        &[("category", &["seizure"])],
        true,
    ),
    (
        "5",
        "court",
        "court.cases",
        &[("category", &["bankruptcy"]), ("status", &["debtor", "defendant"])],
        true,
    ),
    (
        "6",
        "court",
        "court.cases",
        &[("category", &["civil_case"]), ("status", &["defendant"])],
        true,
    ),
    ("7", "psb", "psb.econ_crime", &[], true),
    ("8", "amr", "amr.abnormal_list", &[], true),
    ("8", "amr", "amr.abnormal_list", &[("detail", &["unreachable"])], true),
    ("9", "ndrc", "ndrc.credit_lists", &[("category", &["black_list"])], true),
    ("10", "amr", "amr.penalties", &[], true),
    ("10", "safety", "safety.penalties", &[], true),
    ("10", "eco", "eco.penalties", &[], true),
    ("11", "amr", "amr.changes", &[("category", &["legal_rep"])], true),
    ("12", "amr", "amr.changes", &[("category", &["controller"])], true),
    (
        "12",
        "amr",
        "amr.changes",
        &[("category", &["major_shareholder"])],
        true,
    ),
    ("12", "amr", "amr.equity_pledges", &[], true),
    ("13", "amr", "amr.changes", &[("category", &["address"])], false),
    ("13", "amr", "amr.changes", &[("category", &["scope"])], false),
    ("13", "amr", "amr.changes", &[("category", &["dereg_applied"])], true),
    (
        "14",
        "amr",
        "amr.changes",
        &[("category", &["capital_reduction"])],
        true,
    ),
    (
        "15",
        "amr",
        "amr.abnormal_list",
        &[("detail", &["no_annual_report"])],
        true,
    ),
    ("16", "tax", "tax.arrears", &[], true),
    ("17", "tax", "tax.abnormal_taxpayer", &[], true),
    ("18", "tax", "tax.credit_grade", &[("metric:tax_grade", &["D"])], true),
    (
        "21",
        "hrss",
        "hrss.wage_arrears",
        &[("category", &["contribution_arrears"])],
        true,
    ),
    (
        "23",
        "hpf",
        "hpf.contributions",
        &[("metric:hpf_months_owed", &["+"])],
        true,
    ),
    (
        "24",
        "hrss",
        "hrss.wage_arrears",
        &[("category", &["wage_complaint"])],
        true,
    ),
    (
        "26",
        "power",
        "power.arrears",
        &[("category", &["power_arrears"])],
        true,
    ),
    (
        "26",
        "power",
        "power.arrears",
        &[("category", &["disconnection"])],
        true,
    ),
    ("26", "water", "water.usage", &[("metric:water_arrears", &["+"])], true),
    ("26", "gas", "gas.usage", &[("metric:gas_arrears", &["+"])], true),
    ("28", "bank", "lender.bank.loans", &[("overdue_days", &["+"])], true),
    ("28", "bank", "lender.bank.loans", &[("rollover", &["yes"])], true),
    ("28", "mlc", "lender.mlc.loans", &[("overdue_days", &["+"])], true),
    (
        "29",
        "bank",
        "lender.bank.loans",
        &[("class5", &["special_mention", "substandard", "doubtful", "loss"])],
        true,
    ),
    (
        "29",
        "bank",
        "lender.bank.alerts",
        &[("category", &["rating_downgrade"])],
        true,
    ),
    (
        "30",
        "bank",
        "lender.bank.alerts",
        &[("category", &["debt_evasion"])],
        true,
    ),
    (
        "31",
        "bank",
        "lender.bank.alerts",
        &[("category", &["funds_misused"])],
        true,
    ),
    (
        "33",
        "bank",
        "lender.bank.alerts",
        &[("category", &["main_bank_changed"])],
        true,
    ),
    (
        "33",
        "bank",
        "lender.bank.alerts",
        &[("category", &["accounts_moved"])],
        true,
    ),
    ("36-44", "tax", "tax.financial_statements", &[], false),
];

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Money(x) | Val::Num(x) | Val::Ratio(x) => Some(*x),
        Val::Int(i) => Some(*i as f64),
        _ => None,
    }
}

fn matches(v: &Val, allowed: &[&str]) -> bool {
    match v {
        // "+": a positive number.
        _ if allowed == ["+"] => num(v).is_some_and(|x| x > 0.0),
        Val::Code(c) => allowed.contains(c),
        Val::S(s) => allowed.contains(&s.as_str()),
        _ => false,
    }
}

/// The demo world, the registry, and the rows of one dataset from every source that delivers it.
struct Demo {
    w: World,
    reg: Registry,
    defaulters: BTreeSet<usize>,
    firms: usize,
}

impl Demo {
    fn rows(&self, source: &str, dataset: &str) -> Vec<RowOf> {
        let sources: Vec<String> = self
            .reg
            .sources
            .iter()
            .filter(|s| {
                s.id == source
                    || (s.kind == xinyong_registry::SourceKind::Lender
                        && xinyong_registry::lender_template(&s.id) == source)
            })
            .map(|s| s.id.clone())
            .collect();
        assert!(!sources.is_empty(), "no source {source}");
        sources
            .iter()
            .flat_map(|s| rows_of(&self.w, &self.reg, s, dataset).unwrap_or_else(|| panic!("{s} {dataset}")))
            .collect()
    }
    fn col(&self, dataset: &str, field: &str) -> usize {
        self.reg
            .dataset(dataset)
            .and_then(|d| d.columns.iter().position(|c| c.field == field))
            .unwrap_or_else(|| panic!("{dataset} has no {field}"))
    }
    /// The share of defaulting firms among `hits`, against their share in `population` (the firms the
    /// dataset covers).
    fn lift(&self, hits: &BTreeSet<usize>, population: &BTreeSet<usize>) -> f64 {
        let share = |s: &BTreeSet<usize>| {
            s.iter().filter(|i| self.defaulters.contains(i)).count() as f64 / s.len().max(1) as f64
        };
        share(hits) / share(population)
    }
}

fn demo() -> Demo {
    let cfg = xinyong_gen::GenConfig::demo(20151231);
    let w = World::build(&cfg);
    let reg = Registry::builtin().expect("registry");
    let defaulters = (0..w.firms.len()).filter(|&i| w.default_date[i].is_some()).collect();
    let firms = w.firms.iter().filter(|f| f.in_district).count();
    Demo {
        w,
        reg,
        defaulters,
        firms,
    }
}

fn year_of(v: &Val) -> i32 {
    match v {
        Val::Year(y) => *y,
        other => panic!("not a year: {other:?}"),
    }
}

fn month_of(v: &Val) -> (i32, u32) {
    match v {
        Val::Month(y, m) => (*y, *m),
        other => panic!("not a month: {other:?}"),
    }
}

fn date_of(v: &Val) -> Option<NaiveDate> {
    match v {
        Val::D(d) => Some(*d),
        _ => None,
    }
}

#[test]
fn every_warning_point_has_positive_firms_in_the_demo() {
    let d = demo();
    let mut report: Vec<(String, usize, f64)> = Vec::new();
    let mut failures = Vec::new();
    let mut check = |what: String, hits: &BTreeSet<usize>, population: &BTreeSet<usize>, linked: bool, d: &Demo| {
        let lift = d.lift(hits, population);
        report.push((what.clone(), hits.len(), lift));
        if hits.len() < 3 {
            failures.push(format!("{what}: {} firms", hits.len()));
        }
        if linked && hits.len() >= 5 && lift <= 1.0 {
            failures.push(format!("{what}: not more likely for defaulting firms (lift {lift:.2})"));
        }
    };
    let all: BTreeSet<usize> = (0..d.w.firms.len()).filter(|&i| d.w.firms[i].in_district).collect();
    let firms_of = |m: &BTreeMap<usize, BTreeMap<(i32, u32), f64>>| -> BTreeSet<usize> { m.keys().copied().collect() };
    let mut cache: BTreeMap<(&str, &str), Vec<RowOf>> = BTreeMap::new();
    for &(points, source, dataset, when, linked) in NEEDS {
        let rows = cache
            .entry((source, dataset))
            .or_insert_with(|| d.rows(source, dataset));
        let cols: Vec<(usize, &[&str])> = when.iter().map(|(f, v)| (d.col(dataset, f), *v)).collect();
        let hits: BTreeSet<usize> = rows
            .iter()
            .filter(|r| cols.iter().all(|(c, allowed)| matches(&r.values[*c], allowed)))
            .map(|r| r.firm)
            .collect();
        // Events may happen to any firm in the district; metric rows cover the firms the source reports.
        let shape = d.reg.dataset(dataset).unwrap().shape;
        let population = if shape != xinyong_registry::Shape::Event {
            rows.iter().map(|r| r.firm).collect()
        } else if dataset.starts_with("lender.") {
            // A lender's events are about its borrowers.
            d.w.facilities
                .iter()
                .filter(|f| xinyong_registry::lender_template(&f.lender) == source)
                .map(|f| f.borrower)
                .collect()
        } else {
            all.clone()
        };
        check(format!("#{points} {dataset} {when:?}"), &hits, &population, linked, &d);
    }

    // Every code the generator writes is in its column's code list (else ingest would quarantine it).
    for ((_, dataset), rows) in &cache {
        let ds = d.reg.dataset(dataset).unwrap();
        for r in rows {
            for (c, v) in ds.columns.iter().zip(&r.values) {
                if let Val::Code(code) = v {
                    assert!(
                        c.codes.values().any(|x| x == code),
                        "{dataset}: {code} is not in the code list of {}",
                        c.header
                    );
                }
            }
        }
    }

    // 11: two changes of legal representative within 12 months.
    let changes = &cache[&("amr", "amr.changes")];
    let (cat, date) = (d.col("amr.changes", "category"), d.col("amr.changes", "date"));
    let mut reps: BTreeMap<usize, BTreeSet<NaiveDate>> = BTreeMap::new();
    for r in changes.iter().filter(|r| matches(&r.values[cat], &["legal_rep"])) {
        reps.entry(r.firm).or_default().extend(date_of(&r.values[date]));
    }
    let twice: BTreeSet<usize> = reps
        .iter()
        .filter(|(_, ds)| {
            let v: Vec<&NaiveDate> = ds.iter().collect();
            v.windows(2).any(|p| (*p[1] - *p[0]).num_days() <= 365)
        })
        .map(|(i, _)| *i)
        .collect();
    check(
        "#11 two legal-rep changes within 12 months".into(),
        &twice,
        &all,
        true,
        &d,
    );

    // 15: annual report for a year not filed (报送日期) by 30 June of the next year (late or never), among
    // firms operating through that year and its 30 June within the horizon.
    let reports = d.rows("amr", "amr.annual_reports");
    let (period, filed) = (
        d.col("amr.annual_reports", "period"),
        d.col("amr.annual_reports", "date"),
    );
    let mut on_time: BTreeSet<(usize, i32)> = BTreeSet::new();
    for r in &reports {
        let y = year_of(&r.values[period]);
        if date_of(&r.values[filed]).is_some_and(|f| f <= NaiveDate::from_ymd_opt(y + 1, 6, 30).unwrap()) {
            on_time.insert((r.firm, y));
        }
    }
    let nm = d.w.months.len();
    let mut late = BTreeSet::new();
    let mut due = BTreeSet::new();
    for &i in &all {
        for y0 in (0..nm).step_by(12) {
            if y0 + 18 < nm && d.w.operating(i, y0 + 11) && d.w.operating(i, y0 + 17) {
                due.insert(i);
                if !on_time.contains(&(i, d.w.months[y0].year())) {
                    late.insert(i);
                }
            }
        }
    }
    check("#15 annual report not filed by 30 June".into(), &late, &due, true, &d);

    // 20: zero tax paid three months running; 22: insured down > 20 % quarter on quarter;
    // 21: contributions paid short of due.
    let monthly = |source: &str, dataset: &str, field: &str| -> BTreeMap<usize, BTreeMap<(i32, u32), f64>> {
        let rows = d.rows(source, dataset);
        let (p, c) = (d.col(dataset, "period"), d.col(dataset, field));
        let mut m: BTreeMap<usize, BTreeMap<(i32, u32), f64>> = BTreeMap::new();
        for r in &rows {
            if let Some(x) = num(&r.values[c]) {
                m.entry(r.firm).or_default().insert(month_of(&r.values[p]), x);
            }
        }
        m
    };
    let tax = monthly("tax", "tax.payments", "metric:tax_paid");
    let zero3: BTreeSet<usize> = tax
        .iter()
        .filter(|(_, s)| {
            s.values()
                .collect::<Vec<_>>()
                .windows(3)
                .any(|w| w.iter().all(|x| **x == 0.0))
        })
        .map(|(i, _)| *i)
        .collect();
    check(
        "#20 zero tax paid 3 months running".into(),
        &zero3,
        &firms_of(&tax),
        true,
        &d,
    );
    let insured = monthly("hrss", "hrss.insured", "metric:insured");
    let drop = |s: &BTreeMap<(i32, u32), f64>, lag: usize, by: f64| {
        let v: Vec<f64> = s.values().copied().collect();
        (lag..v.len()).any(|k| v[k - lag] > 0.0 && v[k] < v[k - lag] * (1.0 - by))
    };
    let fewer: BTreeSet<usize> = insured
        .iter()
        .filter(|(_, s)| drop(s, 3, 0.2))
        .map(|(i, _)| *i)
        .collect();
    check(
        "#22 insured headcount down > 20 % in a quarter".into(),
        &fewer,
        &firms_of(&insured),
        true,
        &d,
    );
    let due = monthly("hrss", "hrss.insured", "metric:contribution_due");
    let paid = monthly("hrss", "hrss.insured", "metric:contribution_paid");
    let short: BTreeSet<usize> = paid
        .iter()
        .filter(|(i, s)| s.iter().any(|(k, p)| due[i].get(k).is_some_and(|x| p < x)))
        .map(|(i, _)| *i)
        .collect();
    check(
        "#21 social insurance paid short of due".into(),
        &short,
        &firms_of(&paid),
        true,
        &d,
    );

    // 28: 90+ days overdue.
    let loans = &cache[&("bank", "lender.bank.loans")];
    let od = d.col("lender.bank.loans", "overdue_days");
    let over90: BTreeSet<usize> = loans
        .iter()
        .filter(|r| num(&r.values[od]).is_some_and(|x| x >= 90.0))
        .map(|r| r.firm)
        .collect();
    let bank_borrowers: BTreeSet<usize> = loans.iter().map(|r| r.firm).collect();
    check(
        "#28 bank loan 90+ days overdue".into(),
        &over90,
        &bank_borrowers,
        true,
        &d,
    );

    // 32: settlement inflows down > 40 % on the same month a year before; 35: credit enquiries over three
    // months at least 12 and at least double the three months before.
    let inflow = monthly("pboc", "pboc.settlement", "metric:settle_in");
    let down: BTreeSet<usize> = inflow
        .iter()
        .filter(|(_, s)| drop(s, 12, 0.4))
        .map(|(i, _)| *i)
        .collect();
    check(
        "#32 settlement inflows down > 40 % year on year".into(),
        &down,
        &firms_of(&inflow),
        true,
        &d,
    );
    let enq = monthly("pboc", "pboc.settlement", "metric:credit_enquiries");
    let surge = |s: &BTreeMap<(i32, u32), f64>| {
        let v: Vec<f64> = s.values().copied().collect();
        (6..=v.len()).any(|k| {
            let (now, before): (f64, f64) = (v[k - 3..k].iter().sum(), v[k - 6..k - 3].iter().sum());
            now >= 12.0 && now >= 2.0 * before
        })
    };
    let surged: BTreeSet<usize> = enq.iter().filter(|(_, s)| surge(s)).map(|(i, _)| *i).collect();
    check(
        "#35 surge of credit enquiries".into(),
        &surged,
        &firms_of(&enq),
        true,
        &d,
    );
    // A surge before default: among defaulters with settlement rows, enquiries in the 6 months before
    // the default month against the 6 months a year before that.
    let (mut before, mut earlier, mut n) = (0.0, 0.0, 0);
    for (&i, s) in &enq {
        let Some(dd) = d.w.default_date[i] else { continue };
        let key = |k: i32| {
            let t = dd.year() * 12 + dd.month0() as i32 - k;
            (t.div_euclid(12), t.rem_euclid(12) as u32 + 1)
        };
        let near: Option<Vec<f64>> = (1..=6).map(|k| s.get(&key(k)).copied()).collect();
        let far: Option<Vec<f64>> = (13..=18).map(|k| s.get(&key(k)).copied()).collect();
        if let (Some(a), Some(b)) = (near, far) {
            before += a.iter().sum::<f64>();
            earlier += b.iter().sum::<f64>();
            n += 1;
        }
    }
    let surge_note = format!(
        "#35 credit enquiries per defaulter ({n}): {:.1} in the 6 months before default, {:.1} a year earlier",
        before / n.max(1) as f64,
        earlier / n.max(1) as f64
    );
    assert!(
        n >= 5 && before > 1.3 * earlier,
        "no surge of enquiries before default: {before} vs {earlier} over {n}"
    );

    // Settlement inflows fall with distress: among defaulters, the 6 months from the default month
    // against the same months a year before.
    let (mut after, mut year_before, mut n) = (0.0, 0.0, 0);
    for (&i, s) in &inflow {
        let Some(dd) = d.w.default_date[i] else { continue };
        let key = |k: i32| {
            let t = dd.year() * 12 + dd.month0() as i32 + k;
            (t.div_euclid(12), t.rem_euclid(12) as u32 + 1)
        };
        let now: Option<Vec<f64>> = (0..6).map(|k| s.get(&key(k)).copied()).collect();
        let then: Option<Vec<f64>> = (-12..-6).map(|k| s.get(&key(k)).copied()).collect();
        if let (Some(a), Some(b)) = (now, then) {
            after += a.iter().sum::<f64>();
            year_before += b.iter().sum::<f64>();
            n += 1;
        }
    }
    let inflow_note = format!(
        "#32 settlement inflows of defaulters ({n}): {:.0} % of the same months a year before",
        100.0 * after / year_before
    );
    assert!(n >= 5 && after < 0.7 * year_before, "{inflow_note}");

    // 36–44: the financial statements.
    let fs = &cache[&("tax", "tax.financial_statements")];
    let f = |name: &str| d.col("tax.financial_statements", &format!("metric:{name}"));
    let (p, ta, tl, ca, cl, inv, rec, rev, ebit, int, np, re, ocf, eq) = (
        d.col("tax.financial_statements", "period"),
        f("total_assets"),
        f("total_liabilities"),
        f("current_assets"),
        f("current_liabilities"),
        f("inventory"),
        f("receivables"),
        f("revenue"),
        f("ebit"),
        f("interest_expense"),
        f("net_profit"),
        f("retained_earnings"),
        f("operating_cash_flow"),
        f("equity"),
    );
    let mut by_firm: BTreeMap<usize, BTreeMap<i32, Vec<f64>>> = BTreeMap::new();
    for r in fs {
        let v: Vec<f64> = r.values.iter().map(|x| num(x).unwrap_or(f64::NAN)).collect();
        by_firm.entry(r.firm).or_default().insert(year_of(&r.values[p]), v);
    }
    let any_year = |pred: &dyn Fn(&[f64]) -> bool| -> BTreeSet<usize> {
        by_firm
            .iter()
            .filter(|(_, ys)| ys.values().any(|v| pred(v)))
            .map(|(i, _)| *i)
            .collect()
    };
    let filers: BTreeSet<usize> = by_firm.keys().copied().collect();
    let two_years = |pred: &dyn Fn(&[f64]) -> bool| -> BTreeSet<usize> {
        by_firm
            .iter()
            .filter(|(_, ys)| {
                ys.iter()
                    .any(|(y, v)| pred(v) && ys.get(&(y - 1)).is_some_and(|u| pred(u)))
            })
            .map(|(i, _)| *i)
            .collect()
    };
    let yoy = |pred: &dyn Fn(&[f64], &[f64]) -> bool| -> BTreeSet<usize> {
        by_firm
            .iter()
            .filter(|(_, ys)| ys.iter().any(|(y, v)| ys.get(&(y - 1)).is_some_and(|u| pred(u, v))))
            .map(|(i, _)| *i)
            .collect()
    };
    check(
        "#36 debt ratio > 85 %".into(),
        &any_year(&|v| v[tl] > 0.85 * v[ta]),
        &filers,
        true,
        &d,
    );
    check(
        "#36 debt ratio up > 10 points in a year".into(),
        &yoy(&|u, v| v[tl] / v[ta] > u[tl] / u[ta] + 0.10),
        &filers,
        true,
        &d,
    );
    check(
        "#37 current ratio < 1".into(),
        &any_year(&|v| v[ca] < v[cl]),
        &filers,
        true,
        &d,
    );
    check(
        "#37 quick ratio < 0.6".into(),
        &any_year(&|v| v[ca] - v[inv] < 0.6 * v[cl]),
        &filers,
        true,
        &d,
    );
    check(
        "#38 interest coverage < 1".into(),
        &any_year(&|v| v[int] > 0.0 && v[ebit] < v[int]),
        &filers,
        true,
        &d,
    );
    check(
        "#39 revenue down > 30 %".into(),
        &yoy(&|u, v| v[rev] < 0.7 * u[rev]),
        &filers,
        true,
        &d,
    );
    check(
        "#40 net loss two years running".into(),
        &two_years(&|v| v[np] < 0.0),
        &filers,
        true,
        &d,
    );
    check(
        "#41 negative operating cash flow two years running".into(),
        &two_years(&|v| v[ocf] < 0.0),
        &filers,
        true,
        &d,
    );
    check(
        "#42 receivables turnover down > 25 %".into(),
        &yoy(&|u, v| v[rev] / v[rec] < 0.75 * (u[rev] / u[rec])),
        &filers,
        true,
        &d,
    );
    check(
        "#43 negative equity".into(),
        &any_year(&|v| v[eq] < 0.0),
        &filers,
        true,
        &d,
    );
    let z2 = |v: &[f64]| {
        6.56 * (v[ca] - v[cl]) / v[ta] + 3.26 * v[re] / v[ta] + 6.72 * v[ebit] / v[ta] + 1.05 * v[eq] / v[tl]
    };
    check(
        "#44 Altman Z'' < 1.1".into(),
        &any_year(&|v| z2(v) < 1.1),
        &filers,
        true,
        &d,
    );
    // The statements agree with the annual report of the same firm-year.
    let (ar_p, ar_ta, ar_rev) = (
        d.col("amr.annual_reports", "period"),
        d.col("amr.annual_reports", "metric:total_assets"),
        d.col("amr.annual_reports", "metric:revenue"),
    );
    let mut compared = 0;
    for r in &reports {
        if let Some(v) = by_firm.get(&r.firm).and_then(|ys| ys.get(&year_of(&r.values[ar_p]))) {
            let (a, b) = (num(&r.values[ar_ta]).unwrap(), num(&r.values[ar_rev]).unwrap());
            assert!(
                (a - v[ta]).abs() <= 1e-6 * a.abs().max(1.0),
                "assets differ: {a} vs {}",
                v[ta]
            );
            assert!(
                (b - v[rev]).abs() <= 1e-6 * b.abs().max(1.0),
                "revenue differs: {b} vs {}",
                v[rev]
            );
            compared += 1;
        }
    }
    assert!(compared > 500, "only {compared} firm-years in both");

    println!("{:<90} {:>6} {:>6}", "check", "firms", "lift");
    for (what, n, lift) in &report {
        println!("{what:<90} {n:>6} {lift:>6.2}");
    }
    println!("{surge_note}");
    println!("{inflow_note}");
    println!("{} firms, {} defaulters", d.firms, d.defaulters.len());
    assert!(failures.is_empty(), "{failures:#?}");
}
