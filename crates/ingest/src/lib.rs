//! Ingest: one delivered file (bytes) and its dataset definition in; validated records, quarantine
//! rows (reason, row, raw text) and file-level diagnostics out.
//!
//! Architecture invariant: no IO — the caller reads the file and stores the results. Parsing never
//! panics and never drops a row silently: every data row becomes a record, part of a rolled-up record,
//! or a quarantine row with a machine-readable reason.

mod values;

use chrono::{Datelike, NaiveDate};
use rustc_hash::{FxHashMap, FxHasher};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
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
    /// Canonical fields as a JSON object (money in yuan, ratios as fractions, codes canonical, ids as
    /// USCCs), in the dataset's column order.
    pub fields: String,
    /// SHA-256 of `fields`: a re-delivery with the same hash changes nothing.
    pub content_hash: String,
    /// The registration number, for register datasets (it feeds the identifier crosswalk).
    pub reg_no: Option<String>,
}

impl Record {
    /// The canonical fields parsed back into a JSON map.
    pub fn fields_map(&self) -> Map<String, Value> {
        serde_json::from_str(&self.fields).unwrap_or_default()
    }
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantined {
    pub row: u64,
    /// Stable rule name: `id:<rule>`, `missing`, `date`, `period`, `number`, `code`, `duplicate`,
    /// `conflict`, `encoding`, `totals-row`, `json`, `shape`.
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
    /// For xlsx: the sheet as text, one line per sheet row from row 1 (cells joined by tabs), so that
    /// a row can be shown again without re-reading the workbook.
    pub sheet_text: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("missing-column: the export has no column {0:?}, which the dataset requires")]
    MissingColumn(String),
    #[error("unreadable: {0}")]
    Unreadable(String),
}

/// Decompresses gzip input (by its magic bytes); other input is returned as is.
pub fn maybe_gunzip(bytes: &[u8]) -> Result<Cow<'_, [u8]>, IngestError> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| IngestError::Unreadable(format!("gzip: {e}")))?;
        Ok(Cow::Owned(out))
    } else {
        Ok(Cow::Borrowed(bytes))
    }
}

/// A row-level problem found by a reader before validation.
enum Broken {
    Encoding,
    Json(String),
    Csv(String),
}

/// Parses one delivered file of `ds`. `bytes` may be gzip-compressed. Rows are validated as they are
/// read (streaming): memory holds the file, the accepted records and the roll-up groups only.
pub fn parse(ds: &Dataset, bytes: &[u8], resolver: &Resolver) -> Result<Parsed, IngestError> {
    let bytes = maybe_gunzip(bytes)?;
    let mut parsed = Parsed::default();
    let mut v = Validator::new(ds, resolver);
    match ds.format {
        Format::Csv => read_csv(ds, &bytes, &mut parsed, &mut v)?,
        Format::Jsonl => read_jsonl(ds, &bytes, &mut parsed, &mut v)?,
        Format::Xlsx => read_xlsx(ds, &bytes, &mut parsed, &mut v)?,
    }
    parsed.records.extend(v.rollup.finish(ds));
    Ok(parsed)
}

/// Feeds one row to the validator and files the outcome.
fn take(
    parsed: &mut Parsed,
    v: &mut Validator<'_>,
    row: u64,
    cells: Result<&[Option<Cow<'_, str>>], Broken>,
    raw: &dyn Fn() -> String,
) {
    parsed.rows_read += 1;
    let out = match cells {
        Ok(c) => v.row(row, c),
        Err(Broken::Encoding) => Err((
            "encoding".into(),
            format!("not valid {:?}, or in another encoding", v.ds.encoding),
        )),
        Err(Broken::Json(e)) => Err(("json".into(), e)),
        Err(Broken::Csv(e)) => Err(("shape".into(), e)),
    };
    match out {
        Ok(Some(rec)) => parsed.records.push(rec),
        Ok(None) => {}
        Err((reason, detail)) => parsed.quarantine.push(Quarantined {
            row,
            reason,
            detail,
            raw: raw(),
        }),
    }
}

fn decode<'a>(ds: &Dataset, b: &'a [u8], utf8_file: bool) -> Option<Cow<'a, str>> {
    if utf8_file || matches!(ds.encoding, Encoding::Utf8) {
        std::str::from_utf8(b).ok().map(Cow::Borrowed)
    } else {
        encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(b)
    }
}

fn nonempty(c: Cow<'_, str>) -> Option<Cow<'_, str>> {
    if c.trim().is_empty() {
        None
    } else {
        Some(c)
    }
}

fn read_csv(ds: &Dataset, bytes: &[u8], parsed: &mut Parsed, v: &mut Validator<'_>) -> Result<(), IngestError> {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    // A GB18030 export that is valid UTF-8 with non-ASCII text was written in UTF-8 (Chinese text in
    // GB18030 is practically never valid UTF-8): read it as UTF-8 and say so.
    let utf8_file = match ds.encoding {
        Encoding::Utf8 => true,
        Encoding::Gb18030 | Encoding::Auto => {
            // By the header (always Chinese, and never a mis-encoded row), else by majority of the
            // lines with non-ASCII text, so that mis-encoded rows cannot flip the whole file.
            let (mut utf8, mut other) = (0u64, 0u64);
            let header = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
            if !header.is_ascii() {
                if std::str::from_utf8(header).is_ok() {
                    utf8 = 1;
                } else {
                    other = 1;
                }
            } else {
                for line in bytes.split(|&b| b == b'\n').filter(|l| !l.is_ascii()) {
                    if std::str::from_utf8(line).is_ok() {
                        utf8 += 1;
                    } else {
                        other += 1;
                    }
                }
            }
            let is_utf8 = utf8 > other;
            if is_utf8 && ds.encoding == Encoding::Gb18030 {
                parsed
                    .diagnostics
                    .push("encoding: declared gb18030, the file is utf-8; read as utf-8".into());
            }
            is_utf8
        }
    };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    let mut rec = csv::ByteRecord::new();
    let mut header_done = false;
    let mut width = 8;
    // Rows are numbered by physical line (1 = the header), counted from the bytes so that CRLF line
    // ends and blank lines cannot shift them; the archive numbers its chunks the same way.
    let (mut counted_to, mut lines_before) = (0usize, 0u64);
    loop {
        let mut start = rdr.position().byte() as usize;
        while start < bytes.len() && matches!(bytes[start], b'\r' | b'\n') {
            start += 1;
        }
        if start > counted_to {
            lines_before += bytes[counted_to..start].iter().filter(|&&b| b == b'\n').count() as u64;
            counted_to = start;
        }
        let line = lines_before + 1;
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let msg = e.to_string();
                take(parsed, v, line, Err(Broken::Csv(msg.clone())), &|| {
                    format!("<unreadable csv: {msg}>")
                });
                continue;
            }
        }
        let end = rdr.position().byte() as usize;
        let raw = || {
            let b = bytes.get(start..end).unwrap_or(&[]);
            let b = b.strip_suffix(b"\n").unwrap_or(b);
            let b = b.strip_suffix(b"\r").unwrap_or(b);
            decode(ds, b, utf8_file)
                .map(Cow::into_owned)
                .unwrap_or_else(|| String::from_utf8_lossy(b).into_owned())
        };
        let mut cells: Vec<Option<Cow<'_, str>>> = Vec::with_capacity(width);
        let mut bad = false;
        for f in rec.iter() {
            match decode(ds, f, utf8_file) {
                Some(s) => cells.push(nonempty(s)),
                None => {
                    bad = true;
                    break;
                }
            }
        }
        // In a GB18030 export, a row whose bytes are valid UTF-8 with Chinese text was written in the
        // wrong encoding (it would decode as GB18030 mojibake): it is quarantined, not misread.
        if !bad && !utf8_file && header_done {
            let b = bytes.get(start..end).unwrap_or(&[]);
            if !b.is_ascii() && std::str::from_utf8(b).is_ok() {
                bad = true;
            }
        }
        if !header_done {
            header_done = true;
            let header: Vec<String> = cells.iter().map(|c| c.as_deref().unwrap_or("").to_string()).collect();
            v.map_header(&header, parsed)?;
            width = header.len();
            continue;
        }
        let r = if bad { Err(Broken::Encoding) } else { Ok(&cells[..]) };
        take(parsed, v, line, r, &raw);
    }
    if !header_done {
        v.map_header(&[], parsed)?;
    }
    Ok(())
}

fn read_jsonl(ds: &Dataset, bytes: &[u8], parsed: &mut Parsed, v: &mut Validator<'_>) -> Result<(), IngestError> {
    let bytes = bytes.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(bytes);
    let header: Vec<String> = ds.columns.iter().map(|c| c.header.clone()).collect();
    v.map_header(&header, parsed)?;
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(|b| b.is_ascii_whitespace()) {
            continue;
        }
        let row = i as u64 + 1;
        let raw = || String::from_utf8_lossy(line).into_owned();
        let Ok(text) = std::str::from_utf8(line) else {
            take(parsed, v, row, Err(Broken::Encoding), &raw);
            continue;
        };
        match serde_json::from_str::<Map<String, Value>>(text) {
            Ok(obj) => {
                let cells: Vec<Option<Cow<'_, str>>> = header
                    .iter()
                    .map(|h| match obj.get(h) {
                        None | Some(Value::Null) => None,
                        Some(Value::String(s)) => nonempty(Cow::Owned(s.clone())),
                        Some(v) => Some(Cow::Owned(v.to_string())),
                    })
                    .collect();
                take(parsed, v, row, Ok(&cells), &raw);
            }
            Err(e) => take(parsed, v, row, Err(Broken::Json(e.to_string())), &raw),
        }
    }
    Ok(())
}

fn xlsx_cell(d: &calamine::Data) -> Option<String> {
    use calamine::Data;
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
}

fn read_xlsx(ds: &Dataset, bytes: &[u8], parsed: &mut Parsed, v: &mut Validator<'_>) -> Result<(), IngestError> {
    use calamine::Reader;
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
    for other in wb.sheet_names().iter().filter(|n| **n != name) {
        // Only one sheet is the dataset; say so when an export has more.
        parsed.diagnostics.push(format!("ignored-sheet: {other}"));
    }
    let range = wb
        .worksheet_range(&name)
        .map_err(|e| IngestError::Unreadable(format!("xlsx sheet {name}: {e}")))?;
    let first_row = range.start().map(|(r, _)| r as u64).unwrap_or(0);
    let mut it = range.rows();
    let header: Vec<String> = it
        .next()
        .map(|r| r.iter().map(|d| xlsx_cell(d).unwrap_or_default()).collect())
        .unwrap_or_default();
    v.map_header(&header, parsed)?;
    let mut text = "\n".repeat(first_row as usize);
    text.push_str(&header.join("\t"));
    text.push('\n');
    for (k, r) in it.enumerate() {
        let cells: Vec<Option<Cow<'_, str>>> = r.iter().map(|d| xlsx_cell(d).map(Cow::Owned)).collect();
        let line = cells
            .iter()
            .map(|c| c.as_deref().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\t");
        text.push_str(&line);
        text.push('\n');
        if cells.iter().all(Option::is_none) {
            continue;
        }
        take(parsed, v, first_row + k as u64 + 2, Ok(&cells), &|| line.clone());
    }
    parsed.sheet_text = Some(text);
    Ok(())
}

type Reject = (String, String);

fn fx<T: Hash + ?Sized>(t: &T) -> u64 {
    let mut h = FxHasher::default();
    t.hash(&mut h);
    h.finish()
}

/// Appends `s` to `out` as a JSON string.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn json_num(out: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        let _ = write!(out, "{}", x as i64);
    } else {
        let _ = write!(out, "{x}");
    }
}

fn ymd(d: NaiveDate) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

/// A canonical value, borrowing from the row or the dataset definition where it can.
enum Canon<'c> {
    Text(Cow<'c, str>),
    Id(Uscc),
    Date(NaiveDate),
    Period(Period),
    Num(f64),
    Code(&'c str),
}

impl Canon<'_> {
    fn write_json(&self, out: &mut String) {
        match self {
            Canon::Text(s) => json_str(out, s),
            Canon::Id(u) => json_str(out, u.as_str()),
            Canon::Date(d) => {
                let _ = write!(out, "\"{:04}-{:02}-{:02}\"", d.year(), d.month(), d.day());
            }
            Canon::Period(p) => {
                let _ = write!(out, "\"{p}\"");
            }
            Canon::Num(x) => json_num(out, *x),
            Canon::Code(c) => json_str(out, c),
        }
    }

    fn text(&self) -> String {
        match self {
            Canon::Text(s) => s.to_string(),
            Canon::Id(u) => u.to_string(),
            Canon::Date(d) => ymd(*d),
            Canon::Period(p) => p.to_string(),
            Canon::Num(x) => x.to_string(),
            Canon::Code(c) => c.to_string(),
        }
    }
}

struct Validator<'a> {
    ds: &'a Dataset,
    resolver: &'a Resolver,
    /// Column → position in the export (None: the export lacks the optional column).
    pos: Vec<Option<usize>>,
    /// Key hash → (row, content hash) of rows already taken from this file.
    seen: FxHashMap<u64, (u64, u64)>,
    rollup: Rollup,
    /// The last identifier text resolved, and its USCC (exports group rows by firm).
    last_id: Option<(String, Uscc)>,
    /// Columns holding roll-up values, and the category column (part of a rolled-up row's key).
    metric_cols: Vec<usize>,
    cat_col: Option<usize>,
}

impl<'a> Validator<'a> {
    fn new(ds: &'a Dataset, resolver: &'a Resolver) -> Self {
        Validator {
            ds,
            resolver,
            pos: Vec::new(),
            seen: FxHashMap::default(),
            rollup: Rollup::default(),
            last_id: None,
            metric_cols: ds
                .columns
                .iter()
                .enumerate()
                .filter(|(_, c)| c.field.starts_with("metric:"))
                .map(|(i, _)| i)
                .collect(),
            cat_col: ds.columns.iter().position(|c| c.field == "category"),
        }
    }

    /// Maps the dataset's columns onto the export's header.
    fn map_header(&mut self, header: &[String], parsed: &mut Parsed) -> Result<(), IngestError> {
        let clean = |h: &str| h.trim().trim_start_matches('\u{feff}').to_string();
        let header: Vec<String> = header.iter().map(|h| clean(h)).collect();
        self.pos.clear();
        for c in &self.ds.columns {
            let p = header.iter().position(|h| *h == c.header);
            if p.is_none() && c.required {
                return Err(IngestError::MissingColumn(c.header.clone()));
            }
            self.pos.push(p);
        }
        for h in &header {
            if !h.is_empty() && !self.ds.columns.iter().any(|c| c.header == *h) {
                parsed.diagnostics.push(format!("ignored-column: {h}"));
            }
        }
        Ok(())
    }

    fn row<'c>(&mut self, row: u64, cells: &'c [Option<Cow<'c, str>>]) -> Result<Option<Record>, Reject>
    where
        'a: 'c,
    {
        let ds: &'c Dataset = self.ds;
        let first_cell = cells.iter().flatten().next().map(|s| s.trim()).unwrap_or("");
        if ds.totals_markers.iter().any(|m| first_cell.starts_with(m.as_str())) {
            return Err(("totals-row".into(), format!("a totals row ({first_cell})")));
        }
        if cells.iter().all(Option::is_none) {
            return Err(("shape".into(), "an empty row".into()));
        }
        let mut values: Vec<Option<Canon<'c>>> = Vec::with_capacity(ds.columns.len());
        let mut uscc: Option<Uscc> = None;
        let (mut date, mut end_date) = (None, None);
        for (c, p) in ds.columns.iter().zip(&self.pos) {
            let Some(raw) = p.and_then(|p| cells.get(p)).and_then(|c| c.as_deref()) else {
                if c.required {
                    return Err(("missing".into(), format!("{} is empty", c.header)));
                }
                values.push(None);
                continue;
            };
            let text = raw.trim();
            let v = match c.ty {
                ColType::Id => {
                    let u = match &self.last_id {
                        Some((t, u)) if t == text => *u,
                        _ => {
                            let u = self
                                .resolver
                                .resolve(text)
                                .map_err(|e| (format!("id:{}", e.rule()), format!("{}: {text}: {e}", c.header)))?;
                            self.last_id = Some((text.to_string(), u));
                            u
                        }
                    };
                    if c.field == "id" {
                        uscc = Some(u);
                    }
                    Canon::Id(u)
                }
                ColType::Text => Canon::Text(Cow::Borrowed(text)),
                ColType::Date => {
                    let d = parse_date(text)
                        .ok_or_else(|| ("date".to_string(), format!("{}: {text:?} is not a date", c.header)))?;
                    match c.field.as_str() {
                        "date" | "start" => date = Some(d),
                        "end_date" | "end" | "dereg_date" => end_date = Some(d),
                        _ => {}
                    }
                    Canon::Date(d)
                }
                ColType::Period => {
                    let p = parse_period(text, ds.period.as_deref())
                        .ok_or_else(|| ("period".to_string(), format!("{}: {text:?} is not a period", c.header)))?;
                    Canon::Period(p)
                }
                ColType::Money | ColType::Number | ColType::Integer | ColType::Ratio => {
                    if c.ty != ColType::Ratio && text.ends_with('%') {
                        return Err(("number".into(), format!("{}: {text:?} is a percentage", c.header)));
                    }
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
                    // Beyond 10^15 (a thousand trillion yuan) a value is an export error; it must stay finite.
                    if !x.is_finite() || x.abs() > 1e15 {
                        return Err(("number".into(), format!("{}: {text:?} is out of range", c.header)));
                    }
                    Canon::Num(x)
                }
                ColType::Code => {
                    let key = xinyong_domain::normalize::fold_width(text);
                    let canon = c.codes.get(key.as_ref()).ok_or_else(|| {
                        (
                            "code".to_string(),
                            format!("{}: {text:?} is not in the code list", c.header),
                        )
                    })?;
                    Canon::Code(canon.as_str())
                }
            };
            values.push(Some(v));
        }
        let Some(uscc) = uscc else {
            return Err(("missing".into(), "no enterprise id".into()));
        };
        let col = |name: &str| ds.columns.iter().position(|c| c.field == name);
        let text_of = |values: &[Option<Canon<'c>>], name: &str| -> Option<String> {
            col(name).and_then(|i| values[i].as_ref()).map(Canon::text)
        };
        // Rolled-up datasets: the row joins its firm's month.
        if ds.rollup.is_some() {
            let Some(d) = date else {
                return Err(("missing".into(), "no date to roll up by".into()));
            };
            let cat = self.cat_col.and_then(|i| values[i].as_ref()).map(|v| match v {
                Canon::Text(t) => fx(t.as_ref()),
                other => fx(&other.text()),
            });
            let key = fx(&(uscc, d, cat));
            let mut content = FxHasher::default();
            for c in cells {
                c.as_deref().hash(&mut content);
            }
            // Duplicates are looked for within the firm's month (the key holds firm and date), in a
            // small table per group: far fewer cache misses than one table for a whole large file.
            let content = content.finish();
            let g = self.rollup.group(uscc, d, row, self.metric_cols.len());
            match g.seen.get(&key) {
                Some(&(first, c)) if c == content => {
                    return Err(("duplicate".into(), format!("the same record as row {first}")));
                }
                Some(&(first, _)) => {
                    return Err((
                        "conflict".into(),
                        format!("key {uscc}|{d} already delivered at row {first} with other content"),
                    ));
                }
                None => {
                    g.seen.insert(key, (row, content));
                }
            }
            g.n += 1;
            for (acc, &i) in g.sums.iter_mut().zip(&self.metric_cols) {
                if let Some(Canon::Num(x)) = values[i] {
                    *acc += x;
                }
            }
            return Ok(None);
        }
        // The canonical JSON, in column order.
        let mut fields = String::with_capacity(64 * ds.columns.len());
        fields.push('{');
        let mut first = true;
        for (c, v) in ds.columns.iter().zip(&values) {
            let Some(v) = v else { continue };
            if !first {
                fields.push(',');
            }
            first = false;
            json_str(&mut fields, &c.field);
            fields.push(':');
            v.write_json(&mut fields);
        }
        if let Some(cat) = &ds.category {
            if col("category").is_none() {
                if !first {
                    fields.push(',');
                }
                fields.push_str("\"category\":");
                json_str(&mut fields, cat);
            }
        }
        fields.push('}');
        let period = text_of(&values, "period");
        let key = match ds.replace {
            // A record id names an event; several firms may share it (the parties to one case).
            Replace::Event => match text_of(&values, "record_id").or_else(|| text_of(&values, "contract_id")) {
                Some(id) => format!("{id}|{uscc}"),
                None => return Err(("missing".into(), "no record id".into())),
            },
            Replace::Snapshot => {
                let mut k = format!("{uscc}|{}", period.as_deref().unwrap_or_default());
                for extra in &ds.key {
                    k.push('|');
                    k.push_str(&text_of(&values, extra).unwrap_or_default());
                }
                k
            }
        };
        if let Some(reject) = self.dup(fx(&key), fx(&fields), row, &|| key.clone()) {
            return Err(reject);
        }
        let content_hash = hex::encode(Sha256::digest(fields.as_bytes()));
        let reg_no = if ds.shape == Shape::Registration {
            text_of(&values, "reg_no")
        } else {
            None
        };
        Ok(Some(Record {
            row,
            n_rows: 1,
            uscc,
            key,
            period,
            date,
            end_date,
            fields,
            content_hash,
            reg_no,
        }))
    }

    fn dup(&mut self, key: u64, content: u64, row: u64, key_text: &dyn Fn() -> String) -> Option<Reject> {
        match self.seen.get(&key) {
            Some(&(first, c)) if c == content => Some(("duplicate".into(), format!("the same record as row {first}"))),
            Some(&(first, _)) => Some((
                "conflict".into(),
                format!("key {} already delivered at row {first} with other content", key_text()),
            )),
            None => {
                self.seen.insert(key, (row, content));
                None
            }
        }
    }
}

type MonthKey = (Uscc, i32, u32);

/// First row, row count and sums (one per metric column) of one firm's month, and the rows taken
/// into it (key hash → first row, content hash) to find duplicates.
struct Group {
    row: u64,
    n: u64,
    sums: Vec<f64>,
    seen: FxHashMap<u64, (u64, u64)>,
}

/// Monthly roll-up of fine-grained rows (daily meter readings, invoices).
#[derive(Default)]
struct Rollup {
    groups: FxHashMap<MonthKey, usize>,
    list: Vec<(MonthKey, Group)>,
    /// The group of the previous row (exports group a firm's rows together).
    last: Option<(MonthKey, usize)>,
}

impl Rollup {
    fn group(&mut self, uscc: Uscc, d: NaiveDate, row: u64, width: usize) -> &mut Group {
        let k = (uscc, d.year(), d.month());
        let idx = match self.last {
            Some((lk, i)) if lk == k => i,
            _ => {
                let i = *self.groups.entry(k).or_insert_with(|| {
                    self.list.push((
                        k,
                        Group {
                            row,
                            n: 0,
                            sums: vec![0.0; width],
                            seen: FxHashMap::default(),
                        },
                    ));
                    self.list.len() - 1
                });
                self.last = Some((k, i));
                i
            }
        };
        &mut self.list[idx].1
    }

    fn finish(self, ds: &Dataset) -> Vec<Record> {
        let metric_cols: Vec<usize> = ds
            .columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.field.starts_with("metric:"))
            .map(|(i, _)| i)
            .collect();
        let mut out = Vec::with_capacity(self.list.len());
        for ((uscc, y, m), g) in self.list {
            let period = format!("{y}-{m:02}");
            let mut fields = String::from("{\"id\":");
            json_str(&mut fields, uscc.as_str());
            fields.push_str(",\"period\":");
            json_str(&mut fields, &period);
            for (i, x) in metric_cols.iter().zip(&g.sums) {
                fields.push(',');
                json_str(&mut fields, &ds.columns[*i].field);
                fields.push(':');
                json_num(&mut fields, (x * 100.0).round() / 100.0);
            }
            let _ = write!(fields, ",\"rows\":{}}}", g.n);
            let content_hash = hex::encode(Sha256::digest(fields.as_bytes()));
            out.push(Record {
                row: g.row,
                n_rows: g.n,
                uscc,
                key: format!("{uscc}|{period}"),
                period: Some(period),
                date: None,
                end_date: None,
                fields,
                content_hash,
                reg_no: None,
            });
        }
        out
    }
}

/// Whether a dataset's rows describe firms' registration (used to build the identifier crosswalk).
pub fn is_register(ds: &Dataset) -> bool {
    ds.shape == Shape::Registration
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
