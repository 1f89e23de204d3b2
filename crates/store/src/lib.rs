//! The storage interface the platform writes and reads through. Backends (`store-sqlite`, later
//! `store-postgres`) implement it; only the binary picks one.
//!
//! Architecture invariant: no database driver, no serialization format and no IO here — plain types
//! and traits. Every enterprise-scoped row is keyed by USCC.

pub mod conformance;

/// Errors from a backend, with the backend's message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store: {0}")]
    Backend(String),
    #[error("store: not found: {0}")]
    NotFound(String),
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

/// The storage interface.
pub trait Store {
    /// Whether a batch (by content hash) is already stored.
    fn has_batch(&self, batch_id: &str) -> Result<bool>;
    /// The ids of every stored batch.
    fn batch_ids(&self) -> Result<Vec<String>>;
    /// Starts a write transaction for one or more batches.
    fn begin<'s>(&'s mut self) -> Result<Box<dyn BatchWriter + 's>>;
    /// Current registration crosswalk: (USCC, registration number if any).
    fn crosswalk(&self) -> Result<Vec<(String, Option<String>)>>;
    /// A fact and its provenance.
    fn fact(&self, fact_id: i64) -> Result<StoredFact>;
    /// The facts of one firm as known on `as_of` (YYYY-MM-DD): the versions current then.
    fn facts_of(&self, uscc: &str, as_of: Option<&str>) -> Result<Vec<StoredFact>>;
    /// The archive chunk holding `row` of a batch.
    fn chunk_for(&self, batch_id: &str, row: u64) -> Result<ArchiveChunk>;
    fn stats(&self) -> Result<StoreStats>;
    /// Quarantine rows, optionally only those whose reason starts with `reason_prefix`.
    fn quarantine_rows(&self, reason_prefix: Option<&str>, limit: u64) -> Result<Vec<StoredQuarantine>>;
    /// A hash of the store's whole logical content (facts with history, quarantine, batches without
    /// ingest times), to compare stores.
    fn content_hash(&self) -> Result<String>;
}
