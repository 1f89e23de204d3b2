//! Backup files of a store: its export ([`Store::export`], one consistent snapshot) as gzip-compressed JSON
//! lines.
//!
//! Format (version 1): the first line is a header object
//! `{"format":"xinyong-backup","version":1,"created_at":…,"counts":{TABLE:ROWS,…},"content_hash":…}`; then one
//! record per line, a JSON array of the table name and the row's columns in a fixed order (see [`encode`]):
//! text as strings, absent values as `null`, integers as numbers, reals as strings (Rust's shortest
//! round-trip form, so they come back bit for bit), bytes (archive chunks) as hex. The last record is
//! `["content_hash", H]`, the content hash of the exported snapshot. The header is a gzip member of its own in
//! front of the records' members (written after them, when the counts are known); any gzip reader reads
//! the file as one stream.
//!
//! Reading checks the header, and at the end the number of records of every table against the header's
//! counts; an import of what is read then checks the imported content against the content hash.

use crate::{AppError, Result};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use xinyong_store::*;

pub const FORMAT: &str = "xinyong-backup";
pub const VERSION: u64 = 1;

/// A backup file's header.
#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    pub created_at: String,
    /// Rows per table (and `content_hash`: 1).
    pub counts: BTreeMap<String, u64>,
    /// The content hash of the snapshot the file holds.
    pub content_hash: String,
}

impl Header {
    /// The number of table rows (records other than the content hash).
    pub fn rows(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(t, _)| t.as_str() != "content_hash")
            .map(|(_, n)| n)
            .sum()
    }
}

fn bad(what: impl std::fmt::Display) -> AppError {
    AppError::Other(format!("backup: {what}"))
}

fn to_store(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("backup: {e}"))
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Writes the export of `store` to `path` (replacing it only once complete). Returns the header written.
pub fn write(store: &dyn Store, path: &Path, created_at: &str) -> Result<Header> {
    let body_path = with_suffix(path, ".body.partial");
    let out_path = with_suffix(path, ".partial");
    let result = (|| {
        let f = std::fs::File::create(&body_path).map_err(crate::io(&body_path))?;
        let mut gz = GzEncoder::new(BufWriter::new(f), flate2::Compression::default());
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let mut hash = None;
        store.export(&mut |r| {
            *counts.entry(r.table().to_string()).or_default() += 1;
            if let Record::ContentHash(h) = &r {
                hash = Some(h.clone());
            }
            serde_json::to_writer(&mut gz, &encode(&r)).map_err(to_store)?;
            gz.write_all(b"\n").map_err(to_store)
        })?;
        let body = gz.finish().map_err(crate::io(&body_path))?;
        body.into_inner()
            .map_err(|e| bad(e.error()))?
            .sync_all()
            .map_err(crate::io(&body_path))?;
        let header = Header {
            created_at: created_at.to_string(),
            counts,
            content_hash: hash.ok_or_else(|| bad("the export ended without its content hash"))?,
        };
        let mut out = std::fs::File::create(&out_path).map_err(crate::io(&out_path))?;
        let mut gz = GzEncoder::new(&mut out, flate2::Compression::default());
        let line = json!({
            "format": FORMAT,
            "version": VERSION,
            "created_at": header.created_at,
            "counts": header.counts,
            "content_hash": header.content_hash,
        });
        serde_json::to_writer(&mut gz, &line).map_err(bad)?;
        gz.write_all(b"\n").map_err(crate::io(&out_path))?;
        gz.finish().map_err(crate::io(&out_path))?;
        let mut body = std::fs::File::open(&body_path).map_err(crate::io(&body_path))?;
        std::io::copy(&mut body, &mut out).map_err(crate::io(&out_path))?;
        out.sync_all().map_err(crate::io(&out_path))?;
        std::fs::rename(&out_path, path).map_err(crate::io(path))?;
        Ok(header)
    })();
    let _ = std::fs::remove_file(&body_path);
    if result.is_err() {
        let _ = std::fs::remove_file(&out_path);
    }
    result
}

/// Reads a backup file: its header, then its records one at a time.
pub struct Reader {
    header: Header,
    lines: std::io::Lines<BufReader<MultiGzDecoder<std::fs::File>>>,
    seen: BTreeMap<String, u64>,
    line: u64,
    done: bool,
}

/// Opens a backup file and reads its header.
pub fn read(path: &Path) -> Result<Reader> {
    let f = std::fs::File::open(path).map_err(crate::io(path))?;
    let mut lines = BufReader::new(MultiGzDecoder::new(f)).lines();
    let first = lines
        .next()
        .ok_or_else(|| bad(format!("{}: empty file", path.display())))?
        .map_err(crate::io(path))?;
    let h: Value = serde_json::from_str(&first).map_err(|e| bad(format!("{}: header: {e}", path.display())))?;
    if h["format"] != FORMAT {
        return Err(bad(format!("{}: not a xinyong backup file", path.display())));
    }
    if h["version"] != VERSION {
        return Err(bad(format!(
            "{}: format version {} (this build reads {VERSION})",
            path.display(),
            h["version"]
        )));
    }
    let counts = h["counts"]
        .as_object()
        .ok_or_else(|| bad("header without counts"))?
        .iter()
        .map(|(k, v)| {
            Ok((
                k.clone(),
                v.as_u64().ok_or_else(|| bad("header: a count is not a number"))?,
            ))
        })
        .collect::<Result<_>>()?;
    let header = Header {
        created_at: h["created_at"].as_str().unwrap_or_default().to_string(),
        counts,
        content_hash: h["content_hash"]
            .as_str()
            .ok_or_else(|| bad("header without content hash"))?
            .to_string(),
    };
    Ok(Reader {
        header,
        lines,
        seen: BTreeMap::new(),
        line: 1,
        done: false,
    })
}

impl Reader {
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next record; at the end of the file, checks the records read against the header's counts.
    pub fn next_record(&mut self) -> Result<Option<Record>> {
        if self.done {
            return Ok(None);
        }
        let Some(line) = self.lines.next() else {
            self.done = true;
            if self.seen != self.header.counts {
                return Err(bad(format!(
                    "the file is incomplete or damaged: it holds {:?}, its header says {:?}",
                    self.seen, self.header.counts
                )));
            }
            return Ok(None);
        };
        self.line += 1;
        let line = line.map_err(|e| bad(format!("line {}: {e}", self.line)))?;
        let v: Value = serde_json::from_str(&line).map_err(|e| bad(format!("line {}: {e}", self.line)))?;
        let r = decode(v).map_err(|e| bad(format!("line {}: {e}", self.line)))?;
        if let Record::ContentHash(h) = &r {
            if *h != self.header.content_hash {
                return Err(bad("the content hash in the file differs from its header's"));
            }
        }
        *self.seen.entry(r.table().to_string()).or_default() += 1;
        Ok(Some(r))
    }
}

fn s(v: &str) -> Value {
    Value::String(v.to_string())
}

fn o(v: &Option<String>) -> Value {
    v.as_deref().map_or(Value::Null, s)
}

fn f(v: f64) -> Value {
    Value::String(format!("{v:?}"))
}

/// A record as a JSON array: the table, then the columns.
pub fn encode(r: &Record) -> Value {
    let mut a = vec![s(r.table())];
    match r {
        Record::Batch {
            meta: m,
            counts: k,
            diagnostics,
        } => a.extend([
            s(&m.batch_id),
            s(&m.source),
            s(&m.dataset),
            s(&m.file_name),
            s(&m.delivered_on),
            s(&m.ingested_at),
            json!(k.rows_read),
            json!(k.inserted),
            json!(k.replaced),
            json!(k.unchanged),
            json!(k.retired),
            json!(k.quarantined),
            s(diagnostics),
        ]),
        Record::Chunk { batch_id, chunk } => a.extend([
            s(batch_id),
            json!(chunk.chunk),
            json!(chunk.first_row),
            Value::String(hex::encode(&chunk.data)),
        ]),
        Record::Fact(x) => a.extend([
            json!(x.fact_id),
            s(&x.uscc),
            s(&x.source),
            s(&x.dataset),
            s(&x.key),
            o(&x.period),
            o(&x.event_date),
            o(&x.end_date),
            s(&x.fields),
            s(&x.content_hash),
            s(&x.batch_id),
            json!(x.row),
            json!(x.n_rows),
            s(&x.known_from),
            o(&x.known_to),
            s(&x.ingested_at),
            json!(x.superseded_by),
        ]),
        Record::Quarantine { id, row: q } => a.extend([
            json!(id),
            s(&q.batch_id),
            s(&q.source),
            s(&q.dataset),
            json!(q.row),
            s(&q.reason),
            s(&q.detail),
            s(&q.raw),
        ]),
        Record::Model {
            version,
            created_at,
            json,
        } => a.extend([s(version), s(created_at), s(json)]),
        Record::Run {
            run_id,
            as_of,
            model_version,
            created_at,
            firms,
            benchmarks,
        } => a.extend([
            s(run_id),
            s(as_of),
            s(model_version),
            s(created_at),
            json!(firms),
            s(benchmarks),
        ]),
        Record::Score { run_id, row: x } => a.extend([
            s(run_id),
            s(&x.uscc),
            f(x.score),
            f(x.pd),
            s(&x.grade),
            s(&x.grade_unadjusted),
            o(&x.colour),
            s(&x.detail),
        ]),
        Record::Warning { run_id, row: w } => a.extend([
            s(run_id),
            s(&w.uscc),
            json!(w.rule),
            s(&w.colour),
            o(&w.since),
            o(&w.clears_on),
            s(&w.evidence),
        ]),
        Record::Span {
            run_id,
            uscc,
            rule,
            colour,
            start,
            end,
        } => a.extend([s(run_id), s(uscc), json!(rule), s(colour), s(start), o(end)]),
        Record::Event { row: e, first_run } => a.extend([
            s(&e.id),
            s(&e.uscc),
            s(&e.date),
            s(&e.kind),
            json!(e.rule),
            s(&e.before),
            s(&e.after),
            s(first_run),
        ]),
        Record::FirmMonth {
            run_id,
            uscc,
            month,
            pd,
            score,
            grade,
            colour,
        } => a.extend([s(run_id), s(uscc), s(month), f(*pd), f(*score), s(grade), o(colour)]),
        Record::Index {
            run_id,
            month,
            dimension,
            member,
            value,
            detail,
        } => a.extend([s(run_id), s(month), s(dimension), s(member), f(*value), s(detail)]),
        Record::Mover {
            run_id,
            month,
            dimension,
            member,
            uscc,
            delta,
        } => a.extend([s(run_id), s(month), s(dimension), s(member), s(uscc), f(*delta)]),
        Record::Circle {
            run_id,
            group_id,
            firms,
            in_circles,
            total_amount,
            detail,
        } => a.extend([
            s(run_id),
            s(group_id),
            json!(firms),
            json!(in_circles),
            f(*total_amount),
            s(detail),
        ]),
        Record::Row { row, .. } => a.extend(row.iter().map(|v| match v {
            rows::Value::Null => Value::Null,
            rows::Value::Int(i) => json!(i),
            rows::Value::Real(x) => f(*x),
            rows::Value::Text(t) => s(t),
            rows::Value::Bytes(b) => s(&hex::encode(b)),
        })),
        Record::ContentHash(h) => a.push(s(h)),
    }
    Value::Array(a)
}

/// The columns of a record being decoded, in order.
struct Cols(std::vec::IntoIter<Value>);

impl Cols {
    fn v(&mut self) -> std::result::Result<Value, String> {
        self.0.next().ok_or_else(|| "too few columns".to_string())
    }
    fn s(&mut self) -> std::result::Result<String, String> {
        match self.v()? {
            Value::String(s) => Ok(s),
            v => Err(format!("expected text, found {v}")),
        }
    }
    fn o(&mut self) -> std::result::Result<Option<String>, String> {
        match self.v()? {
            Value::Null => Ok(None),
            Value::String(s) => Ok(Some(s)),
            v => Err(format!("expected text or null, found {v}")),
        }
    }
    fn i(&mut self) -> std::result::Result<i64, String> {
        let v = self.v()?;
        v.as_i64().ok_or_else(|| format!("expected an integer, found {v}"))
    }
    fn oi(&mut self) -> std::result::Result<Option<i64>, String> {
        match self.v()? {
            Value::Null => Ok(None),
            v => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| format!("expected an integer, found {v}")),
        }
    }
    fn u(&mut self) -> std::result::Result<u64, String> {
        let v = self.v()?;
        v.as_u64().ok_or_else(|| format!("expected a count, found {v}"))
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        let v = self.u()?;
        u32::try_from(v).map_err(|_| format!("{v} out of range"))
    }
    fn f(&mut self) -> std::result::Result<f64, String> {
        let t = self.s()?;
        t.parse().map_err(|_| format!("expected a number, found {t:?}"))
    }
    fn b(&mut self) -> std::result::Result<Vec<u8>, String> {
        hex::decode(self.s()?).map_err(|e| format!("bytes: {e}"))
    }
}

/// A record from its JSON array (see [`encode`]).
pub fn decode(v: Value) -> std::result::Result<Record, String> {
    let Value::Array(a) = v else {
        return Err("a record is not an array".into());
    };
    let n = a.len();
    let mut c = Cols(a.into_iter());
    let table = c.s()?;
    let r = match table.as_str() {
        "batches" => Record::Batch {
            meta: BatchMeta {
                batch_id: c.s()?,
                source: c.s()?,
                dataset: c.s()?,
                file_name: c.s()?,
                delivered_on: c.s()?,
                ingested_at: c.s()?,
            },
            counts: BatchCounts {
                rows_read: c.u()?,
                inserted: c.u()?,
                replaced: c.u()?,
                unchanged: c.u()?,
                retired: c.u()?,
                quarantined: c.u()?,
            },
            diagnostics: c.s()?,
        },
        "archive_chunks" => Record::Chunk {
            batch_id: c.s()?,
            chunk: ArchiveChunk {
                chunk: c.u32()?,
                first_row: c.u()?,
                data: c.b()?,
            },
        },
        "facts" => Record::Fact(FactRecord {
            fact_id: c.i()?,
            uscc: c.s()?,
            source: c.s()?,
            dataset: c.s()?,
            key: c.s()?,
            period: c.o()?,
            event_date: c.o()?,
            end_date: c.o()?,
            fields: c.s()?,
            content_hash: c.s()?,
            batch_id: c.s()?,
            row: c.u()?,
            n_rows: c.u()?,
            known_from: c.s()?,
            known_to: c.o()?,
            ingested_at: c.s()?,
            superseded_by: c.oi()?,
        }),
        "quarantine" => Record::Quarantine {
            id: c.i()?,
            row: StoredQuarantine {
                batch_id: c.s()?,
                source: c.s()?,
                dataset: c.s()?,
                row: c.u()?,
                reason: c.s()?,
                detail: c.s()?,
                raw: c.s()?,
            },
        },
        "models" => Record::Model {
            version: c.s()?,
            created_at: c.s()?,
            json: c.s()?,
        },
        "score_runs" => Record::Run {
            run_id: c.s()?,
            as_of: c.s()?,
            model_version: c.s()?,
            created_at: c.s()?,
            firms: c.u()?,
            benchmarks: c.s()?,
        },
        "scores" => Record::Score {
            run_id: c.s()?,
            row: ScoreRow {
                uscc: c.s()?,
                score: c.f()?,
                pd: c.f()?,
                grade: c.s()?,
                grade_unadjusted: c.s()?,
                colour: c.o()?,
                detail: c.s()?,
            },
        },
        "warnings" => Record::Warning {
            run_id: c.s()?,
            row: WarningRow {
                uscc: c.s()?,
                rule: c.u32()?,
                colour: c.s()?,
                since: c.o()?,
                clears_on: c.o()?,
                evidence: c.s()?,
            },
        },
        "warning_spans" => Record::Span {
            run_id: c.s()?,
            uscc: c.s()?,
            rule: c.u32()?,
            colour: c.s()?,
            start: c.s()?,
            end: c.o()?,
        },
        "credit_events" => Record::Event {
            row: EventRow {
                id: c.s()?,
                uscc: c.s()?,
                date: c.s()?,
                kind: c.s()?,
                rule: c
                    .oi()?
                    .map(|v| u32::try_from(v).map_err(|_| format!("rule {v} out of range")))
                    .transpose()?,
                before: c.s()?,
                after: c.s()?,
            },
            first_run: c.s()?,
        },
        "firm_months" => Record::FirmMonth {
            run_id: c.s()?,
            uscc: c.s()?,
            month: c.s()?,
            pd: c.f()?,
            score: c.f()?,
            grade: c.s()?,
            colour: c.o()?,
        },
        "risk_index" => Record::Index {
            run_id: c.s()?,
            month: c.s()?,
            dimension: c.s()?,
            member: c.s()?,
            value: c.f()?,
            detail: c.s()?,
        },
        "index_movers" => Record::Mover {
            run_id: c.s()?,
            month: c.s()?,
            dimension: c.s()?,
            member: c.s()?,
            uscc: c.s()?,
            delta: c.f()?,
        },
        "circles" => Record::Circle {
            run_id: c.s()?,
            group_id: c.s()?,
            firms: c.u()?,
            in_circles: c.u()?,
            total_amount: c.f()?,
            detail: c.s()?,
        },
        "content_hash" => Record::ContentHash(c.s()?),
        t => match rows::spec(t) {
            Ok(spec) => {
                let mut row = Vec::with_capacity(spec.columns.len());
                for col in spec.columns {
                    let v = c.v()?;
                    row.push(match (v, col.ty) {
                        (Value::Null, _) if col.nullable => rows::Value::Null,
                        (v @ Value::Number(_), rows::SqlType::Int) => {
                            rows::Value::Int(v.as_i64().ok_or_else(|| format!("{t}.{}: {v}", col.name))?)
                        }
                        (Value::String(x), rows::SqlType::Real) => {
                            rows::Value::Real(x.parse().map_err(|_| format!("{t}.{}: not a number {x:?}", col.name))?)
                        }
                        (Value::String(x), rows::SqlType::Text) => rows::Value::Text(x),
                        (Value::String(x), rows::SqlType::Bytes) => {
                            rows::Value::Bytes(hex::decode(x).map_err(|e| format!("{t}.{}: {e}", col.name))?)
                        }
                        (v, ty) => return Err(format!("{t}.{}: expected {ty:?}, found {v}", col.name)),
                    });
                }
                Record::Row { table: spec.name, row }
            }
            Err(_) => return Err(format!("unknown table {t:?}")),
        },
    };
    if c.0.next().is_some() {
        return Err(format!("{table}: too many columns ({n})"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reals_text_and_bytes_come_back_exactly() {
        let recs = [
            Record::Chunk {
                batch_id: "b".into(),
                chunk: ArchiveChunk {
                    chunk: 3,
                    first_row: 7,
                    data: vec![0, 1, 255],
                },
            },
            Record::Mover {
                run_id: "r".into(),
                month: "2025-01".into(),
                dimension: "d".into(),
                member: "m\0中\"".into(),
                uscc: "u".into(),
                delta: 0.1 + 0.2,
            },
            Record::Index {
                run_id: "r".into(),
                month: "m".into(),
                dimension: "d".into(),
                member: "x".into(),
                value: 1e-300,
                detail: "{}".into(),
            },
            Record::Fact(FactRecord {
                fact_id: i64::MAX,
                uscc: "u".into(),
                source: "s".into(),
                dataset: "d".into(),
                key: "k".into(),
                period: None,
                event_date: Some("2025-01-01".into()),
                end_date: None,
                fields: "{\"a\":\"\\u0000\"}".into(),
                content_hash: "h".into(),
                batch_id: "b".into(),
                row: u64::MAX,
                n_rows: 1,
                known_from: "2025-01-01".into(),
                known_to: None,
                ingested_at: "t".into(),
                superseded_by: Some(4),
            }),
        ];
        for r in recs {
            let line = serde_json::to_string(&encode(&r)).unwrap();
            assert_eq!(decode(serde_json::from_str(&line).unwrap()).unwrap(), r, "{line}");
        }
    }
}
