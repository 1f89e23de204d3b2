//! Ingest: one delivered file (bytes) and its dataset definition in; validated records, quarantine
//! rows (reason, row, raw text) and file-level diagnostics out.
//!
//! Architecture invariant: no IO — the caller reads the file and stores the results. Parsing never
//! panics and never drops a row silently: every data row becomes a record, part of a rolled-up record,
//! or a quarantine row with a machine-readable reason.

mod values;

use chrono::{Datelike, NaiveDate};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use xinyong_domain::legacy::Resolver;
use xinyong_domain::Uscc;
use xinyong_registry::{ColType, Dataset, Encoding, Format, Replace, Shape};

pub use values::{parse_date, parse_number, parse_period, Period};

/// A validated record ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// The row (CSV/JSONL line, sheet row; 1 = header for CSV and xlsx) it came from; for a rolled-up
    /// record, the first of its rows.
    pub row: u64,
    /// How many source rows it stands for (1, or more when rolled up).
    pub n_rows: u64,
    pub uscc: Uscc,
    /// The replacement key within the source and dataset.
    pub key: String,
    /// The period it was true for (`2024-03`, `2024`), if periodic.
    pub period: Option<String>,
    pub date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
    /// Canonical fields (money in yuan, ratios as fractions, codes canonical, ids as USCCs).
    pub fields: Map<String, Value>,
    /// SHA-256 of the canonical content: a re-delivery with the same hash changes nothing.
    pub content_hash: String,
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub row: u64,
    /// Stable rule name: `id:<rule>`, `missing`, `date`, `number`, `code`, `duplicate`, `conflict`,
    /// `encoding`, `totals-row`, `json`, `shape`.
    pub reason: String,
    pub detail: String,
    pub raw: String,
}

/// Everything one file gave.
#[derive(Debug, Default)]
pub struct Parsed {
    pub records: Vec<Record>,
    pub quarantine: Vec<Quarantined>,
    /// File-level notes: detected encoding, ignored columns.
    pub diagnostics: Vec<String>,
    /// Data rows read (excluding the header).
    pub rows_read: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("missing-column: the export has no column {0:?}, which the dataset requires")]
    MissingColumn(String),
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// A raw row: its number, its cells as text (None = empty), and its raw text.
struct RawRow {
    row: u64,
    cells: Vec<Option<String>>,
    raw: String,
}

/// Decompresses gzip input (by its magic bytes); other input is returned as is.
pub fn maybe_gunzip(bytes: &[u8]) -> Result<std::borrow::Cow<'_, [u8]>, IngestError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| IngestError::Unreadable(format!("gzip: {e}")))?;
        Ok(std::borrow::Cow::Owned(out))
    } else {
        Ok(std::borrow::Cow::Borrowed(bytes))
    }
}

/// Parses one delivered file of `ds`. `bytes` may be gzip-compressed.
pub fn parse(ds: &Dataset, bytes: &[u8], resolver: &Resolver) -> Result<Parsed, IngestError> {
    let bytes = maybe_gunzip(bytes)?;
    let mut parsed = Parsed::default();
    let (header, rows) = match ds.format {
        Format::Csv => read_csv(ds, &bytes, &mut parsed)?,
        Format::Jsonl => read_jsonl(ds, &bytes, &mut parsed),
        Format::Xlsx => read_xlsx(ds, &bytes)?,
    };
    // Map the dataset's columns onto the export's header.
    let mut pos = Vec::with_capacity(ds.columns.len());
    for c in &ds.columns {
        let p = header
            .iter()
            .position(|h| h.trim().trim_start_matches('\u{feff}') == c.header);
        if p.is_none() && c.required {
            return Err(IngestError::MissingColumn(c.header.clone()));
        }
        pos.push(p);
    }
    for h in &header {
        if !ds
            .columns
            .iter()
            .any(|c| c.header == h.trim().trim_start_matches('\u{feff}'))
            && !h.is_empty()
        {
            parsed.diagnostics.push(format!("ignored-column: {h}"));
        }
    }
    let mut v = Validator {
        ds,
        resolver,
        seen: HashMap::new(),
        rollup: Rollup::default(),
        pos,
    };
    for r in rows {
        parsed.rows_read += 1;
        match v.row(&r) {
            Ok(Some(rec)) => parsed.records.push(rec),
            Ok(None) => {}
            Err((reason, detail)) => parsed.quarantine.push(Quarantined {
                row: r.row,
                reason,
                detail,
                raw: r.raw,
            }),
        }
    }
    parsed.records.extend(v.rollup.finish(ds));
    Ok(parsed)
}

fn decode(ds: &Dataset, b: &[u8], utf8_file: bool) -> Option<String> {
    if utf8_file || matches!(ds.encoding, Encoding::Utf8) {
        std::str::from_utf8(b).ok().map(str::to_string)
    } else {
        encoding_rs::GB18030
            .decode_without_bom_handling_and_without_replacement(b)
            .map(|c| c.into_owned())
    }
}

fn read_csv(ds: &Dataset, bytes: &[u8], parsed: &mut Parsed) -> Result<(Vec<String>, Vec<RawRow>), IngestError> {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    // A GB18030 export that is valid UTF-8 with non-ASCII text was written in UTF-8 (Chinese text in
    // GB18030 is practically never valid UTF-8): read it as UTF-8 and say so.
    let utf8_file = match ds.encoding {
        Encoding::Utf8 => true,
        Encoding::Gb18030 | Encoding::Auto => {
            let valid = std::str::from_utf8(bytes).is_ok();
            if valid && !bytes.is_ascii() && ds.encoding == Encoding::Gb18030 {
                parsed
                    .diagnostics
                    .push("encoding: declared gb18030, the file is utf-8; read as utf-8".into());
            }
            valid
        }
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let mut header: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    let mut starts: Vec<(u64, usize)> = Vec::new();
    loop {
        let start = rdr.position().byte() as usize;
        let line = rdr.position().line();
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                rows.push(RawRow {
                    row: line,
                    cells: vec![],
                    raw: format!("<unreadable csv: {e}>"),
                });
                continue;
            }
        }
        let end = rdr.position().byte() as usize;
        let raw_bytes = bytes.get(start..end).unwrap_or(&[]);
        let raw_bytes = raw_bytes.strip_suffix(b"\n").unwrap_or(raw_bytes);
        let raw_bytes = raw_bytes.strip_suffix(b"\r").unwrap_or(raw_bytes);
        let mut cells = Vec::with_capacity(rec.len());
        let mut bad = false;
        for f in rec.iter() {
            match decode(ds, f, utf8_file) {
                Some(s) => cells.push(if s.trim().is_empty() { None } else { Some(s) }),
                None => {
                    bad = true;
                    break;
                }
            }
        }
        let raw = decode(ds, raw_bytes, utf8_file).unwrap_or_else(|| String::from_utf8_lossy(raw_bytes).into_owned());
        if header.is_none() {
            header = Some(cells.into_iter().map(|c| c.unwrap_or_default()).collect());
            continue;
        }
        starts.push((line, start));
        if bad {
            rows.push(RawRow {
                row: line,
                cells: vec![Some("\u{0}encoding".into())],
                raw,
            });
        } else {
            rows.push(RawRow { row: line, cells, raw });
        }
    }
    Ok((header.unwrap_or_default(), rows))
}

fn read_jsonl(ds: &Dataset, bytes: &[u8], _parsed: &mut Parsed) -> (Vec<String>, Vec<RawRow>) {
    let header: Vec<String> = ds.columns.iter().map(|c| c.header.clone()).collect();
    let mut rows = Vec::new();
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let row = i as u64 + 1;
        let raw = String::from_utf8_lossy(line).into_owned();
        let Ok(text) = std::str::from_utf8(line) else {
            rows.push(RawRow {
                row,
                cells: vec![Some("\u{0}encoding".into())],
                raw,
            });
            continue;
        };
        match serde_json::from_str::<Map<String, Value>>(text) {
            Ok(obj) => {
                let cells = header
                    .iter()
                    .map(|h| match obj.get(h) {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) if s.trim().is_empty() => None,
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(v) => Some(v.to_string()),
                    })
                    .collect();
                rows.push(RawRow { row, cells, raw });
            }
            Err(e) => rows.push(RawRow {
                row,
                cells: vec![Some(format!("\u{0}json {e}"))],
                raw,
            }),
        }
    }
    (header, rows)
}

fn read_xlsx(ds: &Dataset, bytes: &[u8]) -> Result<(Vec<String>, Vec<RawRow>), IngestError> {
    use calamine::{Data, Reader};
    let mut wb =
        calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(|e| IngestError::Unreadable(format!("xlsx: {e}")))?;
    let name = match &ds.sheet {
        Some(s) => s.clone(),
        None => wb
            .sheet_names()
            .first()
            .cloned()
            .ok_or_else(|| IngestError::Unreadable("xlsx: no sheet".into()))?,
    };
    let range = wb
        .worksheet_range(&name)
        .map_err(|e| IngestError::Unreadable(format!("xlsx sheet {name}: {e}")))?;
    let cell = |d: &Data| -> Option<String> {
        match d {
            Data::Empty => None,
            Data::String(s) if s.trim().is_empty() => None,
            Data::String(s) => Some(s.clone()),
            Data::Float(f) => Some(if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else {
                f.to_string()
            }),
            Data::Int(i) => Some(i.to_string()),
            Data::Bool(b) => Some(b.to_string()),
            Data::DateTime(dt) => Some(format!("{}", dt.as_f64())),
            Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
            Data::Error(e) => Some(format!("#ERR {e:?}")),
        }
    };
    let first_row = range.start().map(|(r, _)| r as u64).unwrap_or(0);
    let mut it = range.rows();
    let header: Vec<String> = it
        .next()
        .map(|r| r.iter().map(|d| cell(d).unwrap_or_default()).collect())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (k, r) in it.enumerate() {
        let cells: Vec<Option<String>> = r.iter().map(cell).collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let raw = cells
            .iter()
            .map(|c| c.clone().unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\t");
        rows.push(RawRow {
            row: first_row + k as u64 + 2,
            cells,
            raw,
        });
    }
    Ok((header, rows))
}

type Reject = (String, String);

struct Validator<'a> {
    ds: &'a Dataset,
    resolver: &'a Resolver,
    /// Key hash → (row, content hash) of rows already taken from this file.
    seen: HashMap<u64, (u64, u64)>,
    rollup: Rollup,
    pos: Vec<Option<usize>>,
}

fn h64(s: &str) -> u64 {
    let d = Sha256::digest(s.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

impl Validator<'_> {
    fn row(&mut self, r: &RawRow) -> Result<Option<Record>, Reject> {
        let ds = self.ds;
        if let Some(Some(first)) = r.cells.first() {
            if let Some(rest) = first.strip_prefix('\u{0}') {
                let (reason, detail) = rest.split_once(' ').unwrap_or((rest, ""));
                let detail = if reason == "encoding" {
                    format!("not valid {:?}", ds.encoding)
                } else {
                    detail.to_string()
                };
                return Err((reason.to_string(), detail));
            }
        }
        let first_cell = r.cells.iter().flatten().next().map(|s| s.trim()).unwrap_or("");
        if ds.totals_markers.iter().any(|m| first_cell.starts_with(m.as_str())) {
            return Err(("totals-row".into(), format!("a totals row ({first_cell})")));
        }
        if r.cells.iter().all(Option::is_none) {
            return Err(("shape".into(), "an empty row".into()));
        }
        let mut fields = Map::new();
        let mut uscc: Option<Uscc> = None;
        for (c, p) in ds.columns.iter().zip(&self.pos) {
            let raw = p.and_then(|p| r.cells.get(p).cloned().flatten());
            let Some(raw) = raw else {
                if c.required {
                    return Err(("missing".into(), format!("{} is empty", c.header)));
                }
                continue;
            };
            let text = raw.trim();
            let v = match c.ty {
                ColType::Id => {
                    let u = self
                        .resolver
                        .resolve(text)
                        .map_err(|e| (format!("id:{}", e.rule()), format!("{}: {text}: {e}", c.header)))?;
                    if c.field == "id" {
                        uscc = Some(u);
                    }
                    Value::String(u.to_string())
                }
                ColType::Text => Value::String(text.to_string()),
                ColType::Date => {
                    let d = parse_date(text)
                        .ok_or_else(|| ("date".to_string(), format!("{}: {text:?} is not a date", c.header)))?;
                    Value::String(d.to_string())
                }
                ColType::Period => {
                    let p = parse_period(text, ds.period.as_deref())
                        .ok_or_else(|| ("period".to_string(), format!("{}: {text:?} is not a period", c.header)))?;
                    Value::String(p.to_string())
                }
                ColType::Money | ColType::Number | ColType::Integer | ColType::Ratio => {
                    let mut x = parse_number(text)
                        .ok_or_else(|| ("number".to_string(), format!("{}: {text:?} is not a number", c.header)))?;
                    match (c.ty, c.unit.as_deref()) {
                        (ColType::Money, Some("万元")) => x = (x * 10_000.0 * 100.0).round() / 100.0,
                        (ColType::Ratio, Some("%")) => x /= 100.0,
                        (ColType::Integer, _) if x.fract() != 0.0 => {
                            return Err(("number".into(), format!("{}: {text:?} is not a whole number", c.header)))
                        }
                        _ => {}
                    }
                    serde_json::Number::from_f64(x)
                        .map(Value::Number)
                        .ok_or_else(|| ("number".to_string(), format!("{}: {text:?} is not finite", c.header)))?
                }
                ColType::Code => {
                    let key = xinyong_domain::normalize::fold_width(text);
                    let canon = c.codes.get(key.as_str()).ok_or_else(|| {
                        (
                            "code".to_string(),
                            format!("{}: {text:?} is not in the code list", c.header),
                        )
                    })?;
                    Value::String(canon.clone())
                }
            };
            fields.insert(c.field.clone(), v);
        }
        let Some(uscc) = uscc else {
            return Err(("missing".into(), "no enterprise id".into()));
        };
        if let Some(cat) = &ds.category {
            fields.entry("category").or_insert_with(|| Value::String(cat.clone()));
        }
        let s = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_string);
        let date = s("date")
            .or_else(|| s("start"))
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        let end_date = s("end_date")
            .or_else(|| s("end"))
            .or_else(|| s("dereg_date"))
            .and_then(|d| NaiveDate::parse_from_str(&d, "%Y-%m-%d").ok());
        // Rolled-up datasets: the row joins its firm's month.
        if ds.rollup.is_some() {
            let Some(d) = date else {
                return Err(("missing".into(), "no date to roll up by".into()));
            };
            let line_key = format!("{uscc}|{d}|{}", s("category").unwrap_or_default());
            let content = h64(&Value::Object(fields.clone()).to_string());
            if let Some(reject) = self.dup(&line_key, content, r.row) {
                return Err(reject);
            }
            self.rollup.add(uscc, d, &fields, r.row);
            return Ok(None);
        }
        let period = s("period");
        let key = match ds.replace {
            Replace::Event => match (s("record_id"), s("contract_id")) {
                (Some(id), _) | (None, Some(id)) => id,
                _ => return Err(("missing".into(), "no record id".into())),
            },
            Replace::Snapshot => {
                let mut k = format!("{uscc}|{}", period.clone().unwrap_or_default());
                for extra in &ds.key {
                    k.push('|');
                    k.push_str(&s(extra).unwrap_or_default());
                }
                k
            }
        };
        let content_json = Value::Object(fields.clone()).to_string();
        let content_hash = hex::encode(Sha256::digest(content_json.as_bytes()));
        if let Some(reject) = self.dup(&key, h64(&content_json), r.row) {
            return Err(reject);
        }
        Ok(Some(Record {
            row: r.row,
            n_rows: 1,
            uscc,
            key,
            period,
            date,
            end_date,
            fields,
            content_hash,
        }))
    }

    fn dup(&mut self, key: &str, content: u64, row: u64) -> Option<Reject> {
        match self.seen.get(&h64(key)) {
            Some(&(first, c)) if c == content => Some(("duplicate".into(), format!("the same record as row {first}"))),
            Some(&(first, _)) => Some((
                "conflict".into(),
                format!("key {key} already delivered at row {first} with other content"),
            )),
            None => {
                self.seen.insert(h64(key), (row, content));
                None
            }
        }
    }
}

type MonthKey = (Uscc, i32, u32);
/// First row, row count and summed fields of one firm's month.
type Group = (u64, u64, Map<String, Value>);

/// Monthly roll-up of fine-grained rows (daily meter readings, invoices).
#[derive(Default)]
struct Rollup {
    groups: HashMap<MonthKey, Group>,
    order: Vec<(Uscc, i32, u32)>,
    seen_keys: HashSet<()>,
}

impl Rollup {
    fn add(&mut self, uscc: Uscc, d: NaiveDate, fields: &Map<String, Value>, row: u64) {
        let k = (uscc, d.year(), d.month());
        let e = self.groups.entry(k).or_insert_with(|| {
            self.order.push(k);
            (row, 0, Map::new())
        });
        e.1 += 1;
        for (name, v) in fields {
            if let (Some(m), Some(x)) = (name.strip_prefix("metric:"), v.as_f64()) {
                let cur = e.2.get(name).and_then(Value::as_f64).unwrap_or(0.0);
                let _ = m;
                if let Some(n) = serde_json::Number::from_f64(((cur + x) * 100.0).round() / 100.0) {
                    e.2.insert(name.clone(), Value::Number(n));
                }
            }
        }
    }

    fn finish(self, ds: &Dataset) -> Vec<Record> {
        let _ = &self.seen_keys;
        let mut out = Vec::with_capacity(self.order.len());
        for k in self.order {
            let Some((row, n, mut fields)) = self.groups.get(&k).cloned() else {
                continue;
            };
            let period = format!("{}-{:02}", k.1, k.2);
            fields.insert("id".into(), Value::String(k.0.to_string()));
            fields.insert("period".into(), Value::String(period.clone()));
            fields.insert("rows".into(), Value::from(n));
            let content_hash = hex::encode(Sha256::digest(Value::Object(fields.clone()).to_string().as_bytes()));
            let _ = ds;
            out.push(Record {
                row,
                n_rows: n,
                uscc: k.0,
                key: format!("{}|{period}", k.0),
                period: Some(period),
                date: None,
                end_date: None,
                fields,
                content_hash,
            });
        }
        out
    }
}

/// Whether a dataset's rows describe firms' registration (used to build the identifier crosswalk).
pub fn is_register(ds: &Dataset) -> bool {
    ds.shape == Shape::Registration
}

/// The canonical fields of a record.
pub type Fields = Map<String, Value>;

/// Canonical fields as compact JSON text (key order is the map's, which is sorted).
pub fn fields_json(m: &Fields) -> String {
    Value::Object(m.clone()).to_string()
}

/// Decodes GB18030 bytes (with replacement characters for malformed input), for showing raw rows.
pub fn decode_gb18030(b: &[u8]) -> String {
    encoding_rs::GB18030.decode(b).0.into_owned()
}

/// The raw text of one row of an xlsx file (cells joined by tabs), as ingest saw it.
pub fn xlsx_row(bytes: &[u8], row: u64) -> Option<String> {
    use calamine::{Data, Reader};
    let mut wb = calamine::Xlsx::new(std::io::Cursor::new(bytes)).ok()?;
    let name = wb.sheet_names().first().cloned()?;
    let range = wb.worksheet_range(&name).ok()?;
    let first = range.start().map(|(r, _)| r as u64).unwrap_or(0);
    let r = range.rows().nth(row.checked_sub(first + 1)? as usize)?;
    Some(
        r.iter()
            .map(|d| match d {
                Data::Empty => String::new(),
                Data::Float(f) if f.fract() == 0.0 => format!("{}", *f as i64),
                other => other.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\t"),
    )
}
