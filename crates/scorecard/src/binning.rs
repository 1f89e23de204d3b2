//! Binning: quantile pre-bins, monotone merging (pool adjacent violators), minimum bin share, maximum bin count;
//! categories by event rate with small ones in "other"; WoE and IV.

use crate::config::Monotonic;
use crate::model::{Bin, BinKind, Feature, FeatureKind};
use crate::table::Column;
use std::collections::BTreeMap;

/// Rows and bads of a bin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Cell {
    pub count: u64,
    pub bads: u64,
}

impl Cell {
    pub fn goods(&self) -> u64 {
        self.count - self.bads
    }

    pub fn add(&mut self, o: Cell) {
        self.count += o.count;
        self.bads += o.bads;
    }

    pub fn plus(self, o: Cell) -> Cell {
        Cell {
            count: self.count + o.count,
            bads: self.bads + o.bads,
        }
    }

    pub fn push(&mut self, bad: u8) {
        self.count += 1;
        self.bads += bad as u64;
    }
}

/// Totals over a feature's cells.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Totals {
    pub goods: f64,
    pub bads: f64,
}

impl Totals {
    pub fn of(target: &[u8]) -> Totals {
        let bads = target.iter().filter(|&&y| y == 1).count() as f64;
        Totals {
            goods: target.len() as f64 - bads,
            bads,
        }
    }
}

/// WoE `ln(%good/%bad)` of a cell and its IV term `(%good − %bad)·WoE`. A cell with no goods or no bads gets
/// 0.5 added to both counts; an empty cell has WoE 0 and IV 0.
pub(crate) fn woe_iv(c: Cell, t: Totals) -> (f64, f64) {
    if c.count == 0 || t.goods == 0.0 || t.bads == 0.0 {
        return (0.0, 0.0);
    }
    let (mut g, mut b) = (c.goods() as f64, c.bads as f64);
    if g == 0.0 || b == 0.0 {
        g += 0.5;
        b += 0.5;
    }
    let (pg, pb) = (g / t.goods, b / t.bads);
    let w = (pg / pb).ln();
    (w, (pg - pb) * w)
}

fn iv_of(cells: &[Cell], t: Totals) -> f64 {
    cells.iter().map(|&c| woe_iv(c, t).1).sum()
}

/// A split point between two adjacent distinct values `a < b`: the midpoint when it lies in `(a, b]`, else `b`.
pub(crate) fn split_between(a: f64, b: f64) -> f64 {
    let m = a / 2.0 + b / 2.0;
    if m.is_finite() && a < m && m <= b {
        m
    } else {
        b
    }
}

/// Distinct values (sorted) with their cells.
pub(crate) fn distinct(mut xs: Vec<(f64, u8)>) -> Vec<(f64, Cell)> {
    xs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, Cell)> = Vec::new();
    for (x, y) in xs {
        match out.last_mut() {
            Some((v, c)) if *v == x => c.push(y),
            _ => {
                let mut c = Cell::default();
                c.push(y);
                out.push((x, c));
            }
        }
    }
    out
}

/// Up to `groups` quantile groups of distinct values: split points and the groups' cells.
pub(crate) fn quantile_groups(d: &[(f64, Cell)], groups: usize) -> (Vec<f64>, Vec<Cell>) {
    let n: u64 = d.iter().map(|(_, c)| c.count).sum();
    let mut splits = Vec::new();
    let mut cells = Vec::new();
    let mut cur = Cell::default();
    let mut cum = 0u64;
    let mut k = 1u64;
    let groups = groups.max(1) as u64;
    for (i, (x, c)) in d.iter().enumerate() {
        cur.add(*c);
        cum += c.count;
        if i + 1 < d.len() && cum * groups >= k * n {
            splits.push(split_between(*x, d[i + 1].0));
            cells.push(cur);
            cur = Cell::default();
            while k * n <= cum * groups {
                k += 1;
            }
        }
    }
    if cur.count > 0 || cells.is_empty() {
        cells.push(cur);
    }
    (splits, cells)
}

/// Rate comparison without division: is the bad rate of `a` at least that of `b`?
fn rate_ge(a: Cell, b: Cell) -> bool {
    (a.bads as u128) * (b.count as u128) >= (b.bads as u128) * (a.count as u128)
}

fn merge_at(splits: &mut Vec<f64>, cells: &mut Vec<Cell>, i: usize) {
    let c = cells.remove(i + 1);
    cells[i].add(c);
    splits.remove(i);
}

/// Pool adjacent violators: afterwards the bad rate strictly rises (`ascending`) or strictly falls.
fn pava(splits: &mut Vec<f64>, cells: &mut Vec<Cell>, ascending: bool) {
    let mut i = 0;
    while i + 1 < cells.len() {
        let (a, b) = (cells[i], cells[i + 1]);
        let violates = if ascending { rate_ge(a, b) } else { rate_ge(b, a) };
        if violates {
            merge_at(splits, cells, i);
            i = i.saturating_sub(1);
        } else {
            i += 1;
        }
    }
}

/// Merges bins holding fewer than `min_count` rows into the neighbour with the closer bad rate, smallest first.
fn merge_small(splits: &mut Vec<f64>, cells: &mut Vec<Cell>, min_count: u64) {
    while cells.len() > 1 {
        let Some((i, _)) = cells
            .iter()
            .enumerate()
            .filter(|(_, c)| c.count < min_count)
            .min_by_key(|(i, c)| (c.count, *i))
        else {
            break;
        };
        let rate = |c: Cell| {
            if c.count == 0 {
                0.0
            } else {
                c.bads as f64 / c.count as f64
            }
        };
        let j = if i == 0 {
            0
        } else if i + 1 == cells.len() {
            i - 1
        } else {
            let r = rate(cells[i]);
            if (rate(cells[i - 1]) - r).abs() <= (rate(cells[i + 1]) - r).abs() {
                i - 1
            } else {
                i
            }
        };
        merge_at(splits, cells, j);
    }
}

/// Merges the adjacent pair losing the least IV until at most `max_bins` remain.
fn merge_to_max(splits: &mut Vec<f64>, cells: &mut Vec<Cell>, max_bins: usize, t: Totals) {
    while cells.len() > max_bins.max(1) {
        let mut best = (f64::INFINITY, 0);
        for i in 0..cells.len() - 1 {
            let loss = woe_iv(cells[i], t).1 + woe_iv(cells[i + 1], t).1 - woe_iv(cells[i].plus(cells[i + 1]), t).1;
            if loss < best.0 {
                best = (loss, i);
            }
        }
        merge_at(splits, cells, best.1);
    }
}

/// Parameters of one feature's binning.
pub(crate) struct BinSpec<'a> {
    pub prebins: usize,
    pub max_bins: usize,
    pub min_count: u64,
    pub monotonic: Monotonic,
    pub fixed: Option<&'a [f64]>,
    pub specials: &'a [f64],
}

/// Numeric split points for one column: fixed splits verbatim, else quantile pre-bins merged as `spec` says.
pub(crate) fn numeric_splits(d: &[(f64, Cell)], spec: &BinSpec, t: Totals) -> Vec<f64> {
    if let Some(f) = spec.fixed {
        let mut s: Vec<f64> = f.to_vec();
        s.sort_by(f64::total_cmp);
        s.dedup();
        return s;
    }
    let (splits, cells) = quantile_groups(d, spec.prebins);
    let run = |dir: Option<bool>| {
        let (mut s, mut c) = (splits.clone(), cells.clone());
        if let Some(asc) = dir {
            pava(&mut s, &mut c, asc);
        }
        merge_small(&mut s, &mut c, spec.min_count);
        merge_to_max(&mut s, &mut c, spec.max_bins, t);
        let iv = iv_of(&c, t);
        (s, iv)
    };
    match spec.monotonic {
        Monotonic::Off => run(None).0,
        Monotonic::Ascending => run(Some(true)).0,
        Monotonic::Descending => run(Some(false)).0,
        Monotonic::Auto => {
            let (a, iva) = run(Some(true));
            let (b, ivb) = run(Some(false));
            if ivb > iva {
                b
            } else {
                a
            }
        }
    }
}

/// Formats a number for a bin label: up to 6 significant digits.
pub(crate) fn fmt_num(x: f64) -> String {
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return "0".into();
    }
    let short = format!("{x}");
    if short.len() <= 8 {
        return short;
    }
    let mag = x.abs().log10().floor() as i32;
    if (-4..15).contains(&mag) {
        let dec = (5 - mag).max(0) as usize;
        let s = format!("{x:.dec$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    } else {
        format!("{x:.5e}")
    }
}

/// A bin without statistics yet.
pub(crate) fn bin(label: String, kind: BinKind) -> Bin {
    Bin {
        label,
        kind,
        count: 0,
        bads: 0,
        woe: 0.0,
        logit: 0.0,
        points: 0.0,
    }
}

/// The bins of a numeric feature: ranges from `splits`, then specials, then missing.
pub(crate) fn numeric_bins(splits: &[f64], specials: &[f64]) -> Vec<Bin> {
    let mut out = Vec::with_capacity(splits.len() + specials.len() + 2);
    let mut lo = f64::NEG_INFINITY;
    for &hi in splits.iter().chain(std::iter::once(&f64::INFINITY)) {
        let label = format!("[{}, {})", fmt_num(lo), fmt_num(hi));
        out.push(bin(label, BinKind::Range { lo, hi }));
        lo = hi;
    }
    for &s in specials {
        out.push(bin(format!("= {}", fmt_num(s)), BinKind::Special(s)));
    }
    out.push(bin("missing".into(), BinKind::Missing));
    out
}

/// The bins of a categorical feature: the groups, then other, then missing.
pub(crate) fn categorical_bins(groups: Vec<Vec<String>>) -> Vec<Bin> {
    let mut out: Vec<Bin> = groups
        .into_iter()
        .map(|g| bin(g.join(" | "), BinKind::Categories(g)))
        .collect();
    out.push(bin("other".into(), BinKind::Other));
    out.push(bin("missing".into(), BinKind::Missing));
    out
}

/// Fills counts, bads and WoE of a feature's bins from the column (through the scorer's own bin lookup), and
/// returns each row's bin and the IV.
pub(crate) fn fill_stats(f: &mut Feature, col: &Column, target: &[u8], t: Totals) -> (Vec<u32>, f64) {
    let mut cells = vec![Cell::default(); f.bins.len()];
    let mut rows = Vec::with_capacity(target.len());
    for (i, &y) in target.iter().enumerate() {
        let b = f.bin_index(col.value(i));
        cells[b].push(y);
        rows.push(b as u32);
    }
    let mut iv = 0.0;
    for (b, c) in f.bins.iter_mut().zip(&cells) {
        b.count = c.count;
        b.bads = c.bads;
        let (w, v) = woe_iv(*c, t);
        b.woe = w;
        iv += v;
    }
    f.iv = iv;
    (rows, iv)
}

/// The numeric values (not missing, not special) of a column with their targets.
pub(crate) fn numeric_values(v: &[Option<f64>], target: &[u8], specials: &[f64]) -> Vec<(f64, u8)> {
    v.iter()
        .zip(target)
        .filter_map(|(x, &y)| match x {
            Some(x) if !x.is_nan() && !specials.contains(x) => Some((*x, y)),
            _ => None,
        })
        .collect()
}

/// Category cells, sorted by bad rate (then name).
pub(crate) fn category_cells(v: &[Option<String>], target: &[u8]) -> Vec<(String, Cell)> {
    let mut m: BTreeMap<&str, Cell> = BTreeMap::new();
    for (x, &y) in v.iter().zip(target) {
        if let Some(s) = x {
            m.entry(s.as_str()).or_default().push(y);
        }
    }
    let mut v: Vec<(String, Cell)> = m.into_iter().map(|(k, c)| (k.to_string(), c)).collect();
    v.sort_by(|a, b| {
        let ra = a.1.bads as f64 / a.1.count as f64;
        let rb = b.1.bads as f64 / b.1.count as f64;
        ra.total_cmp(&rb).then_with(|| a.0.cmp(&b.0))
    });
    v
}

/// The coarse (WoE card) binning of one column, with statistics filled in.
pub(crate) fn coarse_feature(name: &str, col: &Column, target: &[u8], spec: &BinSpec, t: Totals) -> Feature {
    let bins = match col {
        Column::Numeric(v) => {
            let d = distinct(numeric_values(v, target, spec.specials));
            let splits = numeric_splits(&d, spec, t);
            numeric_bins(&splits, spec.specials)
        }
        Column::Categorical(v) => {
            let cats = category_cells(v, target);
            let mut groups: Vec<Vec<String>> = Vec::new();
            let mut cells: Vec<Cell> = Vec::new();
            for (name, c) in cats {
                if c.count >= spec.min_count {
                    groups.push(vec![name]);
                    cells.push(c);
                }
            }
            // Merge neighbours in event-rate order, least IV lost first, down to max_bins groups.
            while groups.len() > spec.max_bins.max(1) {
                let mut best = (f64::INFINITY, 0);
                for i in 0..cells.len() - 1 {
                    let loss =
                        woe_iv(cells[i], t).1 + woe_iv(cells[i + 1], t).1 - woe_iv(cells[i].plus(cells[i + 1]), t).1;
                    if loss < best.0 {
                        best = (loss, i);
                    }
                }
                let i = best.1;
                let g = groups.remove(i + 1);
                groups[i].extend(g);
                let c = cells.remove(i + 1);
                cells[i].add(c);
            }
            categorical_bins(groups)
        }
    };
    let kind = match col {
        Column::Numeric(_) => FeatureKind::Numeric,
        Column::Categorical(_) => FeatureKind::Categorical,
    };
    let mut f = Feature {
        name: name.to_string(),
        kind,
        iv: 0.0,
        bins,
        coefficient: 0.0,
        axes: Vec::new(),
    };
    fill_stats(&mut f, col, target, t);
    f
}
