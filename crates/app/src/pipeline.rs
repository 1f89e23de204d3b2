//! The ingest pipeline: find delivered files, archive each verbatim, parse and validate it against its
//! dataset definition, and store facts, quarantine and provenance in one durable transaction per file.

use crate::{archive, io, AppError, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use xinyong_domain::legacy::{RegNo, Resolver};
use xinyong_domain::Uscc;
use xinyong_registry::{Format, Registry};
use xinyong_store::{BatchCounts, BatchMeta, NewFact, PutOutcome, QuarantineRow, Store, StoredFact};

/// How to ingest.
pub struct IngestOptions {
    /// Where verbatim copies of delivered files are kept.
    pub archive_dir: PathBuf,
    /// A fixed ingest time (RFC 3339) for reproducible stores; the wall clock otherwise.
    pub clock: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Clone)]
pub struct BatchReport {
    pub path: String,
    pub batch_id: String,
    pub dataset: String,
    pub skipped: bool,
    pub counts: BatchCounts,
}

#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    pub files: u64,
    pub skipped: u64,
    pub rows_read: u64,
    pub inserted: u64,
    pub replaced: u64,
    pub unchanged: u64,
    pub quarantined: u64,
    pub bytes: u64,
}

/// A delivered file: `<source>/<dataset>__<delivered YYYY-MM-DD>__<label>.<ext>[.gz]`.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub path: PathBuf,
    pub source: String,
    pub dataset: String,
    pub delivered: String,
}

/// Parses a delivery's file name; `None` if it does not follow the convention.
pub fn delivery_of(path: &Path) -> Option<Delivery> {
    let name = path.file_name()?.to_str()?;
    let source = path.parent()?.file_name()?.to_str()?.to_string();
    let mut parts = name.split("__");
    let dataset = parts.next()?.to_string();
    let delivered = parts.next()?.to_string();
    (delivered.len() == 10 && parts.next().is_some()).then_some(Delivery {
        path: path.to_path_buf(),
        source,
        dataset,
        delivered,
    })
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)
            .map_err(io(p))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for e in entries {
            // The hidden truth is never read by ingest.
            if e.file_name().is_some_and(|n| n == "truth") {
                continue;
            }
            walk(&e, out)?;
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    }
    Ok(())
}

/// Lists the deliveries under `paths` in ingest order: the register first (it feeds the identifier
/// crosswalk), then by delivery date and path. Files that are not deliveries are returned apart.
pub fn plan(registry: &Registry, paths: &[PathBuf]) -> Result<(Vec<Delivery>, Vec<PathBuf>)> {
    let mut files = Vec::new();
    for p in paths {
        if !p.exists() {
            return Err(AppError::Other(format!("{}: no such file or directory", p.display())));
        }
        walk(p, &mut files)?;
    }
    let (mut ds, mut other) = (Vec::new(), Vec::new());
    for f in files {
        match delivery_of(&f) {
            Some(d) if registry.dataset(&d.dataset).is_some() => ds.push(d),
            _ => {
                let n = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if n != "manifest.jsonl" && n != "summary.json" {
                    other.push(f)
                }
            }
        }
    }
    let is_reg = |d: &Delivery| registry.dataset(&d.dataset).is_some_and(xinyong_ingest::is_register);
    ds.sort_by(|a, b| (!is_reg(a), &a.delivered, &a.path).cmp(&(!is_reg(b), &b.delivered, &b.path)));
    Ok((ds, other))
}

/// Builds the identifier crosswalk from the stored register.
pub fn resolver_from(store: &dyn Store) -> Result<Resolver> {
    let mut r = Resolver::new();
    for (u, rn) in store.crosswalk()? {
        if let Ok(u) = Uscc::parse(&u) {
            r.add_firm(u, rn.and_then(|s| RegNo::parse(&s).ok()));
        }
    }
    Ok(r)
}

fn now(opts: &IngestOptions) -> String {
    opts.clock.clone().unwrap_or_else(|| {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        format!("unix:{}.{:03}", d.as_secs(), d.subsec_millis())
    })
}

/// Ingests every delivery under `paths`. `on_batch` is called after each file's transaction has
/// committed (the acknowledgement: from then on the file's records survive a crash).
pub fn ingest_paths(
    store: &mut dyn Store,
    registry: &Registry,
    paths: &[PathBuf],
    opts: &IngestOptions,
    on_batch: &mut dyn FnMut(&BatchReport, u64, u64),
) -> Result<IngestSummary> {
    let (plan, other) = plan(registry, paths)?;
    if !other.is_empty() {
        let names: Vec<String> = other.iter().take(5).map(|p| p.display().to_string()).collect();
        return Err(AppError::Other(format!(
            "{} file(s) are not deliveries of a registered dataset (expected SOURCE/DATASET__YYYY-MM-DD__LABEL.ext): {}",
            other.len(),
            names.join(", ")
        )));
    }
    let mut resolver = resolver_from(store)?;
    let mut sum = IngestSummary::default();
    let total = plan.len() as u64;
    for (k, d) in plan.iter().enumerate() {
        let report = ingest_one(store, registry, d, opts, &mut resolver)?;
        sum.files += 1;
        if report.skipped {
            sum.skipped += 1;
        }
        sum.rows_read += report.counts.rows_read;
        sum.inserted += report.counts.inserted;
        sum.replaced += report.counts.replaced;
        sum.unchanged += report.counts.unchanged;
        sum.quarantined += report.counts.quarantined;
        sum.bytes += std::fs::metadata(&d.path).map(|m| m.len()).unwrap_or(0);
        on_batch(&report, k as u64 + 1, total);
    }
    Ok(sum)
}

fn ingest_one(
    store: &mut dyn Store,
    registry: &Registry,
    d: &Delivery,
    opts: &IngestOptions,
    resolver: &mut Resolver,
) -> Result<BatchReport> {
    let ds = registry
        .dataset(&d.dataset)
        .ok_or_else(|| AppError::Registry(format!("unknown dataset {}", d.dataset)))?;
    let bytes = std::fs::read(&d.path).map_err(io(&d.path))?;
    let batch_id = hex::encode(Sha256::digest(&bytes));
    let mut report = BatchReport {
        path: d.path.display().to_string(),
        batch_id: batch_id.clone(),
        dataset: d.dataset.clone(),
        skipped: false,
        counts: BatchCounts::default(),
    };
    if store.has_batch(&batch_id)? {
        report.skipped = true;
        return Ok(report);
    }
    let plain =
        xinyong_ingest::maybe_gunzip(&bytes).map_err(|e| AppError::Other(format!("{}: {e}", d.path.display())))?;
    let rel = format!("{}/{}.gz", d.source, batch_id);
    let chunks = archive::write(&opts.archive_dir.join(&rel), &plain, ds.format != Format::Xlsx)?;
    let meta = BatchMeta {
        batch_id: batch_id.clone(),
        source: d.source.clone(),
        dataset: d.dataset.clone(),
        file_name: d.path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string(),
        delivered_on: d.delivered.clone(),
        ingested_at: now(opts),
        archive: rel,
    };
    let parsed = xinyong_ingest::parse(ds, &plain, resolver);
    let mut w = store.begin_batch(&meta)?;
    for c in &chunks {
        w.add_chunk(c)?;
    }
    let mut counts = BatchCounts::default();
    let mut new_firms = Vec::new();
    let diagnostics = match parsed {
        Err(e) => {
            // The whole file is unusable: it is still stored and archived, with the reason.
            let reason = e.to_string();
            let rule = reason.split(':').next().unwrap_or("file").to_string();
            w.quarantine(&QuarantineRow {
                row: 1,
                reason: &format!("file:{rule}"),
                detail: &reason,
                raw: "",
            })?;
            counts.quarantined = 1;
            vec![reason]
        }
        Ok(p) => {
            counts.rows_read = p.rows_read;
            for r in &p.records {
                let fields = serde_json_string(&r.fields);
                let date = r.date.map(|d| d.to_string());
                let end = r.end_date.map(|d| d.to_string());
                let out = w.put_fact(&NewFact {
                    uscc: r.uscc.as_str(),
                    key: &r.key,
                    period: r.period.as_deref(),
                    date: date.as_deref(),
                    end_date: end.as_deref(),
                    fields: &fields,
                    content_hash: &r.content_hash,
                    row: r.row,
                    n_rows: r.n_rows,
                })?;
                match out {
                    PutOutcome::Inserted => counts.inserted += 1,
                    PutOutcome::Replaced => counts.replaced += 1,
                    PutOutcome::Unchanged => counts.unchanged += 1,
                }
                if xinyong_ingest::is_register(ds) {
                    let rn = r
                        .fields
                        .get("reg_no")
                        .and_then(|v| v.as_str())
                        .and_then(|s| RegNo::parse(s).ok());
                    new_firms.push((r.uscc, rn));
                }
            }
            for q in &p.quarantine {
                w.quarantine(&QuarantineRow {
                    row: q.row,
                    reason: &q.reason,
                    detail: &q.detail,
                    raw: &q.raw,
                })?;
            }
            counts.quarantined = p.quarantine.len() as u64;
            p.diagnostics
        }
    };
    w.commit(counts, &diagnostics)?;
    for (u, rn) in new_firms {
        resolver.add_firm(u, rn);
    }
    report.counts = counts;
    Ok(report)
}

fn serde_json_string(m: &xinyong_ingest::Fields) -> String {
    xinyong_ingest::fields_json(m)
}

/// A stored fact and the raw text of its source row, read back from the archive.
pub fn raw_row(store: &dyn Store, archive_dir: &Path, fact_id: i64) -> Result<(StoredFact, String)> {
    let f = store.fact(fact_id)?;
    let c = store.chunk_for(&f.batch_id, f.row)?;
    let data = archive::read_chunk(&archive_dir.join(&f.archive), &c)?;
    let raw = if f.dataset.is_empty() {
        String::new()
    } else if data.starts_with(b"PK") {
        xinyong_ingest::xlsx_row(&data, f.row).unwrap_or_default()
    } else {
        let line = data
            .split(|&b| b == b'\n')
            .nth((f.row - c.first_row) as usize)
            .unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match std::str::from_utf8(line) {
            Ok(s) => s.to_string(),
            Err(_) => encoding_gb(line),
        }
    };
    Ok((f, raw))
}

fn encoding_gb(b: &[u8]) -> String {
    xinyong_ingest::decode_gb18030(b)
}
