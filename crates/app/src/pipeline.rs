//! The ingest pipeline: find delivered files, archive each verbatim, parse and validate it against its
//! dataset definition, and store facts, quarantine and provenance in one durable transaction per file.

use crate::{archive, io, AppError, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use xinyong_domain::legacy::{RegNo, Resolver};
use xinyong_domain::Uscc;
use xinyong_registry::{Format, Registry};
use xinyong_store::{
    ArchiveChunk, BatchCounts, BatchMeta, BatchWriter, NewFact, PutOutcome, QuarantineRow, Store, StoredFact,
};

/// How to ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// A fixed ingest time (RFC 3339) for reproducible stores; the wall clock otherwise.
    pub clock: Option<String>,
    /// Only deliveries dated on or before this day (YYYY-MM-DD): a district's later months left for a live
    /// feed (`xinyong feed simulate`).
    pub until: Option<String>,
}

/// What happened to one file.
#[derive(Debug, Clone)]
pub struct BatchReport {
    pub path: String,
    pub batch_id: String,
    pub dataset: String,
    pub skipped: bool,
    pub counts: BatchCounts,
    /// The firms whose stored facts this batch changed (a version inserted, replaced or retired), sorted:
    /// what an incremental recompute must look at.
    pub changed: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct IngestSummary {
    pub files: u64,
    pub skipped: u64,
    pub bytes: u64,
    /// The files' counts, summed.
    pub counts: BatchCounts,
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
    // The delivery date must be a real date: it becomes the facts' known-from date.
    let valid_date = delivered.len() == 10 && chrono::NaiveDate::parse_from_str(&delivered, "%Y-%m-%d").is_ok();
    (valid_date && parts.next().is_some()).then_some(Delivery {
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
    opts.clock
        .clone()
        .unwrap_or_else(|| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// A file read, hashed, parsed and archived, ready to write.
struct Prepared {
    report: BatchReport,
    meta: BatchMeta,
    bytes: u64,
    parsed: std::result::Result<xinyong_ingest::Parsed, String>,
    chunks: Vec<ArchiveChunk>,
    register: bool,
    /// Snapshot dataset with extra key fields: replaced per firm and period as a set.
    replace_sets: bool,
}

/// Reads, hashes, parses and archives one file (no store access: runs on any thread).
fn prepare(
    registry: &Registry,
    d: &Delivery,
    opts: &IngestOptions,
    resolver: &Resolver,
    stored: &(dyn Fn(&str) -> bool + Sync),
) -> Result<Prepared> {
    let ds = registry
        .dataset(&d.dataset)
        .ok_or_else(|| AppError::Registry(format!("unknown dataset {}", d.dataset)))?;
    let bytes = std::fs::read(&d.path).map_err(io(&d.path))?;
    let batch_id = hex::encode(Sha256::digest(&bytes));
    let meta = BatchMeta {
        batch_id: batch_id.clone(),
        source: d.source.clone(),
        dataset: d.dataset.clone(),
        file_name: d.path.file_name().and_then(|n| n.to_str()).unwrap_or("").to_string(),
        delivered_on: d.delivered.clone(),
        ingested_at: now(opts),
    };
    let mut report = BatchReport {
        path: d.path.display().to_string(),
        batch_id: batch_id.clone(),
        dataset: d.dataset.clone(),
        skipped: false,
        counts: BatchCounts::default(),
        changed: Vec::new(),
    };
    let register = xinyong_ingest::is_register(ds);
    let replace_sets = ds.replace == xinyong_registry::Replace::Snapshot && !ds.key.is_empty();
    if stored(&batch_id) {
        report.skipped = true;
        return Ok(Prepared {
            report,
            meta,
            bytes: bytes.len() as u64,
            parsed: Err(String::new()),
            chunks: vec![],
            register,
            replace_sets,
        });
    }
    let mut content_note = None;
    let (mut parsed, mut chunks) = match xinyong_ingest::maybe_gunzip(&bytes) {
        Ok(plain) => {
            let chunks = archive::chunks(&plain, ds.format != Format::Xlsx)?;
            if plain.len() != bytes.len() {
                // A compressed delivery: the archive keeps its content (recompressed in chunks); the
                // content's own hash lets anyone check it against the delivered file.
                content_note = Some(format!("content-sha256: {}", hex::encode(Sha256::digest(&plain))));
            }
            (
                xinyong_ingest::parse(ds, &plain, resolver).map_err(|e| e.to_string()),
                chunks,
            )
        }
        // Not even decompressible: archived as delivered, quarantined as a whole.
        Err(e) => (Err(e.to_string()), archive::chunks(&bytes, false)?),
    };
    if let (Ok(p), Some(note)) = (&mut parsed, content_note) {
        p.diagnostics.push(note);
    }
    // An xlsx file is kept verbatim as chunk 0 (row 0: before any row), and its sheet as text lines in
    // the chunks after it, so that a row is read back from one small text chunk.
    if let (Ok(p), Some(c0)) = (&mut parsed, chunks.first_mut()) {
        if let Some(text) = p.sheet_text.take() {
            c0.first_row = 0;
            for mut c in archive::chunks(text.as_bytes(), true)? {
                c.chunk += 1;
                chunks.push(c);
            }
        }
    }
    Ok(Prepared {
        report,
        meta,
        bytes: bytes.len() as u64,
        parsed,
        chunks,
        register,
        replace_sets,
    })
}

/// Writes one prepared file into the open transaction; returns the register rows it added.
fn write(w: &mut dyn BatchWriter, p: &mut Prepared) -> Result<Vec<(Uscc, Option<RegNo>)>> {
    w.start_batch(&p.meta)?;
    for c in &p.chunks {
        w.add_chunk(c)?;
    }
    let mut counts = BatchCounts::default();
    let mut new_firms = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    let diagnostics = match &p.parsed {
        Err(reason) => {
            // The whole file is unusable: it is still stored and archived, with the reason.
            let rule = reason.split(':').next().unwrap_or("file").to_string();
            w.quarantine(&QuarantineRow {
                row: 1,
                reason: &format!("file:{rule}"),
                detail: reason,
                raw: "",
            })?;
            counts.quarantined = 1;
            vec![reason.clone()]
        }
        Ok(parsed) => {
            counts.rows_read = parsed.rows_read;
            // In slices, so that a backend that loads in bulk (PostgreSQL's COPY) holds a bounded amount.
            for slice in parsed.records.chunks(PUT_SLICE) {
                let dates: Vec<(Option<String>, Option<String>)> = slice
                    .iter()
                    .map(|r| (r.date.map(|d| d.to_string()), r.end_date.map(|d| d.to_string())))
                    .collect();
                let facts: Vec<NewFact<'_>> = slice
                    .iter()
                    .zip(&dates)
                    .map(|(r, (date, end))| NewFact {
                        uscc: r.uscc.as_str(),
                        key: &r.key,
                        period: r.period.as_deref(),
                        date: date.as_deref(),
                        end_date: end.as_deref(),
                        fields: &r.fields,
                        content_hash: &r.content_hash,
                        row: r.row,
                        n_rows: r.n_rows,
                    })
                    .collect();
                for (out, f) in w.put_facts(&facts)?.into_iter().zip(&facts) {
                    match out {
                        PutOutcome::Inserted | PutOutcome::Backdated => counts.inserted += 1,
                        PutOutcome::Replaced => counts.replaced += 1,
                        PutOutcome::Unchanged => counts.unchanged += 1,
                    }
                    if out != PutOutcome::Unchanged && changed.last().map(String::as_str) != Some(f.uscc) {
                        changed.push(f.uscc.to_string());
                    }
                }
                if p.register {
                    new_firms.extend(
                        slice
                            .iter()
                            .map(|r| (r.uscc, r.reg_no.as_deref().and_then(|s| RegNo::parse(s).ok()))),
                    );
                }
            }
            for q in &parsed.quarantine {
                w.quarantine(&QuarantineRow {
                    row: q.row,
                    reason: &q.reason,
                    detail: &q.detail,
                    raw: &q.raw,
                })?;
            }
            // Snapshots with several rows per firm and period (loans, shareholders) are replaced as a
            // set: what a re-delivery of a firm's period no longer holds is closed. A firm with a
            // quarantined row in the batch keeps its facts (the source did not drop them; it sent a bad row).
            if p.replace_sets {
                let mut groups: std::collections::BTreeMap<(&str, Option<&str>), Vec<&str>> = Default::default();
                for r in &parsed.records {
                    groups
                        .entry((r.uscc.as_str(), r.period.as_deref()))
                        .or_default()
                        .push(&r.key);
                }
                for ((uscc, period), keep) in groups {
                    if parsed.quarantine.iter().any(|q| q.raw.contains(uscc)) {
                        continue;
                    }
                    let retired = w.retire_absent(uscc, period, &keep)?;
                    if retired > 0 {
                        changed.push(uscc.to_string());
                    }
                    counts.retired += retired;
                }
            }
            counts.quarantined = parsed.quarantine.len() as u64;
            parsed.diagnostics.clone()
        }
    };
    w.end_batch(counts, &diagnostics)?;
    p.report.counts = counts;
    changed.sort_unstable();
    changed.dedup();
    p.report.changed = changed;
    Ok(new_firms)
}

/// Facts handed to the store at once.
const PUT_SLICE: usize = 20_000;

/// Group commit: a transaction is committed after this many source rows or files, whichever first.
const GROUP_ROWS: u64 = 500_000;
const GROUP_FILES: usize = 64;

/// Ingests every delivery under `paths`. Files are read, parsed and archived in parallel (the register
/// first, since it feeds the identifier crosswalk), then written in plan order and committed in groups.
/// `on_batch` is called for each file after the commit that holds it: the acknowledgement — from then
/// on the file's records survive a crash.
pub fn ingest_paths(
    store: &mut dyn Store,
    registry: &Registry,
    paths: &[PathBuf],
    opts: &IngestOptions,
    on_batch: &mut dyn FnMut(&BatchReport, u64, u64),
) -> Result<IngestSummary> {
    use rayon::prelude::*;
    let (mut plan, other) = plan(registry, paths)?;
    if let Some(u) = &opts.until {
        plan.retain(|d| d.delivered.as_str() <= u.as_str());
    }
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
    let mut done = 0u64;
    let n_register = plan
        .iter()
        .take_while(|d| registry.dataset(&d.dataset).is_some_and(xinyong_ingest::is_register))
        .count();
    let window = (rayon::current_num_threads() * 2).max(2);
    // Windows of files: register files one at a time (each extends the crosswalk), the rest in
    // parallel windows; while one window is written, the next is read and parsed.
    let mut windows: Vec<std::ops::Range<usize>> = (0..n_register).map(|k| k..k + 1).collect();
    // A window also ends at about 768 MB of source text, so that memory stays bounded when large
    // files (a district's monthly invoices, ~340 MB each) follow one another, while two of them still
    // share a window and keep both cores busy.
    let size = |d: &Delivery| {
        let n = std::fs::metadata(&d.path).map(|m| m.len()).unwrap_or(0);
        if d.path.extension().is_some_and(|e| e == "gz") {
            n * 4
        } else {
            n
        }
    };
    let mut k = n_register;
    while k < plan.len() {
        let (mut end, mut bytes) = (k, 0u64);
        while end < plan.len() && end - k < window && (end == k || bytes + size(&plan[end]) <= 768 << 20) {
            bytes += size(&plan[end]);
            end += 1;
        }
        windows.push(k..end);
        k = end;
    }
    let prep = |range: &std::ops::Range<usize>, resolver: &Resolver, stored: &std::collections::HashSet<String>| {
        plan[range.clone()]
            .par_iter()
            .map(|d| prepare(registry, d, opts, resolver, &|id| stored.contains(id)))
            .collect::<Vec<_>>()
    };
    // Batches already stored (by content hash), and those written in this run.
    let mut stored: std::collections::HashSet<String> = store.batch_ids()?.into_iter().collect();
    let mut next: Option<Vec<Result<Prepared>>> = None;
    let mut wi = 0;
    while wi < windows.len() {
        let mut w = store.begin()?;
        let mut pending: Vec<BatchReport> = Vec::new();
        let mut group_rows = 0u64;
        while wi < windows.len() && group_rows < GROUP_ROWS && pending.len() < GROUP_FILES {
            let current = match next.take() {
                Some(c) => c,
                None => prep(&windows[wi], &resolver, &stored),
            };
            let is_register = windows[wi].start < n_register;
            let overlap = !is_register && wi + 1 < windows.len();
            let snapshot = if overlap {
                stored.clone()
            } else {
                std::collections::HashSet::new()
            };
            let mut written: Result<()> = Ok(());
            let mut new_firms = Vec::new();
            rayon::in_place_scope(|sc| {
                if overlap {
                    let (r, st, range, slot) = (&resolver, &snapshot, &windows[wi + 1], &mut next);
                    let prep = &prep;
                    sc.spawn(move |_| *slot = Some(prep(range, r, st)));
                }
                written = (|| {
                    for p in current {
                        let mut p = p?;
                        // The same content twice in the run (a copy of a file) is stored once.
                        if !p.report.skipped && !stored.insert(p.report.batch_id.clone()) {
                            p.report.skipped = true;
                        }
                        if !p.report.skipped {
                            new_firms.extend(write(w.as_mut(), &mut p)?);
                        }
                        sum.files += 1;
                        sum.bytes += p.bytes;
                        group_rows += p.report.counts.rows_read + 1;
                        pending.push(p.report);
                    }
                    Ok(())
                })();
            });
            written?;
            // The crosswalk grows only between windows (register windows are never overlapped).
            for (u, rn) in new_firms {
                resolver.add_firm(u, rn);
            }
            wi += 1;
        }
        w.commit()?;
        for r in pending {
            done += 1;
            if r.skipped {
                sum.skipped += 1;
            }
            sum.counts += r.counts;
            on_batch(&r, done, total);
        }
    }
    Ok(sum)
}

/// A stored fact and the raw text of its source row, read back from the archive.
pub fn raw_row(store: &dyn Store, fact_id: i64) -> Result<(StoredFact, String)> {
    let f = store.fact(fact_id)?;
    let c = store.chunk_for(&f.batch_id, f.row)?;
    let data = archive::inflate(&c)?;
    let raw = if data.starts_with(b"PK") {
        xinyong_ingest::xlsx_row(&data, f.row).unwrap_or_default()
    } else {
        let line = data
            .split(|&b| b == b'\n')
            .nth((f.row - c.first_row) as usize)
            .unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match std::str::from_utf8(line) {
            Ok(s) => s.to_string(),
            Err(_) => xinyong_ingest::decode_gb18030(line),
        }
    };
    Ok((f, raw))
}
