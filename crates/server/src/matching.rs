//! Bank-enterprise matching: a bank publishes loan products with criteria (lowest grade, highest PD,
//! industries, townships, amount and term); the screening list of a product is every firm of the latest run
//! that meets them and carries no red warning; an enterprise applies and, in the same step (one transaction),
//! authorises the bank to read its record for 90 days; the bank approves or declines with a note.
//!
//! The screening list decides on non-public data (scores), so it names only the eligible firms the bank may
//! read (the firm's own authorisation, an application, or a loan), with grade and PD, each such read in the
//! audit log; the other eligible firms are only counted, and only when there are at least ten (rounded down
//! to tens), so that narrow criteria cannot single a firm out. A regulator sees every eligible firm.

use crate::access::{self, Authorisation};
use crate::account::Ctx;
use crate::auth::{self, Principal, Role};
use crate::pages::{lang_of, page, LangQuery};
use crate::{AppState, Error};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use serde::{Deserialize, Serialize};
use xinyong_store::rows::{Row, RowOp, RowQuery, Value};
use xinyong_store::Store;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/products", get(products).post(publish))
        .route("/products/{id}", get(screening))
        .route("/products/{id}/apply", post(apply))
        .route("/applications/{id}/decide", post(decide))
}

/// Days an application's authorisation lasts.
pub const APPLICATION_DAYS: i64 = 90;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Product {
    pub product_id: String,
    pub bank: String,
    pub name: String,
    pub max_amount: f64,
    pub term_months: i64,
    pub min_grade: String,
    pub max_pd: f64,
    /// GB/T 4754 sections or code prefixes, comma-separated; empty: any.
    pub industries: String,
    /// Township codes, comma-separated; empty: any.
    pub townships: String,
    pub description: String,
    pub created_at: String,
    pub created_by: String,
    pub active: bool,
}

impl Product {
    fn from_row(r: &Row) -> Option<Product> {
        let s = |i: usize| r.get(i).and_then(Value::as_str).map(String::from);
        let f = |i: usize| match r.get(i) {
            Some(Value::Real(x)) => Some(*x),
            _ => None,
        };
        Some(Product {
            product_id: s(0)?,
            bank: s(1)?,
            name: s(2)?,
            max_amount: f(3)?,
            term_months: r.get(4)?.as_int()?,
            min_grade: s(5)?,
            max_pd: f(6)?,
            industries: s(7)?,
            townships: s(8)?,
            description: s(9)?,
            created_at: s(10)?,
            created_by: s(11)?,
            active: r.get(12)?.as_int()? != 0,
        })
    }

    fn row(&self) -> Row {
        vec![
            Value::text(&self.product_id),
            Value::text(&self.bank),
            Value::text(&self.name),
            Value::Real(self.max_amount),
            Value::Int(self.term_months),
            Value::text(&self.min_grade),
            Value::Real(self.max_pd),
            Value::text(&self.industries),
            Value::text(&self.townships),
            Value::text(&self.description),
            Value::text(&self.created_at),
            Value::text(&self.created_by),
            Value::Int(i64::from(self.active)),
        ]
    }

    fn list(s: &str) -> Vec<&str> {
        s.split([',', '，', ' '])
            .map(str::trim)
            .filter(|x| !x.is_empty())
            .collect()
    }

    /// Whether a firm of `industry` and `township`, graded `grade` with `pd` and coloured `colour`, is eligible.
    pub fn admits(&self, industry: &str, township: &str, grade: &str, pd: f64, colour: Option<&str>) -> bool {
        let rank = |g: &str| grades().iter().position(|x| x == g);
        let grade_ok = matches!((rank(grade), rank(&self.min_grade)), (Some(a), Some(b)) if a <= b);
        let section = xinyong_domain::industry::section_of(industry).map(|i| i.code.clone());
        let inds = Self::list(&self.industries);
        let towns = Self::list(&self.townships);
        grade_ok
            && pd <= self.max_pd
            && colour != Some("red")
            && (inds.is_empty()
                || inds
                    .iter()
                    .any(|c| industry.starts_with(c) || section.as_deref() == Some(*c)))
            && (towns.is_empty() || towns.contains(&township))
    }
}

/// The grades, best first (the scoring configuration's bands).
pub fn grades() -> &'static [String] {
    static G: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    G.get_or_init(|| {
        xinyong_credit::ScoringConfig::builtin()
            .grades
            .into_iter()
            .map(|b| b.grade)
            .collect()
    })
}

pub fn all_products(store: &dyn Store) -> Result<Vec<Product>, Error> {
    Ok(store
        .rows(&RowQuery::all("products"))?
        .iter()
        .filter_map(Product::from_row)
        .collect())
}

fn product(store: &dyn Store, id: &str) -> Result<Product, Error> {
    store
        .rows(&RowQuery::all("products").eq("product_id", Value::text(id)))?
        .first()
        .and_then(Product::from_row)
        .ok_or_else(|| Error::NotFound(format!("no product {id}")))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Application {
    pub app_id: String,
    pub product_id: String,
    pub uscc: String,
    pub bank: String,
    pub amount: f64,
    pub purpose: String,
    pub status: String,
    pub auth_id: String,
    pub created_at: String,
    pub created_by: String,
    pub decided_at: Option<String>,
    pub decided_by: Option<String>,
    pub note: Option<String>,
}

impl Application {
    fn from_row(r: &Row) -> Option<Application> {
        let s = |i: usize| r.get(i).and_then(Value::as_str).map(String::from);
        Some(Application {
            app_id: s(0)?,
            product_id: s(1)?,
            uscc: s(2)?,
            bank: s(3)?,
            amount: match r.get(4)? {
                Value::Real(x) => *x,
                _ => return None,
            },
            purpose: s(5)?,
            status: s(6)?,
            auth_id: s(7)?,
            created_at: s(8)?,
            created_by: s(9)?,
            decided_at: s(10),
            decided_by: s(11),
            note: s(12),
        })
    }

    fn row(&self) -> Row {
        vec![
            Value::text(&self.app_id),
            Value::text(&self.product_id),
            Value::text(&self.uscc),
            Value::text(&self.bank),
            Value::Real(self.amount),
            Value::text(&self.purpose),
            Value::text(&self.status),
            Value::text(&self.auth_id),
            Value::text(&self.created_at),
            Value::text(&self.created_by),
            Value::opt_text(self.decided_at.clone()),
            Value::opt_text(self.decided_by.clone()),
            Value::opt_text(self.note.clone()),
        ]
    }
}

pub fn applications(store: &dyn Store, column: &'static str, value: &str) -> Result<Vec<Application>, Error> {
    let mut v: Vec<Application> = store
        .rows(&RowQuery::all("applications").eq(column, Value::text(value)))?
        .iter()
        .filter_map(Application::from_row)
        .collect();
    v.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(v)
}

/// One line of a screening list.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Eligible {
    pub uscc: String,
    pub name: String,
    pub industry: String,
    pub township: String,
    /// Shown only when the reader may read the firm.
    pub grade: Option<String>,
    pub pd: Option<f64>,
}

/// The firms of the latest run a product admits that `who` may read, best PD first, with the basis of each
/// read; and how many eligible firms it may not read.
pub fn screen(
    st: &AppState,
    store: &dyn Store,
    p: &Product,
    who: &Principal,
    today: &str,
    month: &str,
) -> Result<(Vec<Eligible>, Vec<String>, usize), Error> {
    let Some(run) = st.summary().run_id.clone() else {
        return Ok((Vec::new(), Vec::new(), 0));
    };
    let mut rows = store.run_scores(&run)?;
    rows.sort_by(|a, b| a.pd.total_cmp(&b.pd).then(a.uscc.cmp(&b.uscc)));
    let (mut out, mut bases, mut others) = (Vec::new(), Vec::new(), 0);
    for r in rows {
        let firm = {
            let ix = st.index.read().unwrap_or_else(|e| e.into_inner());
            match ix.get(&r.uscc) {
                Some(f) => f.clone(),
                None => continue,
            }
        };
        if !p.admits(&firm.industry, &firm.township, &r.grade, r.pd, r.colour.as_deref()) {
            continue;
        }
        let Some(basis) = access::firm_access(store, &st.caches, Some(who), &r.uscc, today, month)? else {
            others += 1;
            continue;
        };
        bases.push(basis.code());
        out.push(Eligible {
            uscc: r.uscc,
            name: firm.name,
            industry: firm.industry,
            township: firm.township,
            grade: Some(r.grade),
            pd: Some(r.pd),
        });
    }
    Ok((out, bases, others))
}

/// The count of eligible firms a bank may not read, as shown: none under ten, else rounded down to tens.
pub fn shown_count(others: usize) -> Option<usize> {
    (others >= 10).then_some(others / 10 * 10)
}

async fn products(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let who = ctx.user.clone();
    let got = st
        .with_store(move |s| {
            let products: Vec<Product> = all_products(s)?.into_iter().filter(|p| p.active).collect();
            let apps = match &who {
                Some(p) if p.role == Role::Enterprise => applications(s, "uscc", &p.org)?,
                Some(p) if p.role == Role::Bank => applications(s, "bank", &p.org)?,
                _ => Vec::new(),
            };
            Ok((products, apps))
        })
        .await;
    let (products, apps) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let ix = st.index.read().unwrap_or_else(|e| e.into_inner());
    let products: Vec<serde_json::Value> = products
        .iter()
        .map(|p| serde_json::json!({ "p": p, "bank_name": crate::account::lender_name(&p.bank) }))
        .collect();
    let apps: Vec<serde_json::Value> = apps
        .iter()
        .map(|a| {
            serde_json::json!({
                "a": a,
                "firm_name": ix.get(&a.uscc).map(|f| f.name.clone()).unwrap_or_default(),
                "bank_name": crate::account::lender_name(&a.bank),
            })
        })
        .collect();
    drop(ix);
    page(
        &st,
        &ctx,
        "products.html",
        lang,
        cookie,
        serde_json::json!({ "path": "/products", "products": products, "apps": apps, "grades": grades() }),
    )
}

#[derive(Deserialize)]
pub struct ProductForm {
    name: String,
    max_amount: f64,
    term_months: i64,
    min_grade: String,
    max_pd_percent: f64,
    #[serde(default)]
    industries: String,
    #[serde(default)]
    townships: String,
    #[serde(default)]
    description: String,
}

fn bank_of(ctx: &Ctx) -> Result<&Principal, Box<Response>> {
    ctx.require(&[Role::Bank], "only a bank's officer does this")
}

async fn publish(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, Form(f): Form<ProductForm>) -> Response {
    let p = match bank_of(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let name = f.name.trim().chars().take(100).collect::<String>();
    let valid = !name.is_empty()
        && f.max_amount > 0.0
        && f.max_amount.is_finite()
        && (1..=360).contains(&f.term_months)
        && grades().contains(&f.min_grade)
        && f.max_pd_percent > 0.0
        && f.max_pd_percent <= 100.0;
    if !valid {
        return Error::BadRequest(
            "a product has a name, an amount above 0, a term of 1 to 360 months, a grade and a PD bound in (0, 100] %"
                .into(),
        )
        .into_response();
    }
    let product = Product {
        product_id: auth::random_token()[..12].to_string(),
        bank: p.org.clone(),
        name,
        max_amount: f.max_amount,
        term_months: f.term_months,
        min_grade: f.min_grade,
        max_pd: f.max_pd_percent / 100.0,
        industries: f.industries.chars().take(200).collect(),
        townships: f.townships.chars().take(400).collect(),
        description: f.description.chars().take(1000).collect(),
        created_at: st.timestamp(),
        created_by: p.user_id.clone(),
        active: true,
    };
    let id = product.product_id.clone();
    let row = product.row();
    if let Err(e) = st
        .with_store_mut(move |s| Ok(s.apply_rows(&[RowOp::Insert { table: "products", row }])?))
        .await
    {
        return e.into_response();
    }
    if let Err(e) = st
        .audit
        .record(ctx.entry("write", None, &format!("product:{id}"), Some("publish".into())))
        .await
    {
        return e.into_response();
    }
    Redirect::to(&format!("/products/{id}")).into_response()
}

async fn screening(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let who = match ctx.require(
        &[Role::Bank, Role::Regulator],
        "screening lists are for the product's bank and analysts",
    ) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let (st2, today, month) = (st.clone(), st.today(), st.data_month());
    let got = st
        .with_store(move |s| {
            let p = product(s, &id)?;
            // Object-level check: a bank screens for its own products only.
            if who.role == Role::Bank && p.bank != who.org {
                return Err(Error::Forbidden("another bank's product".into()));
            }
            let (list, bases, others) = screen(&st2, s, &p, &who, &today, &month)?;
            Ok((p, list, bases, others))
        })
        .await;
    let (p, list, bases, others) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let target = format!("/products/{}", p.product_id);
    let reads = list
        .iter()
        .zip(&bases)
        .map(|(f, b)| ctx.entry("read", Some(&f.uscc), &target, Some(b.clone())))
        .collect();
    if let Err(e) = st.audit.record_many(reads).await {
        return e.into_response();
    }
    let path = format!("/products/{}", p.product_id);
    page(
        &st,
        &ctx,
        "screening.html",
        lang,
        cookie,
        serde_json::json!({
            "path": path, "p": p, "list": list, "others": shown_count(others),
            "bank_name": crate::account::lender_name(&p.bank),
        }),
    )
}

#[derive(Deserialize)]
pub struct ApplyForm {
    amount: f64,
    purpose: String,
}

async fn apply(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<ApplyForm>,
) -> Response {
    let p = match ctx.require(&[Role::Enterprise], "a firm's own account applies") {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let purpose = f.purpose.trim().chars().take(200).collect::<String>();
    if purpose.is_empty() || !(f.amount > 0.0 && f.amount.is_finite()) {
        return Error::BadRequest("an application states an amount above 0 and a purpose".into()).into_response();
    }
    let (now, today) = (st.timestamp(), st.today());
    let user = p.user_id.clone();
    let org = p.org.clone();
    let done = st
        .with_store_mut(move |s| {
            let prod = product(s, &id)?;
            if !prod.active {
                return Err(Error::BadRequest("the product is withdrawn".into()));
            }
            if f.amount > prod.max_amount {
                return Err(Error::BadRequest(format!(
                    "at most {} for this product",
                    prod.max_amount
                )));
            }
            // The application and the authorisation that lets the bank read the record: one transaction.
            let a = Authorisation {
                auth_id: auth::random_token()[..16].to_string(),
                uscc: org.clone(),
                bank: prod.bank.clone(),
                purpose: format!("loan application: {}", prod.name),
                scope: "non-public".into(),
                granted_at: now.clone(),
                granted_by: user.clone(),
                expires_on: crate::add_days(&today, APPLICATION_DAYS - 1),
                revoked_at: None,
                revoked_by: None,
            };
            let app = Application {
                app_id: auth::random_token()[..12].to_string(),
                product_id: prod.product_id.clone(),
                uscc: org,
                bank: prod.bank.clone(),
                amount: f.amount,
                purpose,
                status: "applied".into(),
                auth_id: a.auth_id.clone(),
                created_at: now,
                created_by: user,
                decided_at: None,
                decided_by: None,
                note: None,
            };
            s.apply_rows(&[
                RowOp::Put {
                    table: "authorisations",
                    row: access::authorisation_row(&a),
                },
                RowOp::Insert {
                    table: "applications",
                    row: app.row(),
                },
            ])?;
            Ok(app)
        })
        .await;
    let app = match done {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let entry = ctx.entry(
        "write",
        Some(&app.uscc),
        &format!("application:{}", app.app_id),
        Some(format!("apply:{}+authorisation:{}", app.product_id, app.auth_id)),
    );
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to("/products").into_response()
}

#[derive(Deserialize)]
pub struct DecideForm {
    decision: String,
    #[serde(default)]
    note: String,
}

async fn decide(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Path(id): Path<String>,
    Form(f): Form<DecideForm>,
) -> Response {
    let p = match bank_of(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    if !matches!(f.decision.as_str(), "approved" | "declined") {
        return Error::BadRequest("a decision is approved or declined".into()).into_response();
    }
    let now = st.timestamp();
    let (bank, user) = (p.org.clone(), p.user_id.clone());
    let id2 = id.clone();
    let done = st
        .with_store_mut(move |s| {
            let mut a = s
                .rows(&RowQuery::all("applications").eq("app_id", Value::text(&id2)))?
                .first()
                .and_then(Application::from_row)
                .ok_or_else(|| Error::NotFound(format!("no application {id2}")))?;
            // Object-level check: only the product's bank decides.
            if a.bank != bank {
                return Err(Error::NotFound(format!("no application {id2}")));
            }
            if a.status != "applied" {
                return Err(Error::BadRequest(format!("the application is {} already", a.status)));
            }
            a.status = f.decision;
            a.decided_at = Some(now);
            a.decided_by = Some(user);
            a.note = Some(f.note.chars().take(1000).collect());
            // Decided once: only while it is still `applied` (two officers deciding at once: one wins).
            let done = s.apply_rows(&[RowOp::Update {
                table: "applications",
                key: vec![Value::text(&a.app_id)],
                set: vec![
                    ("status", Value::text(&a.status)),
                    ("decided_at", Value::opt_text(a.decided_at.clone())),
                    ("decided_by", Value::opt_text(a.decided_by.clone())),
                    ("note", Value::opt_text(a.note.clone())),
                ],
                expect: vec![("status", Value::text("applied"))],
            }]);
            match done {
                Ok(()) => Ok(a),
                Err(xinyong_store::StoreError::Conflict(_)) => {
                    Err(Error::BadRequest("the application was decided meanwhile".into()))
                }
                Err(e) => Err(e.into()),
            }
        })
        .await;
    let a = match done {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let entry = ctx.entry(
        "write",
        Some(&a.uscc),
        &format!("application:{id}"),
        Some(format!("decide:{}", a.status)),
    );
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to("/products").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Product {
        Product {
            product_id: "p".into(),
            bank: "bank01".into(),
            name: "x".into(),
            max_amount: 1e6,
            term_months: 12,
            min_grade: "BBB".into(),
            max_pd: 0.02,
            industries: "C, 51".into(),
            townships: String::new(),
            description: String::new(),
            created_at: String::new(),
            created_by: String::new(),
            active: true,
        }
    }

    #[test]
    fn a_product_admits_by_grade_pd_colour_industry_and_township() {
        let p = p();
        assert!(
            p.admits("1711", "330604001", "A", 0.003, None),
            "manufacturing (section C), A"
        );
        assert!(
            p.admits("5120", "330604001", "BBB", 0.009, Some("yellow")),
            "code prefix 51, BBB"
        );
        assert!(!p.admits("1711", "330604001", "BB", 0.02, None), "below the grade");
        assert!(!p.admits("1711", "330604001", "A", 0.03, None), "above the PD bound");
        assert!(!p.admits("1711", "330604001", "A", 0.001, Some("red")), "red");
        assert!(
            !p.admits("4710", "330604001", "A", 0.001, None),
            "construction is not listed"
        );
        let mut t = p.clone();
        t.townships = "330604002".into();
        assert!(!t.admits("1711", "330604001", "A", 0.003, None), "another township");
    }
}
