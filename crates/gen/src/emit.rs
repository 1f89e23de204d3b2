//! Every registered dataset's export: rows from the world, formatted the way that source writes them
//! (format, encoding, date style, units, code lists), with the defects real exports have.
//!
//! Deliveries: a backfill (one file per dataset and year of data, delivered when the platform starts,
//! twelve months before the horizon ends), then one file per dataset and month.

use crate::rng::stream;
use crate::world::{add_months, month_end, World, GCS, SECTORS};
use crate::{GenError, Summary};
use chrono::{Datelike, Duration, NaiveDate};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Poisson};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::path::{Path, PathBuf};
use xinyong_registry::{ColType, Dataset, DateStyle, Encoding, Format, Registry, Shape, SourceKind};

/// A value before formatting.
#[derive(Debug, Clone)]
pub enum Val {
    Empty,
    S(String),
    D(NaiveDate),
    Month(i32, u32),
    Year(i32),
    /// Money in yuan.
    Money(f64),
    Num(f64),
    Int(i64),
    /// A ratio as a fraction (0.25 = 25 %).
    Ratio(f64),
    /// A canonical code, written as the source's raw code.
    Code(&'static str),
}

/// A formatted cell.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Blank,
    Text(String),
    Num(f64),
}

impl Cell {
    fn text(&self) -> String {
        match self {
            Cell::Blank => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Num(n) => fmt_num(*n),
        }
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        let s = format!("{n:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// One output row: the cells, the firm it is about (for defects), and whether it was mis-encoded.
#[derive(Debug, Clone)]
pub struct RowOut {
    pub cells: Vec<Cell>,
    pub firm: usize,
    pub wrong_encoding: bool,
}

/// The defect classes injected into exports. Each lands in quarantine with its reason, except
/// `LegacyId`, `FullWidth` and `FileEncoding`, which ingest must repair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Defect {
    InvalidId,
    LegacyId,
    UnknownLegacyId,
    Duplicate,
    MissingRequired,
    BadDate,
    BadNumber,
    FullWidth,
    TotalsRow,
    RowEncoding,
    UnknownCode,
    FileEncoding,
}

pub fn excel_serial(d: NaiveDate) -> f64 {
    (d - NaiveDate::from_ymd_opt(1899, 12, 30).expect("epoch")).num_days() as f64
}

fn fmt_date(d: NaiveDate, style: DateStyle) -> Cell {
    match style {
        DateStyle::Iso => Cell::Text(d.format("%Y-%m-%d").to_string()),
        DateStyle::Cn => Cell::Text(format!("{}年{}月{}日", d.year(), d.month(), d.day())),
        DateStyle::Compact => Cell::Text(d.format("%Y%m%d").to_string()),
        DateStyle::Slash => Cell::Text(format!("{}/{}/{}", d.year(), d.month(), d.day())),
        DateStyle::ExcelSerial => Cell::Num(excel_serial(d)),
    }
}

fn fmt_month(y: i32, m: u32, style: DateStyle) -> Cell {
    match style {
        DateStyle::Iso => Cell::Text(format!("{y}-{m:02}")),
        DateStyle::Cn => Cell::Text(format!("{y}年{m}月")),
        DateStyle::Compact => Cell::Text(format!("{y}{m:02}")),
        DateStyle::Slash => Cell::Text(format!("{y}/{m:02}")),
        DateStyle::ExcelSerial => Cell::Num(excel_serial(NaiveDate::from_ymd_opt(y, m, 1).expect("month"))),
    }
}

fn format_cell(ds: &Dataset, col: usize, v: &Val, numeric: bool) -> Cell {
    let c = &ds.columns[col];
    let num = |x: f64| if numeric { Cell::Num(x) } else { Cell::Text(fmt_num(x)) };
    match v {
        Val::Empty => Cell::Blank,
        Val::S(s) => Cell::Text(s.clone()),
        Val::D(d) => fmt_date(*d, ds.date_style),
        Val::Month(y, m) => fmt_month(*y, *m, ds.date_style),
        Val::Year(y) => match ds.date_style {
            DateStyle::Cn => Cell::Text(format!("{y}年")),
            _ => num(*y as f64),
        },
        Val::Money(y) => {
            let scaled = if c.unit.as_deref() == Some("万元") {
                (y / 10_000.0 * 10_000.0).round() / 10_000.0
            } else {
                (y * 100.0).round() / 100.0
            };
            num(scaled)
        }
        Val::Num(x) => num((x * 100.0).round() / 100.0),
        Val::Int(i) => num(*i as f64),
        Val::Ratio(r) => {
            let x = if c.unit.as_deref() == Some("%") { r * 100.0 } else { *r };
            num((x * 10_000.0).round() / 10_000.0)
        }
        Val::Code(canon) => {
            let raw = c
                .codes
                .iter()
                .find(|(_, v)| v.as_str() == *canon)
                .map(|(k, _)| k.clone())
                .unwrap_or_else(|| canon.to_string());
            Cell::Text(raw)
        }
    }
}

/// A delivery: the months whose data it carries and the date it is delivered.
#[derive(Debug, Clone)]
pub struct Batch {
    pub index: usize,
    pub delivered: NaiveDate,
    pub from: usize,
    pub to: usize,
    pub label: String,
    pub backfill: bool,
}

/// The delivery schedule: the backfill (one batch per calendar year before the cut-over), then monthly.
pub fn schedule(w: &World) -> Vec<Batch> {
    let nm = w.months.len();
    let cut = nm.saturating_sub(12);
    let cut_day = w.months.get(cut).copied().unwrap_or(w.months[0]) + Duration::days(9);
    let mut v = Vec::new();
    let mut m = 0;
    while m < cut {
        let to = (m + 12).min(cut);
        v.push(Batch {
            index: v.len(),
            delivered: cut_day,
            from: m,
            to,
            label: w.months[m].year().to_string(),
            backfill: true,
        });
        m = to;
    }
    for m in cut..nm {
        v.push(Batch {
            index: v.len(),
            delivered: add_months(w.months[m], 1) + Duration::days(9),
            from: m,
            to: m + 1,
            label: w.months[m].format("%Y-%m").to_string(),
            backfill: false,
        });
    }
    v
}

/// The schedule with each backfill batch split into months (same delivery date; labels `YYYY-MM`).
/// Sub-batches get indices after the regular ones, so regular batches' random streams are unchanged.
fn monthly_backfill(w: &World, batches: &[Batch]) -> Vec<Batch> {
    let mut v = Vec::new();
    for b in batches {
        if !b.backfill {
            v.push(b.clone());
            continue;
        }
        for m in b.from..b.to {
            v.push(Batch {
                index: 10_000 + m,
                delivered: b.delivered,
                from: m,
                to: m + 1,
                label: w.months[m].format("%Y-%m").to_string(),
                backfill: true,
            });
        }
    }
    v
}

/// Parameters of an event dataset's generator.
struct EventSpec {
    rate: f64,
    k: f64,
    post_default: f64,
    amount: f64,
    end_months: Option<(i64, i64)>,
}

fn event_spec(id: &str) -> EventSpec {
    let s = |rate, k, post_default, amount, end_months| EventSpec {
        rate,
        k,
        post_default,
        amount,
        end_months,
    };
    match id {
        "amr.abnormal_list" => s(0.02, 0.9, 6.0, 0.0, Some((3, 18))),
        "amr.penalties" => s(0.03, 0.5, 2.0, 0.01, Some((36, 37))),
        "tax.arrears" => s(0.02, 1.1, 10.0, 0.1, Some((1, 10))),
        "hrss.wage_arrears" => s(0.015, 1.0, 10.0, 0.05, Some((1, 6))),
        "court.cases" => s(0.05, 0.8, 12.0, 0.4, Some((3, 14))),
        "court.dishonest" => s(0.003, 1.2, 15.0, 0.5, Some((24, 60))),
        "notary.loan_contracts" => s(0.04, 0.3, 4.0, 0.5, None),
        "realestate.rights" => s(0.05, 0.4, 5.0, 2.0, Some((12, 60))),
        "power.arrears" => s(0.02, 1.1, 8.0, 0.02, Some((1, 4))),
        "sci.certifications" => s(0.02, -0.8, 0.2, 0.03, Some((36, 37))),
        "commerce.foreign_trade" => s(0.01, -0.2, 0.5, 0.0, None),
        "land.use_rights" => s(0.01, 0.3, 2.0, 3.0, None),
        "ndrc.credit_lists" => s(0.01, 0.2, 4.0, 0.0, Some((12, 36))),
        "finance.subsidies" => s(0.04, -0.6, 0.2, 0.02, None),
        "housing.qualifications" => s(0.02, 0.2, 2.0, 0.05, Some((24, 60))),
        "agri.subsidies" => s(0.01, -0.3, 0.3, 0.01, None),
        "ip.patents" => s(0.05, -0.6, 0.2, 0.0, None),
        "psb.econ_crime" => s(0.001, 1.2, 8.0, 0.5, Some((6, 24))),
        "finoffice.lists" => s(0.01, 0.9, 5.0, 0.3, None),
        "media.complaints" => s(0.03, 0.7, 4.0, 0.0, None),
        _ if id.ends_with(".penalties") => s(0.015, 0.5, 2.0, 0.005, Some((12, 36))),
        _ => s(0.01, 0.5, 2.0, 0.0, None),
    }
}

/// A generated event, before formatting.
#[derive(Debug, Clone)]
struct Event {
    date: NaiveDate,
    end: Option<NaiveDate>,
    record_id: String,
    category: &'static str,
    status: &'static str,
    amount: f64,
}

/// A code-list value as a `&'static str`: each distinct value is leaked once (the code lists are small
/// and fixed), so rows can carry codes without allocating.
fn intern(s: &str) -> &'static str {
    static TABLE: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, &'static str>>> =
        std::sync::OnceLock::new();
    let mut t = TABLE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(v) = t.get(s) {
        return v;
    }
    let v: &'static str = Box::leak(s.to_string().into_boxed_str());
    t.insert(s.to_string(), v);
    v
}

fn codes_of(ds: &Dataset, field: &str) -> Vec<&'static str> {
    // Canonical values of a code column, deduplicated, in code-list order.
    let mut v: Vec<&'static str> = Vec::new();
    if let Some(c) = ds.columns.iter().find(|c| c.field == field) {
        for canon in c.codes.values() {
            let s = intern(canon);
            if !v.contains(&s) {
                v.push(s);
            }
        }
    }
    v
}

fn events_for(w: &World, ds: &Dataset, i: usize, cats: &[&'static str], stats: &[&'static str]) -> Vec<Event> {
    let spec = event_spec(&ds.id);
    let mut rng = stream(w.cfg.seed, &ds.id, i as u64, 1);
    let f = &w.firms[i];
    let mut v = Vec::new();
    let dm = w.default_month(i);
    for m in 0..w.months.len() {
        let u: f64 = rng.gen();
        if !w.operating(i, m) {
            continue;
        }
        let distress = w.x[i][m] as f64 + (f.baseline - crate::world::BASE_LOGODDS);
        let mut rate = spec.rate / 12.0 * (spec.k * distress).exp();
        if dm.is_some_and(|d| m >= d) {
            rate *= spec.post_default;
        }
        if u >= rate.min(0.9) {
            continue;
        }
        let day = rng.gen_range(1..=28);
        let date = NaiveDate::from_ymd_opt(w.months[m].year(), w.months[m].month(), day).expect("day");
        let end = spec
            .end_months
            .map(|(a, b)| add_months(date, rng.gen_range(a..b.max(a + 1))) + Duration::days(rng.gen_range(0..27)));
        let amount = if spec.amount > 0.0 {
            (f.scale * spec.amount * LogNormal::new(0.0, 0.8).expect("ln").sample(&mut rng) / 100.0).round() * 100.0
        } else {
            0.0
        };
        let tag: String = ds.id.split('.').next().unwrap_or("x").chars().take(3).collect();
        v.push(Event {
            date,
            end,
            record_id: format!("{}{}{:06}{:03}", tag.to_uppercase(), date.format("%Y%m"), i, v.len()),
            category: if cats.is_empty() {
                ""
            } else {
                cats[rng.gen_range(0..cats.len())]
            },
            status: if stats.is_empty() {
                ""
            } else {
                stats[rng.gen_range(0..stats.len())]
            },
            amount,
        });
    }
    v
}

/// Rows of one dataset for one firm (or lender) in one batch.
fn rows_for(w: &World, ds: &Dataset, source: &str, b: &Batch, i: usize, rng: &mut ChaCha8Rng) -> Vec<Vec<Val>> {
    let col = |name: &str| ds.columns.iter().position(|c| c.field == name);
    let ncol = ds.columns.len();
    let f = &w.firms[i];
    let mut out = Vec::new();
    let uscc = Val::S(f.uscc.to_string());
    let sec = &SECTORS[f.sector];
    let set = |row: &mut Vec<Val>, field: &str, v: Val| {
        if let Some(c) = col(field) {
            row[c] = v;
        }
    };
    let period_end = w.months[b.to - 1];
    match ds.shape {
        Shape::Registration => {
            if !f.in_district {
                return out;
            }
            let fm = w.founded_month[i];
            let new_here = fm >= b.from as i64 && fm < b.to as i64;
            let dereg_here = f.dereg_month.is_some_and(|d| d >= b.from && d < b.to);
            let include = if b.backfill {
                b.index == 0 && fm < b.to.max(w.months.len() - 12) as i64
            } else {
                new_here || dereg_here
            };
            let include = include || (b.backfill && b.index == 0 && fm < (w.months.len() - 12) as i64);
            if !include {
                return out;
            }
            let cut = if b.backfill { w.months.len() - 12 } else { b.to };
            let dereg = f.dereg_month.filter(|&d| d < cut);
            let mut r = vec![Val::Empty; ncol];
            set(&mut r, "id", uscc);
            set(&mut r, "reg_no", f.reg_no.clone().map(Val::S).unwrap_or(Val::Empty));
            set(&mut r, "name", Val::S(f.name.clone()));
            set(&mut r, "former_names", Val::S(f.former_names.join("；")));
            set(&mut r, "legal_rep", Val::S(w.persons[f.legal_rep].name.clone()));
            set(&mut r, "legal_rep_id", Val::S(w.persons[f.legal_rep].masked_id.clone()));
            set(&mut r, "reg_capital", Val::Money(f.reg_capital_wan * 10_000.0));
            set(&mut r, "paid_in_capital", Val::Money(f.paid_in_wan * 10_000.0));
            set(&mut r, "founded", Val::D(f.founded));
            set(&mut r, "industry", Val::S(f.industry.to_string()));
            set(&mut r, "township", Val::S(f.township.clone()));
            set(&mut r, "address", Val::S(f.address.clone()));
            let status = if dereg.is_some() { f.dereg_status } else { "active" };
            set(&mut r, "status", Val::Code(status));
            set(
                &mut r,
                "dereg_date",
                dereg.map(|d| Val::D(month_end(w.months[d]))).unwrap_or(Val::Empty),
            );
            set(
                &mut r,
                "parent_id",
                f.parent
                    .map(|p| Val::S(w.firms[p].uscc.to_string()))
                    .unwrap_or(Val::Empty),
            );
            set(
                &mut r,
                "entity_type",
                Val::S(
                    if f.parent.is_some() {
                        "有限责任公司分公司"
                    } else {
                        "有限责任公司(自然人投资或控股)"
                    }
                    .into(),
                ),
            );
            set(&mut r, "size_class", Val::Code(f.size.code()));
            out.push(r);
        }
        Shape::Shareholding => {
            let fm = w.founded_month[i];
            let cut = (w.months.len() - 12) as i64;
            let include = f.in_district
                && if b.backfill {
                    b.index == 0 && fm < cut
                } else {
                    fm >= b.from as i64 && fm < b.to as i64
                };
            if !include || f.parent.is_some() {
                return out;
            }
            for (h, share) in &f.shareholders {
                let mut r = vec![Val::Empty; ncol];
                set(&mut r, "id", uscc.clone());
                let (name, kind, id) = match *h {
                    crate::world::Holder::Person(p) => {
                        (w.persons[p].name.clone(), "person", w.persons[p].masked_id.clone())
                    }
                    crate::world::Holder::Firm(o) => (w.firms[o].name.clone(), "firm", w.firms[o].uscc.to_string()),
                };
                set(&mut r, "holder_name", Val::S(name));
                set(&mut r, "holder_type", Val::Code(kind));
                set(&mut r, "holder_id", Val::S(id));
                set(&mut r, "share_ratio", Val::Ratio(share / 100.0));
                set(
                    &mut r,
                    "subscribed",
                    Val::Money(f.reg_capital_wan * 10_000.0 * share / 100.0),
                );
                out.push(r);
            }
        }
        Shape::Metric => metric_rows(w, ds, b, i, rng, &mut out),
        Shape::Event => {
            let cats = codes_of(ds, "category");
            let stats = codes_of(ds, "status");
            if !f.in_district {
                return out;
            }
            let lo = w.months[b.from];
            let hi = month_end(period_end);
            for e in events_for(w, ds, i, &cats, &stats) {
                let fresh = e.date >= lo && e.date <= hi;
                // An event re-delivered when it ends (same record id, end date filled in).
                let ended_now = !b.backfill && e.date < lo && e.end.is_some_and(|d| d >= lo && d <= hi);
                if !(fresh || ended_now) {
                    continue;
                }
                let end_known = e.end.filter(|&d| d <= hi);
                let mut r = vec![Val::Empty; ncol];
                set(&mut r, "id", uscc.clone());
                set(&mut r, "record_id", Val::S(e.record_id.clone()));
                set(&mut r, "date", Val::D(e.date));
                set(&mut r, "end_date", end_known.map(Val::D).unwrap_or(Val::Empty));
                if !e.category.is_empty() {
                    set(&mut r, "category", Val::Code(e.category));
                }
                if !e.status.is_empty() {
                    set(&mut r, "status", Val::Code(e.status));
                }
                if let Some(c) = col("detail") {
                    r[c] = if ds.columns[c].ty == ColType::Code {
                        let d = codes_of(ds, "detail");
                        Val::Code(d[rng.gen_range(0..d.len())])
                    } else {
                        Val::S(format!(
                            "违反《{}》第{}条",
                            ["安全生产法", "环境保护法", "消防法", "产品质量法", "道路运输条例"][rng.gen_range(0..5)],
                            rng.gen_range(10..90)
                        ))
                    };
                }
                set(
                    &mut r,
                    "amount",
                    if e.amount > 0.0 {
                        Val::Money(e.amount)
                    } else {
                        Val::Empty
                    },
                );
                set(&mut r, "counterparty", Val::S(crate::names::person(rng)));
                out.push(r);
            }
        }
        Shape::Loan => {
            for fac in w.facilities.iter().filter(|x| x.borrower == i && x.lender == source) {
                for m in b.from..b.to {
                    if let Some(r) = loan_row(w, ds, fac, m, rng) {
                        out.push(r);
                    }
                }
            }
        }
        Shape::Guarantee => {
            let gc_index = source
                .strip_prefix("gc")
                .and_then(|s| s.parse::<usize>().ok())
                .map(|k| k - 1);
            for (fi, fac) in w.facilities.iter().enumerate().filter(|(_, x)| x.borrower == i) {
                let lender_match = match gc_index {
                    Some(g) => fac.gc_guarantee == Some(g),
                    None => fac.lender == source,
                };
                if !lender_match {
                    continue;
                }
                for m in b.from..b.to {
                    let age = m as i64 - fac.start;
                    if age < 0 || age % 12 != 0 && !(m == 0 && age > 0) || !w.operating(i, m) {
                        continue;
                    }
                    if w.default_month(i).is_some_and(|d| d < m) {
                        continue;
                    }
                    let renewal = age / 12;
                    let start = loan_start(w, fac, m);
                    let guarantors: Vec<(usize, &str)> = match gc_index {
                        Some(g) => vec![(w.cfg.enterprises + g, "joint_liability")],
                        None => fac.guarantors.clone(),
                    };
                    for (k, (g, kind)) in guarantors.iter().enumerate() {
                        let mut r = vec![Val::Empty; ncol];
                        set(&mut r, "id", uscc.clone());
                        set(&mut r, "guarantor_id", Val::S(w.firms[*g].uscc.to_string()));
                        set(
                            &mut r,
                            "contract_id",
                            Val::S(format!("{}BZ{:06}{:02}{:02}", source.to_uppercase(), fi, renewal, k)),
                        );
                        set(&mut r, "loan_id", Val::S(loan_id(fac, fi, renewal)));
                        set(
                            &mut r,
                            "amount",
                            Val::Money((fac.amount * rng.gen_range(0.5..1.0f64) / 10_000.0).round() * 10_000.0),
                        );
                        set(&mut r, "start", Val::D(start));
                        set(&mut r, "end", Val::D(add_months(start, 12) - Duration::days(1)));
                        set(&mut r, "kind", Val::Code(kind));
                        set(&mut r, "lender", Val::S(fac.lender.clone()));
                        out.push(r);
                    }
                }
            }
        }
    }
    let _ = sec;
    out
}

fn loan_id(fac: &crate::world::Facility, fi: usize, renewal: i64) -> String {
    format!("{}JJ{:07}R{:02}", fac.lender.to_uppercase(), fi, renewal.max(0))
}

fn loan_start(w: &World, fac: &crate::world::Facility, m: usize) -> NaiveDate {
    let age = m as i64 - fac.start;
    let renew_m = fac.start + (age / 12) * 12;
    add_months(w.months[0], renew_m) + Duration::days((fac.borrower % 27) as i64)
}

fn loan_row(w: &World, ds: &Dataset, fac: &crate::world::Facility, m: usize, rng: &mut ChaCha8Rng) -> Option<Vec<Val>> {
    let i = fac.borrower;
    let age = m as i64 - fac.start;
    if age < 0 || !w.operating(i, m) && w.default_month(i).is_none() {
        return None;
    }
    let dd = w.default_date[i];
    let me = month_end(w.months[m]);
    // Before a default, a facility renews; after it, the last loan stays outstanding and overdue.
    let defaulted_at = w.default_month(i);
    let renewal = match defaulted_at {
        Some(d) if (d as i64) < m as i64 => (d as i64 - fac.start).max(0) / 12,
        _ => age / 12,
    };
    if defaulted_at.is_some_and(|d| m > d + 24) {
        return None; // written off and dropped from the monthly report
    }
    let fi = w.facilities.iter().position(|x| std::ptr::eq(x, fac)).unwrap_or(0);
    let start = add_months(w.months[0], fac.start + renewal * 12) + Duration::days((i % 27) as i64);
    let maturity = add_months(start, 12) - Duration::days(1);
    let col = |name: &str| ds.columns.iter().position(|c| c.field == name);
    let mut r = vec![Val::Empty; ds.columns.len()];
    let mut set = |field: &str, v: Val| {
        if let Some(c) = col(field) {
            r[c] = v;
        }
    };
    let overdue_days = match dd {
        Some(d) if d <= me => (me - d).num_days(),
        _ => {
            let x = w.x[i][m];
            if x > 1.2 && rng.gen_bool(0.25) {
                rng.gen_range(1..30)
            } else {
                0
            }
        }
    };
    let class5 = match overdue_days {
        0 if w.x[i][m] > 1.6 => "special_mention",
        0 => "normal",
        1..=89 => "special_mention",
        90..=179 => "substandard",
        180..=359 => "doubtful",
        _ => "loss",
    };
    set("id", Val::S(w.firms[i].uscc.to_string()));
    set("lender", Val::S(fac.lender.clone()));
    set("loan_id", Val::S(loan_id(fac, fi, renewal)));
    set("period", Val::Month(w.months[m].year(), w.months[m].month()));
    set("amount", Val::Money(fac.amount));
    set("balance", Val::Money(fac.amount));
    set("start", Val::D(start));
    set("maturity", Val::D(maturity));
    set("rate", Val::Ratio(fac.rate / 100.0));
    set("class5", Val::Code(class5));
    set(
        "overdue_principal",
        Val::Money(if overdue_days > 0 && dd.is_some_and(|d| d <= me) {
            fac.amount
        } else {
            0.0
        }),
    );
    set(
        "overdue_interest",
        Val::Money(if overdue_days > 0 {
            (fac.amount * fac.rate / 100.0 / 365.0 * overdue_days as f64).round()
        } else {
            0.0
        }),
    );
    set("overdue_days", Val::Int(overdue_days));
    set("rollover", Val::Code(if renewal > 0 { "yes" } else { "no" }));
    Some(r)
}

fn metric_covered(w: &World, ds: &Dataset, i: usize) -> bool {
    let f = &w.firms[i];
    if !f.in_district {
        return false;
    }
    let h = (i as u64).wrapping_mul(0x9E3779B97F4A7C15) >> 40;
    match ds.id.as_str() {
        "hpf.contributions" => f.employees >= 8,
        "water.usage" => SECTORS[f.sector].manufacturing || h % 10 < 4,
        "gas.usage" => f.uses_gas,
        "stats.above_scale" => f.above_scale,
        "eit.mu_efficiency" => SECTORS[f.sector].manufacturing,
        "eco.credit_grade" => matches!(SECTORS[f.sector].key, "chemicals" | "textiles"),
        "customs.trade" => f.exporter,
        "pboc.settlement" => f.borrower || h.is_multiple_of(2),
        _ => true,
    }
}

fn metric_rows(w: &World, ds: &Dataset, b: &Batch, i: usize, rng: &mut ChaCha8Rng, out: &mut Vec<Vec<Val>>) {
    if !metric_covered(w, ds, i) {
        return;
    }
    let f = &w.firms[i];
    let sec = &SECTORS[f.sector];
    let col = |name: &str| ds.columns.iter().position(|c| c.field == name);
    let ncol = ds.columns.len();
    let uscc = Val::S(f.uscc.to_string());
    let noise = |rng: &mut ChaCha8Rng, s: f64| LogNormal::new(0.0, s).expect("ln").sample(rng);
    match ds.period.as_deref() {
        Some("day") => {
            for m in b.from..b.to {
                if !w.operating(i, m) {
                    continue;
                }
                let a = f.scale * w.activity[i][m] as f64;
                let first = w.months[m];
                let days = (month_end(first) - first).num_days() + 1;
                if ds.id == "tax.invoices" {
                    let lambda = (a / w.cfg.invoice_mean_yuan).max(0.05);
                    let n = Poisson::new(lambda)
                        .map(|p| p.sample(rng) as usize)
                        .unwrap_or(0)
                        .min(20_000);
                    let mut serial = rng.gen_range(10_000_000u64..90_000_000);
                    for _ in 0..n {
                        serial += 1;
                        let d = first + Duration::days(rng.gen_range(0..days));
                        let mut r = vec![Val::Empty; ncol];
                        r[col("id").unwrap_or(0)] = uscc.clone();
                        if let Some(c) = col("date") {
                            r[c] = Val::D(d);
                        }
                        if let Some(c) = col("category") {
                            r[c] = Val::S(format!("{serial:08}"));
                        }
                        if let Some(c) = col("metric:invoice_amount") {
                            r[c] = Val::Money(((a / n as f64) * noise(rng, 0.6) * 100.0).round() / 100.0);
                        }
                        out.push(r);
                    }
                } else {
                    for day in 0..days {
                        let d = first + Duration::days(day);
                        let wd = d.weekday().num_days_from_monday();
                        let wk = if wd == 6 {
                            0.65
                        } else if wd == 5 {
                            0.85
                        } else {
                            1.05
                        };
                        let festival = if d.month() == 2 && d.day() < 20 { 0.55 } else { 1.0 };
                        let mut r = vec![Val::Empty; ncol];
                        r[col("id").unwrap_or(0)] = uscc.clone();
                        if let Some(c) = col("date") {
                            r[c] = Val::D(d);
                        }
                        for (c, column) in ds.columns.iter().enumerate() {
                            if column.field == "metric:power_kwh" {
                                r[c] = Val::Num(
                                    (a * sec.power_per_yuan / days as f64 * wk * festival * noise(rng, 0.1)).max(0.0),
                                );
                            }
                        }
                        out.push(r);
                    }
                }
            }
        }
        Some("year") => {
            let nm = w.months.len();
            let cut = nm - 12;
            for y0 in (0..nm).step_by(12) {
                let due = y0 + 12 + 4;
                // Backfill batches are per calendar year of data; later years arrive in May of the next year.
                let in_batch = if b.backfill {
                    due < cut && y0 >= b.from && y0 < b.to
                } else {
                    due >= b.from && due < b.to
                };
                if !in_batch || !w.operating(i, y0 + 11) {
                    continue;
                }
                let ys: Vec<f64> = (y0..y0 + 12).map(|m| f.scale * w.activity[i][m] as f64).collect();
                let revenue: f64 = ys.iter().sum();
                let mx: f64 = (y0..y0 + 12).map(|m| w.x[i][m] as f64).sum::<f64>() / 12.0;
                let margin = 0.07 - 0.06 * mx + 0.02 * (rng.gen::<f64>() - 0.5);
                let assets = revenue * rng.gen_range(0.7..1.6);
                let leverage = (0.45 + 0.12 * mx + 0.1 * (f.baseline - crate::world::BASE_LOGODDS)).clamp(0.1, 1.4);
                let jitter: f64 = rng.gen();
                let grade = |good: &[&'static str]| -> &'static str {
                    let z = mx + (f.baseline - crate::world::BASE_LOGODDS) * 0.5 + 0.4 * (jitter - 0.5);
                    let k = if z < -0.6 {
                        0
                    } else if z < 0.2 {
                        1
                    } else if z < 0.9 {
                        2
                    } else if z < 1.6 {
                        3
                    } else {
                        4
                    };
                    good[k.min(good.len() - 1)]
                };
                let mut r = vec![Val::Empty; ncol];
                r[col("id").unwrap_or(0)] = uscc.clone();
                if let Some(c) = col("period") {
                    r[c] = Val::Year(w.months[y0].year());
                }
                for (c, column) in ds.columns.iter().enumerate() {
                    let Some(name) = column.field.strip_prefix("metric:") else {
                        continue;
                    };
                    r[c] = match name {
                        "total_assets" => Val::Money(assets),
                        "total_liabilities" => Val::Money(assets * leverage),
                        "revenue" => Val::Money(revenue),
                        "profit" => Val::Money(revenue * margin),
                        "tax_total" => Val::Money(revenue * 0.055),
                        "employees" => {
                            Val::Int((f.employees as f64 * (revenue / (f.scale * 12.0)).sqrt()).round() as i64)
                        }
                        "output_value" => Val::Money(revenue * rng.gen_range(1.0..1.1)),
                        "tax_per_mu" => Val::Money(revenue * 0.055 / rng.gen_range(5.0..60.0)),
                        "energy_tce" => Val::Num(revenue * sec.power_per_yuan * 0.0001229),
                        "tax_grade" => Val::Code(grade(&["A", "B", "M", "C", "D"])),
                        "mu_grade" => Val::Code(grade(&["A", "B", "C", "D"])),
                        "eco_grade" => Val::Code(grade(&["green", "blue", "yellow", "red", "black"])),
                        _ => Val::Empty,
                    };
                }
                out.push(r);
            }
        }
        _ => {
            for m in b.from..b.to {
                if !w.operating(i, m) {
                    continue;
                }
                let a = f.scale * w.activity[i][m] as f64;
                let x = w.x[i][m] as f64;
                let distressed = x > 1.3;
                let mut r = vec![Val::Empty; ncol];
                r[col("id").unwrap_or(0)] = uscc.clone();
                if let Some(c) = col("period") {
                    r[c] = Val::Month(w.months[m].year(), w.months[m].month());
                }
                let insured = (f.employees as f64 * (w.activity[i][m] as f64).sqrt()).round().max(1.0);
                for (c, column) in ds.columns.iter().enumerate() {
                    let Some(name) = column.field.strip_prefix("metric:") else {
                        continue;
                    };
                    r[c] = match name {
                        "tax_paid" => Val::Money(if distressed && rng.gen_bool(0.4) {
                            0.0
                        } else {
                            a * 0.055 * noise(rng, 0.2)
                        }),
                        "vat_paid" => Val::Money(a * 0.035 * noise(rng, 0.2)),
                        "insured" => Val::Int(insured as i64),
                        "contribution_due" => Val::Money(insured * 1150.0),
                        "contribution_paid" => Val::Money(if distressed {
                            insured * 1150.0 * rng.gen_range(0.0..1.0)
                        } else {
                            insured * 1150.0
                        }),
                        "hpf_people" => Val::Int((insured * 0.6).round() as i64),
                        "hpf_amount" => Val::Money((insured * 0.6).round() * 820.0),
                        "hpf_months_owed" => Val::Int(if distressed { rng.gen_range(1..4) } else { 0 }),
                        "water_t" => Val::Num(a * sec.water_per_yuan * noise(rng, 0.15)),
                        "water_fee" => Val::Money(a * sec.water_per_yuan * 4.1),
                        "water_arrears" => Val::Money(if distressed && rng.gen_bool(0.5) {
                            a * sec.water_per_yuan * 4.1 * rng.gen_range(0.5..2.5)
                        } else {
                            0.0
                        }),
                        "gas_m3" => Val::Num(a * 0.008 * noise(rng, 0.15)),
                        "gas_arrears" => Val::Money(if distressed && rng.gen_bool(0.4) { a * 0.02 } else { 0.0 }),
                        "export" => Val::Money(a * rng.gen_range(0.3..0.8)),
                        "import" => Val::Money(a * rng.gen_range(0.05..0.3)),
                        "settle_in" => Val::Money(a * rng.gen_range(0.9..1.2)),
                        "settle_out" => Val::Money(a * rng.gen_range(0.9..1.2) * (1.0 + 0.08 * x.max(0.0))),
                        "credit_enquiries" => Val::Int(
                            Poisson::new(0.5 + 2.5 * x.max(0.0))
                                .map(|p| p.sample(rng) as i64)
                                .unwrap_or(0),
                        ),
                        _ => Val::Empty,
                    };
                }
                out.push(r);
            }
        }
    }
}

/// Injects defects into one firm's formatted rows, at small per-row rates.
fn inject(
    w: &World,
    ds: &Dataset,
    rows: &mut Vec<RowOut>,
    rng: &mut ChaCha8Rng,
    counts: &mut Vec<(Defect, u64)>,
    rate: f64,
) {
    let id_col = ds.columns.iter().position(|c| c.field == "id").unwrap_or(0);
    // Lenders report USCCs (the credit reporting standard requires them); the register is keyed by them.
    let lender = ds.id.starts_with("lender.") || ds.shape == Shape::Registration;
    let mut extra = Vec::new();
    for r in rows.iter_mut() {
        let u: f64 = rng.gen();
        if u >= rate * 10.0 {
            continue;
        }
        let firm = &w.firms[r.firm];
        let class = (u / rate) as usize;
        let mut bump = |d: Defect| counts.push((d, 1));
        match class {
            0 => {
                // One character changed: the check character no longer holds.
                if let Cell::Text(s) = &r.cells[id_col] {
                    let mut b: Vec<char> = s.chars().collect();
                    if b.len() == 18 {
                        b[10] = if b[10] == '7' { '3' } else { '7' };
                        r.cells[id_col] = Cell::Text(b.into_iter().collect());
                        bump(Defect::InvalidId);
                    }
                }
            }
            1 | 2 if !lender => {
                // A legacy identifier instead of the USCC: registration number or old tax id / org code.
                let u = firm.uscc.as_str();
                let legacy = match (&firm.reg_no, class) {
                    (Some(rn), 1) => rn.clone(),
                    _ if rng.gen_bool(0.5) => format!("{}{}", &u[2..8], &u[8..17]),
                    _ => format!("{}-{}", &u[8..16], &u[16..17]),
                };
                r.cells[id_col] = Cell::Text(legacy);
                bump(Defect::LegacyId);
            }
            3 => {
                // A registration number nobody in the crosswalk has.
                let first14 = format!("330682{:08}", rng.gen_range(0..100_000_000u32));
                r.cells[id_col] = Cell::Text(format!("{first14}{}", crate::world::regno_check(&first14)));
                bump(Defect::UnknownLegacyId);
            }
            4 => {
                extra.push(r.clone());
                bump(Defect::Duplicate);
            }
            5 => {
                if let Some(c) = ds
                    .columns
                    .iter()
                    .enumerate()
                    .position(|(k, c)| c.required && k != id_col)
                {
                    r.cells[c] = Cell::Blank;
                    bump(Defect::MissingRequired);
                }
            }
            6 => {
                if let Some(c) = ds.columns.iter().position(|c| c.ty == ColType::Date && c.required) {
                    r.cells[c] = Cell::Text(["2021-13-45", "无", "0000-00-00", "20211332"][rng.gen_range(0..4)].into());
                    bump(Defect::BadDate);
                }
            }
            7 => {
                if let Some(c) = ds
                    .columns
                    .iter()
                    .position(|c| matches!(c.ty, ColType::Money | ColType::Number | ColType::Integer))
                {
                    if r.cells[c] != Cell::Blank {
                        r.cells[c] = Cell::Text(["12,3a4", "--", "1.2.3", "约5万"][rng.gen_range(0..4)].into());
                        bump(Defect::BadNumber);
                    }
                }
            }
            8 => {
                if let Cell::Text(s) = &r.cells[id_col] {
                    let fw: String = s
                        .chars()
                        .map(|c| {
                            if c.is_ascii_alphanumeric() {
                                char::from_u32(c as u32 + 0xFEE0).unwrap_or(c)
                            } else {
                                c
                            }
                        })
                        .collect();
                    r.cells[id_col] = Cell::Text(fw);
                    bump(Defect::FullWidth);
                }
            }
            9 if ds.format == Format::Csv => {
                {
                    r.wrong_encoding = true;
                    // A text cell with Chinese so the mis-encoding shows.
                    let c = ds.columns.len() - 1;
                    if let Cell::Text(_) | Cell::Blank = r.cells[c] {}
                    r.cells[c] = Cell::Text(format!("{}备注", r.cells[c].text()));
                    bump(Defect::RowEncoding);
                }
            }
            _ => {
                if let Some(c) = ds.columns.iter().position(|c| c.ty == ColType::Code) {
                    if r.cells[c] != Cell::Blank {
                        r.cells[c] = Cell::Text("未知类型".into());
                        bump(Defect::UnknownCode);
                    }
                }
            }
        }
    }
    rows.extend(extra);
}

/// Bytes of one file in the dataset's format.
fn encode_file(ds: &Dataset, rows: &[RowOut], utf8_instead: bool) -> Result<Vec<u8>, GenError> {
    match ds.format {
        Format::Csv => {
            let gb = matches!(ds.encoding, Encoding::Gb18030) && !utf8_instead;
            let mut out = Vec::new();
            let line = |fields: Vec<String>, wrong: bool, out: &mut Vec<u8>| {
                let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
                let _ = w.write_record(&fields);
                let bytes = w.into_inner().unwrap_or_default();
                let text = String::from_utf8_lossy(&bytes).into_owned();
                if gb != wrong {
                    let (enc, _, _) = encoding_rs::GB18030.encode(&text);
                    out.extend_from_slice(&enc);
                } else {
                    out.extend_from_slice(text.as_bytes());
                }
            };
            line(ds.columns.iter().map(|c| c.header.clone()).collect(), false, &mut out);
            for r in rows {
                line(r.cells.iter().map(Cell::text).collect(), r.wrong_encoding, &mut out);
            }
            Ok(out)
        }
        Format::Jsonl => {
            let mut out = Vec::new();
            for r in rows {
                let mut m = serde_json::Map::new();
                for (c, cell) in ds.columns.iter().zip(&r.cells) {
                    let v = match cell {
                        Cell::Blank => serde_json::Value::Null,
                        Cell::Text(s) => serde_json::Value::String(s.clone()),
                        Cell::Num(n) => serde_json::Number::from_f64(*n)
                            .map(serde_json::Value::Number)
                            .unwrap_or(serde_json::Value::Null),
                    };
                    m.insert(c.header.clone(), v);
                }
                out.extend_from_slice(serde_json::to_string(&m).unwrap_or_default().as_bytes());
                out.push(b'\n');
            }
            Ok(out)
        }
        Format::Xlsx => {
            let mut wb = rust_xlsxwriter::Workbook::new();
            // A fixed creation time: the file's bytes depend on the seed only.
            let date =
                rust_xlsxwriter::ExcelDateTime::from_ymd(2026, 1, 1).map_err(|e| GenError::Xlsx(e.to_string()))?;
            wb.set_properties(&rust_xlsxwriter::DocProperties::new().set_creation_datetime(&date));
            let sheet = wb.add_worksheet();
            let _ = sheet.set_name(ds.sheet.clone().unwrap_or_else(|| "Sheet1".into()));
            let xe = |e: rust_xlsxwriter::XlsxError| GenError::Xlsx(e.to_string());
            for (c, col) in ds.columns.iter().enumerate() {
                sheet.write_string(0, c as u16, &col.header).map_err(xe)?;
            }
            for (k, r) in rows.iter().enumerate() {
                let row = (k + 1) as u32;
                for (c, cell) in r.cells.iter().enumerate() {
                    match cell {
                        Cell::Blank => {}
                        Cell::Text(s) => {
                            sheet.write_string(row, c as u16, s).map_err(xe)?;
                        }
                        Cell::Num(n) => {
                            sheet.write_number(row, c as u16, *n).map_err(xe)?;
                        }
                    }
                }
            }
            wb.save_to_buffer().map_err(xe)
        }
    }
}

/// One firm's formatted rows and the defects injected into them.
type FirmRows = (Vec<RowOut>, Vec<(Defect, u64)>);

/// One manifest line.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ManifestEntry {
    pub path: String,
    pub source: String,
    pub dataset: String,
    pub delivered: String,
    pub rows: u64,
    pub sha256: String,
    pub defects: std::collections::BTreeMap<String, u64>,
}

/// Writes every source's deliveries and the manifest.
pub fn write_all(
    w: &World,
    reg: &Registry,
    out: &Path,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<Summary, GenError> {
    let batches = schedule(w);
    let mut jobs: Vec<(&xinyong_registry::Source, &Dataset)> = Vec::new();
    for s in &reg.sources {
        for d in reg.datasets_of(s) {
            jobs.push((s, d));
        }
    }
    let total = (jobs.len() * batches.len()) as u64;
    let mut done = 0u64;
    let mut manifest = Vec::new();
    let mut summary = Summary::default();
    for (s, ds) in &jobs {
        // Daily feeds are too large for one file per year: their backfill comes as one file per month.
        let monthly: Vec<Batch>;
        let my_batches: &[Batch] = if ds.period.as_deref() == Some("day") {
            monthly = monthly_backfill(w, &batches);
            &monthly
        } else {
            &batches
        };
        for b in my_batches {
            done += 1;
            progress("generate", done, total.max(done));
            // Firms whose rows this source reports: all firms (lenders filter by facility inside).
            let firms: Vec<usize> = if s.kind == SourceKind::Lender || ds.shape == Shape::Guarantee {
                let mut v: Vec<usize> = w
                    .facilities
                    .iter()
                    .filter(|f| f.lender == s.id || s.id.starts_with("gc"))
                    .map(|f| f.borrower)
                    .collect();
                v.dedup();
                v.sort_unstable();
                v.dedup();
                v
            } else {
                (0..w.firms.len()).collect()
            };
            let rate = if ds.id == "tax.invoices" || ds.id == "power.daily" {
                0.0005
            } else {
                0.002
            };
            let mut rows: Vec<RowOut> = Vec::new();
            let mut counts: Vec<(Defect, u64)> = Vec::new();
            for chunk in firms.chunks(512) {
                let parts: Vec<FirmRows> = chunk
                    .par_iter()
                    .map(|&i| {
                        let mut rng = stream(w.cfg.seed, &format!("{}/{}", s.id, ds.id), i as u64, b.index as u64);
                        let vals = rows_for(w, ds, &s.id, b, i, &mut rng);
                        let numeric = ds.format != Format::Csv;
                        let mut rs: Vec<RowOut> = vals
                            .iter()
                            .map(|v| RowOut {
                                cells: v
                                    .iter()
                                    .enumerate()
                                    .map(|(c, x)| format_cell(ds, c, x, numeric))
                                    .collect(),
                                firm: i,
                                wrong_encoding: false,
                            })
                            .collect();
                        let mut cnt = Vec::new();
                        inject(w, ds, &mut rs, &mut rng, &mut cnt, rate);
                        (rs, cnt)
                    })
                    .collect();
                for (r, c) in parts {
                    rows.extend(r);
                    counts.extend(c);
                }
            }
            if rows.is_empty() {
                continue;
            }
            let mut frng = stream(w.cfg.seed, &format!("file/{}/{}", s.id, ds.id), 0, b.index as u64);
            if !ds.totals_markers.is_empty() && frng.gen_bool(0.5) {
                let mut cells = vec![Cell::Blank; ds.columns.len()];
                cells[0] = Cell::Text(ds.totals_markers[0].clone());
                rows.push(RowOut {
                    cells,
                    firm: 0,
                    wrong_encoding: false,
                });
                counts.push((Defect::TotalsRow, 1));
            }
            let utf8_instead = matches!(ds.encoding, Encoding::Gb18030) && frng.gen_bool(0.08);
            if utf8_instead {
                counts.push((Defect::FileEncoding, 1));
            }
            let bytes = encode_file(ds, &rows, utf8_instead)?;
            let ext = match ds.format {
                Format::Csv => "csv",
                Format::Xlsx => "xlsx",
                Format::Jsonl => "jsonl",
            };
            let gz = w.cfg.gzip_large && (ds.id == "tax.invoices" || ds.id == "power.daily");
            let name = format!(
                "{}__{}__{}.{}{}",
                ds.id,
                b.delivered,
                b.label,
                ext,
                if gz { ".gz" } else { "" }
            );
            let rel = PathBuf::from("sources").join(&s.id).join(&name);
            let path = out.join(&rel);
            if let Some(p) = path.parent() {
                std::fs::create_dir_all(p).map_err(|source| GenError::Io {
                    path: p.to_path_buf(),
                    source,
                })?;
            }
            let data = if gz {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(&bytes)
                    .and_then(|_| e.finish())
                    .map_err(|source| GenError::Io {
                        path: path.clone(),
                        source,
                    })?
            } else {
                bytes
            };
            std::fs::write(&path, &data).map_err(|source| GenError::Io {
                path: path.clone(),
                source,
            })?;
            let mut defects = std::collections::BTreeMap::new();
            for (d, n) in counts {
                *defects
                    .entry(
                        serde_json::to_value(d)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_string))
                            .unwrap_or_default(),
                    )
                    .or_insert(0) += n;
            }
            summary.batches += 1;
            summary.records += rows.len() as u64;
            summary.bytes += data.len() as u64;
            manifest.push(ManifestEntry {
                path: rel.to_string_lossy().replace('\\', "/"),
                source: s.id.clone(),
                dataset: ds.id.clone(),
                delivered: b.delivered.to_string(),
                rows: rows.len() as u64,
                sha256: hex::encode(Sha256::digest(&data)),
                defects,
            });
        }
    }
    let mp = out.join("manifest.jsonl");
    let mut text = String::new();
    for m in &manifest {
        text.push_str(&serde_json::to_string(m).unwrap_or_default());
        text.push('\n');
    }
    std::fs::write(&mp, text).map_err(|source| GenError::Io {
        path: mp.clone(),
        source,
    })?;
    let _ = GCS;
    Ok(summary)
}
