//! The pages: home (search box), search results, the enterprise overview (全览), and the embedded assets.
//!
//! The overview is assembled by [`overview`], a plain function of the store, the firm and the viewer, so that
//! what each viewer sees is tested without a socket. [`Viewer::Public`] sees registration facts and the records
//! that are public by law (administrative penalties, court and list records); the score, warnings and
//! non-public records are shown to [`Viewer::Full`] and [`Viewer::Regulator`] only: the firm itself, the regulator, a bank the firm
//! authorised or borrows from (`access::firm_access`), each such read recorded in the audit log first.

use crate::account::Ctx;
use crate::auth::Role;
use crate::i18n::{self, Lang};
use crate::{AppState, Error};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Extension;
use axum::Router;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use xinyong_registry::Class;
use xinyong_store::Store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route("/firm/{uscc}", get(firm))
        .route("/dashboard", get(dashboard))
}

#[derive(Deserialize)]
pub struct DashQuery {
    dim: Option<String>,
    lang: Option<String>,
}

async fn dashboard(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<DashQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&LangQuery { lang: q.lang.clone() }, &headers);
    let dim = q.dim.unwrap_or_else(|| "district".into());
    let Some(run_id) = st.summary().run_id.clone() else {
        return Error::NotFound("no scoring run stored yet: run `xinyong score`".into()).into_response();
    };
    // Which firms moved a group is firm-level: the regulator's view.
    let regulator = ctx.user.as_ref().is_some_and(|p| p.role == Role::Regulator);
    let viewer = if regulator { Viewer::Regulator } else { Viewer::Public };
    let d = dim.clone();
    let dash = match st
        .with_store(move |s| crate::dashboard::dashboard(s, &run_id, &d, viewer))
        .await
    {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let path = format!("/dashboard?dim={dim}");
    // The firm-level drill-down is a read of those firms' non-public data: on record first.
    let moved = dash.movers.values().flatten().map(|(u, _)| u);
    if let Err(e) = ctx.regulator_reads(&st, &path, moved).await {
        return e.into_response();
    }
    page(
        &st,
        &ctx,
        "dashboard.html",
        lang,
        cookie,
        serde_json::json!({
            "dash": dash,
            "dims": crate::dashboard::DIMENSIONS,
            "summary": &*st.summary(),
            "full": viewer != Viewer::Public,
            "path": path,
        }),
    )
}

/// Who is looking: what the overview may show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// Anyone: public facts only.
    Public,
    /// A reader entitled to the whole record (the firm itself, an authorised or lending bank).
    Full,
    /// The regulator: the whole record, and the non-public data of the other firms in its guarantee group.
    Regulator,
}

impl Viewer {
    /// The viewer class a reading basis gives (none: the public).
    pub fn of(basis: Option<&crate::access::Basis>) -> Viewer {
        match basis {
            Some(crate::access::Basis::Regulator) => Viewer::Regulator,
            Some(_) => Viewer::Full,
            None => Viewer::Public,
        }
    }
}

/// Whether a dataset's records are public by law (its registry class; within their publicity windows, the
/// `rights` crate's). A dataset the registry does not know is not.
pub fn is_public(dataset: &str) -> bool {
    registry().is_ok_and(|r| r.dataset(dataset).is_some_and(|d| d.class == Class::Public))
}

/// Monthly series charted on the overview: (dataset, field, text key).
const SERIES: &[(&str, &str, &str)] = &[
    ("power.daily", "metric:power_kwh", "chart.power"),
    ("water.usage", "metric:water_t", "chart.water"),
    ("gas.usage", "metric:gas_m3", "chart.gas"),
    ("tax.payments", "metric:tax_paid", "chart.tax"),
    ("hrss.insured", "metric:insured", "chart.headcount"),
];

#[derive(Deserialize, Default)]
pub struct LangQuery {
    pub lang: Option<String>,
}

/// The language: `?lang=` (remembered in a cookie), else the cookie, else Chinese.
pub fn lang_of(q: &LangQuery, headers: &HeaderMap) -> (Lang, Option<String>) {
    if let Some(l) = q.lang.as_deref().and_then(Lang::parse) {
        let cookie = format!("lang={}; Path=/; Max-Age=31536000; SameSite=Lax", l.code());
        return (l, Some(cookie));
    }
    let from_cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().strip_prefix("lang="))
        .find_map(Lang::parse);
    (from_cookie.unwrap_or(Lang::Zh), None)
}

/// Renders a page; every page knows its viewer (the header's account links) and the form token.
pub fn page(
    st: &AppState,
    who: &Ctx,
    name: &str,
    lang: Lang,
    cookie: Option<String>,
    ctx: serde_json::Value,
) -> Response {
    page_value(st, who, name, lang, cookie, minijinja::Value::from_serialize(&ctx))
}

/// [`page`] with a context already in the templates' form (parts of it kept between requests).
pub fn page_value(
    st: &AppState,
    who: &Ctx,
    name: &str,
    lang: Lang,
    cookie: Option<String>,
    ctx: minijinja::Value,
) -> Response {
    let ctx = minijinja::context! { lang => lang.code(), user => who.user, csrf => who.csrf, ..ctx };
    let html = st
        .templates
        .get_template(name)
        .and_then(|t| t.render(&ctx))
        .map_err(|e| Error::Internal(format!("template {name}: {e:#}")));
    match html {
        Ok(h) => {
            let mut res = Html(h).into_response();
            if let Some(c) = cookie.and_then(|c| c.parse().ok()) {
                res.headers_mut().insert(header::SET_COOKIE, c);
            }
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn home(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let firms = st.index.read().map(|i| i.len()).unwrap_or(0);
    page(
        &st,
        &ctx,
        "home.html",
        lang,
        cookie,
        serde_json::json!({ "firms": firms, "path": "/" }),
    )
}

#[derive(Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    lang: Option<String>,
}

async fn search(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<SearchQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&LangQuery { lang: q.lang.clone() }, &headers);
    if q.q.chars().count() > 100 {
        return Error::BadRequest("query too long (at most 100 characters)".into()).into_response();
    }
    let hits: Vec<serde_json::Value> = {
        let ix = st.index.read().unwrap_or_else(|p| p.into_inner());
        ix.search(&q.q, st.cfg.search_limit)
            .into_iter()
            .map(|h| serde_json::json!({ "firm": h.firm, "matched": h.matched }))
            .collect()
    };
    let path = format!("/search?q={}", urlencode(&q.q));
    page(
        &st,
        &ctx,
        "search.html",
        lang,
        cookie,
        serde_json::json!({ "q": q.q, "hits": hits, "path": path }),
    )
}

async fn firm(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(uscc): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let known = st.index.read().ok().and_then(|i| i.get(&uscc).cloned());
    let Some(reg) = known else {
        return Error::NotFound(format!("no firm {uscc}")).into_response();
    };
    // Who may see the non-public record is decided afresh, from the store, on every request; the overview of
    // the viewer's class is kept between requests (`cache`).
    let (u, who, today, month, caches, rights) = (
        uscc.clone(),
        ctx.user.clone(),
        st.today(),
        st.data_month(),
        st.caches.clone(),
        st.rights.clone(),
    );
    let decide = move |s: &dyn Store| {
        let basis = crate::access::firm_access(s, &caches, who.as_ref(), &u, &today, &month)?;
        let viewer = Viewer::of(basis.as_ref());
        let subs = match &who {
            Some(p) => crate::subs::subscriptions(s, &p.user_id)?,
            None => Vec::new(),
        };
        Ok((
            basis,
            caches.overview(&u, viewer, || overview(s, &u, viewer, &today, &rights))?,
            subs,
        ))
    };
    // An anonymous reader of a kept overview needs no store at all.
    let kept = match &ctx.user {
        None => st.caches.kept(&uscc, Viewer::Public).map(|c| Ok((None, c, Vec::new()))),
        Some(_) => None,
    };
    let decided = match kept {
        Some(k) => k,
        None => st.with_store(move |s| decide(s)).await,
    };
    let (basis, ov, subs) = match decided {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let path = format!("/firm/{uscc}");
    if let Some(b) = &basis {
        // The read is on record before the page leaves.
        if let Err(e) = st
            .audit
            .record(ctx.entry("read", Some(&uscc), &path, Some(b.code())))
            .await
        {
            return e.into_response();
        }
    }
    let is_bank = ctx.user.as_ref().is_some_and(|p| p.role == Role::Bank);
    // The firm's own account: it may object to its records and apply for their repair.
    let own = ctx
        .user
        .as_ref()
        .is_some_and(|p| p.role == Role::Enterprise && p.org == uscc);
    let can_subscribe = ctx
        .user
        .as_ref()
        .is_some_and(|p| matches!(p.role, Role::Bank | Role::Regulator));
    let follows =
        |kind: &str, target: Option<&str>| subs.iter().any(|s| s.kind == kind && Some(s.target.as_str()) == target);
    let subscribed_firm = follows("firm", Some(&uscc));
    let subscribed_group = follows("group", ov.group.as_deref());
    page_value(
        &st,
        &ctx,
        "firm.html",
        lang,
        cookie,
        minijinja::context! {
            firm => reg, ov => ov.tpl.clone(), path => path,
            basis => basis.map(|b| b.code()), is_bank => is_bank, own => own,
            can_subscribe => can_subscribe, subscribed_firm => subscribed_firm, subscribed_group => subscribed_group,
        },
    )
}

/// One group of records on the overview (a dataset), newest first.
#[derive(Debug, Serialize)]
pub struct RecordGroup {
    pub dataset: String,
    pub name: String,
    /// Field names (shown in English) and the source's own column headers (shown in Chinese).
    pub columns: Vec<String>,
    pub headers: Vec<String>,
    /// The newest [`RECORDS_SHOWN`] rows.
    pub rows: Vec<RecordRow>,
    /// How many rows the firm has in this dataset.
    pub total: usize,
}

/// One record as shown: its cells, its fact id (what an objection names), and its marks.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct RecordRow {
    pub cells: Vec<String>,
    pub fact: i64,
    /// Under an open objection (its id): shown as disputed in every view.
    pub disputed: Option<String>,
    /// The regulator's view only: the day the record left the credit views (its retention ended).
    pub left_credit_views: Option<String>,
    /// The day its public window ends (or ended), where one applies.
    pub public_until: Option<String>,
    /// The first day a credit repair may shorten its publicity (the rules allow one for its kind).
    pub repairable_from: Option<String>,
}

/// Rows of one dataset an overview shows (newest first): a firm's monthly snapshots over years would make a
/// page of thousands of rows; the rest are counted.
pub const RECORDS_SHOWN: usize = 50;

/// The fields of a record to show, in the source's column order (then any others, by name). `id` is the page's
/// own firm; a `category` that is not one of the source's columns is the dataset's constant (its title says it).
/// By class: personal and sensitive fields never (no page shows a person's data); non-public ones to a `full`
/// viewer only.
pub(crate) fn shown_fields<'v>(
    ds: Option<&xinyong_registry::Dataset>,
    v: &'v serde_json::Map<String, serde_json::Value>,
    full: bool,
) -> Vec<&'v String> {
    let allowed = |k: &str| match ds.map(|d| d.class_of(k)) {
        Some(Class::Public) => true,
        Some(Class::NonPublic) => full,
        Some(Class::Personal | Class::Sensitive) | None => false,
    };
    let declared = |k: &str| ds.is_some_and(|d| d.columns.iter().any(|c| c.field == k));
    let pos = |k: &str| {
        ds.and_then(|d| d.columns.iter().position(|c| c.field == k))
            .unwrap_or(usize::MAX)
    };
    let mut keys: Vec<&String> = v
        .keys()
        .filter(|k| *k != "id" && (*k != "category" || declared(k)) && allowed(k))
        .collect();
    keys.sort_by_key(|k| (pos(k), k.as_str()));
    keys
}

/// The source's column header of a canonical field, and the source's own label of a code value.
pub(crate) fn header_of(ds: Option<&xinyong_registry::Dataset>, field: &str) -> String {
    ds.and_then(|d| d.columns.iter().find(|c| c.field == field))
        .map_or_else(|| field.to_string(), |c| c.header.clone())
}

pub(crate) fn shown(ds: Option<&xinyong_registry::Dataset>, field: &str, v: &serde_json::Value) -> String {
    let text = cell(v);
    let label = ds
        .and_then(|d| d.columns.iter().find(|c| c.field == field))
        .and_then(|c| {
            c.codes
                .iter()
                .find(|(_, canon)| **canon == text)
                .map(|(raw, _)| raw.clone())
        });
    match (field, label) {
        (_, Some(l)) => format!("{l} ({text})"),
        ("industry", _) => match xinyong_domain::industry::lookup(&text) {
            Some(i) => format!("{} {}", text, i.name),
            None => text,
        },
        ("township", _) => match xinyong_domain::region::lookup(&text) {
            Some(r) => r.name.clone(),
            None => text,
        },
        _ => text,
    }
}

/// The overview of one firm, as `viewer` may see it.
#[derive(Debug, Serialize)]
pub struct Overview {
    pub full: bool,
    /// Registration facts (label key, value).
    pub registration: Vec<(String, String)>,
    /// The registration record's fact id, and its open objection if any.
    pub registration_fact: Option<i64>,
    pub registration_disputed: Option<String>,
    pub records: Vec<RecordGroup>,
    /// The latest scoring run's assessment (Full only).
    pub score: Option<serde_json::Value>,
    /// Warnings with their rule names (Full only).
    pub warnings: Vec<serde_json::Value>,
    /// Monthly series for charts: text key → [(month, value)] (Full only).
    pub series: BTreeMap<String, Vec<(String, f64)>>,
    /// The firm's guarantee group around it (Full only; none when it is in no group).
    pub circle: Option<CircleView>,
}

/// The part of a guarantee group a page draws: the firm, its circle (the child cell: firms that guarantee each
/// other round a loop), the rest of its group (the mother cell) as far as its contracts, and the firms on the
/// paths that carry risk to it; at most [`CIRCLE_NODES`] firms.
#[derive(Debug, Serialize, Default)]
pub struct CircleView {
    pub group: String,
    pub members: usize,
    pub circles: usize,
    /// (id, name, category: 0 this firm, 1 its circle, 2 its group; own PD, network PD — other firms' only for
    /// the regulator).
    pub nodes: Vec<CircleNode>,
    /// (guarantor, borrower, amount).
    pub links: Vec<(String, String, f64)>,
    /// Risk paths as names, with their weight.
    pub paths: Vec<(Vec<String>, f64)>,
    pub shown_all: bool,
}

pub const CIRCLE_NODES: usize = 60;

/// A firm drawn in a group: (id, name, category, own PD, network PD).
pub type CircleNode = (String, String, u8, Option<f64>, Option<f64>);

/// Other firms' PDs, and contracts the firm is not party to, are non-public data of those firms: shown to the
/// regulator only (`others`); everyone else sees the group's shape around the firm and its own contracts.
fn circle_view(
    store: &dyn Store,
    run_id: &str,
    uscc: &str,
    fs: &serde_json::Value,
    others: bool,
) -> Result<Option<CircleView>, Error> {
    let Some(group) = fs.pointer("/network/group").and_then(|g| g.as_str()) else {
        return Ok(None);
    };
    let Some(json) = store.run_circles(run_id, Some(group))?.into_iter().next() else {
        return Ok(None);
    };
    let g: xinyong_credit::network::GroupView =
        serde_json::from_str(&json).map_err(|e| Error::Internal(format!("stored circle: {e}")))?;
    let name_of = |id: &str| -> String {
        g.members
            .iter()
            .position(|m| m == id)
            .and_then(|i| g.names.get(i).cloned())
            .unwrap_or_else(|| id.to_string())
    };
    let own_core: Vec<&String> = g
        .cores
        .iter()
        .find(|c| c.iter().any(|m| m == uscc))
        .map_or(Vec::new(), |c| c.iter().collect());
    let paths: Vec<(Vec<String>, f64)> = fs
        .pointer("/network/paths")
        .and_then(|p| serde_json::from_value::<Vec<xinyong_credit::network::PathView>>(p.clone()).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.firms, p.weight))
        .collect();
    // Whom to show: the firm, its circle, its direct counterparties, the firms on its risk paths, then the rest.
    let mut shown: Vec<String> = vec![uscc.to_string()];
    let add = |id: &String, shown: &mut Vec<String>| {
        if shown.len() < CIRCLE_NODES && !shown.contains(id) {
            shown.push(id.clone());
        }
    };
    for m in &own_core {
        add(m, &mut shown);
    }
    for c in &g.contracts {
        if c.0 == uscc {
            add(&c.1, &mut shown);
        } else if c.1 == uscc {
            add(&c.0, &mut shown);
        }
    }
    for (p, _) in &paths {
        for f in p {
            add(f, &mut shown);
        }
    }
    for m in &g.members {
        add(m, &mut shown);
    }
    let pd: BTreeMap<&str, (f64, f64)> = g.contagion.iter().map(|(id, a, b)| (id.as_str(), (*a, *b))).collect();
    let nodes = shown
        .iter()
        .map(|id| {
            let cat = if id == uscc {
                0
            } else if own_core.contains(&id) {
                1
            } else {
                2
            };
            let (a, b) = pd.get(id.as_str()).copied().unwrap_or((0.0, 0.0));
            let (a, b) = if others || id == uscc {
                (Some(a), Some(b))
            } else {
                (None, None)
            };
            (id.clone(), name_of(id), cat, a, b)
        })
        .collect();
    let mut links: BTreeMap<(String, String), f64> = BTreeMap::new();
    for c in &g.contracts {
        let own = c.0 == uscc || c.1 == uscc;
        if shown.contains(&c.0) && shown.contains(&c.1) && (others || own) {
            *links.entry((c.0.clone(), c.1.clone())).or_default() += c.2;
        }
    }
    Ok(Some(CircleView {
        group: g.id.clone(),
        members: g.members.len(),
        circles: g.cores.len(),
        nodes,
        links: links.into_iter().map(|((a, b), x)| (a, b, x)).collect(),
        paths: paths
            .into_iter()
            .map(|(p, w)| (p.iter().map(|f| name_of(f)).collect(), w))
            .collect(),
        shown_all: shown.len() == g.members.len(),
    }))
}

/// The built-in registry and warning rules, parsed once (not on every page).
pub fn registry() -> Result<&'static xinyong_registry::Registry, Error> {
    static R: std::sync::OnceLock<Result<xinyong_registry::Registry, String>> = std::sync::OnceLock::new();
    R.get_or_init(|| xinyong_registry::Registry::builtin().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Error::Internal(e.clone()))
}

fn rules() -> &'static [xinyong_credit::warnings::Rule] {
    static R: std::sync::OnceLock<Vec<xinyong_credit::warnings::Rule>> = std::sync::OnceLock::new();
    R.get_or_init(xinyong_credit::warnings::builtin_rules)
}

/// Assembles the overview of `uscc` for `viewer` from the store, on `today`:
/// - the public sees a public record only within its publicity window (`rights.windows`, view "public",
///   shortened by a granted credit repair);
/// - a full reader (the firm, a bank) does not see a negative record whose credit-view retention has ended
///   (view "credit": 5 years after the event ends); the regulator sees it, marked;
/// - every viewer sees a record under an open objection marked as disputed.
pub fn overview(
    store: &dyn Store,
    uscc: &str,
    viewer: Viewer,
    today: &str,
    rights: &crate::objections::Rights,
) -> Result<Overview, Error> {
    let full = viewer != Viewer::Public;
    let registry = registry()?;
    let facts = store.facts_of(uscc, None)?;
    let disputed = crate::objections::disputed(store, uscc)?;
    let repaired = crate::objections::repaired(store, uscc)?;
    let day = chrono::NaiveDate::parse_from_str(today, "%Y-%m-%d")
        .map_err(|_| Error::Internal(format!("today {today:?}")))?;
    let mut registration = Vec::new();
    let (mut registration_fact, mut registration_disputed) = (None, None);
    let mut groups: BTreeMap<String, RecordGroup> = BTreeMap::new();
    let mut series: BTreeMap<String, Vec<(String, f64)>> = BTreeMap::new();
    for f in &facts {
        // What this viewer will not see is not decoded (most of a firm's facts are non-public series).
        if !full && !is_public(&f.dataset) {
            continue;
        }
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&f.fields).unwrap_or_default();
        let def = registry.dataset(&f.dataset);
        if f.dataset == "amr.registration" {
            for k in shown_fields(def, &v, full) {
                registration.push((format!("reg.{k}"), shown(def, k, &v[k])));
            }
            registration_fact = Some(f.fact_id);
            registration_disputed = disputed.of(f).cloned();
            continue;
        }
        if let Some((_, field, key)) = SERIES.iter().find(|s| s.0 == f.dataset) {
            if full {
                if let (Some(p), Some(x)) = (&f.period, v.get(*field).and_then(|x| x.as_f64())) {
                    series.entry(key.to_string()).or_default().push((p.clone(), x));
                }
            }
            continue;
        }
        let w = &rights.windows;
        let public = w.of(
            xinyong_rights::View::Public,
            &f.dataset,
            &v,
            f.period.as_deref(),
            repaired.get(&f.fact_id).copied(),
            &rights.calendar,
        );
        if !full && !public.as_ref().is_none_or(|s| s.on(day)) {
            continue;
        }
        let mut left_credit_views = None;
        if full && w.concerns(xinyong_rights::View::Credit, &f.dataset) {
            let credit = w.of(
                xinyong_rights::View::Credit,
                &f.dataset,
                &v,
                f.period.as_deref(),
                None,
                &rights.calendar,
            );
            if let Some(last) = credit.and_then(|c| c.last_day).filter(|l| *l < day) {
                if viewer != Viewer::Regulator {
                    continue;
                }
                left_credit_views = last.succ_opt().map(|d| d.format("%Y-%m-%d").to_string());
            }
        }
        let g = groups.entry(f.dataset.clone()).or_insert_with(|| {
            let columns: Vec<String> = shown_fields(def, &v, full).into_iter().cloned().collect();
            RecordGroup {
                dataset: f.dataset.clone(),
                name: def.map_or(f.dataset.clone(), |d| d.name.clone()),
                headers: columns.iter().map(|c| header_of(def, c)).collect(),
                columns,
                rows: Vec::new(),
                total: 0,
            }
        });
        let cells = g
            .columns
            .iter()
            .map(|c| v.get(c).map(|x| shown(def, c, x)).unwrap_or_default())
            .collect();
        g.rows.push(RecordRow {
            cells,
            fact: f.fact_id,
            disputed: disputed.of(f).cloned(),
            left_credit_views,
            repairable_from: public
                .as_ref()
                .and_then(|p| p.repairable_from)
                .map(|d| d.format("%Y-%m-%d").to_string()),
            public_until: public
                .and_then(|p| p.last_day)
                .map(|d| d.format("%Y-%m-%d").to_string()),
        });
    }
    for s in series.values_mut() {
        s.sort_by(|a, b| a.0.cmp(&b.0));
    }
    let mut records: Vec<RecordGroup> = groups.into_values().collect();
    for g in &mut records {
        g.rows.sort_by(|a, b| b.cmp(a));
        g.total = g.rows.len();
        g.rows.truncate(RECORDS_SHOWN);
    }
    let (mut score, mut warnings, mut circle) = (None, Vec::new(), None);
    if full {
        if let Some(run) = store.latest_run()? {
            if let Some(json) = store.run_score(&run.run_id, uscc)? {
                let fs: serde_json::Value =
                    serde_json::from_str(&json).map_err(|e| Error::Internal(format!("stored score: {e}")))?;
                let rules = rules();
                if let Some(ws) = fs.get("warnings").and_then(|w| w.as_array()) {
                    for w in ws {
                        let id = w.get("rule").and_then(|r| r.as_u64()).unwrap_or(0) as u32;
                        let rule = rules.iter().find(|r| r.id == id);
                        warnings.push(serde_json::json!({
                            "rule": id,
                            "colour": w.get("colour"),
                            "since": w.get("since"),
                            "clears_on": w.get("clears_on"),
                            "evidence": w.get("evidence"),
                            "name_zh": rule.map(|r| r.name_zh.as_str()),
                            "name_en": rule.map(|r| r.name_en.as_str()),
                            "clears": rule.map(|r| r.clears.as_str()),
                        }));
                    }
                }
                circle = circle_view(store, &run.run_id, uscc, &fs, viewer == Viewer::Regulator)?;
                score = Some(fs);
            }
        }
    }
    Ok(Overview {
        full,
        registration,
        registration_fact,
        registration_disputed,
        records,
        score,
        warnings,
        series,
        circle,
    })
}

fn cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Percent-encodes all but the unreserved characters (RFC 3986), byte by byte.
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The templates, embedded; `t(key)` gives the page text in the page's language.
pub fn templates() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    for (name, src) in [
        ("base.html", include_str!("../templates/base.html")),
        ("home.html", include_str!("../templates/home.html")),
        ("search.html", include_str!("../templates/search.html")),
        ("firm.html", include_str!("../templates/firm.html")),
        ("dashboard.html", include_str!("../templates/dashboard.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("me.html", include_str!("../templates/me.html")),
        ("inbox.html", include_str!("../templates/inbox.html")),
        ("products.html", include_str!("../templates/products.html")),
        ("screening.html", include_str!("../templates/screening.html")),
        ("bulk.html", include_str!("../templates/bulk.html")),
        ("data.html", include_str!("../templates/data.html")),
        ("batch.html", include_str!("../templates/batch.html")),
        ("admin.html", include_str!("../templates/admin.html")),
        ("admin_created.html", include_str!("../templates/admin_created.html")),
        ("themes.html", include_str!("../templates/themes.html")),
        ("support.html", include_str!("../templates/support.html")),
        ("digest.html", include_str!("../templates/digest.html")),
        ("objections.html", include_str!("../templates/objections.html")),
        ("objection.html", include_str!("../templates/objection.html")),
        ("repair.html", include_str!("../templates/repair.html")),
        ("turnaround.html", include_str!("../templates/turnaround.html")),
        ("improve.html", include_str!("../templates/improve.html")),
        ("person.html", include_str!("../templates/person.html")),
    ] {
        env.add_template(name, src).expect("templates parse (tested)");
    }
    env.add_function("t", |state: &minijinja::State, key: String| -> String {
        let lang = state
            .lookup("lang")
            .and_then(|l| l.as_str().and_then(Lang::parse))
            .unwrap_or(Lang::Zh);
        i18n::t(lang, &key)
    });
    env
}

/// Embedded static files: (path, content type, bytes).
const ASSETS: &[(&str, &str, &[u8])] = &[
    ("favicon.svg", "image/svg+xml", include_bytes!("../assets/favicon.svg")),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/app.js"),
    ),
    (
        "vendor/echarts.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/echarts.min.js"),
    ),
];

pub async fn asset(Path(path): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.0 == path) {
        Some((_, ty, body)) => (
            [
                (header::CONTENT_TYPE, *ty),
                (header::CACHE_CONTROL, "public, max-age=86400"),
            ],
            *body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "not_found: no such file\n").into_response(),
    }
}
