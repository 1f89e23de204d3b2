//! The source registry: every dataset a source delivers, declared as data (TOML), so that a new
//! department's export is added by writing a definition, not code.
//!
//! Architecture invariant: no IO beyond reading the definition files a caller points at; the built-in
//! definitions are embedded from `sources/*.toml`.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The built-in definitions, one file per source (or lender template).
pub const BUILTIN: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/builtin.rs"));

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{file}: {msg}")]
    Parse { file: String, msg: String },
    #[error("{file}: dataset {dataset}: {msg}")]
    Invalid { file: String, dataset: String, msg: String },
}

/// Who a source is.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Department,
    Utility,
    Lender,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    /// Short id, also the folder name of its deliveries (e.g. `amr`, `bank03`).
    pub id: String,
    pub name: String,
    pub name_en: String,
    pub kind: SourceKind,
    /// Whether this source has a front-end machine (前置机) for real-time pushes.
    #[serde(default)]
    pub front_end: bool,
}

/// The canonical shape a dataset's rows are mapped onto.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// The firm register: one row per firm (market regulation).
    Registration,
    /// Shareholders of a firm.
    Shareholding,
    /// Periodic values per firm and period (month or year).
    Metric,
    /// Dated events with a record id (penalties, cases, list entries, arrears notices ...).
    Event,
    /// Monthly loan snapshots from lenders.
    Loan,
    /// Guarantee contracts: guarantor → borrower.
    Guarantee,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Csv,
    Xlsx,
    Jsonl,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum Encoding {
    #[serde(rename = "utf-8")]
    Utf8,
    Gb18030,
    /// Detect: UTF-8 if the bytes decode, else GB18030.
    Auto,
}

/// How dates are written in an export.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum DateStyle {
    /// 2021-03-05
    Iso,
    /// 2021年3月5日
    Cn,
    /// 20210305
    Compact,
    /// 2021/3/5
    Slash,
    /// Excel serial day number (1900 system), as a number.
    ExcelSerial,
}

/// Value types of a column.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ColType {
    /// An enterprise identifier: USCC or a legacy code, resolved to a USCC.
    Id,
    Text,
    Date,
    /// A period: a month (2021-03, 2021年3月, 202103) or a year (2021).
    Period,
    /// Money, scaled to yuan by the column's unit.
    Money,
    Number,
    Integer,
    /// A percentage or ratio (0–100 or 0–1, per `unit`).
    Ratio,
    /// A value from a code list, mapped through `codes`.
    Code,
}

/// How a re-delivered record replaces an earlier one.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Replace {
    /// Periodic snapshots: the key is source + firm + period (+ the fields named in `key`).
    Snapshot,
    /// Event records: the key is the source's record id.
    Event,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Column {
    /// The column's header in the export (Chinese).
    pub header: String,
    /// The canonical field it maps onto (see [`canonical_fields`]); `metric:NAME` for metric values.
    pub field: String,
    #[serde(rename = "type")]
    pub ty: ColType,
    /// 元, 万元 or 千瓦时 ...; money is scaled to yuan (万元 × 10,000); ratio `%` divides by 100.
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Raw value → canonical code, for `type = "code"`.
    #[serde(default)]
    pub codes: BTreeMap<String, String>,
    /// The field's class when it differs from its dataset's (a person's identity number in a public record).
    #[serde(default)]
    pub class: Option<Class>,
}

/// Who may read a field (compliance.md: every field classified): the public; readers entitled to the firm's
/// non-public record; personal information of a natural person (never shown on a page); sensitive.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Public,
    NonPublic,
    Personal,
    Sensitive,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Dataset {
    /// Globally unique id, `source.dataset` (lender templates use `lender.NAME`).
    pub id: String,
    pub name: String,
    pub shape: Shape,
    pub format: Format,
    #[serde(default = "default_encoding")]
    pub encoding: Encoding,
    #[serde(default = "default_date_style")]
    pub date_style: DateStyle,
    pub replace: Replace,
    /// Extra key fields beyond the shape's own (e.g. `metric` datasets with several rows per period).
    #[serde(default)]
    pub key: Vec<String>,
    /// `month`, `year` or `day`; `day` rows are rolled up into months at ingest.
    #[serde(default)]
    pub period: Option<String>,
    /// Roll fine-grained rows up at ingest: `month_sum` or `month_count`.
    #[serde(default)]
    pub rollup: Option<String>,
    /// A row whose first cell starts with one of these is a totals row, not data.
    #[serde(default)]
    pub totals_markers: Vec<String>,
    /// Sheet name for xlsx (default: the first sheet).
    #[serde(default)]
    pub sheet: Option<String>,
    /// The event category when the dataset holds one kind only.
    #[serde(default)]
    pub category: Option<String>,
    /// The class of its fields (a column may name its own): required, so no field goes unclassified.
    pub class: Class,
    pub columns: Vec<Column>,
}

impl Dataset {
    /// The class of a stored field: its column's, else the dataset's (fields the ingest adds, such as a
    /// roll-up's row count, are the dataset's class).
    pub fn class_of(&self, field: &str) -> Class {
        self.columns
            .iter()
            .find(|c| c.field == field)
            .and_then(|c| c.class)
            .unwrap_or(self.class)
    }
}

fn default_encoding() -> Encoding {
    Encoding::Utf8
}
fn default_date_style() -> DateStyle {
    DateStyle::Iso
}

#[derive(Debug, Clone, Deserialize)]
struct File {
    #[serde(default)]
    source: Vec<Source>,
    #[serde(default)]
    dataset: Vec<Dataset>,
}

/// The canonical fields each shape may map onto; `metric:*` fields are free-named values.
pub fn canonical_fields(shape: Shape) -> &'static [&'static str] {
    match shape {
        Shape::Registration => &[
            "id",
            "reg_no",
            "name",
            "former_names",
            "legal_rep",
            "legal_rep_id",
            "reg_capital",
            "paid_in_capital",
            "founded",
            "industry",
            "township",
            "address",
            "status",
            "dereg_date",
            "parent_id",
            "entity_type",
            "size_class",
        ],
        Shape::Shareholding => &[
            "id",
            "holder_name",
            "holder_type",
            "holder_id",
            "share_ratio",
            "subscribed",
        ],
        Shape::Metric => &["id", "period", "date", "category"],
        Shape::Event => &[
            "id",
            "record_id",
            "date",
            "end_date",
            "category",
            "amount",
            "status",
            "detail",
            "counterparty",
            // Registration changes: the value before and after (变更前内容, 变更后内容).
            "before",
            "after",
            // Equity pledges: who pledged the shares (出质人); the pledgee is the counterparty.
            "pledgor",
        ],
        Shape::Loan => &[
            "id",
            "lender",
            "loan_id",
            "period",
            "amount",
            "balance",
            "start",
            "maturity",
            "rate",
            "class5",
            "overdue_principal",
            "overdue_interest",
            "overdue_days",
            "rollover",
        ],
        Shape::Guarantee => &[
            "id",
            "guarantor_id",
            "contract_id",
            "loan_id",
            "amount",
            "start",
            "end",
            "lender",
            "kind",
        ],
    }
}

/// All sources and datasets.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    pub sources: Vec<Source>,
    pub datasets: Vec<Dataset>,
}

impl Registry {
    /// The built-in registry.
    pub fn builtin() -> Result<Self, RegistryError> {
        let mut r = Registry::default();
        for (name, text) in BUILTIN {
            r.add_toml(name, text)?;
        }
        Ok(r)
    }

    /// Adds the definitions in one TOML text (as from a file a department's definition lives in).
    pub fn add_toml(&mut self, file: &str, text: &str) -> Result<(), RegistryError> {
        let f: File = toml::from_str(text).map_err(|e| RegistryError::Parse {
            file: file.into(),
            msg: e.to_string(),
        })?;
        for d in &f.dataset {
            validate(file, d)?;
            if self.datasets.iter().any(|x| x.id == d.id) {
                return Err(RegistryError::Invalid {
                    file: file.into(),
                    dataset: d.id.clone(),
                    msg: "duplicate dataset id".into(),
                });
            }
        }
        self.sources.extend(f.source);
        self.datasets.extend(f.dataset);
        Ok(())
    }

    pub fn dataset(&self, id: &str) -> Option<&Dataset> {
        self.datasets.iter().find(|d| d.id == id)
    }
    pub fn source(&self, id: &str) -> Option<&Source> {
        self.sources.iter().find(|s| s.id == id)
    }
    /// The datasets a source delivers: its own (`source.*`), or the lender templates for lenders.
    pub fn datasets_of(&self, source: &Source) -> Vec<&Dataset> {
        let prefix = if source.kind == SourceKind::Lender {
            format!("lender.{}.", lender_template(&source.id))
        } else {
            format!("{}.", source.id)
        };
        self.datasets.iter().filter(|d| d.id.starts_with(&prefix)).collect()
    }
}

/// Lenders deliver in the templates the financial office prescribes for their kind:
/// banks (`bank01`..), microloan firms (`mlc01`..), guarantee firms (`gc01`..), the private
/// financing service centre (`pfc`).
pub fn lender_template(source_id: &str) -> &str {
    source_id.trim_end_matches(|c: char| c.is_ascii_digit())
}

fn validate(file: &str, d: &Dataset) -> Result<(), RegistryError> {
    let err = |msg: String| RegistryError::Invalid {
        file: file.into(),
        dataset: d.id.clone(),
        msg,
    };
    let allowed = canonical_fields(d.shape);
    if !d.columns.iter().any(|c| c.field == "id") {
        return Err(err("no column maps onto the enterprise id".into()));
    }
    for c in &d.columns {
        let ok = allowed.contains(&c.field.as_str()) || (d.shape == Shape::Metric && c.field.starts_with("metric:"));
        if !ok {
            return Err(err(format!("column {} maps onto unknown field {}", c.header, c.field)));
        }
        if c.ty == ColType::Code && c.codes.is_empty() {
            return Err(err(format!("code column {} has no code list", c.header)));
        }
        if c.ty == ColType::Money && !matches!(c.unit.as_deref(), Some("元") | Some("万元")) {
            return Err(err(format!("money column {} needs unit 元 or 万元", c.header)));
        }
    }
    if d.columns.iter().filter(|c| c.field == "id").count() > 1 {
        return Err(err("two columns map onto the enterprise id".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_loads_and_covers_thirty_sources() {
        let r = Registry::builtin().unwrap();
        let depts = r.sources.iter().filter(|s| s.kind != SourceKind::Lender).count();
        assert_eq!(depts, 30, "the 30 government and public-utility sources of product.md");
        let lenders = r.sources.iter().filter(|s| s.kind == SourceKind::Lender).count();
        assert_eq!(
            lenders, 29,
            "20 banks, 5 microloan firms, 3 guarantee firms, 1 private financing centre"
        );
        for s in &r.sources {
            assert!(!r.datasets_of(s).is_empty(), "source {} delivers nothing", s.id);
        }
        for f in [Format::Csv, Format::Xlsx, Format::Jsonl] {
            assert!(r.datasets.iter().any(|d| d.format == f), "{f:?} unused");
        }
        assert!(r.datasets.iter().any(|d| d.encoding == Encoding::Gb18030));
        for ds in [DateStyle::Iso, DateStyle::Cn, DateStyle::ExcelSerial] {
            assert!(r.datasets.iter().any(|d| d.date_style == ds), "{ds:?} unused");
        }
    }

    #[test]
    fn rejects_unknown_field() {
        let mut r = Registry::default();
        let e = r
            .add_toml("x.toml", "[[dataset]]\nid='x.y'\nname='y'\nshape='event'\nformat='csv'\nreplace='event'\nclass='public'\ncolumns=[{header='代码',field='id',type='id'},{header='z',field='nope',type='text'}]\n")
            .unwrap_err();
        assert!(e.to_string().contains("unknown field nope"), "{e}");
    }
}
