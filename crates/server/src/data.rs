//! Data entry for department officers: upload a delivery of one of the department's datasets through the same
//! ingest path as `xinyong ingest` (the binary supplies it: this crate names no ingest code), then read its
//! receipt — rows read, inserted, replaced, unchanged, quarantined — and each quarantined row with its reason
//! and position; per dataset, the last delivery and its quality (the share of rows quarantined).

use crate::account::Ctx;
use crate::auth::{Principal, Role};
use crate::pages::{lang_of, page, registry, LangQuery};
use crate::{AppState, Error};
use axum::extract::{Multipart, Path as UrlPath, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Extension, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Arc;
use xinyong_store::Store;

/// What an ingest of uploaded files reports.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct IngestReport {
    pub files: u64,
    /// Files already stored (the same bytes delivered before).
    pub skipped: u64,
    pub rows_read: u64,
    pub quarantined: u64,
    /// The batches stored (or found stored: the same bytes delivered before).
    pub batches: Vec<String>,
    /// The firms whose facts changed, sorted (what a recompute must look at).
    pub changed: Vec<String>,
}

/// The ingest path: deliveries under a folder laid out as `SOURCE/DATASET__YYYY-MM-DD__LABEL.ext`.
pub type IngestFn = Arc<dyn Fn(&mut dyn Store, &Path) -> Result<IngestReport, String> + Send + Sync>;

/// Quarantine rows a batch page lists at most.
pub const QUARANTINE_SHOWN: u64 = 500;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/data", get(data_page).post(upload))
        .route("/data/batch/{id}", get(batch_page))
}

fn department(ctx: &Ctx) -> Result<&Principal, Box<Response>> {
    ctx.require(&[Role::Department], "data entry is for a department's officers")
}

/// The datasets a department delivers: (id, name, format extension).
pub fn datasets_of(source: &str) -> Vec<(String, String, &'static str)> {
    let Ok(r) = registry() else { return Vec::new() };
    let Some(src) = r.source(source) else { return Vec::new() };
    r.datasets_of(src)
        .into_iter()
        .map(|d| {
            let ext = match d.format {
                xinyong_registry::Format::Csv => "csv",
                xinyong_registry::Format::Xlsx => "xlsx",
                xinyong_registry::Format::Jsonl => "jsonl",
            };
            (d.id.clone(), d.name.clone(), ext)
        })
        .collect()
}

#[derive(Debug, Serialize)]
struct Freshness {
    dataset: String,
    name: String,
    last_delivery: Option<String>,
    files: u64,
    rows: u64,
    quarantined: u64,
    quarantined_pct: Option<f64>,
}

async fn data_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let p = match department(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let org = p.org.clone();
    let batches = match st.with_store(move |s| Ok(s.batches_of(&org)?)).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let datasets = datasets_of(&p.org);
    let fresh: Vec<Freshness> = datasets
        .iter()
        .map(|(id, name, _)| {
            let of: Vec<_> = batches.iter().filter(|(m, _)| &m.dataset == id).collect();
            let rows: u64 = of.iter().map(|(_, k)| k.rows_read).sum();
            let quarantined: u64 = of.iter().map(|(_, k)| k.quarantined).sum();
            Freshness {
                dataset: id.clone(),
                name: name.clone(),
                last_delivery: of.first().map(|(m, _)| m.delivered_on.clone()),
                files: of.len() as u64,
                rows,
                quarantined,
                quarantined_pct: (rows > 0).then(|| 100.0 * quarantined as f64 / rows as f64),
            }
        })
        .collect();
    let recent: Vec<serde_json::Value> = batches
        .iter()
        .take(20)
        .map(|(m, k)| serde_json::json!({ "m": { "batch_id": m.batch_id, "dataset": m.dataset, "file_name": m.file_name, "delivered_on": m.delivered_on, "ingested_at": m.ingested_at }, "k": { "rows_read": k.rows_read, "inserted": k.inserted, "replaced": k.replaced, "unchanged": k.unchanged, "quarantined": k.quarantined } }))
        .collect();
    page(
        &st,
        &ctx,
        "data.html",
        lang,
        cookie,
        serde_json::json!({
            "path": "/data",
            "datasets": datasets,
            "fresh": fresh,
            "recent": recent,
            "today": st.today(),
            "source_name": registry().ok().and_then(|r| r.source(&p.org)).map(|s| s.name.clone()),
            "enabled": st.ingest.is_some(),
        }),
    )
}

async fn upload(State(st): State<AppState>, Extension(ctx): Extension<Ctx>, mut mp: Multipart) -> Response {
    let p = match department(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let Some(ingest) = st.ingest.clone() else {
        return Error::Internal("this server was started without an ingest path".into()).into_response();
    };
    let (mut dataset, mut delivered, mut file) = (String::new(), String::new(), None::<(String, Vec<u8>)>);
    loop {
        match mp.next_field().await {
            Ok(Some(f)) => {
                let name = f.name().unwrap_or("").to_string();
                let file_name = f.file_name().map(String::from);
                match f.bytes().await {
                    Ok(b) => match name.as_str() {
                        "dataset" => dataset = String::from_utf8_lossy(&b).trim().to_string(),
                        "delivered" => delivered = String::from_utf8_lossy(&b).trim().to_string(),
                        "file" => file = Some((file_name.unwrap_or_default(), b.to_vec())),
                        _ => {}
                    },
                    Err(e) => return Error::BadRequest(format!("the upload broke off: {e}")).into_response(),
                }
            }
            Ok(None) => break,
            Err(e) => return Error::BadRequest(format!("not a file upload: {e}")).into_response(),
        }
    }
    let Some(ext) = datasets_of(&p.org).into_iter().find(|d| d.0 == dataset).map(|d| d.2) else {
        return Error::BadRequest(format!("{dataset:?} is not one of your department's datasets")).into_response();
    };
    if chrono::NaiveDate::parse_from_str(&delivered, "%Y-%m-%d").is_err() || delivered > st.today() {
        return Error::BadRequest("the delivery date is a date (YYYY-MM-DD), not in the future".into()).into_response();
    }
    let Some((upload_name, bytes)) = file.filter(|f| !f.1.is_empty()) else {
        return Error::BadRequest("choose a non-empty file".into()).into_response();
    };
    let batch_id = hex::encode(Sha256::digest(&bytes));
    let redirect = format!("/data/batch/{batch_id}");
    let gz = if upload_name.to_lowercase().ends_with(".gz") {
        ".gz"
    } else {
        ""
    };
    let (org, ds) = (p.org.clone(), dataset.clone());
    let reindex = dataset == "amr.registration";
    let done = st
        .with_store_mut(move |s| {
            // The delivery as the ingest path expects it, in a folder of its own.
            // A fresh folder of its own (random name, created exclusively): concurrent uploads never share one.
            let dir = std::env::temp_dir().join(format!("xinyong-upload-{}", crate::auth::random_token()));
            std::fs::create_dir(&dir).map_err(|e| Error::Internal(format!("upload folder: {e}")))?;
            let folder = dir.join(&org);
            std::fs::create_dir(&folder).map_err(|e| Error::Internal(format!("upload folder: {e}")))?;
            let path = folder.join(format!("{ds}__{delivered}__web-{}.{ext}{gz}", &batch_id[..8]));
            std::fs::write(&path, &bytes).map_err(|e| Error::Internal(format!("upload file: {e}")))?;
            let out = ingest(s, &dir);
            let _ = std::fs::remove_dir_all(&dir);
            let report = out.map_err(Error::BadRequest)?;
            let index = if reindex { Some(crate::load_index(s)?) } else { None };
            // The new facts show on the next page: the kept overviews go now, not at the next refresh.
            let generation = crate::generation(s)?;
            Ok((report, index, generation))
        })
        .await;
    let (report, index, generation) = match done {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    st.caches.advance(generation);
    if let Some(ix) = index {
        if let Ok(mut w) = st.index.write() {
            *w = ix;
        }
    }
    let entry = ctx.entry(
        "write",
        None,
        &format!("delivery:{dataset}"),
        Some(format!(
            "upload:{} rows, {} quarantined",
            report.rows_read, report.quarantined
        )),
    );
    if let Err(e) = st.audit.record(entry).await {
        return e.into_response();
    }
    Redirect::to(&redirect).into_response()
}

async fn batch_page(
    State(st): State<AppState>,
    Extension(ctx): Extension<Ctx>,
    UrlPath(id): UrlPath<String>,
    Query(q): Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let (lang, cookie) = lang_of(&q, &headers);
    let p = match department(&ctx) {
        Ok(p) => p.clone(),
        Err(r) => return *r,
    };
    let org = p.org.clone();
    let got = st
        .with_store(move |s| {
            // Object-level check: a batch of this department's source only.
            let Some(b) = s.batches_of(&org)?.into_iter().find(|(m, _)| m.batch_id == id) else {
                return Err(Error::NotFound(format!("no delivery {id} of your department")));
            };
            let q = s.quarantine_of(&id, QUARANTINE_SHOWN)?;
            Ok((b, q))
        })
        .await;
    let ((m, k), q) = match got {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let quarantine: Vec<serde_json::Value> = q
        .iter()
        .map(|r| serde_json::json!({ "row": r.row, "reason": r.reason, "detail": r.detail, "raw": r.raw }))
        .collect();
    page(
        &st,
        &ctx,
        "batch.html",
        lang,
        cookie,
        serde_json::json!({
            "path": format!("/data/batch/{}", m.batch_id),
            "m": { "batch_id": m.batch_id, "dataset": m.dataset, "file_name": m.file_name, "delivered_on": m.delivered_on, "ingested_at": m.ingested_at },
            "k": { "rows_read": k.rows_read, "inserted": k.inserted, "replaced": k.replaced, "unchanged": k.unchanged, "retired": k.retired, "quarantined": k.quarantined },
            "quarantine": quarantine,
            "shown_all": (quarantine.len() as u64) == k.quarantined,
        }),
    )
}
