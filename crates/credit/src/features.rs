//! The indicator catalogue (data: catalogue/features.toml) and the code computing each indicator as of a date.
//! Pure and deterministic: a firm's facts and a date in, values and the facts behind them out.

use crate::data::{self, Day, FirmData, Month};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Force {
    Capital,
    Operating,
    Profitability,
    Solvency,
    Development,
}

impl Force {
    pub const ALL: [Force; 5] = [
        Force::Capital,
        Force::Operating,
        Force::Profitability,
        Force::Solvency,
        Force::Development,
    ];
    pub fn key(self) -> &'static str {
        match self {
            Force::Capital => "capital",
            Force::Operating => "operating",
            Force::Profitability => "profitability",
            Force::Solvency => "solvency",
            Force::Development => "development",
        }
    }
    pub fn name_zh(self) -> &'static str {
        match self {
            Force::Capital => "资本实力",
            Force::Operating => "经营能力",
            Force::Profitability => "盈利能力",
            Force::Solvency => "偿债能力",
            Force::Development => "发展潜力",
        }
    }
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureDef {
    pub id: String,
    pub force: Force,
    pub direction: i8,
    pub name_zh: String,
    pub name_en: String,
    pub formula: String,
    pub sources: Vec<String>,
    pub window: String,
    pub missing: String,
}

#[derive(Debug, Clone, Deserialize)]
struct CatalogueFile {
    feature: Vec<FeatureDef>,
}

/// The built-in catalogue.
pub fn catalogue() -> &'static [FeatureDef] {
    static CAT: std::sync::OnceLock<Vec<FeatureDef>> = std::sync::OnceLock::new();
    CAT.get_or_init(|| {
        let f: CatalogueFile =
            toml::from_str(include_str!("../catalogue/features.toml")).expect("the built-in catalogue parses (tested)");
        f.feature
    })
}

/// The ids the code computes, in order. A test checks this equals the catalogue.
pub const IDS: [&str; 63] = [
    "cap_reg_capital",
    "cap_paid_in_ratio",
    "cap_years",
    "cap_total_assets",
    "cap_equity_ratio",
    "cap_net_assets",
    "cap_property_owned",
    "cap_encumbered_share",
    "cap_land_rights",
    "cap_shareholders",
    "ops_power_level",
    "ops_power_yoy",
    "ops_power_cv",
    "ops_water_yoy",
    "ops_gas_yoy",
    "ops_headcount",
    "ops_headcount_qoq",
    "ops_sales_12m",
    "ops_sales_yoy_3m",
    "ops_asset_turnover",
    "ops_receivable_days",
    "ops_mu_grade",
    "ops_settle_in_yoy",
    "ops_penalties_24m",
    "ops_complaints_12m",
    "pro_margin",
    "pro_roa",
    "pro_tax_per_head",
    "pro_tax_yoy",
    "pro_tax_grade",
    "pro_tax_per_mu",
    "pro_tax_burden",
    "pro_loss_years",
    "sol_debt_ratio",
    "sol_current_ratio",
    "sol_interest_cover",
    "sol_bank_debt_to_sales",
    "sol_max_overdue_12m",
    "sol_overdue_months_12m",
    "sol_worst_class5_12m",
    "sol_rollover_share",
    "sol_lenders",
    "sol_lender_growth",
    "sol_nonbank_share",
    "sol_avg_rate",
    "sol_guarantees_to_equity",
    "sol_arrears_12m",
    "sol_contrib_gap_3m",
    "sol_court_debtor_24m",
    "sol_enquiries_3m",
    "sol_cash_flow",
    "sol_altman_z",
    "sol_adverse_records_60m",
    "dev_sales_growth",
    "dev_power_growth",
    "dev_headcount_growth",
    "dev_revenue_growth",
    "dev_patents_36m",
    "dev_tech_cert",
    "dev_export_growth",
    "dev_subsidies_36m",
    "dev_honours",
    "dev_eco_grade",
];

pub const N: usize = IDS.len();

// Positions in `IDS`, for the dispatch in `compute_at`.
const CAP_REG_CAPITAL: usize = 0;
const CAP_PAID_IN_RATIO: usize = 1;
const CAP_YEARS: usize = 2;
const CAP_TOTAL_ASSETS: usize = 3;
const CAP_EQUITY_RATIO: usize = 4;
const CAP_NET_ASSETS: usize = 5;
const CAP_PROPERTY_OWNED: usize = 6;
const CAP_ENCUMBERED_SHARE: usize = 7;
const CAP_LAND_RIGHTS: usize = 8;
const CAP_SHAREHOLDERS: usize = 9;
const OPS_POWER_LEVEL: usize = 10;
const OPS_POWER_YOY: usize = 11;
const OPS_POWER_CV: usize = 12;
const OPS_WATER_YOY: usize = 13;
const OPS_GAS_YOY: usize = 14;
const OPS_HEADCOUNT: usize = 15;
const OPS_HEADCOUNT_QOQ: usize = 16;
const OPS_SALES_12M: usize = 17;
const OPS_SALES_YOY_3M: usize = 18;
const OPS_ASSET_TURNOVER: usize = 19;
const OPS_RECEIVABLE_DAYS: usize = 20;
const OPS_MU_GRADE: usize = 21;
const OPS_SETTLE_IN_YOY: usize = 22;
const OPS_PENALTIES_24M: usize = 23;
const OPS_COMPLAINTS_12M: usize = 24;
const PRO_MARGIN: usize = 25;
const PRO_ROA: usize = 26;
const PRO_TAX_PER_HEAD: usize = 27;
const PRO_TAX_YOY: usize = 28;
const PRO_TAX_GRADE: usize = 29;
const PRO_TAX_PER_MU: usize = 30;
const PRO_TAX_BURDEN: usize = 31;
const PRO_LOSS_YEARS: usize = 32;
const SOL_DEBT_RATIO: usize = 33;
const SOL_CURRENT_RATIO: usize = 34;
const SOL_INTEREST_COVER: usize = 35;
const SOL_BANK_DEBT_TO_SALES: usize = 36;
const SOL_MAX_OVERDUE_12M: usize = 37;
const SOL_OVERDUE_MONTHS_12M: usize = 38;
const SOL_WORST_CLASS5_12M: usize = 39;
const SOL_ROLLOVER_SHARE: usize = 40;
const SOL_LENDERS: usize = 41;
const SOL_LENDER_GROWTH: usize = 42;
const SOL_NONBANK_SHARE: usize = 43;
const SOL_AVG_RATE: usize = 44;
const SOL_GUARANTEES_TO_EQUITY: usize = 45;
const SOL_ARREARS_12M: usize = 46;
const SOL_CONTRIB_GAP_3M: usize = 47;
const SOL_COURT_DEBTOR_24M: usize = 48;
const SOL_ENQUIRIES_3M: usize = 49;
const SOL_CASH_FLOW: usize = 50;
const SOL_ALTMAN_Z: usize = 51;
const SOL_ADVERSE_RECORDS_60M: usize = 52;
const DEV_SALES_GROWTH: usize = 53;
const DEV_POWER_GROWTH: usize = 54;
const DEV_HEADCOUNT_GROWTH: usize = 55;
const DEV_REVENUE_GROWTH: usize = 56;
const DEV_PATENTS_36M: usize = 57;
const DEV_TECH_CERT: usize = 58;
const DEV_EXPORT_GROWTH: usize = 59;
const DEV_SUBSIDIES_36M: usize = 60;
const DEV_HONOURS: usize = 61;
const DEV_ECO_GRADE: usize = 62;

pub fn position(id: &str) -> Option<usize> {
    // Looked up per rule and firm and month-end: a hash map rather than a scan comparing up to 63 names.
    static BY_ID: std::sync::OnceLock<rustc_hash::FxHashMap<&'static str, usize>> = std::sync::OnceLock::new();
    BY_ID
        .get_or_init(|| IDS.iter().enumerate().map(|(i, x)| (*x, i)).collect())
        .get(id)
        .copied()
}

/// One firm's indicators as of a date, with the facts behind each (at most a few, newest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRow {
    pub values: Vec<Option<f64>>,
    pub evidence: Vec<Vec<i64>>,
}

/// How many months of monthly series a snapshot holds.
const HIST: usize = 27;

/// A monthly series as of T: `v[k]` is the value of month `last - k`.
struct Monthly {
    v: [Option<f64>; HIST],
    fact: [i64; HIST],
}

impl Monthly {
    fn sum(&self, from: usize, n: usize) -> Option<f64> {
        let mut s = 0.0;
        let mut any = false;
        for k in from..(from + n).min(HIST) {
            if let Some(x) = self.v[k] {
                s += x;
                any = true;
            }
        }
        any.then_some(s)
    }
    fn count(&self, from: usize, n: usize) -> usize {
        (from..(from + n).min(HIST)).filter(|&k| self.v[k].is_some()).count()
    }
    /// The latest value within the first `n` months, with its position.
    fn latest(&self, n: usize) -> Option<(usize, f64)> {
        (0..n.min(HIST)).find_map(|k| self.v[k].map(|x| (k, x)))
    }
    fn facts(&self, from: usize, n: usize, out: &mut Vec<i64>) {
        for k in from..(from + n).min(HIST) {
            if self.v[k].is_some() && out.len() < 4 {
                out.push(self.fact[k]);
            }
        }
    }
    /// Sum over months [0, n) against [lag, lag + n), over the months present in both windows only (month k
    /// with month k + lag), which must be at least n - 1: a month missing from one window leaves the other
    /// window's month out too, so a gap in the deliveries reads as neither a fall nor a rise.
    fn ratio(&self, n: usize, lag: usize, ev: &mut Vec<i64>) -> Option<f64> {
        let (mut a, mut b, mut pairs) = (0.0, 0.0, 0usize);
        for k in 0..n.min(HIST.saturating_sub(lag)) {
            if let (Some(x), Some(y)) = (self.v[k], self.v[k + lag]) {
                a += x;
                b += y;
                pairs += 1;
            }
        }
        if pairs == 0 || pairs + 1 < n {
            return None;
        }
        self.facts(0, 2, ev);
        self.facts(lag, 1, ev);
        growth(a, b)
    }
}

/// `num / den` of two yearly values when the denominator is positive, citing the numerator's fact.
fn quotient(num: Option<Yearly>, den: Option<Yearly>, ev: &mut Vec<i64>) -> Option<f64> {
    match (num, den) {
        (Some(n), Some(d)) if d.v > 0.0 => {
            push(ev, n.fact);
            Some(n.v / d.v)
        }
        _ => None,
    }
}

fn growth(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| (a / b - 1.0).min(3.0))
}

/// A yearly value: the latest year ended by T, and the one before it.
#[derive(Clone, Copy)]
struct Yearly {
    year: i32,
    v: f64,
    fact: i64,
}

/// Everything the indicators read, as of T.
pub struct Snapshot<'a> {
    pub firm: &'a FirmData,
    /// Valid time: facts dated (periods ended, events happened) by this day.
    pub t: Day,
    /// Known time: fact versions the platform held on this day (`k >= t`; `k == t` is the strict as-of view).
    pub k: Day,
    pub last: Month,
}

impl<'a> Snapshot<'a> {
    pub fn new(firm: &'a FirmData, t: Day, k: Day) -> Snapshot<'a> {
        Snapshot {
            firm,
            t,
            k: k.max(t),
            last: data::last_complete_month(t),
        }
    }

    fn monthly(&self, key: &str) -> Monthly {
        let mut m = Monthly {
            v: [None; HIST],
            fact: [0; HIST],
        };
        if let Some(obs) = self.firm.metrics.get(key) {
            for o in obs {
                let k = self.last - o.period;
                if (0..HIST as i32).contains(&k) && o.known.at(self.k) {
                    m.v[k as usize] = Some(o.value);
                    m.fact[k as usize] = o.fact;
                }
            }
        }
        m
    }

    /// The latest and previous yearly values of a metric (years ended by T, known by T).
    fn yearly(&self, key: &str) -> (Option<Yearly>, Option<Yearly>) {
        let year_t = data::month_of_day(self.t).div_euclid(12);
        let mut best: Option<Yearly> = None;
        let mut prev: Option<Yearly> = None;
        if let Some(obs) = self.firm.metrics.get(key) {
            for o in obs {
                if o.period >= year_t && data::month_end(o.period * 12 + 11) > self.t {
                    continue;
                }
                if !o.known.at(self.k) {
                    continue;
                }
                let y = Yearly {
                    year: o.period,
                    v: o.value,
                    fact: o.fact,
                };
                match best {
                    Some(b) if b.year >= y.year => {
                        if b.year > y.year && prev.is_none_or(|p| p.year < y.year) {
                            prev = Some(y);
                        }
                    }
                    _ => {
                        if let Some(b) = best {
                            prev = Some(b);
                        }
                        best = Some(y);
                    }
                }
            }
        }
        if let (Some(b), Some(p)) = (best, prev) {
            if p.year >= b.year {
                prev = None;
            }
        }
        (best, prev)
    }

    /// A yearly value from the first of `keys` (dataset:metric, in order of preference) that has one.
    fn statement(&self, keys: &[&str]) -> Option<Yearly> {
        keys.iter().find_map(|k| self.yearly(k).0)
    }

    fn statement_pair(&self, keys: &[&str]) -> (Option<Yearly>, Option<Yearly>) {
        for k in keys {
            let p = self.yearly(k);
            if p.0.is_some() {
                return p;
            }
        }
        (None, None)
    }

    fn code(&self, key: &str) -> Option<(String, i64)> {
        let year_t = data::month_of_day(self.t).div_euclid(12);
        self.firm
            .codes
            .get(key)?
            .iter()
            .filter(|c| c.known.at(self.k) && (c.year < year_t || data::month_end(c.year * 12 + 11) <= self.t))
            .max_by_key(|c| c.year)
            .map(|c| (c.code.clone(), c.fact))
    }

    /// Events dated by T and known by T.
    pub fn events(&self) -> impl Iterator<Item = &'a data::Event> + '_ {
        let (t, k) = (self.t, self.k);
        self.firm.events.iter().filter(move |e| e.date <= t && e.known.at(k))
    }

    /// Events of the given datasets dated within the last `months` months (by day count, 30.44 days a month).
    fn recent<'s>(&'s self, datasets: &'s [&str], months: i32) -> impl Iterator<Item = &'a data::Event> + 's {
        let from = self.t - (months as f64 * 30.44).round() as i32;
        self.events()
            .filter(move |e| e.date > from && datasets.iter().any(|d| *d == &*e.dataset))
    }

    /// Loan reports of months within [last - from - n + 1, last - from], known by T.
    fn loans(&self, from: i32, n: i32) -> impl Iterator<Item = &'a data::LoanObs> + '_ {
        let (hi, lo) = (self.last - from, self.last - from - n + 1);
        let k = self.k;
        self.firm
            .loans
            .iter()
            .filter(move |l| l.month >= lo && l.month <= hi && l.known.at(k))
    }

    fn is_borrower(&self) -> bool {
        self.firm
            .loans
            .iter()
            .any(|l| l.month <= self.last && l.known.at(self.k))
    }
}

fn ln1(x: f64) -> f64 {
    (1.0 + x.max(0.0)).ln()
}

fn slog(x: f64) -> f64 {
    x.signum() * (1.0 + x.abs()).ln()
}

fn tax_grade(c: &str) -> Option<f64> {
    Some(match c {
        "A" => 4.0,
        "B" => 3.0,
        "M" => 2.0,
        "C" => 1.0,
        "D" => 0.0,
        _ => return None,
    })
}

/// Computes every indicator of the catalogue for one firm as of `t`: facts valid and known by `t`.
pub fn compute(firm: &FirmData, t: Day) -> FeatureRow {
    compute_at(firm, t, t)
}

/// Computes the indicators from facts valid by `t` as known on `k` (`k >= t`): a past date seen with later
/// knowledge, for training rows and restated history.
pub fn compute_at(firm: &FirmData, t: Day, k: Day) -> FeatureRow {
    compute_some(firm, t, k, 0..N)
}

/// One indicator (a position in [`IDS`]) as [`compute_at`] computes it, reading only what that indicator reads
/// (a warning comparing an indicator with its value a year earlier needs just the one).
pub fn value_at(firm: &FirmData, t: Day, k: Day, i: usize) -> Option<f64> {
    compute_some(firm, t, k, i..i + 1).values.get(i).copied().flatten()
}

/// The indicators at positions `which`; the others stay missing. The series and statements the indicators
/// share are read lazily, when the first indicator that needs one asks for it.
fn compute_some(firm: &FirmData, t: Day, k: Day, which: std::ops::Range<usize>) -> FeatureRow {
    use std::cell::LazyCell;
    let s = Snapshot::new(firm, t, k);
    let k = s.k;
    let mut values = vec![None; N];
    let mut evidence: Vec<Vec<i64>> = vec![Vec::new(); N];
    let reg = firm.registration_at(t, k);
    let power = LazyCell::new(|| s.monthly("power.daily:power_kwh"));
    let water = LazyCell::new(|| s.monthly("water.usage:water_t"));
    let water_arrears = LazyCell::new(|| s.monthly("water.usage:water_arrears"));
    let gas = LazyCell::new(|| s.monthly("gas.usage:gas_m3"));
    let gas_arrears = LazyCell::new(|| s.monthly("gas.usage:gas_arrears"));
    let insured = LazyCell::new(|| s.monthly("hrss.insured:insured"));
    let due = LazyCell::new(|| s.monthly("hrss.insured:contribution_due"));
    let paid = LazyCell::new(|| s.monthly("hrss.insured:contribution_paid"));
    let invoices = LazyCell::new(|| s.monthly("tax.invoices:invoice_amount"));
    let tax = LazyCell::new(|| s.monthly("tax.payments:tax_paid"));
    let settle_in = LazyCell::new(|| s.monthly("pboc.settlement:settle_in"));
    let enquiries = LazyCell::new(|| s.monthly("pboc.settlement:credit_enquiries"));
    let export = LazyCell::new(|| s.monthly("customs.trade:export"));
    const FS: &str = "tax.financial_statements:";
    let assets = LazyCell::new(|| {
        s.statement(&[
            "tax.financial_statements:total_assets",
            "amr.annual_reports:total_assets",
            "stats.above_scale:total_assets",
        ])
    });
    let liabilities = LazyCell::new(|| {
        s.statement(&[
            "tax.financial_statements:total_liabilities",
            "amr.annual_reports:total_liabilities",
            "stats.above_scale:total_liabilities",
        ])
    });
    let revenues = LazyCell::new(|| {
        s.statement_pair(&[
            "tax.financial_statements:revenue",
            "amr.annual_reports:revenue",
            "stats.above_scale:revenue",
        ])
    });
    let profit_keys = ["amr.annual_reports:profit", "stats.above_scale:profit"];
    let profit = LazyCell::new(|| {
        s.yearly("tax.financial_statements:net_profit")
            .0
            .or_else(|| s.statement(&profit_keys))
    });
    let mut key = String::with_capacity(64);
    let mut fs = |m: &str| {
        key.clear();
        key.push_str(FS);
        key.push_str(m);
        s.yearly(&key)
    };
    let equity = LazyCell::new(|| match (*assets, *liabilities) {
        (Some(a), Some(l)) if a.year == l.year => Some((a.v - l.v, a.fact)),
        _ => None,
    });
    let borrower = LazyCell::new(|| s.is_borrower());

    for i in which {
        let ev = &mut evidence[i];
        let v: Option<f64> = match i {
            CAP_REG_CAPITAL => reg.and_then(|r| {
                ev.push(r.fact);
                r.reg_capital.map(|c| ln1(c / 1e4))
            }),
            CAP_PAID_IN_RATIO => reg.and_then(|r| {
                ev.push(r.fact);
                match (r.paid_in_capital, r.reg_capital) {
                    (Some(p), Some(c)) if c > 0.0 => Some((p / c).min(1.5)),
                    _ => None,
                }
            }),
            CAP_YEARS => reg.and_then(|r| {
                ev.push(r.fact);
                r.founded.map(|f| ((t - f) as f64 / 365.25).max(0.0))
            }),
            CAP_TOTAL_ASSETS => assets.map(|a| {
                ev.push(a.fact);
                ln1(a.v / 1e4)
            }),
            CAP_EQUITY_RATIO => match (*assets, *equity) {
                (Some(a), Some((e, f))) if a.v > 0.0 => {
                    ev.push(f);
                    Some((e / a.v).clamp(-3.0, 1.0))
                }
                _ => None,
            },
            CAP_NET_ASSETS => equity.map(|(e, f)| {
                ev.push(f);
                slog(e / 1e4)
            }),
            CAP_PROPERTY_OWNED => Some(
                s.events()
                    .filter(|e| &*e.dataset == "realestate.rights" && e.category == "ownership" && e.active(t))
                    .inspect(|e| push(ev, e.fact))
                    .count() as f64,
            ),
            CAP_ENCUMBERED_SHARE => assets.filter(|a| a.v > 0.0).map(|a| {
                let enc: f64 = s
                    .events()
                    .filter(|e| {
                        &*e.dataset == "realestate.rights"
                            && (e.category == "mortgage" || e.category == "seizure")
                            && e.active(t)
                    })
                    .inspect(|e| push(ev, e.fact))
                    .filter_map(|e| e.amount)
                    .sum();
                (enc / a.v).min(5.0)
            }),
            CAP_LAND_RIGHTS => Some(
                s.recent(&["land.use_rights"], 60)
                    .filter(|e| e.category == "land_grant")
                    .inspect(|e| push(ev, e.fact))
                    .count() as f64,
            ),
            CAP_SHAREHOLDERS => {
                let h: Vec<_> = firm.holdings_at(t, k).collect();
                if h.is_empty() {
                    None
                } else {
                    for x in &h {
                        push(ev, x.fact);
                    }
                    let firm_holder = h.iter().any(|x| x.holder_type == "firm");
                    Some(h.len() as f64 + if firm_holder { 10.0 } else { 0.0 })
                }
            }
            OPS_POWER_LEVEL => power.sum(0, 3).map(|x| {
                power.facts(0, 3, ev);
                ln1(x / power.count(0, 3).max(1) as f64)
            }),
            OPS_POWER_YOY => power.ratio(3, 12, ev),
            OPS_POWER_CV => {
                if power.count(0, 12) >= 6 {
                    let xs: Vec<f64> = (0..12).filter_map(|k| power.v[k]).collect();
                    let mean = xs.iter().sum::<f64>() / xs.len() as f64;
                    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
                    power.facts(0, 12, ev);
                    (mean > 0.0).then(|| (var.sqrt() / mean).min(5.0))
                } else {
                    None
                }
            }
            OPS_WATER_YOY => water.ratio(3, 12, ev),
            OPS_GAS_YOY => gas.ratio(3, 12, ev),
            OPS_HEADCOUNT => insured.latest(3).map(|(k, x)| {
                push(ev, insured.fact[k]);
                ln1(x)
            }),
            OPS_HEADCOUNT_QOQ => match (insured.v[0], insured.v[3]) {
                (Some(a), Some(b)) if b > 0.0 => {
                    push(ev, insured.fact[0]);
                    push(ev, insured.fact[3]);
                    Some((a / b - 1.0).min(3.0))
                }
                _ => None,
            },
            OPS_SALES_12M => invoices.sum(0, 12).map(|x| {
                invoices.facts(0, 12, ev);
                ln1(x)
            }),
            OPS_SALES_YOY_3M => invoices.ratio(3, 12, ev),
            OPS_ASSET_TURNOVER => quotient(revenues.0, *assets, ev).map(|x| x.min(20.0)),
            OPS_RECEIVABLE_DAYS => {
                let (r, rev) = (fs("receivables").0, fs("revenue").0);
                quotient(r, rev, ev).map(|x| (x * 365.0).min(1000.0))
            }
            OPS_MU_GRADE => s.code("eit.mu_efficiency:mu_grade").and_then(|(c, f)| {
                push(ev, f);
                match c.as_str() {
                    "A" => Some(4.0),
                    "B" => Some(3.0),
                    "C" => Some(2.0),
                    "D" => Some(1.0),
                    _ => None,
                }
            }),
            OPS_SETTLE_IN_YOY => settle_in.ratio(3, 12, ev),
            OPS_PENALTIES_24M => Some(
                s.recent(
                    &[
                        "amr.penalties",
                        "safety.penalties",
                        "eco.penalties",
                        "fire.penalties",
                        "transport.penalties",
                        "cale.penalties",
                        "housing.qualifications",
                    ],
                    24,
                )
                .filter(|e| &*e.dataset != "housing.qualifications" || e.category == "penalty")
                .inspect(|e| push(ev, e.fact))
                .count() as f64,
            ),
            OPS_COMPLAINTS_12M => Some(
                s.recent(&["media.complaints", "hrss.wage_arrears"], 12)
                    .filter(|e| &*e.dataset == "media.complaints" || e.category != "contribution_arrears")
                    .inspect(|e| push(ev, e.fact))
                    .count() as f64,
            ),
            PRO_MARGIN => quotient(*profit, revenues.0, ev).map(|x| x.clamp(-2.0, 1.0)),
            PRO_ROA => quotient(*profit, *assets, ev).map(|x| x.clamp(-2.0, 1.0)),
            PRO_TAX_PER_HEAD => match (tax.sum(0, 12), insured.latest(3)) {
                (Some(x), Some((k, h))) if h > 0.0 => {
                    tax.facts(0, 2, ev);
                    push(ev, insured.fact[k]);
                    Some(ln1(x / h))
                }
                _ => None,
            },
            PRO_TAX_YOY => tax.ratio(12, 12, ev),
            PRO_TAX_GRADE => s.code("tax.credit_grade:tax_grade").and_then(|(c, f)| {
                push(ev, f);
                tax_grade(&c)
            }),
            PRO_TAX_PER_MU => s.yearly("eit.mu_efficiency:tax_per_mu").0.map(|y| {
                push(ev, y.fact);
                ln1(y.v)
            }),
            PRO_TAX_BURDEN => match (tax.sum(0, 12), invoices.sum(0, 12)) {
                (Some(x), Some(sales)) if sales > 0.0 => {
                    tax.facts(0, 2, ev);
                    invoices.facts(0, 2, ev);
                    Some((x / sales).min(1.0))
                }
                _ => None,
            },
            PRO_LOSS_YEARS => {
                let (a, b) = {
                    let p = s.yearly("tax.financial_statements:net_profit");
                    if p.0.is_some() {
                        p
                    } else {
                        s.statement_pair(&profit_keys)
                    }
                };
                a.map(|a| {
                    push(ev, a.fact);
                    let mut n = (a.v < 0.0) as u8 as f64;
                    if let Some(b) = b.filter(|b| b.year == a.year - 1) {
                        push(ev, b.fact);
                        n += (b.v < 0.0) as u8 as f64;
                    }
                    n
                })
            }
            SOL_DEBT_RATIO => quotient(*liabilities, *assets, ev).map(|x| x.min(3.0)),
            SOL_CURRENT_RATIO => {
                let (a, l) = (fs("current_assets").0, fs("current_liabilities").0);
                quotient(a, l, ev).map(|x| x.min(10.0))
            }
            SOL_INTEREST_COVER => match (fs("ebit").0, fs("interest_expense").0) {
                (Some(e), Some(i)) => {
                    push(ev, e.fact);
                    Some(if i.v > 0.0 {
                        (e.v / i.v).clamp(-20.0, 50.0)
                    } else {
                        50.0
                    })
                }
                _ => None,
            },
            SOL_BANK_DEBT_TO_SALES => {
                let bal: f64 = s.loans(0, 1).inspect(|l| push(ev, l.fact)).map(|l| l.balance).sum();
                let sales = invoices.sum(0, 12).filter(|x| *x > 0.0).or(revenues.0.map(|r| r.v));
                match sales {
                    Some(x) if x > 0.0 => Some((bal / x).min(20.0)),
                    _ => None,
                }
            }
            SOL_MAX_OVERDUE_12M => borrower.then(|| {
                let mut worst: Option<&data::LoanObs> = None;
                for l in s.loans(0, 12) {
                    if worst.is_none_or(|w| l.overdue_days > w.overdue_days) {
                        worst = Some(l);
                    }
                }
                if let Some(w) = worst.filter(|w| w.overdue_days > 0) {
                    push(ev, w.fact);
                }
                worst.map_or(0.0, |w| w.overdue_days as f64)
            }),
            SOL_OVERDUE_MONTHS_12M => borrower.then(|| {
                let months: BTreeSet<Month> = s
                    .loans(0, 12)
                    .filter(|l| l.overdue_days > 0)
                    .inspect(|l| push(ev, l.fact))
                    .map(|l| l.month)
                    .collect();
                months.len() as f64
            }),
            SOL_WORST_CLASS5_12M => borrower.then(|| {
                s.loans(0, 12)
                    .filter(|l| l.class5 > 0)
                    .inspect(|l| push(ev, l.fact))
                    .map(|l| l.class5 as f64)
                    .fold(0.0, f64::max)
            }),
            SOL_ROLLOVER_SHARE => {
                let bank: Vec<_> = s
                    .loans(0, 1)
                    .filter(|l| {
                        firm.provenance_of(l.fact)
                            .is_some_and(|p| p.dataset() == "lender.bank.loans")
                    })
                    .collect();
                (!bank.is_empty()).then(|| {
                    for l in bank.iter().filter(|l| l.rollover) {
                        push(ev, l.fact);
                    }
                    bank.iter().filter(|l| l.rollover).count() as f64 / bank.len() as f64
                })
            }
            SOL_LENDERS => {
                let l: BTreeSet<&str> = s
                    .loans(0, 3)
                    .inspect(|l| push(ev, l.fact))
                    .map(|l| &*l.source)
                    .collect();
                Some(l.len() as f64)
            }
            SOL_LENDER_GROWTH => borrower.then(|| {
                let now: BTreeSet<&str> = s.loans(0, 3).map(|l| &*l.source).collect();
                let then: BTreeSet<&str> = s.loans(12, 3).map(|l| &*l.source).collect();
                for l in s.loans(0, 1) {
                    if !then.contains(&*l.source) {
                        push(ev, l.fact);
                    }
                }
                now.len() as f64 - then.len() as f64
            }),
            SOL_NONBANK_SHARE => borrower.then(|| {
                let (mut all, mut nonbank) = (0.0, 0.0);
                for l in s.loans(0, 1) {
                    all += l.balance;
                    if l.source.starts_with("mlc") || l.source.starts_with("pfc") {
                        nonbank += l.balance;
                        push(ev, l.fact);
                    }
                }
                if all > 0.0 {
                    nonbank / all
                } else {
                    0.0
                }
            }),
            SOL_AVG_RATE => {
                let (mut w, mut sum) = (0.0, 0.0);
                for l in s.loans(0, 1) {
                    if let Some(r) = l.rate {
                        let annual = if l.source.starts_with("pfc") { r * 12.0 } else { r };
                        w += l.balance;
                        sum += annual * l.balance;
                        push(ev, l.fact);
                    }
                }
                (w > 0.0).then(|| sum / w)
            }
            SOL_GUARANTEES_TO_EQUITY => {
                let g: f64 = firm
                    .guarantees_given
                    .iter()
                    .filter(|g| g.known.at(k) && g.active(t))
                    .inspect(|g| push(ev, g.fact))
                    .map(|g| g.amount)
                    .sum();
                if g <= 0.0 {
                    Some(0.0)
                } else {
                    equity.map(|(e, _)| if e > 0.0 { (g / e).min(20.0) } else { 20.0 })
                }
            }
            SOL_ARREARS_12M => {
                let n = s
                    .recent(&["tax.arrears", "power.arrears", "hrss.wage_arrears"], 12)
                    .filter(|e| &*e.dataset != "hrss.wage_arrears" || e.category == "contribution_arrears")
                    .inspect(|e| push(ev, e.fact))
                    .count();
                let w = (0..12)
                    .filter(|&k| water_arrears.v[k].is_some_and(|x| x > 0.0))
                    .inspect(|&k| push(ev, water_arrears.fact[k]))
                    .count();
                let g = (0..12)
                    .filter(|&k| gas_arrears.v[k].is_some_and(|x| x > 0.0))
                    .inspect(|&k| push(ev, gas_arrears.fact[k]))
                    .count();
                Some((n + w + g) as f64)
            }
            SOL_CONTRIB_GAP_3M => match (due.sum(0, 3), paid.sum(0, 3)) {
                (Some(d), Some(p)) if d > 0.0 => {
                    due.facts(0, 3, ev);
                    Some((1.0 - p / d).clamp(0.0, 1.0))
                }
                _ => None,
            },
            SOL_COURT_DEBTOR_24M => Some(
                s.recent(&["court.cases", "court.dishonest"], 24)
                    .filter(|e| &*e.dataset == "court.dishonest" || e.status == "defendant" || e.status == "debtor")
                    .inspect(|e| push(ev, e.fact))
                    .count() as f64,
            ),
            SOL_ENQUIRIES_3M => enquiries.sum(0, 3).inspect(|_| enquiries.facts(0, 3, ev)),
            SOL_CASH_FLOW => {
                let (c, l) = (fs("operating_cash_flow").0, fs("total_liabilities").0);
                quotient(c, l, ev).map(|x| x.clamp(-2.0, 2.0))
            }
            SOL_ALTMAN_Z => {
                let mut y = |m: &str| fs(m).0.map(|v| v.v);
                match (
                    y("total_assets"),
                    y("total_liabilities"),
                    y("current_assets"),
                    y("current_liabilities"),
                    y("retained_earnings"),
                    y("ebit"),
                ) {
                    (Some(ta), Some(tl), Some(ca), Some(cl), Some(re), Some(ebit)) if ta > 0.0 && tl > 0.0 => {
                        if let Some(a) = fs("total_assets").0 {
                            push(ev, a.fact);
                        }
                        let z = 6.56 * (ca - cl) / ta + 3.26 * re / ta + 6.72 * ebit / ta + 1.05 * (ta - tl) / tl;
                        Some(z.clamp(-20.0, 20.0))
                    }
                    _ => None,
                }
            }
            SOL_ADVERSE_RECORDS_60M => Some(
                s.recent(
                    &[
                        "court.cases",
                        "court.dishonest",
                        "amr.abnormal_list",
                        "amr.penalties",
                        "safety.penalties",
                        "eco.penalties",
                        "fire.penalties",
                        "transport.penalties",
                        "cale.penalties",
                        "tax.arrears",
                        "power.arrears",
                        "hrss.wage_arrears",
                        "tax.abnormal_taxpayer",
                        "psb.econ_crime",
                        "media.complaints",
                        "ndrc.credit_lists",
                        "lender.bank.alerts",
                    ],
                    60,
                )
                .filter(|e| match &*e.dataset {
                    "court.cases" => e.status == "defendant" || e.status == "debtor",
                    "ndrc.credit_lists" => e.category == "black_list",
                    _ => true,
                })
                .inspect(|e| push(ev, e.fact))
                .count() as f64,
            ),
            DEV_SALES_GROWTH => invoices.ratio(12, 12, ev),
            DEV_POWER_GROWTH => power.ratio(12, 12, ev),
            DEV_HEADCOUNT_GROWTH => match (insured.v[0], insured.v[12]) {
                (Some(a), Some(b)) if b > 0.0 => {
                    push(ev, insured.fact[0]);
                    push(ev, insured.fact[12]);
                    Some((a / b - 1.0).min(3.0))
                }
                _ => None,
            },
            DEV_REVENUE_GROWTH => match (revenues.0, revenues.1) {
                (Some(a), Some(b)) if b.year == a.year - 1 && b.v > 0.0 => {
                    push(ev, a.fact);
                    push(ev, b.fact);
                    growth(a.v, b.v)
                }
                _ => None,
            },
            DEV_PATENTS_36M => Some(s.recent(&["ip.patents"], 36).inspect(|e| push(ev, e.fact)).count() as f64),
            DEV_TECH_CERT => Some(
                s.events()
                    .filter(|e| &*e.dataset == "sci.certifications" && e.active(t))
                    .inspect(|e| push(ev, e.fact))
                    .count() as f64,
            ),
            DEV_EXPORT_GROWTH => export.ratio(12, 12, ev),
            DEV_SUBSIDIES_36M => Some(
                s.recent(&["finance.subsidies", "agri.subsidies"], 36)
                    .inspect(|e| push(ev, e.fact))
                    .count() as f64,
            ),
            DEV_HONOURS => {
                let red = s
                    .events()
                    .filter(|e| &*e.dataset == "ndrc.credit_lists" && e.category == "red_list" && e.active(t))
                    .inspect(|e| push(ev, e.fact))
                    .count();
                let a = match s.code("tax.credit_grade:tax_grade") {
                    Some((c, f)) if c == "A" => {
                        push(ev, f);
                        1
                    }
                    _ => 0,
                };
                Some((red + a) as f64)
            }
            DEV_ECO_GRADE => s.code("eco.credit_grade:eco_grade").and_then(|(c, f)| {
                push(ev, f);
                match c.as_str() {
                    "green" => Some(4.0),
                    "blue" => Some(3.0),
                    "yellow" => Some(2.0),
                    "red" => Some(1.0),
                    "black" => Some(0.0),
                    _ => None,
                }
            }),
            _ => None,
        };
        values[i] = v.filter(|x| x.is_finite());
    }
    FeatureRow { values, evidence }
}

fn push(ev: &mut Vec<i64>, fact: i64) {
    if ev.len() < 4 && !ev.contains(&fact) {
        ev.push(fact);
    }
}
