//! The storage interface the platform writes and reads through. Backends (`store-sqlite`, later
//! `store-postgres`) implement it; only the binary picks one.
//!
//! Architecture invariant: no database driver, no serialization format and no IO here — plain types
//! and traits. Every enterprise-scoped row is keyed by USCC.

pub mod conformance;
pub mod pool;
pub mod rows;

/// Errors from a backend, with the backend's message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    #[error("store: not found: {0}")]
    NotFound(String),
    /// A conditional update found no row in the expected state (someone changed it meanwhile).
    #[error("store: conflict: {0}")]
    Conflict(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A delivered file, identified by the SHA-256 of its bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchMeta {
    pub batch_id: String,
    pub source: String,
    pub dataset: String,
    pub file_name: String,
    /// The date it was (or would have been) delivered: facts are known from this date.
    pub delivered_on: String,
    /// The actual time of ingest (RFC 3339); a fixed clock can be supplied for tests.
    pub ingested_at: String,
}

/// One independently gzip-compressed piece of a delivered file (about 1 MB of source text), stored
/// with the batch so that one row can be read back by decompressing one piece.
#[derive(Debug, Clone, PartialEq)]
pub struct ArchiveChunk {
    pub chunk: u32,
    /// First row (line, or sheet row) it holds; rows are numbered from 1 = the header.
    pub first_row: u64,
    /// The gzip member.
    pub data: Vec<u8>,
}

/// A validated fact to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFact<'a> {
    pub uscc: &'a str,
    pub key: &'a str,
    pub period: Option<&'a str>,
    pub date: Option<&'a str>,
    pub end_date: Option<&'a str>,
    /// Canonical fields as JSON text.
    pub fields: &'a str,
    pub content_hash: &'a str,
    pub row: u64,
    pub n_rows: u64,
}

/// What storing a fact did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PutOutcome {
    Inserted,
    /// A new version replaced the current one (which is kept for history).
    Replaced,
    /// The same content is already current: nothing changed.
    Unchanged,
    /// A delivery older than the current version arrived late: stored as the version known between
    /// its delivery date and the next later version; the current version is untouched.
    Backdated,
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRow<'a> {
    pub row: u64,
    pub reason: &'a str,
    pub detail: &'a str,
    pub raw: &'a str,
}

/// Counts of one batch, recorded when it commits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchCounts {
    pub rows_read: u64,
    pub inserted: u64,
    pub replaced: u64,
    pub unchanged: u64,
    /// Facts closed because a re-delivery of their firm and period no longer holds them.
    pub retired: u64,
    pub quarantined: u64,
}

impl std::ops::AddAssign for BatchCounts {
    fn add_assign(&mut self, o: Self) {
        self.rows_read += o.rows_read;
        self.inserted += o.inserted;
        self.replaced += o.replaced;
        self.unchanged += o.unchanged;
        self.retired += o.retired;
        self.quarantined += o.quarantined;
    }
}

/// Writes batches in one transaction (group commit): nothing written is visible or durable until
/// `commit` returns, and after `commit` returns all of it survives a crash or power loss. Callers
/// acknowledge a batch only after the commit that holds it.
pub trait BatchWriter {
    /// Starts a batch; facts, quarantine rows and chunks that follow belong to it.
    fn start_batch(&mut self, meta: &BatchMeta) -> Result<()>;
    fn put_fact(&mut self, f: &NewFact<'_>) -> Result<PutOutcome>;
    /// Stores facts in order, exactly as `put_fact` on each in turn would: the same outcomes, and new fact
    /// ids drawn in the same order. A backend may load them in bulk (PostgreSQL uses COPY).
    fn put_facts(&mut self, facts: &[NewFact<'_>]) -> Result<Vec<PutOutcome>> {
        facts.iter().map(|f| self.put_fact(f)).collect()
    }
    fn quarantine(&mut self, q: &QuarantineRow<'_>) -> Result<()>;
    fn add_chunk(&mut self, c: &ArchiveChunk) -> Result<()>;
    /// Snapshot replacement by set: closes the current facts of this source and dataset for the firm
    /// and period that the batch did not deliver again (`keep`: the keys it did). Returns how many.
    fn retire_absent(&mut self, uscc: &str, period: Option<&str>, keep: &[&str]) -> Result<u64>;
    /// Ends the current batch, recording its counts and file-level diagnostics.
    fn end_batch(&mut self, counts: BatchCounts, diagnostics: &[String]) -> Result<()>;
    /// Makes everything written durable.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A stored fact with its provenance.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredFact {
    pub fact_id: i64,
    pub uscc: String,
    pub source: String,
    pub dataset: String,
    pub key: String,
    pub period: Option<String>,
    pub fields: String,
    pub batch_id: String,
    pub row: u64,
    pub n_rows: u64,
    pub known_from: String,
    pub known_to: Option<String>,
    pub ingested_at: String,
}

/// Summary counts for reports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoreStats {
    pub batches: u64,
    pub firms: u64,
    pub facts_current: u64,
    pub facts_history: u64,
    pub source_rows: u64,
    pub facts_by_source: Vec<(String, u64)>,
    pub quarantine_by_reason: Vec<(String, u64)>,
}

/// A stored quarantine row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredQuarantine {
    pub batch_id: String,
    pub source: String,
    pub dataset: String,
    pub row: u64,
    pub reason: String,
    pub detail: String,
    pub raw: String,
}

/// Where [`Store::scan_facts_split`] hands a share of the facts (on a thread of its own).
pub type FactSink<'a> = dyn FnMut(ScanFact) -> Result<()> + Send + 'a;

/// [`Store::scan_facts_split`] without splitting: every fact to the first sink, on this thread.
pub fn scan_into_first<S: Store + ?Sized>(store: &S, known_by: &str, sinks: &mut [&mut FactSink<'_>]) -> Result<()> {
    match sinks.first_mut() {
        Some(s) => store.scan_facts(known_by, &mut **s),
        None => Ok(()),
    }
}

/// One fact version as the credit models read it (see `Store::scan_facts`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScanFact {
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

/// One firm's score in a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreRow {
    pub uscc: String,
    pub score: f64,
    pub pd: f64,
    pub grade: String,
    pub grade_unadjusted: String,
    pub colour: Option<String>,
    /// The whole assessment (JSON).
    pub detail: String,
}

/// A warning in force at a run's date.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WarningRow {
    pub uscc: String,
    pub rule: u32,
    pub colour: String,
    pub since: Option<String>,
    pub clears_on: Option<String>,
    /// Fact ids (JSON array).
    pub evidence: String,
}

/// A change of a firm's warnings, colour or grade.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventRow {
    pub id: String,
    pub uscc: String,
    pub date: String,
    pub kind: String,
    pub rule: Option<u32>,
    pub before: String,
    pub after: String,
}

/// A whole scoring run's results, written in one transaction; re-writing a run id replaces it.
/// Every enterprise-scoped row carries its USCC. Detail columns hold JSON.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScoreRun {
    pub run_id: String,
    pub as_of: String,
    pub model_version: String,
    pub created_at: String,
    pub benchmarks: String,
    pub scores: Vec<ScoreRow>,
    pub warnings: Vec<WarningRow>,
    /// (uscc, rule, colour, start, end).
    pub spans: Vec<(String, u32, String, String, Option<String>)>,
    /// Stored once per id across runs.
    pub events: Vec<EventRow>,
    /// (uscc, month, pd, score, grade, colour).
    pub history: Vec<(String, String, f64, f64, String, Option<String>)>,
    /// (month, dimension, member, value, detail).
    pub index: Vec<(String, String, String, f64, String)>,
    /// (month, dimension, member, uscc, delta).
    pub movers: Vec<(String, String, String, String, f64)>,
    /// Guarantee groups: (group id, firms, firms in circles, total guaranteed amount, detail JSON).
    pub circles: Vec<(String, u64, u64, f64, String)>,
}

/// A stored run's header.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    pub run_id: String,
    pub as_of: String,
    pub model_version: String,
    pub created_at: String,
    pub firms: u64,
}

/// One stored fact version with every column (see [`Record::Fact`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FactRecord {
    pub fact_id: i64,
    pub uscc: String,
    pub source: String,
    pub dataset: String,
    pub key: String,
    pub period: Option<String>,
    pub event_date: Option<String>,
    pub end_date: Option<String>,
    pub fields: String,
    pub content_hash: String,
    pub batch_id: String,
    pub row: u64,
    pub n_rows: u64,
    pub known_from: String,
    pub known_to: Option<String>,
    pub ingested_at: String,
    pub superseded_by: Option<i64>,
}

/// One row of any stored table, as plain data: what [`Store::export`] hands out and [`Store::import`]
/// takes, so that a store can be copied to another backend or to a file and back. Ids (fact ids,
/// quarantine ids) are kept.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `batches`.
    Batch {
        meta: BatchMeta,
        counts: BatchCounts,
        /// The file-level diagnostics, one per line.
        diagnostics: String,
    },
    /// `archive_chunks`.
    Chunk { batch_id: String, chunk: ArchiveChunk },
    /// `facts`.
    Fact(FactRecord),
    /// `quarantine` (`row.batch_id` names its batch).
    Quarantine { id: i64, row: StoredQuarantine },
    /// `models`, in the order they were stored (the tie-break of the latest model).
    Model {
        version: String,
        created_at: String,
        json: String,
    },
    /// `score_runs`.
    Run {
        run_id: String,
        as_of: String,
        model_version: String,
        created_at: String,
        firms: u64,
        benchmarks: String,
    },
    /// `scores`.
    Score { run_id: String, row: ScoreRow },
    /// `warnings`.
    Warning { run_id: String, row: WarningRow },
    /// `warning_spans`.
    Span {
        run_id: String,
        uscc: String,
        rule: u32,
        colour: String,
        start: String,
        end: Option<String>,
    },
    /// `credit_events`, with the run that first wrote it.
    Event { row: EventRow, first_run: String },
    /// `firm_months`.
    FirmMonth {
        run_id: String,
        uscc: String,
        month: String,
        pd: f64,
        score: f64,
        grade: String,
        colour: Option<String>,
    },
    /// `risk_index`.
    Index {
        run_id: String,
        month: String,
        dimension: String,
        member: String,
        value: f64,
        detail: String,
    },
    /// `index_movers`.
    Mover {
        run_id: String,
        month: String,
        dimension: String,
        member: String,
        uscc: String,
        delta: f64,
    },
    /// `circles`.
    Circle {
        run_id: String,
        group_id: String,
        firms: u64,
        in_circles: u64,
        total_amount: f64,
        detail: String,
    },
    /// A row of one of the spec'd tables ([`rows::TABLES`]), exported after the tables above.
    Row { table: &'static str, row: rows::Row },
    /// The last record of an export: [`Store::content_hash`] of the exported snapshot, computed in the same
    /// read transaction. An import that receives it checks the imported content against it before committing.
    ContentHash(String),
}

impl Record {
    /// The table the record belongs to (`content_hash` for the trailer).
    pub fn table(&self) -> &'static str {
        match self {
            Record::Batch { .. } => "batches",
            Record::Chunk { .. } => "archive_chunks",
            Record::Fact(_) => "facts",
            Record::Quarantine { .. } => "quarantine",
            Record::Model { .. } => "models",
            Record::Run { .. } => "score_runs",
            Record::Score { .. } => "scores",
            Record::Warning { .. } => "warnings",
            Record::Span { .. } => "warning_spans",
            Record::Event { .. } => "credit_events",
            Record::FirmMonth { .. } => "firm_months",
            Record::Index { .. } => "risk_index",
            Record::Mover { .. } => "index_movers",
            Record::Circle { .. } => "circles",
            Record::Row { table, .. } => table,
            Record::ContentHash(_) => "content_hash",
        }
    }
}

/// Every table an export covers, in export order.
pub const TABLES: [&str; 14] = [
    "batches",
    "archive_chunks",
    "facts",
    "quarantine",
    "models",
    "score_runs",
    "scores",
    "warnings",
    "warning_spans",
    "credit_events",
    "firm_months",
    "risk_index",
    "index_movers",
    "circles",
];

/// The error of an import whose imported content does not hash to the exported snapshot's content hash.
pub fn hash_mismatch(expected: &str, got: &str) -> StoreError {
    StoreError::Backend(format!(
        "import: the imported content hashes to {got}, the export's snapshot to {expected}; nothing was imported"
    ))
}

/// The error of an import into a store that holds data.
pub fn not_empty(table: &str) -> StoreError {
    StoreError::Backend(format!(
        "import: the target store is not empty (table {table} has rows); import only into a new, empty store"
    ))
}

/// The storage interface.
pub trait Store {
    /// Hands every row of every table to `sink` (in [`TABLES`] order, then a [`Record::ContentHash`]),
    /// from one consistent snapshot: a single read transaction, so writers may go on meanwhile (SQLite in
    /// WAL mode, PostgreSQL in REPEATABLE READ).
    fn export(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()>;
    /// Writes the records `next` yields (until `None`) into this store, which must be empty, in one
    /// transaction, keeping fact and quarantine ids; new facts written afterwards get ids after the
    /// imported ones. When a [`Record::ContentHash`] arrives, the imported content must hash to it, or
    /// nothing is imported. Returns the number of table rows imported.
    fn import(&mut self, next: &mut dyn FnMut() -> Result<Option<Record>>) -> Result<u64>;
    /// Whether a batch (by content hash) is already stored.
    fn has_batch(&self, batch_id: &str) -> Result<bool>;
    /// The ids of every stored batch.
    fn batch_ids(&self) -> Result<Vec<String>>;
    /// The firms with a fact version from this batch, sorted (a scan: for recovery, not for every request).
    fn batch_firms(&self, batch_id: &str) -> Result<Vec<String>>;
    /// Starts a write transaction for one or more batches.
    fn begin<'s>(&'s mut self) -> Result<Box<dyn BatchWriter + 's>>;
    /// Current registration crosswalk: (USCC, registration number if any).
    fn crosswalk(&self) -> Result<Vec<(String, Option<String>)>>;
    /// A fact and its provenance.
    fn fact(&self, fact_id: i64) -> Result<StoredFact>;
    /// The facts of one firm as known on `as_of` (YYYY-MM-DD): the versions current then.
    fn facts_of(&self, uscc: &str, as_of: Option<&str>) -> Result<Vec<StoredFact>>;
    /// The archive chunk holding `row` of a batch.
    /// The current versions of every fact of one source's dataset (e.g. the register, for the search index),
    /// in key order.
    fn current_facts(&self, source: &str, dataset: &str) -> Result<Vec<StoredFact>>;
    fn chunk_for(&self, batch_id: &str, row: u64) -> Result<ArchiveChunk>;
    fn stats(&self) -> Result<StoreStats>;
    /// Quarantine rows, optionally only those whose reason starts with `reason_prefix`.
    fn quarantine_rows(&self, reason_prefix: Option<&str>, limit: u64) -> Result<Vec<StoredQuarantine>>;
    /// A hash of the store's whole logical content (facts with history, quarantine, batches without
    /// ingest times), to compare stores.
    fn content_hash(&self) -> Result<String>;

    /// Every fact version the platform knew by `known_by` (YYYY-MM-DD; delivered on or before it), with its
    /// known-from and known-to dates, in fact id order, handed to `f` one at a time.
    fn scan_facts(&self, known_by: &str, f: &mut dyn FnMut(ScanFact) -> Result<()>) -> Result<()>;
    /// The facts of [`Store::scan_facts`], split over `sinks`: each fact goes to exactly one sink, and each
    /// sink gets its facts in fact id order. A store that can read on several connections at once (SQLite)
    /// scans a range of fact ids per sink, each on its own thread; the default hands every fact to the first
    /// sink, on this thread. A caller must not depend on how the facts are split.
    fn scan_facts_split(&self, known_by: &str, sinks: &mut [&mut FactSink<'_>]) -> Result<()> {
        scan_into_first(self, known_by, sinks)
    }
    /// The latest delivery date of any stored fact: the data cut-off.
    fn data_cutoff(&self) -> Result<Option<String>>;
    /// The generation of the facts: every commit that writes facts (a delivery, an import) moves it on and
    /// retires the derived cache. `None`: the store keeps no derived cache (the default).
    fn fact_generation(&self) -> Result<Option<u64>> {
        Ok(None)
    }
    /// Hands the derived cache of the facts stored under `key` (the credit loader's per-firm records) to
    /// `part`, part by part in order, all read in one transaction; false, with nothing handed over, when the
    /// store holds none under `key` for the current generation.
    fn read_fact_cache(&self, key: &str, part: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        let _ = (key, part);
        Ok(false)
    }
    /// Replaces the derived cache with `parts` under `key`, provided the facts are still at `generation`
    /// (read before they were); false, with nothing written, when a commit of facts came in between.
    fn write_fact_cache(&self, generation: u64, key: &str, parts: &[Vec<u8>]) -> Result<bool> {
        let _ = (generation, key, parts);
        Ok(false)
    }
    /// Guarantee facts (stored under the borrower) naming `guarantor`, as current on `known_by`.
    fn guarantees_given(&self, guarantor: &str, known_by: &str) -> Result<Vec<ScanFact>>;
    /// Stores a model artefact (JSON) under its version; storing the same version again is a no-op.
    fn put_model(&mut self, version: &str, created_at: &str, json: &str) -> Result<()>;
    /// A stored model: the given version, or the latest stored.
    fn model(&self, version: Option<&str>) -> Result<Option<(String, String)>>;
    /// Writes a scoring run (replacing a run with the same id).
    fn put_run(&mut self, run: &ScoreRun) -> Result<()>;
    /// Stored runs, newest as-of first.
    fn runs(&self) -> Result<Vec<RunInfo>>;
    /// The run with the latest as-of date (of several on that date, the last `runs` lists), if any: the run
    /// the platform's views, the live path and the incremental recompute read.
    fn latest_run(&self) -> Result<Option<RunInfo>> {
        Ok(self.runs()?.into_iter().max_by(|a, b| a.as_of.cmp(&b.as_of)))
    }
    /// A run's benchmarks (JSON).
    fn run_benchmarks(&self, run_id: &str) -> Result<String>;
    /// One firm's stored score detail (JSON) in a run.
    fn run_score(&self, run_id: &str, uscc: &str) -> Result<Option<String>>;
    /// A run's scores (the `detail` column left empty), by USCC.
    fn run_scores(&self, run_id: &str) -> Result<Vec<ScoreRow>>;
    /// A run's index points: (month, dimension, member, value).
    fn run_index(&self, run_id: &str, dimension: Option<&str>) -> Result<Vec<(String, String, String, f64)>>;
    /// The firms that moved an index group most in a month: (uscc, delta), largest first.
    fn run_movers(&self, run_id: &str, dimension: &str, member: &str, month: &str) -> Result<Vec<(String, f64)>>;
    /// A run's guarantee groups (detail JSON), largest total amount first; one group with `group_id`.
    fn run_circles(&self, run_id: &str, group_id: Option<&str>) -> Result<Vec<String>>;
    /// Change events of a firm (or all when `uscc` is None), oldest first.
    fn credit_events(&self, uscc: Option<&str>) -> Result<Vec<EventRow>>;
    /// Checks that the store still answers (a pool calls it before handing out a connection).
    /// The batches of one source, latest delivery first (ties by ingest time, then id).
    fn batches_of(&self, source: &str) -> Result<Vec<(BatchMeta, BatchCounts)>>;
    /// The quarantine rows of one batch, in row order (at most `limit`).
    fn quarantine_of(&self, batch_id: &str, limit: u64) -> Result<Vec<StoredQuarantine>>;
    /// Applies changes to the spec'd tables ([`rows`]) in one transaction: all of them or none.
    fn apply_rows(&mut self, ops: &[rows::RowOp]) -> Result<()>;
    /// Reads rows of a spec'd table.
    fn rows(&self, q: &rows::RowQuery) -> Result<Vec<rows::Row>>;
    fn ping(&self) -> Result<()> {
        Ok(())
    }
    /// Whether the connection is known to be lost (a pool then drops it instead of reusing it).
    fn is_broken(&self) -> bool {
        false
    }
}
