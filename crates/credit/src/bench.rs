//! Industry benchmarks: per GB/T 4754 division and size class (falling back to the division, the section with
//! size, the section, and the district), the distribution of every indicator, force and score, kept as 21
//! quantiles (every 5th percentile) so one firm can be placed later without the population.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Groups smaller than this fall back to the next broader group.
pub const MIN_GROUP: usize = 10;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dist {
    pub n: usize,
    pub mean: f64,
    /// The 0th, 5th, …, 100th percentiles.
    pub q: Vec<f64>,
}

impl Dist {
    pub fn of(values: &mut [f64]) -> Option<Dist> {
        if values.is_empty() {
            return None;
        }
        // Values equal in the total order are the same bits, so an unstable sort gives the same slice.
        values.sort_unstable_by(f64::total_cmp);
        let n = values.len();
        let mean = values.iter().sum::<f64>() / n as f64;
        let q = (0..=20)
            .map(|k| xinyong_scorecard::metrics::quantile_sorted(values, k as f64 / 20.0))
            .collect();
        Some(Dist { n, mean, q })
    }
    pub fn median(&self) -> f64 {
        self.q[10]
    }
    pub fn quartiles(&self) -> (f64, f64) {
        (self.q[5], self.q[15])
    }
    /// The percentile (0–100) of `v`: linear between the stored quantiles; ties take the middle.
    pub fn percentile(&self, v: f64) -> f64 {
        let q = &self.q;
        if !v.is_finite() || q.len() != 21 {
            return 50.0;
        }
        if v < q[0] {
            return 0.0;
        }
        if v > q[20] {
            return 100.0;
        }
        let below = q.iter().filter(|x| **x < v).count();
        let equal = q.iter().filter(|x| **x == v).count();
        if equal > 0 {
            // A run of equal quantiles (a point mass): its middle.
            let first = below as f64;
            let last = (below + equal - 1) as f64;
            return (first + last) / 2.0 * 5.0;
        }
        let (lo, hi) = (q[below - 1], q[below]);
        ((below - 1) as f64 + (v - lo) / (hi - lo)) * 5.0
    }
}

/// One benchmark group's distributions: the indicators, then the five forces, then the score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub n: usize,
    pub dists: Vec<Option<Dist>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Benchmarks {
    pub groups: BTreeMap<String, Group>,
}

/// A firm's benchmark keys, narrowest first.
pub fn keys(industry: &str, size: &str) -> Vec<String> {
    let div = xinyong_domain::industry::division_of(industry).map(|d| d.code.clone());
    let sec = xinyong_domain::industry::section_of(industry).map(|s| s.code.clone());
    let size = if size.is_empty() { "unknown" } else { size };
    let mut v = Vec::new();
    if let Some(d) = &div {
        v.push(format!("div:{d}:{size}"));
        v.push(format!("div:{d}"));
    }
    if let Some(s) = &sec {
        v.push(format!("sec:{s}:{size}"));
        v.push(format!("sec:{s}"));
    }
    v.push("all".to_string());
    v
}

impl Benchmarks {
    /// Builds the benchmarks from rows of (benchmark keys, values); every row joins each of its groups.
    pub fn build(rows: &[(Vec<String>, Vec<Option<f64>>)], width: usize) -> Benchmarks {
        let mut members: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for (i, (keys, _)) in rows.iter().enumerate() {
            for k in keys {
                members.entry(k.as_str()).or_default().push(i);
            }
        }
        use rayon::prelude::*;
        let members: Vec<(&str, Vec<usize>)> = members
            .into_iter()
            .filter(|(k, idx)| idx.len() >= MIN_GROUP || *k == "all")
            .collect();
        // Column by column (each row's values are a separate allocation: gathering a group's values from the
        // rows would chase a pointer per value and column).
        let mut columns: Vec<Vec<Option<f64>>> = (0..width).map(|_| Vec::with_capacity(rows.len())).collect();
        for (_, v) in rows {
            debug_assert_eq!(v.len(), width, "a benchmark row of the wrong width");
            for (j, col) in columns.iter_mut().enumerate() {
                col.push(v.get(j).copied().flatten());
            }
        }
        // Groups are independent: sorted in parallel, gathered in key order.
        let groups = members
            .par_iter()
            .map(|(k, idx)| {
                let mut vals: Vec<f64> = Vec::with_capacity(idx.len());
                let dists = columns
                    .iter()
                    .map(|col| {
                        vals.clear();
                        vals.extend(idx.iter().filter_map(|&i| col[i]));
                        Dist::of(&mut vals)
                    })
                    .collect();
                (k.to_string(), Group { n: idx.len(), dists })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        Benchmarks { groups }
    }

    /// The narrowest group with enough members, and its key.
    pub fn group(&self, keys: &[String]) -> Option<(&str, &Group)> {
        keys.iter()
            .find_map(|k| self.groups.get_key_value(k.as_str()))
            .map(|(k, g)| (k.as_str(), g))
    }
}
