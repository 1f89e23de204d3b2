//! A firm's facts in memory, with both times: when each was valid (its period or event date) and when the
//! platform knew it (its batch's delivery date, until a later delivery replaced it). `FirmData` holds every
//! version known by the load's cut-off; `Snapshot` is the view as of one date.

use std::sync::Arc;

/// A calendar day, as days from 0001-01-01 (chrono's `num_days_from_ce`).
pub type Day = i32;
/// A month, as `year * 12 + month - 1`.
pub type Month = i32;

pub fn day(s: &str) -> Option<Day> {
    use chrono::Datelike;
    let b = s.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y: i32 = s.get(..4)?.parse().ok()?;
    let m: u32 = s.get(5..7)?.parse().ok()?;
    let d: u32 = s.get(8..10)?.parse().ok()?;
    chrono::NaiveDate::from_ymd_opt(y, m, d).map(|d| d.num_days_from_ce())
}

pub fn day_str(d: Day) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(d)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

pub fn month(s: &str) -> Option<Month> {
    let y: i32 = s.get(..4)?.parse().ok()?;
    let m: i32 = s.get(5..7)?.parse().ok()?;
    (s.as_bytes().get(4) == Some(&b'-') && (1..=12).contains(&m)).then_some(y * 12 + m - 1)
}

pub fn month_str(m: Month) -> String {
    format!("{:04}-{:02}", m.div_euclid(12), m.rem_euclid(12) + 1)
}

/// The last day of a month.
pub fn month_end(m: Month) -> Day {
    use chrono::Datelike;
    let (y, mo) = ((m + 1).div_euclid(12), (m + 1).rem_euclid(12) + 1);
    chrono::NaiveDate::from_ymd_opt(y, mo as u32, 1)
        .map(|d| d.num_days_from_ce() - 1)
        .unwrap_or(0)
}

/// The month a day falls in.
pub fn month_of_day(d: Day) -> Month {
    use chrono::Datelike;
    chrono::NaiveDate::from_num_days_from_ce_opt(d)
        .map(|d| d.year() * 12 + d.month0() as i32)
        .unwrap_or(0)
}

/// The last month complete on day `t`.
pub fn last_complete_month(t: Day) -> Month {
    let m = month_of_day(t);
    if month_end(m) <= t {
        m
    } else {
        m - 1
    }
}

/// When the platform knew a fact: from its delivery until a later delivery replaced it (exclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Known {
    pub from: Day,
    pub to: Option<Day>,
}

impl Known {
    pub fn at(&self, t: Day) -> bool {
        self.from <= t && self.to.is_none_or(|x| x > t)
    }
}

/// A stored fact as the loader hands it over (one row of the store's facts table).
#[derive(Debug, Clone)]
pub struct RawFact {
    pub fact_id: i64,
    pub uscc: String,
    pub source: String,
    pub dataset: String,
    pub period: Option<String>,
    pub event_date: Option<String>,
    pub end_date: Option<String>,
    pub fields: String,
    pub known_from: String,
    pub known_to: Option<String>,
}

/// A metric observation (one month, or one year).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Obs {
    pub period: i32,
    pub value: f64,
    pub fact: i64,
    pub known: Known,
}

/// A coded yearly value (tax credit grade, per-mu grade, environmental grade).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct CodeObs {
    pub year: i32,
    pub code: String,
    pub fact: i64,
    pub known: Known,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Event {
    #[serde(with = "interned")]
    pub dataset: Arc<str>,
    #[serde(with = "interned")]
    pub source: Arc<str>,
    pub category: String,
    pub status: String,
    pub detail: String,
    pub date: Day,
    pub end: Option<Day>,
    pub amount: Option<f64>,
    pub fact: i64,
    pub known: Known,
}

impl Event {
    /// In force on day `t`: happened by then and not yet ended.
    pub fn active(&self, t: Day) -> bool {
        self.date <= t && self.end.is_none_or(|e| e > t)
    }
}

/// One loan's month-end report from a lender.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct LoanObs {
    #[serde(with = "interned")]
    pub source: Arc<str>,
    pub loan_id: String,
    pub month: Month,
    pub amount: f64,
    pub balance: f64,
    pub overdue_days: i64,
    /// 0 normal, 1 special mention, 2 substandard, 3 doubtful, 4 loss.
    pub class5: u8,
    pub rollover: bool,
    pub rate: Option<f64>,
    pub fact: i64,
    pub known: Known,
}

/// A guarantee contract (guarantor → borrower).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Guarantee {
    pub borrower: String,
    pub guarantor: String,
    pub amount: f64,
    pub start: Option<Day>,
    pub end: Option<Day>,
    pub kind: String,
    #[serde(with = "interned")]
    pub source: Arc<str>,
    /// The lender whose loan it secures: the reporting bank, or the creditor a guarantee firm names.
    pub lender: String,
    pub fact: i64,
    pub known: Known,
}

impl Guarantee {
    pub fn active(&self, t: Day) -> bool {
        self.start.is_none_or(|s| s <= t) && self.end.is_none_or(|e| e >= t)
    }
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    pub name: String,
    pub industry: String,
    pub township: String,
    pub size_class: String,
    pub status: String,
    pub founded: Option<Day>,
    pub dereg_date: Option<Day>,
    pub reg_capital: Option<f64>,
    pub paid_in_capital: Option<f64>,
    pub legal_rep: String,
    pub legal_rep_id: String,
    pub parent_id: String,
    pub fact: i64,
    pub known: Known,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Holding {
    pub holder_id: String,
    pub holder_name: String,
    pub holder_type: String,
    pub share: f64,
    pub fact: i64,
    pub known: Known,
}

/// A fact's period or date ("2025", "2025-03", "2025-03-10"), kept inline: one is stored per loaded fact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Label {
    len: u8,
    b: [u8; 10],
}

impl Label {
    pub fn new(s: &str) -> Label {
        let mut n = s.len().min(10);
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        let mut b = [0u8; 10];
        b[..n].copy_from_slice(&s.as_bytes()[..n]);
        Label { len: n as u8, b }
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.b[..self.len as usize]).unwrap_or_default()
    }
}

/// Where a loaded fact came from: its source and dataset, one shared pair per (source, dataset) of a load.
#[derive(Debug, PartialEq)]
pub struct Origin {
    pub source: Arc<str>,
    pub dataset: Arc<str>,
}

/// What a firm's record keeps of each loaded fact: id, origin (source and dataset), period or date. One is
/// kept per fact (about ten million in a district), so the origin is one thin shared pointer rather than two
/// names: 32 bytes a fact instead of 56.
#[derive(Debug, Clone, PartialEq)]
pub struct Prov {
    pub fact: i64,
    pub origin: Arc<Origin>,
    pub label: Label,
}

#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Prov>() == 32);

impl Prov {
    pub fn source(&self) -> &str {
        &self.origin.source
    }
    pub fn dataset(&self) -> &str {
        &self.origin.dataset
    }
}

/// Where a fact came from, for evidence and reason codes.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    pub fact_id: i64,
    pub source: String,
    pub dataset: String,
    /// The fact's period or event date.
    pub date: String,
}

/// Every known version of one firm's facts.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct FirmData {
    pub uscc: String,
    pub registrations: Vec<Registration>,
    /// Monthly and yearly metrics by `dataset:metric` (e.g. `power.daily:power_kwh`, `amr.annual_reports:revenue`).
    pub metrics: rustc_hash::FxHashMap<String, Vec<Obs>>,
    pub codes: rustc_hash::FxHashMap<String, Vec<CodeObs>>,
    pub events: Vec<Event>,
    pub loans: Vec<LoanObs>,
    pub guarantees_given: Vec<Guarantee>,
    pub guarantees_received: Vec<Guarantee>,
    pub holdings: Vec<Holding>,
    /// (fact id, source, dataset, date) of every fact loaded, in fact id order after `finish`.
    #[serde(with = "prov_list")]
    pub provenance: Vec<Prov>,
}

/// A field value as read from a fact's JSON: strings borrow from the text where they can.
#[derive(Debug, Clone, PartialEq)]
pub enum Val<'a> {
    Num(f64),
    Str(std::borrow::Cow<'a, str>),
    Other,
}

impl Val<'_> {
    fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct ValVisitor;

impl<'de> serde::de::Visitor<'de> for ValVisitor {
    type Value = Val<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_f64<E>(self, v: f64) -> Result<Val<'de>, E> {
        Ok(Val::Num(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Val<'de>, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Val<'de>, E> {
        Ok(Val::Num(v as f64))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Val<'de>, E> {
        Ok(Val::Str(std::borrow::Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Val<'de>, E> {
        Ok(Val::Str(std::borrow::Cow::Owned(v.to_string())))
    }
    fn visit_string<E>(self, v: String) -> Result<Val<'de>, E> {
        Ok(Val::Str(std::borrow::Cow::Owned(v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_unit<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_none<E>(self) -> Result<Val<'de>, E> {
        Ok(Val::Other)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Val<'de>, A::Error> {
        while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Val::Other)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Val<'de>, A::Error> {
        while a
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Val::Other)
    }
}

impl<'de> serde::Deserialize<'de> for Val<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValVisitor)
    }
}

/// A fact's fields: a JSON object read into (key, value) pairs without building a map.
pub struct Fields<'a>(pub Vec<(std::borrow::Cow<'a, str>, Val<'a>)>);

struct FieldsVisitor;

impl<'de> serde::de::Visitor<'de> for FieldsVisitor {
    type Value = Fields<'de>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Fields<'de>, A::Error> {
        let mut v = Vec::with_capacity(16);
        while let Some(k) = a.next_key::<Val<'de>>()? {
            let val = a.next_value::<Val<'de>>()?;
            if let Val::Str(k) = k {
                v.push((k, val));
            }
        }
        Ok(Fields(v))
    }
}

impl<'de> serde::Deserialize<'de> for Fields<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(FieldsVisitor)
    }
}

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&Val<'a>> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

fn num(v: &Val) -> Option<f64> {
    match v {
        Val::Num(n) => Some(*n),
        Val::Str(s) => s.trim().parse().ok(),
        Val::Other => None,
    }
}

fn text(v: Option<&Val>) -> String {
    match v {
        Some(Val::Str(s)) => s.to_string(),
        Some(Val::Num(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn class5(s: &str) -> u8 {
    match s {
        "special_mention" => 1,
        "substandard" => 2,
        "doubtful" => 3,
        "loss" => 4,
        _ => 0,
    }
}

/// Source and dataset names in a serialised `FirmData` (the loader's cache). Inside [`encode_names`] and
/// [`decode_names`] a name is written as its index in a table of the names met (a few dozen per part of the
/// cache, against two per fact): smaller, and read back as a shared `Arc` without hashing. Anywhere else
/// (JSON, say) a name is written as text and read back interned per thread.
mod interned {
    use serde::de::Error;
    use std::cell::RefCell;
    use std::sync::Arc;

    /// The names of one encoding or decoding, by index.
    #[derive(Default)]
    pub struct Table {
        pub names: Vec<Arc<str>>,
        pub index: rustc_hash::FxHashMap<Arc<str>, u32>,
    }

    thread_local! {
        static NAMES: RefCell<super::Names> = RefCell::default();
        pub static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
    }

    pub fn serialize<S: serde::Serializer>(a: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
        let i = TABLE.with(|t| {
            t.borrow_mut().as_mut().map(|t| match t.index.get(a) {
                Some(&i) => i,
                None => {
                    let i = t.names.len() as u32;
                    t.names.push(a.clone());
                    t.index.insert(a.clone(), i);
                    i
                }
            })
        });
        match i {
            Some(i) => s.serialize_u32(i),
            None => s.serialize_str(a),
        }
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Arc<str>, D::Error> {
        if TABLE.with(|t| t.borrow().is_none()) {
            return d.deserialize_str(Name);
        }
        let i = <u32 as serde::Deserialize>::deserialize(d)?;
        TABLE
            .with(|t| t.borrow().as_ref().and_then(|t| t.names.get(i as usize).cloned()))
            .ok_or_else(|| D::Error::custom(format!("name {i} is not in the table")))
    }

    /// A name read in place (no `String` per record) and interned.
    pub struct Name;

    impl serde::de::Visitor<'_> for Name {
        type Value = Arc<str>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a name")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Arc<str>, E> {
            Ok(intern(v))
        }
    }

    pub fn intern(s: &str) -> Arc<str> {
        NAMES.with(|n| n.borrow_mut().get(s))
    }

    /// The shared origin of two names interned on this thread (as [`deserialize`] gives them).
    pub fn origin(source: Arc<str>, dataset: Arc<str>) -> Arc<super::Origin> {
        NAMES.with(|n| n.borrow_mut().origin_of(source, dataset))
    }
}

/// Runs `f` (which serialises `FirmData`) with source and dataset names written as indices; returns its result
/// and the table of names, in index order, to store beside the bytes.
pub fn encode_names<R>(f: impl FnOnce() -> R) -> (R, Vec<String>) {
    let _scope = NameScope::enter(interned::Table::default());
    let r = f();
    let table = interned::TABLE.with(|t| t.borrow_mut().take()).unwrap_or_default();
    (r, table.names.iter().map(|n| n.to_string()).collect())
}

/// Names are indices while it lives (on this thread), text again after, even if the work inside panics.
struct NameScope;

impl NameScope {
    fn enter(t: interned::Table) -> NameScope {
        interned::TABLE.with(|x| *x.borrow_mut() = Some(t));
        NameScope
    }
}

impl Drop for NameScope {
    fn drop(&mut self) {
        interned::TABLE.with(|x| *x.borrow_mut() = None);
    }
}

/// Runs `f` (which deserialises what [`encode_names`] serialised) with the table of names stored beside it.
pub fn decode_names<R>(names: &[&str], f: impl FnOnce() -> R) -> R {
    let names = names.iter().map(|n| interned::intern(n)).collect();
    let _scope = NameScope::enter(interned::Table {
        names,
        ..Default::default()
    });
    f()
}

/// `FirmData::provenance` serialised as (fact id, source, dataset, date label) tuples, names interned on reading.
mod prov_list {
    use super::{Label, Prov};
    use serde::Deserialize;
    use std::sync::Arc;

    pub fn serialize<S: serde::Serializer>(v: &[Prov], s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct P<'a>(
            i64,
            #[serde(serialize_with = "name")] &'a Arc<str>,
            #[serde(serialize_with = "name")] &'a Arc<str>,
            Label,
        );
        fn name<S: serde::Serializer>(a: &&Arc<str>, s: S) -> Result<S::Ok, S::Error> {
            super::interned::serialize(a, s)
        }
        s.collect_seq(
            v.iter()
                .map(|p| P(p.fact, &p.origin.source, &p.origin.dataset, p.label)),
        )
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<Prov>, D::Error> {
        #[derive(Deserialize)]
        struct P(
            i64,
            #[serde(with = "super::interned")] Arc<str>,
            #[serde(with = "super::interned")] Arc<str>,
            Label,
        );
        /// Each tuple becomes a `Prov` as it is read, so the list is allocated at `Prov`'s size (collecting
        /// a `Vec<P>` into `Prov`s would reuse its larger allocation).
        #[derive(Deserialize)]
        #[serde(from = "P")]
        struct Q(Prov);
        impl From<P> for Q {
            fn from(P(fact, source, dataset, label): P) -> Q {
                Q(Prov {
                    fact,
                    origin: super::interned::origin(source, dataset),
                    label,
                })
            }
        }
        let v: Vec<Q> = Vec::deserialize(d)?;
        Ok(v.into_iter().map(|q| q.0).collect())
    }
}

/// Interns source and dataset names, and their pairs: for one load, or for a thread's cache decoding.
#[derive(Default)]
pub struct Names {
    names: rustc_hash::FxHashMap<String, Arc<str>>,
    /// By the addresses of the two interned names (kept alive by the `Origin` itself): no string is hashed
    /// to find an origin.
    origins: rustc_hash::FxHashMap<(usize, usize), Arc<Origin>>,
}

impl Names {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.names.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.names.insert(s.to_string(), a.clone());
        a
    }

    /// The shared origin of a (source, dataset) pair.
    pub fn origin(&mut self, source: &str, dataset: &str) -> Arc<Origin> {
        let (s, d) = (self.get(source), self.get(dataset));
        self.origin_of(s, d)
    }

    /// The shared origin of a pair of names this `Names` interned (other `Arc`s of the same text would only
    /// give a second, equal origin).
    fn origin_of(&mut self, source: Arc<str>, dataset: Arc<str>) -> Arc<Origin> {
        let key = (
            Arc::as_ptr(&source) as *const u8 as usize,
            Arc::as_ptr(&dataset) as *const u8 as usize,
        );
        self.origins
            .entry(key)
            .or_insert_with(|| Arc::new(Origin { source, dataset }))
            .clone()
    }
}

/// Why a fact could not be read into the model's inputs (it is skipped, and counted by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub fact_id: i64,
    pub reason: &'static str,
}

impl FirmData {
    pub fn new(uscc: &str) -> FirmData {
        FirmData {
            uscc: uscc.to_string(),
            ..Default::default()
        }
    }

    /// Adds one stored fact. Facts of unknown shape are ignored (they feed no indicator); unreadable ones
    /// are reported.
    pub fn add(&mut self, f: &RawFact, names: &mut Names) -> Result<(), Skipped> {
        let skip = |reason| Skipped {
            fact_id: f.fact_id,
            reason,
        };
        let known = Known {
            from: day(&f.known_from).ok_or(skip("known_from"))?,
            to: f.known_to.as_deref().and_then(day),
        };
        let o: Fields = serde_json::from_str(&f.fields).map_err(|_| skip("json"))?;
        let origin = names.origin(&f.source, &f.dataset);
        let date_label = Label::new(
            f.period
                .as_deref()
                .or(f.event_date.as_deref())
                .or_else(|| o.get("date").and_then(Val::as_str))
                .unwrap_or_default(),
        );
        self.provenance.push(Prov {
            fact: f.fact_id,
            origin: origin.clone(),
            label: date_label,
        });
        let ds = f.dataset.as_str();
        if ds == "amr.registration" {
            self.registrations.push(Registration {
                name: text(o.get("name")),
                industry: text(o.get("industry")),
                township: text(o.get("township")),
                size_class: text(o.get("size_class")),
                status: text(o.get("status")),
                founded: o.get("founded").and_then(Val::as_str).and_then(day),
                dereg_date: o.get("dereg_date").and_then(Val::as_str).and_then(day),
                reg_capital: o.get("reg_capital").and_then(num),
                paid_in_capital: o.get("paid_in_capital").and_then(num),
                legal_rep: text(o.get("legal_rep")),
                legal_rep_id: text(o.get("legal_rep_id")),
                parent_id: text(o.get("parent_id")),
                fact: f.fact_id,
                known,
            });
            return Ok(());
        }
        if ds == "amr.shareholders" {
            self.holdings.push(Holding {
                holder_id: text(o.get("holder_id")),
                holder_name: text(o.get("holder_name")),
                holder_type: text(o.get("holder_type")),
                share: o.get("share_ratio").and_then(num).unwrap_or(0.0),
                fact: f.fact_id,
                known,
            });
            return Ok(());
        }
        if ds.starts_with("lender.") && ds.ends_with(".loans") {
            let m = f.period.as_deref().and_then(month).ok_or(skip("period"))?;
            let amount = o.get("amount").and_then(num).unwrap_or(0.0);
            self.loans.push(LoanObs {
                source: origin.source.clone(),
                loan_id: text(o.get("loan_id")),
                month: m,
                amount,
                balance: o.get("balance").and_then(num).unwrap_or(amount),
                overdue_days: o.get("overdue_days").and_then(num).unwrap_or(0.0) as i64,
                class5: class5(&text(o.get("class5"))),
                rollover: text(o.get("rollover")) == "yes",
                rate: o.get("rate").and_then(num),
                fact: f.fact_id,
                known,
            });
            return Ok(());
        }
        if ds.starts_with("lender.") && ds.ends_with(".guarantees") {
            let g = Guarantee {
                borrower: text(o.get("id")),
                guarantor: text(o.get("guarantor_id")),
                amount: o.get("amount").and_then(num).unwrap_or(0.0),
                start: o.get("start").and_then(Val::as_str).and_then(day),
                end: o.get("end").and_then(Val::as_str).and_then(day),
                kind: text(o.get("kind")),
                lender: o
                    .get("lender")
                    .and_then(Val::as_str)
                    .filter(|l| !l.is_empty())
                    .map_or_else(|| origin.source.to_string(), str::to_string),
                source: origin.source.clone(),
                fact: f.fact_id,
                known,
            };
            if g.guarantor == self.uscc {
                self.guarantees_given.push(g);
            } else {
                self.guarantees_received.push(g);
            }
            return Ok(());
        }
        if let Some(p) = f.period.as_deref() {
            // A metric row: monthly "YYYY-MM" or yearly "YYYY".
            let period = if p.len() == 4 {
                p.parse::<i32>().map_err(|_| skip("period"))?
            } else {
                month(p).ok_or(skip("period"))?
            };
            let mut key = String::with_capacity(48);
            for (k, val) in &o.0 {
                let Some(name) = k.strip_prefix("metric:") else {
                    continue;
                };
                key.clear();
                key.push_str(ds);
                key.push(':');
                key.push_str(name);
                match val {
                    Val::Str(code) if num(val).is_none() => {
                        let c = CodeObs {
                            year: period,
                            code: code.to_string(),
                            fact: f.fact_id,
                            known,
                        };
                        match self.codes.get_mut(key.as_str()) {
                            Some(v) => v.push(c),
                            None => {
                                self.codes.insert(key.clone(), vec![c]);
                            }
                        }
                    }
                    _ => {
                        if let Some(x) = num(val) {
                            let ob = Obs {
                                period,
                                value: x,
                                fact: f.fact_id,
                                known,
                            };
                            match self.metrics.get_mut(key.as_str()) {
                                Some(v) => v.push(ob),
                                None => {
                                    self.metrics.insert(key.clone(), vec![ob]);
                                }
                            }
                        }
                    }
                }
            }
            return Ok(());
        }
        // Event dates come from the fact's columns, or from its fields where the caller has only those.
        let fallback = |k: &str| o.get(k).and_then(Val::as_str).map(str::to_string);
        let event_date = f.event_date.clone().or_else(|| fallback("date"));
        let end_date = f.end_date.clone().or_else(|| fallback("end_date"));
        if let Some(d) = event_date.as_deref() {
            let date = day(d).ok_or(skip("event_date"))?;
            self.events.push(Event {
                dataset: origin.dataset.clone(),
                source: origin.source.clone(),
                category: text(o.get("category")),
                status: text(o.get("status")),
                detail: text(o.get("detail")),
                date,
                end: end_date.as_deref().and_then(day),
                amount: o.get("amount").and_then(num),
                fact: f.fact_id,
                known,
            });
        }
        Ok(())
    }

    /// Takes in the facts of `other`, the same firm's record built from another share of the facts (a loader
    /// that reads on several threads); [`FirmData::finish`] then orders everything by fact id as if one
    /// record had read them all.
    pub fn absorb(&mut self, other: FirmData) {
        let FirmData {
            uscc,
            registrations,
            metrics,
            codes,
            events,
            loans,
            guarantees_given,
            guarantees_received,
            holdings,
            provenance,
        } = other;
        debug_assert_eq!(uscc, self.uscc);
        self.registrations.extend(registrations);
        for (k, v) in metrics {
            self.metrics.entry(k).or_default().extend(v);
        }
        for (k, v) in codes {
            self.codes.entry(k).or_default().extend(v);
        }
        self.events.extend(events);
        self.loans.extend(loans);
        self.guarantees_given.extend(guarantees_given);
        self.guarantees_received.extend(guarantees_received);
        self.holdings.extend(holdings);
        self.provenance.extend(provenance);
    }

    /// Puts every list in fact id order, so results (evidence lists in particular) do not depend on the order
    /// the loader read the facts in. Call once after loading.
    pub fn finish(&mut self) {
        self.provenance.sort_by_key(|p| p.fact);
        self.provenance.dedup_by_key(|p| p.fact);
        self.registrations.sort_by_key(|x| x.fact);
        self.events.sort_by_key(|x| x.fact);
        self.loans.sort_by_key(|x| x.fact);
        self.guarantees_given.sort_by_key(|x| x.fact);
        self.guarantees_received.sort_by_key(|x| x.fact);
        self.holdings.sort_by_key(|x| x.fact);
        for v in self.metrics.values_mut() {
            v.sort_by_key(|x| (x.period, x.fact));
        }
        for v in self.codes.values_mut() {
            v.sort_by_key(|x| (x.year, x.fact));
        }
    }

    /// The source, dataset and date of a loaded fact.
    pub fn provenance_of(&self, fact: i64) -> Option<&Prov> {
        self.provenance
            .binary_search_by_key(&fact, |p| p.fact)
            .ok()
            .map(|i| &self.provenance[i])
    }

    pub fn provenance(&self, fact: i64) -> Option<Provenance> {
        self.provenance_of(fact).map(|p| Provenance {
            fact_id: fact,
            source: p.source().to_string(),
            dataset: p.dataset().to_string(),
            date: p.label.as_str().to_string(),
        })
    }

    /// The registration in force on `t` as known on `k` (`k >= t`): the version the platform held on `t`; when
    /// the register was first delivered after `t` (a backfill), the first version delivered — never a later
    /// change, which would leak what happened after `t` into a past date.
    pub fn registration_at(&self, t: Day, k: Day) -> Option<&Registration> {
        let first = self
            .registrations
            .iter()
            .filter(|r| r.known.from <= k)
            .map(|r| r.known.from)
            .min()?;
        self.registration(t.min(k).max(first))
    }

    /// The shareholders in force on `t` as known on `k`, by the same rule as `registration_at`.
    pub fn holdings_at(&self, t: Day, k: Day) -> impl Iterator<Item = &Holding> {
        let first = self
            .holdings
            .iter()
            .filter(|h| h.known.from <= k)
            .map(|h| h.known.from)
            .min()
            .unwrap_or(t);
        let at = t.min(k).max(first);
        self.holdings.iter().filter(move |h| h.known.at(at))
    }

    /// The registration as known on `t`.
    pub fn registration(&self, t: Day) -> Option<&Registration> {
        self.registrations
            .iter()
            .filter(|r| r.known.at(t))
            .max_by_key(|r| r.known.from)
    }
}
