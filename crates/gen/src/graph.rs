//! `xinyong gen --graph-only`: just the relation graph, with the district's structure, at any size (up to
//! millions of firms), for scale tests of the guarantee-network analysis.
//!
//! The structure is the district generator's: the same share of borrowers by size class, the same corporate
//! groups (6 % of non-micro firms hold 1–3 subsidiaries), the same circle patterns over the borrowers
//! (`world::build_relations`: mutual pairs, chains, cycles, stars, joint groups, outside guarantors, group
//! circles) and the same share of bank loans backed by one of three financing-guarantee firms. Firms carry an
//! equity (yuan) and an own 12-month PD drawn like the district's.
//!
//! Output: `nodes.csv` (id, equity, pd), `edges.csv` (guarantor, borrower, amount, lender, kind) and
//! `links.csv` (from, to, kind = parent, share: the corporate groups); ids are `F0000001…` for district firms,
//! `O…` outside firms (the first three are the guarantee firms `GC…`).

use crate::rng::stream;
use crate::world::{build_relations, GCS};
use rand::Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use std::io::Write;
use std::path::Path;

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct GraphStats {
    pub firms: usize,
    pub outside: usize,
    pub edges: usize,
    pub by_pattern: Vec<(String, usize)>,
}

fn id(i: usize, n: usize) -> String {
    if i < n {
        format!("F{i:07}")
    } else if i - n < GCS {
        format!("GC{}", i - n + 1)
    } else {
        format!("O{:07}", i - n)
    }
}

/// Writes the graph of `n` district firms to `dir`.
pub fn generate(n: usize, seed: u64, dir: &Path) -> std::io::Result<GraphStats> {
    std::fs::create_dir_all(dir)?;
    let n_outside = (n / 16).max(GCS + 2);
    let total = n + n_outside;
    // Firms: size class, scale, equity, PD, borrower.
    let mut borrower = vec![false; total];
    let mut revenue = vec![0.0f64; total];
    let mut equity = vec![0.0f64; total];
    let mut pd = vec![0.0f64; total];
    let mut micro = vec![false; total];
    let scale = LogNormal::new((1.5e6f64).ln(), 1.1).expect("valid");
    let effect = Normal::new(0.0, 0.8).expect("valid");
    for i in 0..total {
        let mut rng = stream(seed, "graph-firm", i as u64, 0);
        let u: f64 = rng.gen();
        // Size mix and borrowing rates of the district generator.
        let (size_effect, borrow_p, mult, is_micro) = if u < 0.02 {
            (-0.8, 0.9, 20.0, false)
        } else if u < 0.12 {
            (-0.3, 0.85, 5.0, false)
        } else if u < 0.45 {
            (0.0, 0.7, 1.0, false)
        } else {
            (0.35, 0.45, 0.3, true)
        };
        micro[i] = is_micro;
        revenue[i] = scale.sample(&mut rng) * mult * 12.0;
        equity[i] = revenue[i] * rng.gen_range(0.15..0.9);
        let logodds: f64 = -6.9 + size_effect + effect.sample(&mut rng);
        let monthly = 1.0 / (1.0 + (-logodds).exp());
        pd[i] = 1.0 - (1.0 - monthly).powi(12);
        borrower[i] = i < n && rng.gen_bool(borrow_p);
    }
    // Corporate groups.
    let mut grng = stream(seed, "graph-groups", 0, 0);
    let mut group_of: Vec<Option<usize>> = vec![None; total];
    for p in 0..n {
        if micro[p] || !grng.gen_bool(0.06) {
            continue;
        }
        for _ in 0..grng.gen_range(1..4) {
            let s = grng.gen_range(0..n);
            if s != p && group_of[s].is_none() && group_of[p].is_none() {
                group_of[s] = Some(p);
            }
        }
    }
    let rel = build_relations(seed, &borrower, &group_of, n, n_outside);
    let mut by_pattern: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("edges.csv"))?);
    writeln!(w, "guarantor,borrower,amount,lender,kind")?;
    let mut edges = 0usize;
    for (k, r) in rel.iter().enumerate() {
        let mut rng = stream(seed, "graph-edge", k as u64, 0);
        let amount = ((revenue[r.borrower] * rng.gen_range(0.05..0.35) / 1e4).round() * 1e4).max(5e4);
        let bank = 1 + rng.gen_range(0..20);
        writeln!(
            w,
            "{},{},{amount},bank{bank:02},{}",
            id(r.guarantor, n),
            id(r.borrower, n),
            r.kind
        )?;
        *by_pattern.entry(r.pattern).or_default() += 1;
        edges += 1;
    }
    // Financing-guarantee firms back 8 % of bank loans (about 1.6 loans per borrower, 82 % from banks).
    for (i, &b) in borrower.iter().enumerate().take(n) {
        if !b {
            continue;
        }
        let mut rng = stream(seed, "graph-gc", i as u64, 0);
        if rng.gen_bool(0.12) {
            let gc = n + rng.gen_range(0..GCS);
            let amount = ((revenue[i] * rng.gen_range(0.05..0.35) / 1e4).round() * 1e4).max(5e4);
            let bank = 1 + rng.gen_range(0..20);
            writeln!(w, "{},{},{amount},bank{bank:02},single", id(gc, n), id(i, n))?;
            *by_pattern.entry("guarantee_firm").or_default() += 1;
            edges += 1;
        }
    }
    w.flush()?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("nodes.csv"))?);
    writeln!(w, "id,equity,pd")?;
    for i in 0..total {
        if i >= n && i - n < GCS {
            // Guarantee firms: registered capital of a few hundred million yuan.
            writeln!(w, "{},{:.0},{:.6}", id(i, n), 3e8, 0.01)?;
        } else {
            writeln!(w, "{},{:.0},{:.6}", id(i, n), equity[i], pd[i])?;
        }
    }
    w.flush()?;
    // Corporate links: parent → subsidiary with the parent's majority share.
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("links.csv"))?);
    writeln!(w, "from,to,kind,share")?;
    for (s, p) in group_of.iter().enumerate() {
        if let Some(p) = *p {
            let mut rng = stream(seed, "graph-share", s as u64, 0);
            writeln!(w, "{},{},parent,{:.2}", id(p, n), id(s, n), rng.gen_range(0.51..1.0f64))?;
        }
    }
    w.flush()?;
    Ok(GraphStats {
        firms: n,
        outside: n_outside,
        edges,
        by_pattern: by_pattern.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    })
}
