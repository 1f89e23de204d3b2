//! The input table (column-major), single values, and the CSV reader.

use crate::Error;
use std::io::Read;

/// One column of the table. `None` is a missing cell. A numeric `Some(NaN)` is treated as missing too;
/// `±inf` are ordinary (extreme) values.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    Numeric(Vec<Option<f64>>),
    Categorical(Vec<Option<String>>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Categorical(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The value in row `i` (`Missing` past the end).
    pub fn value(&self, i: usize) -> Value<'_> {
        match self {
            Column::Numeric(v) => match v.get(i) {
                Some(Some(x)) if !x.is_nan() => Value::Num(*x),
                _ => Value::Missing,
            },
            Column::Categorical(v) => match v.get(i) {
                Some(Some(s)) => Value::Cat(s),
                _ => Value::Missing,
            },
        }
    }

    fn select(&self, rows: &[usize]) -> Column {
        match self {
            Column::Numeric(v) => Column::Numeric(rows.iter().map(|&r| v[r]).collect()),
            Column::Categorical(v) => Column::Categorical(rows.iter().map(|&r| v[r].clone()).collect()),
        }
    }
}

/// A table of named columns, column-major. All columns have the same length.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    pub names: Vec<String>,
    pub columns: Vec<Column>,
}

impl Table {
    /// The number of rows (0 for a table without columns).
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names.iter().position(|n| n == name).map(|i| &self.columns[i])
    }

    /// A new table holding the given rows, in the given order.
    pub fn select_rows(&self, rows: &[usize]) -> Table {
        Table {
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.select(rows)).collect(),
        }
    }

    /// The table without the named column (if present), and that column.
    pub fn take_column(&mut self, name: &str) -> Option<Column> {
        let i = self.names.iter().position(|n| n == name)?;
        self.names.remove(i);
        Some(self.columns.remove(i))
    }

    /// Checks that names and columns match and all columns have the same length; returns the row count.
    pub fn check(&self) -> Result<usize, Error> {
        if self.names.len() != self.columns.len() {
            return Err(Error::Shape(format!(
                "{} column names but {} columns",
                self.names.len(),
                self.columns.len()
            )));
        }
        let n = self.rows();
        for (name, c) in self.names.iter().zip(&self.columns) {
            if c.len() != n {
                return Err(Error::Shape(format!(
                    "column `{name}` has {} rows, expected {n}",
                    c.len()
                )));
            }
        }
        for (i, name) in self.names.iter().enumerate() {
            if self.names[..i].contains(name) {
                return Err(Error::Shape(format!("column name `{name}` appears twice")));
            }
        }
        Ok(n)
    }
}

/// One cell handed to the scorer. A numeric feature given `Cat(text)` parses the text (text that is no number
/// counts as missing); a categorical feature given `Num(x)` matches the category spelled as `x` prints.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value<'a> {
    Num(f64),
    Cat(&'a str),
    Missing,
}

/// True for the cell texts read as missing: empty, `NA`, `N/A`, `NaN`, `null`, `?` (case-insensitive, trimmed).
pub fn is_missing_text(s: &str) -> bool {
    let t = s.trim();
    t.is_empty()
        || t == "?"
        || t.eq_ignore_ascii_case("na")
        || t.eq_ignore_ascii_case("n/a")
        || t.eq_ignore_ascii_case("nan")
        || t.eq_ignore_ascii_case("null")
}

/// A cell that is neither missing nor a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotANumber;

/// Parses a numeric cell: `Ok(None)` for missing, `Ok(Some(x))` for a number (including `inf`, `-inf`,
/// `1e300`), `Err(NotANumber)` for other text.
pub fn parse_number(s: &str) -> Result<Option<f64>, NotANumber> {
    // Numbers first (most cells); no missing-value spelling parses as a number.
    let t = s.trim();
    match t.parse::<f64>() {
        Ok(x) if x.is_nan() => Ok(None),
        Ok(x) => Ok(Some(x)),
        Err(_) if is_missing_text(t) => Ok(None),
        Err(_) => Err(NotANumber),
    }
}

/// A column is numeric when at least this share of its non-missing cells are numbers; the other cells of
/// such a column are reported as errors. Below it the column is categorical.
pub const NUMERIC_SHARE: f64 = 0.95;

/// Parses a target cell: `0`/`1` (also `0.0`/`1.0`), or `good`/`bad` (case-insensitive). 1 = bad.
pub fn parse_target(s: &str) -> Option<u8> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("bad") {
        return Some(1);
    }
    if t.eq_ignore_ascii_case("good") {
        return Some(0);
    }
    match t.parse::<f64>() {
        Ok(0.0) => Some(0),
        Ok(1.0) => Some(1),
        _ => None,
    }
}

/// What [`read_csv`] returns: the feature table, the target (1 = bad) and the id column if one was named.
pub type CsvData = (Table, Vec<u8>, Option<Vec<String>>);

/// Reads a CSV file with a header row: every column except `target` (and `id`, if given) becomes a feature
/// column, numeric or categorical by content (see [`NUMERIC_SHARE`]). Fields are trimmed. Returns the table,
/// the target (1 = bad) and the id column. Errors name the row (data rows count from 1; the header is line 1 of
/// the file) and the column.
pub fn read_csv(r: impl Read, target: &str, id: Option<&str>) -> Result<CsvData, Error> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .trim(csv::Trim::All)
        .from_reader(r);
    let headers: Vec<String> = rdr
        .byte_headers()
        .map_err(|e| Error::Csv(e.to_string()))?
        .iter()
        .map(|h| String::from_utf8_lossy(h).trim().to_string())
        .collect();
    let find = |name: &str| -> Result<usize, Error> {
        headers
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| Error::MissingColumn {
                column: name.to_string(),
                available: headers.join(", "),
            })
    };
    let t_idx = find(target)?;
    let id_idx = id.map(find).transpose()?;
    let feat_idx: Vec<usize> = (0..headers.len())
        .filter(|&i| i != t_idx && Some(i) != id_idx)
        .collect();
    for (k, &i) in feat_idx.iter().enumerate() {
        if feat_idx[..k].iter().any(|&j| headers[j] == headers[i]) {
            return Err(Error::Shape(format!(
                "column name `{}` appears twice in the header",
                headers[i]
            )));
        }
    }
    // The records are kept as read (one buffer each) and each column is parsed from them once: no string per
    // cell unless the column turns out to be categorical.
    let mut recs: Vec<csv::ByteRecord> = Vec::new();
    let mut lines: Vec<u64> = Vec::new();
    let mut y = Vec::new();
    let mut ids = id_idx.map(|_| Vec::new());
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(Error::Csv(e.to_string())),
        }
        let row = y.len() + 1;
        let line = rec.position().map_or(0, |p| p.line());
        let tv = String::from_utf8_lossy(&rec[t_idx]);
        match parse_target(&tv) {
            Some(v) => y.push(v),
            None => {
                return Err(Error::BadTarget {
                    row,
                    line,
                    column: target.to_string(),
                    value: tv.into_owned(),
                })
            }
        }
        if let (Some(ids), Some(i)) = (ids.as_mut(), id_idx) {
            ids.push(String::from_utf8_lossy(&rec[i]).into_owned());
        }
        lines.push(line);
        // The reader trims each record into a fresh, compact buffer (`Trim::All`): the record is kept as it is.
        recs.push(std::mem::take(&mut rec));
    }
    // Each column is parsed on its own: the columns are shared out over the cores.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(feat_idx.len().max(1));
    let columns = crate::boost::per_bag(feat_idx.len(), threads, &|k| {
        parse_column(&recs, &lines, feat_idx[k], &headers[feat_idx[k]])
    });
    let mut table = Table::default();
    for (&i, column) in feat_idx.iter().zip(columns) {
        table.names.push(headers[i].clone());
        table.columns.push(column?);
    }
    Ok((table, y, ids))
}

/// Column `i` (named `name`) of the records: numeric when at least [`NUMERIC_SHARE`] of its present cells are
/// numbers (another cell is then an error, with its row and line), categorical otherwise.
fn parse_column(recs: &[csv::ByteRecord], lines: &[u64], i: usize, name: &str) -> Result<Column, Error> {
    let (mut present, mut numbers) = (0usize, 0usize);
    let mut parsed = Vec::with_capacity(recs.len());
    for r in recs {
        let p = parse_number(&String::from_utf8_lossy(&r[i]));
        match p {
            Ok(None) => {}
            Ok(Some(_)) => {
                present += 1;
                numbers += 1;
            }
            Err(NotANumber) => present += 1,
        }
        parsed.push(p);
    }
    let numeric = present == 0 || numbers as f64 >= NUMERIC_SHARE * present as f64;
    if !numeric {
        return Ok(Column::Categorical(
            recs.iter()
                .map(|r| {
                    let c = String::from_utf8_lossy(&r[i]);
                    if is_missing_text(&c) {
                        None
                    } else {
                        Some(c.into_owned())
                    }
                })
                .collect(),
        ));
    }
    let mut v = Vec::with_capacity(recs.len());
    for (r, p) in parsed.into_iter().enumerate() {
        match p {
            Ok(x) => v.push(x),
            Err(NotANumber) => {
                return Err(Error::NotNumber {
                    row: r + 1,
                    line: lines[r],
                    column: name.to_string(),
                    value: String::from_utf8_lossy(&recs[r][i]).into_owned(),
                    share: 100.0 * numbers as f64 / present as f64,
                })
            }
        }
    }
    Ok(Column::Numeric(v))
}
