//! The risk dashboard: the macro index and its sub-indices over time (by industry, township, cluster, size class
//! and force), and the red, yellow and blue firms counted by industry section and township. Aggregates only:
//! which firms moved a group (the drill-down) is firm-level and shown to entitled viewers only.

use crate::pages::Viewer;
use crate::search::SearchIndex;
use crate::Error;
use serde::Serialize;
use std::collections::BTreeMap;
use xinyong_store::Store;

/// The dimensions of the index, in the order the page offers them.
pub const DIMENSIONS: &[&str] = &["district", "industry", "township", "cluster", "size", "force"];

/// Firms by colour in one group (industry section or township).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Colours {
    pub group: String,
    pub name: String,
    pub firms: u64,
    pub red: u64,
    pub yellow: u64,
    pub blue: u64,
}

/// What the latest run says per group, computed once when the server starts (reading every score is too much
/// work for one request at district scale).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    pub run_id: Option<String>,
    pub as_of: Option<String>,
    pub by_industry: Vec<Colours>,
    pub by_township: Vec<Colours>,
}

impl Summary {
    pub fn load(store: &dyn Store, index: &SearchIndex) -> Result<Summary, Error> {
        let Some(run) = store.latest_run()? else {
            return Ok(Summary::default());
        };
        let mut ind: BTreeMap<String, Colours> = BTreeMap::new();
        let mut town: BTreeMap<String, Colours> = BTreeMap::new();
        for s in store.run_scores(&run.run_id)? {
            let Some(f) = index.get(&s.uscc) else { continue };
            let section = xinyong_domain::industry::section_of(&f.industry);
            let (sec, sec_name) =
                section.map_or(("?".to_string(), String::new()), |i| (i.code.clone(), i.name.clone()));
            let town_name = xinyong_domain::region::lookup(&f.township).map_or(String::new(), |r| r.name.clone());
            for (map, key, name) in [(&mut ind, sec, sec_name), (&mut town, f.township.clone(), town_name)] {
                let c = map.entry(key.clone()).or_insert_with(|| Colours {
                    group: key,
                    name,
                    ..Default::default()
                });
                c.firms += 1;
                match s.colour.as_deref() {
                    Some("red") => c.red += 1,
                    Some("yellow") => c.yellow += 1,
                    Some("blue") => c.blue += 1,
                    _ => {}
                }
            }
        }
        Ok(Summary {
            run_id: Some(run.run_id),
            as_of: Some(run.as_of),
            by_industry: ind.into_values().collect(),
            by_township: town.into_values().collect(),
        })
    }
}

/// One dimension of the index over time: member → [(month, value)].
#[derive(Debug, Serialize)]
pub struct Dashboard {
    pub dimension: String,
    pub months: Vec<String>,
    pub series: BTreeMap<String, Vec<Option<f64>>>,
    /// The firms that moved each member most in the last month (entitled viewers only).
    pub movers: BTreeMap<String, Vec<(String, f64)>>,
}

pub fn dashboard(store: &dyn Store, run_id: &str, dimension: &str, viewer: Viewer) -> Result<Dashboard, Error> {
    if !DIMENSIONS.contains(&dimension) {
        return Err(Error::BadRequest(format!("no index dimension {dimension}")));
    }
    let points = store.run_index(run_id, Some(dimension))?;
    let mut months: Vec<String> = points.iter().map(|p| p.0.clone()).collect();
    months.sort();
    months.dedup();
    let mut series: BTreeMap<String, Vec<Option<f64>>> = BTreeMap::new();
    for (month, _, member, value) in &points {
        let i = months.binary_search(month).unwrap_or(0);
        series.entry(member.clone()).or_insert_with(|| vec![None; months.len()])[i] = Some(*value);
    }
    let mut movers = BTreeMap::new();
    if viewer != Viewer::Public {
        if let Some(last) = months.last() {
            for member in series.keys() {
                let mut m = store.run_movers(run_id, dimension, member, last)?;
                m.truncate(10);
                movers.insert(member.clone(), m);
            }
        }
    }
    Ok(Dashboard {
        dimension: dimension.to_string(),
        months,
        series,
        movers,
    })
}
