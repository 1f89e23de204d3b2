//! Thematic analysis (专题分析), for the regulator: the district cut five ways, each group with its firms'
//! risk (colours, mean PD, expected defaults from the latest run) beside its economy and resource use over the
//! last 12 data months (power, water, tax paid, subsidies received; the mu-efficiency grades, land grants and
//! idle land):
//!
//! - industrial clusters (块状经济): the scoring config's clusters (industry classes in townships), the same
//!   the macro index's cluster sub-index uses;
//! - characteristic towns (特色小镇): `themes.toml`, a deployment's list (townships, optionally industries);
//! - small and micro firms: by the register's size class;
//! - public resource use: by industry section, with tax paid per MWh of power;
//! - special fund flows: subsidies by year and programme, how much went to firms that are red, yellow or blue
//!   now, and the red recipients of the last 24 months (firm-level: the regulator's drill-down).
//!
//! Built from the store once per data generation (kept in `cache::Caches`): at district scale it reads every
//! current power, water, tax and subsidy record, seconds of work no request should repeat.

use crate::account::Ctx;
use crate::auth::Role;
use crate::pages::{lang_of, page, LangQuery};
use crate::search::SearchIndex;
use crate::{AppState, Error};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use xinyong_store::Store;

/// The five themes, in the order the page offers them.
pub const TABS: &[&str] = &["clusters", "towns", "sizes", "resources", "funds"];

/// Red recipients listed on the funds tab, at most.
pub const WATCH_ROWS: usize = 50;

pub fn router() -> Router<AppState> {
    Router::new().route("/themes", get(themes_page))
}

#[derive(Deserialize)]
pub struct ThemeQuery {
    tab: Option<String>,
    lang: Option<String>,
}

async fn themes_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<ThemeQuery>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = ctx.require(&[Role::Regulator], "thematic analysis is the regulator's") {
        return *r;
    }
    let (lang, cookie) = lang_of(&LangQuery { lang: q.lang.clone() }, &headers);
    let tab = q
        .tab
        .filter(|t| TABS.contains(&t.as_str()))
        .unwrap_or_else(|| TABS[0].to_string());
    let (caches, index, month) = (st.caches.clone(), st.index.clone(), st.data_month());
    let themes = match st
        .with_store(move |s| {
            caches.themes.get_or(|| {
                let ix = index.read().unwrap_or_else(|e| e.into_inner());
                build(s, &ix, &month)
            })
        })
        .await
    {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    let path = format!("/themes?tab={tab}");
    // The firms named on the tab (the worst PDs, the red recipients) are reads of their non-public data.
    let groups: &[Group] = match tab.as_str() {
        "clusters" => &themes.clusters,
        "towns" => &themes.towns,
        "sizes" => &themes.sizes,
        "resources" => &themes.resources,
        _ => &[],
    };
    let mut named: Vec<&String> = groups.iter().flat_map(|g| g.top.iter().map(|r| &r.uscc)).collect();
    if tab == "funds" {
        named.extend(themes.watch.iter().map(|w| &w.uscc));
    }
    if let Err(e) = ctx.regulator_reads(&st, &path, named).await {
        return e.into_response();
    }
    page(
        &st,
        &ctx,
        "themes.html",
        lang,
        cookie,
        serde_json::json!({ "tab": tab, "tabs": TABS, "th": &*themes, "groups": groups, "path": path }),
    )
}

/// A characteristic town: firms in these townships (and of these industry-class prefixes, when given).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Town {
    pub name: String,
    pub townships: Vec<String>,
    #[serde(default)]
    pub industries: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemesConfig {
    town: Vec<Town>,
}

/// The built-in characteristic towns (`themes.toml`).
pub fn towns() -> Vec<Town> {
    toml::from_str::<ThemesConfig>(include_str!("../themes.toml"))
        .map(|c| c.town)
        .unwrap_or_default()
}

/// One group of firms on a theme.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Group {
    pub key: String,
    pub name: String,
    pub firms: u64,
    pub scored: u64,
    pub red: u64,
    pub yellow: u64,
    pub blue: u64,
    pub mean_pd: f64,
    /// The sum of the firms' PDs: defaults expected in 12 months.
    pub expected_defaults: f64,
    /// The last 12 data months.
    pub power_mwh: f64,
    pub water_kt: f64,
    pub tax_wan: f64,
    pub subsidies_wan: f64,
    /// Tax paid (yuan) per MWh of power used; none without power use.
    pub tax_per_mwh: Option<f64>,
    /// Firms graded A, B, C, D in their latest mu-efficiency assessment (亩均效益).
    pub mu: [u64; 4],
    pub land_grants: u64,
    pub idle_land: u64,
    /// The ten worst firms: by colour (red first), then PD (the regulator's drill-down).
    pub top: Vec<Risky>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Risky {
    pub uscc: String,
    pub name: String,
    pub pd: f64,
    pub grade: String,
    pub colour: Option<String>,
}

/// Subsidies of one year and programme.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FundRow {
    pub year: String,
    pub programme: String,
    pub payments: u64,
    pub recipients: u64,
    pub amount_wan: f64,
    /// Of the amount, paid to firms that are red, yellow, blue now (万元).
    pub to_red: f64,
    pub to_yellow: f64,
    pub to_blue: f64,
}

/// A subsidy paid in the last 24 months to a firm red now.
#[derive(Debug, Clone, Serialize)]
pub struct FundWatch {
    pub uscc: String,
    pub name: String,
    pub date: String,
    pub programme: String,
    pub amount_wan: f64,
    pub grade: String,
    pub pd: f64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Themes {
    pub run_id: Option<String>,
    pub as_of: Option<String>,
    /// The 12 data months counted (first, last).
    pub window: (String, String),
    pub clusters: Vec<Group>,
    pub towns: Vec<Group>,
    pub sizes: Vec<Group>,
    pub resources: Vec<Group>,
    pub funds: Vec<FundRow>,
    pub watch: Vec<FundWatch>,
}

/// One firm's figures over the window.
#[derive(Default, Clone)]
struct FirmUse {
    power_kwh: f64,
    water_t: f64,
    tax: f64,
    subsidies: f64,
    mu: Option<(String, usize)>,
    land_grants: u64,
    idle_land: u64,
}

fn month_minus(month: &str, n: i32) -> String {
    let y: i32 = month.get(..4).and_then(|y| y.parse().ok()).unwrap_or(0);
    let m: i32 = month.get(5..7).and_then(|m| m.parse().ok()).unwrap_or(1);
    let k = y * 12 + (m - 1) - n;
    format!("{:04}-{:02}", k.div_euclid(12), k.rem_euclid(12) + 1)
}

fn fields(f: &xinyong_store::StoredFact) -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(&f.fields).unwrap_or_default()
}

fn num(v: &serde_json::Map<String, serde_json::Value>, k: &str) -> f64 {
    v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0)
}

fn text(v: &serde_json::Map<String, serde_json::Value>, k: &str) -> String {
    v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string()
}

/// Builds the themes from the store: the latest run's scores, and the current records of the window ending
/// with `month` (YYYY-MM, the data's cut-off).
pub fn build(store: &dyn Store, index: &SearchIndex, month: &str) -> Result<Themes, Error> {
    let (run, scores) = crate::latest_scores(store)?;
    let (first, last) = (month_minus(month, 11), month.to_string());
    let in_window = |p: &str| p >= first.as_str() && p <= last.as_str();
    let mut uses: HashMap<String, FirmUse> = HashMap::new();
    let period = |f: &xinyong_store::StoredFact| f.period.clone().unwrap_or_default();
    for f in store.current_facts("power", "power.daily")? {
        if in_window(&period(&f)) {
            uses.entry(f.uscc.clone()).or_default().power_kwh += num(&fields(&f), "metric:power_kwh");
        }
    }
    for f in store.current_facts("water", "water.usage")? {
        if in_window(&period(&f)) {
            uses.entry(f.uscc.clone()).or_default().water_t += num(&fields(&f), "metric:water_t");
        }
    }
    for f in store.current_facts("tax", "tax.payments")? {
        if in_window(&period(&f)) {
            uses.entry(f.uscc.clone()).or_default().tax += num(&fields(&f), "metric:tax_paid");
        }
    }
    for f in store.current_facts("eit", "eit.mu_efficiency")? {
        let v = fields(&f);
        let grade = ["A", "B", "C", "D"]
            .iter()
            .position(|g| *g == text(&v, "metric:mu_grade"));
        if let Some(g) = grade {
            let e = uses.entry(f.uscc.clone()).or_default();
            let p = period(&f);
            if e.mu.as_ref().is_none_or(|(q, _)| p > *q) {
                e.mu = Some((p, g));
            }
        }
    }
    for f in store.current_facts("land", "land.use_rights")? {
        let v = fields(&f);
        let e = uses.entry(f.uscc.clone()).or_default();
        match text(&v, "category").as_str() {
            "land_grant" => e.land_grants += 1,
            "idle_land" => e.idle_land += 1,
            _ => {}
        }
    }
    // Subsidies: the window's for the groups; every year's for the fund flows.
    let mut funds: BTreeMap<(String, String), (FundRow, HashSet<String>)> = BTreeMap::new();
    let mut watch = Vec::new();
    let watch_from = format!("{}-01", month_minus(month, 23));
    for (source, dataset) in [("finance", "finance.subsidies"), ("agri", "agri.subsidies")] {
        for f in store.current_facts(source, dataset)? {
            let v = fields(&f);
            let (date, amount) = (text(&v, "date"), num(&v, "amount"));
            let programme = match text(&v, "category") {
                c if c.is_empty() => "agri_subsidy".to_string(),
                c => c,
            };
            if in_window(date.get(..7).unwrap_or_default()) {
                uses.entry(f.uscc.clone()).or_default().subsidies += amount;
            }
            let year = date.get(..4).unwrap_or("?").to_string();
            let (row, who) = funds.entry((year.clone(), programme.clone())).or_default();
            row.year = year;
            row.programme = programme.clone();
            row.payments += 1;
            row.amount_wan += amount / 1e4;
            who.insert(f.uscc.clone());
            let s = scores.get(&f.uscc);
            match s.and_then(|s| s.colour.as_deref()) {
                Some("red") => row.to_red += amount / 1e4,
                Some("yellow") => row.to_yellow += amount / 1e4,
                Some("blue") => row.to_blue += amount / 1e4,
                _ => {}
            }
            if let Some(s) = s.filter(|s| s.colour.as_deref() == Some("red") && date >= watch_from) {
                watch.push(FundWatch {
                    uscc: f.uscc.clone(),
                    name: index.get(&f.uscc).map_or_else(String::new, |x| x.name.clone()),
                    date,
                    programme,
                    amount_wan: amount / 1e4,
                    grade: s.grade.clone(),
                    pd: s.pd,
                });
            }
        }
    }
    watch.sort_by(|a, b| b.amount_wan.total_cmp(&a.amount_wan).then(a.uscc.cmp(&b.uscc)));
    watch.truncate(WATCH_ROWS);
    // The groups.
    let clusters_cfg = xinyong_credit::score::ScoringConfig::builtin().clusters;
    let towns_cfg = towns();
    let mut by: [BTreeMap<String, Group>; 4] = Default::default();
    let mut tops: [HashMap<String, Vec<Risky>>; 4] = Default::default();
    let none = FirmUse::default();
    for f in index.firms() {
        if f.status != "active" && !f.status.is_empty() {
            continue;
        }
        let mut keys: [Vec<(String, String)>; 4] = Default::default();
        for c in &clusters_cfg {
            if c.townships.contains(&f.township) && c.industries.iter().any(|p| f.industry.starts_with(p)) {
                keys[0].push((c.name.clone(), c.name.clone()));
            }
        }
        for t in &towns_cfg {
            if t.townships.contains(&f.township)
                && (t.industries.is_empty() || t.industries.iter().any(|p| f.industry.starts_with(p)))
            {
                keys[1].push((t.name.clone(), t.name.clone()));
            }
        }
        let size = if f.size_class.is_empty() {
            "unknown"
        } else {
            f.size_class.as_str()
        };
        keys[2].push((size.to_string(), String::new()));
        let (sec, sec_name) = xinyong_domain::industry::section_of(&f.industry)
            .map_or(("?".to_string(), String::new()), |i| (i.code.clone(), i.name.clone()));
        keys[3].push((sec, sec_name));
        let u = uses.get(&f.uscc).unwrap_or(&none);
        let s = scores.get(&f.uscc);
        for (i, ks) in keys.iter().enumerate() {
            for (key, name) in ks {
                let g = by[i].entry(key.clone()).or_insert_with(|| Group {
                    key: key.clone(),
                    name: name.clone(),
                    ..Default::default()
                });
                g.firms += 1;
                g.power_mwh += u.power_kwh / 1e3;
                g.water_kt += u.water_t / 1e3;
                g.tax_wan += u.tax / 1e4;
                g.subsidies_wan += u.subsidies / 1e4;
                if let Some((_, m)) = &u.mu {
                    g.mu[*m] += 1;
                }
                g.land_grants += u.land_grants;
                g.idle_land += u.idle_land;
                if let Some(s) = s {
                    g.scored += 1;
                    g.expected_defaults += s.pd;
                    match s.colour.as_deref() {
                        Some("red") => g.red += 1,
                        Some("yellow") => g.yellow += 1,
                        Some("blue") => g.blue += 1,
                        _ => {}
                    }
                    tops[i].entry(key.clone()).or_default().push(Risky {
                        uscc: f.uscc.clone(),
                        name: f.name.clone(),
                        pd: s.pd,
                        grade: s.grade.clone(),
                        colour: s.colour.clone(),
                    });
                }
            }
        }
    }
    let mut out: [Vec<Group>; 4] = Default::default();
    for i in 0..4 {
        for (key, mut g) in std::mem::take(&mut by[i]) {
            g.mean_pd = if g.scored > 0 {
                g.expected_defaults / g.scored as f64
            } else {
                0.0
            };
            g.tax_per_mwh = (g.power_mwh > 0.0).then(|| g.tax_wan * 1e4 / g.power_mwh);
            let mut top = tops[i].remove(&key).unwrap_or_default();
            // The worst first: red, yellow, blue, none (a red warning caps the grade whatever the PD), then PD.
            let rank = |c: &Option<String>| match c.as_deref() {
                Some("red") => 0,
                Some("yellow") => 1,
                Some("blue") => 2,
                _ => 3,
            };
            top.sort_by(|a, b| {
                (rank(&a.colour).cmp(&rank(&b.colour)))
                    .then(b.pd.total_cmp(&a.pd))
                    .then(a.uscc.cmp(&b.uscc))
            });
            top.truncate(10);
            g.top = top;
            out[i].push(g);
        }
    }
    let [clusters, towns, mut sizes, resources] = out;
    let order = |k: &str| {
        ["large", "medium", "small", "micro", "unknown"]
            .iter()
            .position(|x| *x == k)
    };
    sizes.sort_by_key(|g| order(&g.key));
    Ok(Themes {
        run_id: run.as_ref().map(|r| r.run_id.clone()),
        as_of: run.map(|r| r.as_of),
        window: (first, last),
        clusters,
        towns,
        sizes,
        resources,
        funds: funds
            .into_values()
            .map(|(mut r, who)| {
                r.recipients = who.len() as u64;
                r
            })
            .collect(),
        watch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_towns_parse_and_name_real_townships() {
        let t = towns();
        assert!(t.len() >= 2);
        for town in &t {
            for code in &town.townships {
                assert!(xinyong_domain::region::lookup(code).is_some(), "{}: {code}", town.name);
            }
        }
    }

    #[test]
    fn the_window_is_twelve_months() {
        assert_eq!(month_minus("2025-06", 11), "2024-07");
        assert_eq!(month_minus("2025-01", 23), "2023-02");
    }
}
