//! Support policies (惠企政策) matched to firms. A policy (`policies.toml`, a deployment's list) states its
//! criteria: industry sections or classes, size classes, the latest run's PD and colour, mu-efficiency grades,
//! certifications in force, and no open arrears. [`check`] is a pure function of a policy and one firm's
//! [`Profile`], giving every criterion met or not with the firm's own value, so an enterprise reads which
//! policies it qualifies for and, for the others, exactly what it lacks.
//!
//! The page: everyone reads the policies and their criteria; a firm's account sees its own matches; the
//! regulator sees how many firms each policy fits and the firms (a read of their non-public data, audited).

use crate::account::Ctx;
use crate::auth::Role;
use crate::pages::{lang_of, page, LangQuery};
use crate::search::{Firm, SearchIndex};
use crate::{AppState, Error};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use xinyong_store::{Store, StoredFact};

/// Eligible firms listed per policy for the regulator, at most.
pub const LISTED: usize = 50;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub id: String,
    pub name_zh: String,
    pub name_en: String,
    pub department: String,
    pub benefit_zh: String,
    pub benefit_en: String,
    /// GB/T 4754 sections (letters) or class prefixes (digits); empty: any.
    #[serde(default)]
    pub industries: Vec<String>,
    #[serde(default)]
    pub sizes: Vec<String>,
    /// The latest run's PD at most this.
    pub max_pd: Option<f64>,
    /// Colours that exclude a firm.
    #[serde(default)]
    pub not_colours: Vec<String>,
    /// The latest mu-efficiency grade is one of these.
    #[serde(default)]
    pub mu_grades: Vec<String>,
    /// A certification of one of these kinds in force.
    #[serde(default)]
    pub certifications: Vec<String>,
    /// No open record (no end date, or one after today) in these datasets.
    #[serde(default)]
    pub no_open: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    policy: Vec<Policy>,
}

/// The built-in policies (`policies.toml`).
pub fn policies() -> &'static [Policy] {
    static P: std::sync::OnceLock<Vec<Policy>> = std::sync::OnceLock::new();
    P.get_or_init(|| {
        toml::from_str::<PolicyFile>(include_str!("../policies.toml"))
            .map(|f| f.policy)
            .unwrap_or_default()
    })
}

/// What the criteria look at, for one firm.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Profile {
    pub industry: String,
    pub size: String,
    pub pd: Option<f64>,
    pub colour: Option<String>,
    pub mu_grade: Option<String>,
    /// Certification kinds in force.
    pub certifications: Vec<String>,
    /// Datasets with an open record.
    pub open: Vec<String>,
}

/// One criterion: its text key, the firm's value, met or not.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub criterion: &'static str,
    pub wanted: String,
    pub value: String,
    pub met: bool,
}

/// Every criterion of `p`, against `f`.
pub fn check(p: &Policy, f: &Profile) -> Vec<Check> {
    let mut out = Vec::new();
    let mut add = |criterion, wanted: String, value: String, met| {
        out.push(Check {
            criterion,
            wanted,
            value,
            met,
        })
    };
    if !p.industries.is_empty() {
        let section = xinyong_domain::industry::section_of(&f.industry).map(|s| s.code.clone());
        let met = p.industries.iter().any(|i| {
            if i.chars().all(|c| c.is_ascii_uppercase()) {
                section.as_deref() == Some(i.as_str())
            } else {
                f.industry.starts_with(i.as_str())
            }
        });
        add("support.c.industry", p.industries.join(", "), f.industry.clone(), met);
    }
    if !p.sizes.is_empty() {
        add(
            "support.c.size",
            p.sizes.join(", "),
            f.size.clone(),
            p.sizes.contains(&f.size),
        );
    }
    if let Some(max) = p.max_pd {
        let value = f.pd.map_or_else(|| "—".into(), |x| format!("{:.2}%", x * 100.0));
        add(
            "support.c.pd",
            format!("≤ {:.2}%", max * 100.0),
            value,
            f.pd.is_some_and(|x| x <= max),
        );
    }
    if !p.not_colours.is_empty() {
        let met = f.pd.is_some() && !f.colour.as_ref().is_some_and(|c| p.not_colours.contains(c));
        let value = f.colour.clone().unwrap_or_else(|| "none".into());
        add("support.c.colour", p.not_colours.join(", "), value, met);
    }
    if !p.mu_grades.is_empty() {
        let met = f.mu_grade.as_ref().is_some_and(|g| p.mu_grades.contains(g));
        let value = f.mu_grade.clone().unwrap_or_else(|| "—".into());
        add("support.c.mu", p.mu_grades.join(", "), value, met);
    }
    if !p.certifications.is_empty() {
        let met = f.certifications.iter().any(|c| p.certifications.contains(c));
        let value = if f.certifications.is_empty() {
            "—".into()
        } else {
            f.certifications.join(", ")
        };
        add("support.c.cert", p.certifications.join(", "), value, met);
    }
    for ds in &p.no_open {
        let open = f.open.contains(ds);
        add(
            "support.c.open",
            ds.clone(),
            if open { "open" } else { "none" }.into(),
            !open,
        );
    }
    out
}

/// Whether every criterion is met.
pub fn eligible(p: &Policy, f: &Profile) -> bool {
    check(p, f).iter().all(|c| c.met)
}

/// The datasets the criteria read besides the register and the run.
const READ: &[(&str, &str)] = &[
    ("eit", "eit.mu_efficiency"),
    ("sci", "sci.certifications"),
    ("tax", "tax.arrears"),
    ("hrss", "hrss.wage_arrears"),
];

fn add_fact(p: &mut Profile, latest_mu: &mut String, f: &StoredFact, today: &str) {
    let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).unwrap_or_default();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or_default().to_string();
    let in_force = || {
        let end = s("end_date");
        end.is_empty() || end.as_str() >= today
    };
    match f.dataset.as_str() {
        "eit.mu_efficiency" => {
            let period = f.period.clone().unwrap_or_default();
            if period >= *latest_mu {
                *latest_mu = period;
                p.mu_grade = Some(s("metric:mu_grade")).filter(|g| !g.is_empty());
            }
        }
        "sci.certifications" => {
            if in_force() && !p.certifications.contains(&s("category")) {
                p.certifications.push(s("category"));
            }
        }
        ds => {
            if in_force() && !p.open.iter().any(|o| o == ds) {
                p.open.push(ds.to_string());
            }
        }
    }
}

fn base_profile(firm: &Firm, score: Option<&xinyong_store::ScoreRow>) -> Profile {
    Profile {
        industry: firm.industry.clone(),
        size: firm.size_class.clone(),
        pd: score.map(|s| s.pd),
        colour: score.and_then(|s| s.colour.clone()),
        ..Default::default()
    }
}

/// One firm's profile (its own facts and the latest run).
pub fn profile_of(store: &dyn Store, firm: &Firm, today: &str) -> Result<Profile, Error> {
    // The firm's own row of the latest run (its stored assessment carries the PD and colour).
    let score = match store.latest_run()? {
        Some(r) => store.run_score(&r.run_id, &firm.uscc)?.and_then(|json| {
            let v: serde_json::Value = serde_json::from_str(&json).ok()?;
            Some(xinyong_store::ScoreRow {
                uscc: firm.uscc.clone(),
                pd: v.get("pd")?.as_f64()?,
                colour: v.get("colour").and_then(|c| c.as_str()).map(String::from),
                ..Default::default()
            })
        }),
        None => None,
    };
    let mut p = base_profile(firm, score.as_ref());
    let mut latest = String::new();
    for f in store.facts_of(&firm.uscc, None)? {
        if f.known_to.is_none() && READ.iter().any(|(_, d)| *d == f.dataset) {
            add_fact(&mut p, &mut latest, &f, today);
        }
    }
    Ok(p)
}

/// Per policy, the eligible firms (lowest PD first).
#[derive(Debug, Default, Serialize)]
pub struct Matches {
    pub eligible: HashMap<String, Vec<(String, String, f64)>>,
}

/// Every active firm's profile, matched to every policy.
pub fn match_all(store: &dyn Store, index: &SearchIndex, today: &str) -> Result<Matches, Error> {
    let (_, scores) = crate::latest_scores(store)?;
    let mut profiles: HashMap<&str, (Profile, String)> = index
        .firms()
        .iter()
        .filter(|f| f.status == "active" || f.status.is_empty())
        .map(|f| (f.uscc.as_str(), (base_profile(f, scores.get(&f.uscc)), String::new())))
        .collect();
    for (source, dataset) in READ {
        for f in store.current_facts(source, dataset)? {
            if let Some((p, latest)) = profiles.get_mut(f.uscc.as_str()) {
                add_fact(p, latest, &f, today);
            }
        }
    }
    let mut out = Matches::default();
    for pol in policies() {
        let mut v: Vec<(String, String, f64)> = profiles
            .iter()
            .filter(|(_, (p, _))| eligible(pol, p))
            .map(|(u, (p, _))| {
                let name = index.get(u).map_or_else(String::new, |f| f.name.clone());
                (u.to_string(), name, p.pd.unwrap_or(1.0))
            })
            .collect();
        v.sort_by(|a, b| a.2.total_cmp(&b.2).then(a.0.cmp(&b.0)));
        out.eligible.insert(pol.id.clone(), v);
    }
    Ok(out)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/support", get(support_page))
}

async fn support_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let role = ctx.user.as_ref().map(|p| p.role);
    let today = st.today();
    // A firm's own matches.
    let own = match (&ctx.user, role) {
        (Some(p), Some(Role::Enterprise)) => st.index.read().ok().and_then(|i| i.get(&p.org).cloned()),
        _ => None,
    };
    let mut mine = Vec::new();
    if let Some(firm) = own.clone() {
        let t = today.clone();
        match st.with_store(move |s| profile_of(s, &firm, &t)).await {
            Ok(p) => {
                for pol in policies() {
                    let checks = check(pol, &p);
                    let ok = checks.iter().all(|c| c.met);
                    mine.push(serde_json::json!({ "id": pol.id, "eligible": ok, "checks": checks }));
                }
            }
            Err(e) => return e.into_response(),
        }
    }
    // The regulator: every policy's eligible firms.
    let mut counts = serde_json::Map::new();
    let mut lists = serde_json::Map::new();
    if role == Some(Role::Regulator) {
        let (caches, index, t) = (st.caches.clone(), st.index.clone(), today.clone());
        let m = match st
            .with_store(move |s| {
                caches.support.get_or(|| {
                    let ix = index.read().unwrap_or_else(|e| e.into_inner());
                    match_all(s, &ix, &t)
                })
            })
            .await
        {
            Ok(m) => m,
            Err(e) => return e.into_response(),
        };
        let mut named = Vec::new();
        for (id, v) in &m.eligible {
            counts.insert(id.clone(), v.len().into());
            let shown: Vec<_> = v.iter().take(LISTED).collect();
            named.extend(shown.iter().map(|x| x.0.clone()));
            lists.insert(id.clone(), serde_json::json!(shown));
        }
        if let Err(e) = ctx.regulator_reads(&st, "/support", &named).await {
            return e.into_response();
        }
    }
    page(
        &st,
        &ctx,
        "support.html",
        lang,
        cookie,
        serde_json::json!({
            "policies": policies(), "mine": mine, "own": own,
            "counts": counts, "lists": lists, "path": "/support",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pol(id: &str) -> &'static Policy {
        policies().iter().find(|p| p.id == id).expect(id)
    }

    #[test]
    fn the_built_in_policies_parse() {
        assert!(policies().len() >= 4);
        for p in policies() {
            assert!(!check(p, &Profile::default()).is_empty(), "{}: no criteria", p.id);
        }
    }

    #[test]
    fn a_small_sound_firm_gets_the_interest_subsidy_and_is_told_what_it_lacks_for_the_others() {
        let mut f = Profile {
            industry: "3484".into(),
            size: "small".into(),
            pd: Some(0.01),
            colour: None,
            mu_grade: Some("C".into()),
            certifications: vec![],
            open: vec![],
        };
        assert!(eligible(pol("sme-interest"), &f));
        let upgrade = check(pol("upgrade"), &f);
        let unmet: Vec<_> = upgrade.iter().filter(|c| !c.met).map(|c| c.criterion).collect();
        assert_eq!(unmet, vec!["support.c.mu"], "only the mu grade is missing");
        // Open tax arrears, a red warning, a large firm: each shows as its own unmet criterion.
        f.open.push("tax.arrears".into());
        f.colour = Some("red".into());
        f.size = "large".into();
        let c = check(pol("sme-interest"), &f);
        assert_eq!(c.iter().filter(|c| !c.met).count(), 3, "{c:?}");
        // No score: the PD and colour criteria are not met (nothing to judge by).
        let none = Profile {
            size: "micro".into(),
            ..Default::default()
        };
        assert!(!eligible(pol("sme-interest"), &none));
    }

    #[test]
    fn sections_and_class_prefixes() {
        let p = Policy {
            industries: vec!["C".into(), "6510".into()],
            ..pol("upgrade").clone()
        };
        let at = |i: &str| {
            check(
                &p,
                &Profile {
                    industry: i.into(),
                    ..Default::default()
                },
            )[0]
            .met
        };
        assert!(at("3484"), "manufacturing is section C");
        assert!(at("6510"));
        assert!(!at("5110"));
    }
}
