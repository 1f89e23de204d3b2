//! SQLite backend: the embedded default store.
//!
//! Durability: WAL journal with `synchronous=FULL`, so a committed batch survives kill -9 and power
//! loss (the WAL is fsynced at every commit). Batches are committed in groups; the verbatim archive of
//! each delivered file lives in the same database, so one fsync covers facts, quarantine and archive.

use rusqlite::{params, Connection, OptionalExtension};
use sha2::{Digest, Sha256};
use std::path::Path;
use xinyong_store::*;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS batches (
  batch_id TEXT PRIMARY KEY,          -- SHA-256 of the delivered file's bytes
  source TEXT NOT NULL, dataset TEXT NOT NULL, file_name TEXT NOT NULL,
  delivered_on TEXT NOT NULL, ingested_at TEXT NOT NULL,
  rows_read INTEGER NOT NULL, inserted INTEGER NOT NULL, replaced INTEGER NOT NULL,
  unchanged INTEGER NOT NULL, retired INTEGER NOT NULL, quarantined INTEGER NOT NULL, diagnostics TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS archive_chunks (      -- the delivered file, verbatim, as gzip members
  batch_id TEXT NOT NULL, chunk INTEGER NOT NULL, first_row INTEGER NOT NULL,
  data BLOB NOT NULL, PRIMARY KEY (batch_id, chunk)
);
CREATE TABLE IF NOT EXISTS facts (
  fact_id INTEGER PRIMARY KEY,
  uscc TEXT NOT NULL, source TEXT NOT NULL, dataset TEXT NOT NULL, key TEXT NOT NULL,
  period TEXT, event_date TEXT, end_date TEXT, fields TEXT NOT NULL, content_hash TEXT NOT NULL,
  batch_id TEXT NOT NULL, row INTEGER NOT NULL, n_rows INTEGER NOT NULL,
  known_from TEXT NOT NULL,           -- the delivery date of its batch
  known_to TEXT,                      -- NULL while current; the delivery date of its replacement
  ingested_at TEXT NOT NULL, superseded_by INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS facts_current ON facts(source, dataset, key) WHERE known_to IS NULL;
CREATE INDEX IF NOT EXISTS facts_uscc ON facts(uscc, dataset);
-- Guarantees are stored under the borrower; the guarantor's side is found through this partial index.
CREATE INDEX IF NOT EXISTS facts_guarantor ON facts(json_extract(fields, '$.guarantor_id'))
  WHERE dataset IN ('lender.bank.guarantees', 'lender.gc.guarantees');
CREATE TABLE IF NOT EXISTS quarantine (
  id INTEGER PRIMARY KEY, batch_id TEXT NOT NULL, source TEXT NOT NULL, dataset TEXT NOT NULL,
  row INTEGER NOT NULL, reason TEXT NOT NULL, detail TEXT NOT NULL, raw TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quarantine_reason ON quarantine(reason);
CREATE INDEX IF NOT EXISTS quarantine_batch ON quarantine(batch_id, row);
CREATE INDEX IF NOT EXISTS batches_source ON batches(source, delivered_on);
-- Credit model results. Enterprise-scoped tables carry the USCC (see ARCHITECTURE.md, distribution plan).
CREATE TABLE IF NOT EXISTS models (version TEXT PRIMARY KEY, created_at TEXT NOT NULL, json TEXT NOT NULL);
-- Derived data, not exported: the credit loader's per-firm records, valid for one generation of the facts.
-- Every commit that writes facts moves the generation on, which retires the cache: its rows are read only
-- under the current generation, and the next write of the cache replaces them (deleting hundreds of MB of
-- blobs inside a delivery would hold it up: 1.7 s with the pages cached, 13 s from disk, on the district).
-- One row once facts were written (none: generation 0). A batch row comes with every write of facts (a
-- delivery, an import, an objection's correction), so this trigger is the one place that moves the
-- generation on, whatever program writes them.
CREATE TABLE IF NOT EXISTS fact_generation (id INTEGER PRIMARY KEY CHECK (id = 0), n INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS batches_retire_fact_cache AFTER INSERT ON batches BEGIN
  INSERT INTO fact_generation (id, n) VALUES (0, 1) ON CONFLICT (id) DO UPDATE SET n = n + 1;
END;
CREATE TABLE IF NOT EXISTS fact_cache (
  part INTEGER PRIMARY KEY, generation INTEGER NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS score_runs (
  run_id TEXT PRIMARY KEY, as_of TEXT NOT NULL, model_version TEXT NOT NULL, created_at TEXT NOT NULL,
  firms INTEGER NOT NULL, benchmarks TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS scores (
  run_id TEXT NOT NULL, uscc TEXT NOT NULL, score REAL NOT NULL, pd REAL NOT NULL, grade TEXT NOT NULL,
  grade_unadjusted TEXT NOT NULL, colour TEXT, detail TEXT NOT NULL, PRIMARY KEY (uscc, run_id)
);
CREATE INDEX IF NOT EXISTS scores_run ON scores(run_id);
CREATE TABLE IF NOT EXISTS warnings (
  run_id TEXT NOT NULL, uscc TEXT NOT NULL, rule INTEGER NOT NULL, colour TEXT NOT NULL, since TEXT,
  clears_on TEXT, evidence TEXT NOT NULL, PRIMARY KEY (uscc, run_id, rule)
);
CREATE INDEX IF NOT EXISTS warnings_run ON warnings(run_id);
CREATE TABLE IF NOT EXISTS warning_spans (
  run_id TEXT NOT NULL, uscc TEXT NOT NULL, rule INTEGER NOT NULL, colour TEXT NOT NULL, start TEXT NOT NULL,
  end_date TEXT
);
CREATE INDEX IF NOT EXISTS warning_spans_uscc ON warning_spans(uscc, run_id);
CREATE TABLE IF NOT EXISTS credit_events (
  event_id TEXT PRIMARY KEY, uscc TEXT NOT NULL, date TEXT NOT NULL, kind TEXT NOT NULL, rule INTEGER,
  before TEXT NOT NULL, after TEXT NOT NULL, first_run TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS credit_events_uscc ON credit_events(uscc, date);
CREATE TABLE IF NOT EXISTS firm_months (
  run_id TEXT NOT NULL, uscc TEXT NOT NULL, month TEXT NOT NULL, pd REAL NOT NULL, score REAL NOT NULL,
  grade TEXT NOT NULL, colour TEXT, PRIMARY KEY (uscc, run_id, month)
);
CREATE INDEX IF NOT EXISTS firm_months_run ON firm_months(run_id);
CREATE TABLE IF NOT EXISTS risk_index (
  run_id TEXT NOT NULL, month TEXT NOT NULL, dimension TEXT NOT NULL, member TEXT NOT NULL, value REAL NOT NULL,
  detail TEXT NOT NULL, PRIMARY KEY (run_id, dimension, member, month)
);
CREATE TABLE IF NOT EXISTS index_movers (
  run_id TEXT NOT NULL, month TEXT NOT NULL, dimension TEXT NOT NULL, member TEXT NOT NULL, uscc TEXT NOT NULL,
  delta REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS index_movers_run ON index_movers(run_id, dimension, member, month);
CREATE TABLE IF NOT EXISTS circles (
  run_id TEXT NOT NULL, group_id TEXT NOT NULL, firms INTEGER NOT NULL, in_circles INTEGER NOT NULL,
  total_amount REAL NOT NULL, detail TEXT NOT NULL, PRIMARY KEY (run_id, group_id)
);
"#;

/// How SQLite spells the spec'd tables' types and parameters ([`rows`]).
const DIALECT: rows::Dialect = rows::Dialect {
    types: ["INTEGER", "REAL", "TEXT", "BLOB"],
    param: |i| format!("?{i}"),
};

fn sql_value(v: &rows::Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        rows::Value::Null => V::Null,
        rows::Value::Int(i) => V::Integer(*i),
        rows::Value::Real(f) => V::Real(*f),
        rows::Value::Text(t) => V::Text(t.clone()),
        rows::Value::Bytes(b) => V::Blob(b.clone()),
    }
}

/// A spec'd table's row as read (the columns in spec order).
fn spec_row(t: &rows::TableSpec, r: &rusqlite::Row<'_>) -> rusqlite::Result<rows::Row> {
    use rusqlite::types::ValueRef as R;
    (0..t.columns.len())
        .map(|i| {
            Ok(match r.get_ref(i)? {
                R::Null => rows::Value::Null,
                R::Integer(v) => rows::Value::Int(v),
                R::Real(v) => rows::Value::Real(v),
                R::Text(v) => rows::Value::Text(String::from_utf8_lossy(v).into_owned()),
                R::Blob(v) => rows::Value::Bytes(v.to_vec()),
            })
        })
        .collect()
}

/// Executes a generated statement with row values.
fn exec_values(c: &Connection, sql: &str, values: &[rows::Value]) -> Result<usize> {
    let vals: Vec<rusqlite::types::Value> = values.iter().map(sql_value).collect();
    c.prepare_cached(sql)
        .map_err(be)?
        .execute(rusqlite::params_from_iter(vals))
        .map_err(be)
}

fn be(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The SQLite store.
pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file, with a 1 GiB page cache: at district scale the fact
    /// indexes are hundreds of MB, and inserts into them miss the cache otherwise (measured: 24,000 facts/s
    /// into an 8 GB store with 64 MiB).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, 1024)
    }

    /// Opens with a page cache of `mib` MiB: one of many pooled connections of a server (which mostly read)
    /// takes a small one, so that the pool's memory stays bounded.
    pub fn open_with_cache(path: &Path, mib: u32) -> Result<Self> {
        let conn = Connection::open(path).map_err(be)?;
        let kib = i64::from(mib.max(1)) * 1024;
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA busy_timeout=10000; PRAGMA cache_size=-{kib};"
        ))
        .map_err(be)?;
        conn.execute_batch(SCHEMA).map_err(be)?;
        for t in rows::TABLES {
            conn.execute_batch(&rows::create_sql(t, &DIALECT)).map_err(be)?;
        }
        Ok(SqliteStore { conn })
    }
}

struct Writer<'s> {
    tx: rusqlite::Transaction<'s>,
    meta: Option<BatchMeta>,
}

impl Writer<'_> {
    fn meta(&self) -> Result<&BatchMeta> {
        self.meta
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no batch started".into()))
    }
    /// A delivery older than the current version arrives late: it becomes the version known from its
    /// delivery date until the next later version, and the version before it (if any) ends there.
    fn backdate(&mut self, f: &NewFact<'_>) -> Result<PutOutcome> {
        let m = self
            .meta
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no batch started".into()))?;
        let (s, d, k, t) = (&m.source, &m.dataset, f.key, &m.delivered_on);
        let at: Option<(i64, String)> = self
            .tx
            .prepare_cached(
                "SELECT fact_id, content_hash FROM facts WHERE source=?1 AND dataset=?2 AND key=?3
                 AND known_from <= ?4 AND known_to > ?4 ORDER BY known_from DESC LIMIT 1",
            )
            .map_err(be)?
            .query_row(params![s, d, k, t], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .map_err(be)?;
        if at.as_ref().is_some_and(|(_, h)| h == f.content_hash) {
            return Ok(PutOutcome::Unchanged);
        }
        let next_from: String = self
            .tx
            .prepare_cached(
                "SELECT min(known_from) FROM facts WHERE source=?1 AND dataset=?2 AND key=?3 AND known_from > ?4",
            )
            .map_err(be)?
            .query_row(params![s, d, k, t], |r| r.get(0))
            .map_err(be)?;
        if let Some((prev, _)) = at {
            self.tx
                .prepare_cached("UPDATE facts SET known_to=?1 WHERE fact_id=?2")
                .map_err(be)?
                .execute(params![t, prev])
                .map_err(be)?;
        }
        insert_fact(&self.tx, m, f, Some(&next_from))?;
        Ok(PutOutcome::Backdated)
    }
}

impl BatchWriter for Writer<'_> {
    fn start_batch(&mut self, meta: &BatchMeta) -> Result<()> {
        self.meta = Some(meta.clone());
        Ok(())
    }

    fn put_fact(&mut self, f: &NewFact<'_>) -> Result<PutOutcome> {
        let m = self
            .meta
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no batch started".into()))?;
        let insert = |tx: &rusqlite::Transaction<'_>| insert_fact(tx, m, f, None);
        // Most facts are new: try the insert first; the partial unique index on the current version
        // turns it into a no-op when the key is already current.
        if insert(&self.tx)? == 1 {
            return Ok(PutOutcome::Inserted);
        }
        let (old, hash, old_from): (i64, String, String) = self
            .tx
            .prepare_cached(
                "SELECT fact_id, content_hash, known_from FROM facts WHERE source=?1 AND dataset=?2 AND key=?3 AND known_to IS NULL",
            )
            .map_err(be)?
            .query_row(params![m.source, m.dataset, f.key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .map_err(be)?;
        if m.delivered_on < old_from {
            return self.backdate(f);
        }
        if hash == f.content_hash {
            return Ok(PutOutcome::Unchanged);
        }
        self.tx
            .prepare_cached("UPDATE facts SET known_to=?1 WHERE fact_id=?2")
            .map_err(be)?
            .execute(params![m.delivered_on, old])
            .map_err(be)?;
        if insert(&self.tx)? != 1 {
            return Err(StoreError::Backend(format!("could not replace fact {}", f.key)));
        }
        let new = self.tx.last_insert_rowid();
        self.tx
            .prepare_cached("UPDATE facts SET superseded_by=?1 WHERE fact_id=?2")
            .map_err(be)?
            .execute(params![new, old])
            .map_err(be)?;
        Ok(PutOutcome::Replaced)
    }

    fn retire_absent(&mut self, uscc: &str, period: Option<&str>, keep: &[&str]) -> Result<u64> {
        let m = self
            .meta
            .as_ref()
            .ok_or_else(|| StoreError::Backend("no batch started".into()))?;
        let current: Vec<(i64, String)> = self
            .tx
            .prepare_cached(
                "SELECT fact_id, key FROM facts WHERE uscc=?1 AND dataset=?2 AND source=?3 AND period IS ?4
                 AND known_to IS NULL AND known_from <= ?5",
            )
            .map_err(be)?
            .query_map(params![uscc, m.dataset, m.source, period, m.delivered_on], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(be)?
            .collect::<rusqlite::Result<_>>()
            .map_err(be)?;
        let mut n = 0;
        for (id, key) in current {
            if !keep.contains(&key.as_str()) {
                self.tx
                    .prepare_cached("UPDATE facts SET known_to=?1 WHERE fact_id=?2")
                    .map_err(be)?
                    .execute(params![m.delivered_on, id])
                    .map_err(be)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn quarantine(&mut self, q: &QuarantineRow<'_>) -> Result<()> {
        let m = self.meta()?;
        self.tx
            .prepare_cached(
                "INSERT INTO quarantine (batch_id, source, dataset, row, reason, detail, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(be)?
            .execute(params![m.batch_id, m.source, m.dataset, q.row as i64, q.reason, q.detail, q.raw])
            .map_err(be)?;
        Ok(())
    }

    fn add_chunk(&mut self, c: &ArchiveChunk) -> Result<()> {
        let m = self.meta()?;
        self.tx
            .prepare_cached(
                "INSERT OR REPLACE INTO archive_chunks (batch_id, chunk, first_row, data) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(be)?
            .execute(params![m.batch_id, c.chunk, c.first_row as i64, c.data])
            .map_err(be)?;
        Ok(())
    }

    fn end_batch(&mut self, c: BatchCounts, diagnostics: &[String]) -> Result<()> {
        let m = self
            .meta
            .take()
            .ok_or_else(|| StoreError::Backend("no batch started".into()))?;
        self.tx
            .execute(
                "INSERT INTO batches (batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, replaced, unchanged, retired, quarantined, diagnostics)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                params![
                    m.batch_id,
                    m.source,
                    m.dataset,
                    m.file_name,
                    m.delivered_on,
                    m.ingested_at,
                    c.rows_read as i64,
                    c.inserted as i64,
                    c.replaced as i64,
                    c.unchanged as i64,
                    c.retired as i64,
                    c.quarantined as i64,
                    diagnostics.join("\n")
                ],
            )
            .map_err(be)?;
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        self.tx.commit().map_err(be)
    }
}

/// Inserts a version of a fact: current (`known_to` None; a no-op if the key already has a current
/// version, by the partial unique index) or historical. Returns the number of rows inserted.
fn insert_fact(
    tx: &rusqlite::Transaction<'_>,
    m: &BatchMeta,
    f: &NewFact<'_>,
    known_to: Option<&str>,
) -> Result<usize> {
    tx.prepare_cached(
        "INSERT INTO facts (uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, batch_id, row, n_rows, known_from, known_to, ingested_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
         ON CONFLICT (source, dataset, key) WHERE known_to IS NULL DO NOTHING",
    )
    .map_err(be)?
    .execute(params![
        f.uscc,
        m.source,
        m.dataset,
        f.key,
        f.period,
        f.date,
        f.end_date,
        f.fields,
        f.content_hash,
        m.batch_id,
        f.row as i64,
        f.n_rows as i64,
        m.delivered_on,
        known_to,
        m.ingested_at
    ])
    .map_err(be)
}

fn stored(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredFact> {
    Ok(StoredFact {
        fact_id: r.get(0)?,
        uscc: r.get(1)?,
        source: r.get(2)?,
        dataset: r.get(3)?,
        key: r.get(4)?,
        period: r.get(5)?,
        fields: r.get(6)?,
        batch_id: r.get(7)?,
        row: r.get::<_, i64>(8)? as u64,
        n_rows: r.get::<_, i64>(9)? as u64,
        known_from: r.get(10)?,
        known_to: r.get(11)?,
        ingested_at: r.get(12)?,
    })
}

const FACT_COLS: &str = "f.fact_id, f.uscc, f.source, f.dataset, f.key, f.period, f.fields, f.batch_id, f.row, f.n_rows, f.known_from, f.known_to, f.ingested_at";

/// Streams the rows of `sql`, each made a record by `f`, to `sink`.
fn export_rows(
    conn: &Connection,
    sql: &str,
    f: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Record>,
    sink: &mut dyn FnMut(Record) -> Result<()>,
) -> Result<()> {
    let mut st = conn.prepare(sql).map_err(be)?;
    let mut rows = st.query([]).map_err(be)?;
    while let Some(r) = rows.next().map_err(be)? {
        sink(f(r).map_err(be)?)?;
    }
    Ok(())
}

/// A quarantine row as read (`batch_id, source, dataset, row, reason, detail, raw`).
fn quarantined(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredQuarantine> {
    Ok(StoredQuarantine {
        batch_id: r.get(0)?,
        source: r.get(1)?,
        dataset: r.get(2)?,
        row: r.get::<_, i64>(3)? as u64,
        reason: r.get(4)?,
        detail: r.get(5)?,
        raw: r.get(6)?,
    })
}

fn u64_of(r: &rusqlite::Row<'_>, i: usize) -> rusqlite::Result<u64> {
    Ok(r.get::<_, i64>(i)? as u64)
}

impl SqliteStore {
    fn export_all(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        let c = &self.conn;
        export_rows(
            c,
            "SELECT batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, replaced, \
             unchanged, retired, quarantined, diagnostics FROM batches ORDER BY batch_id",
            |r| {
                Ok(Record::Batch {
                    meta: BatchMeta {
                        batch_id: r.get(0)?,
                        source: r.get(1)?,
                        dataset: r.get(2)?,
                        file_name: r.get(3)?,
                        delivered_on: r.get(4)?,
                        ingested_at: r.get(5)?,
                    },
                    counts: BatchCounts {
                        rows_read: u64_of(r, 6)?,
                        inserted: u64_of(r, 7)?,
                        replaced: u64_of(r, 8)?,
                        unchanged: u64_of(r, 9)?,
                        retired: u64_of(r, 10)?,
                        quarantined: u64_of(r, 11)?,
                    },
                    diagnostics: r.get(12)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT batch_id, chunk, first_row, data FROM archive_chunks ORDER BY batch_id, chunk",
            |r| {
                Ok(Record::Chunk {
                    batch_id: r.get(0)?,
                    chunk: ArchiveChunk {
                        chunk: r.get(1)?,
                        first_row: u64_of(r, 2)?,
                        data: r.get(3)?,
                    },
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT fact_id, uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, batch_id, \
             row, n_rows, known_from, known_to, ingested_at, superseded_by FROM facts ORDER BY fact_id",
            |r| {
                Ok(Record::Fact(FactRecord {
                    fact_id: r.get(0)?,
                    uscc: r.get(1)?,
                    source: r.get(2)?,
                    dataset: r.get(3)?,
                    key: r.get(4)?,
                    period: r.get(5)?,
                    event_date: r.get(6)?,
                    end_date: r.get(7)?,
                    fields: r.get(8)?,
                    content_hash: r.get(9)?,
                    batch_id: r.get(10)?,
                    row: u64_of(r, 11)?,
                    n_rows: u64_of(r, 12)?,
                    known_from: r.get(13)?,
                    known_to: r.get(14)?,
                    ingested_at: r.get(15)?,
                    superseded_by: r.get(16)?,
                }))
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT id, batch_id, source, dataset, row, reason, detail, raw FROM quarantine ORDER BY id",
            |r| {
                Ok(Record::Quarantine {
                    id: r.get(0)?,
                    row: StoredQuarantine {
                        batch_id: r.get(1)?,
                        source: r.get(2)?,
                        dataset: r.get(3)?,
                        row: u64_of(r, 4)?,
                        reason: r.get(5)?,
                        detail: r.get(6)?,
                        raw: r.get(7)?,
                    },
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT version, created_at, json FROM models ORDER BY rowid",
            |r| {
                Ok(Record::Model {
                    version: r.get(0)?,
                    created_at: r.get(1)?,
                    json: r.get(2)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, as_of, model_version, created_at, firms, benchmarks FROM score_runs ORDER BY run_id",
            |r| {
                Ok(Record::Run {
                    run_id: r.get(0)?,
                    as_of: r.get(1)?,
                    model_version: r.get(2)?,
                    created_at: r.get(3)?,
                    firms: u64_of(r, 4)?,
                    benchmarks: r.get(5)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, uscc, score, pd, grade, grade_unadjusted, colour, detail FROM scores ORDER BY run_id, uscc",
            |r| {
                Ok(Record::Score {
                    run_id: r.get(0)?,
                    row: ScoreRow {
                        uscc: r.get(1)?,
                        score: r.get(2)?,
                        pd: r.get(3)?,
                        grade: r.get(4)?,
                        grade_unadjusted: r.get(5)?,
                        colour: r.get(6)?,
                        detail: r.get(7)?,
                    },
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, uscc, rule, colour, since, clears_on, evidence FROM warnings ORDER BY run_id, uscc, rule",
            |r| {
                Ok(Record::Warning {
                    run_id: r.get(0)?,
                    row: WarningRow {
                        uscc: r.get(1)?,
                        rule: r.get(2)?,
                        colour: r.get(3)?,
                        since: r.get(4)?,
                        clears_on: r.get(5)?,
                        evidence: r.get(6)?,
                    },
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, uscc, rule, colour, start, end_date FROM warning_spans ORDER BY rowid",
            |r| {
                Ok(Record::Span {
                    run_id: r.get(0)?,
                    uscc: r.get(1)?,
                    rule: r.get(2)?,
                    colour: r.get(3)?,
                    start: r.get(4)?,
                    end: r.get(5)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT event_id, uscc, date, kind, rule, before, after, first_run FROM credit_events ORDER BY event_id",
            |r| {
                Ok(Record::Event {
                    row: EventRow {
                        id: r.get(0)?,
                        uscc: r.get(1)?,
                        date: r.get(2)?,
                        kind: r.get(3)?,
                        rule: r.get(4)?,
                        before: r.get(5)?,
                        after: r.get(6)?,
                    },
                    first_run: r.get(7)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, uscc, month, pd, score, grade, colour FROM firm_months ORDER BY run_id, uscc, month",
            |r| {
                Ok(Record::FirmMonth {
                    run_id: r.get(0)?,
                    uscc: r.get(1)?,
                    month: r.get(2)?,
                    pd: r.get(3)?,
                    score: r.get(4)?,
                    grade: r.get(5)?,
                    colour: r.get(6)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, month, dimension, member, value, detail FROM risk_index ORDER BY run_id, dimension, member, month",
            |r| {
                Ok(Record::Index {
                    run_id: r.get(0)?,
                    month: r.get(1)?,
                    dimension: r.get(2)?,
                    member: r.get(3)?,
                    value: r.get(4)?,
                    detail: r.get(5)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, month, dimension, member, uscc, delta FROM index_movers ORDER BY rowid",
            |r| {
                Ok(Record::Mover {
                    run_id: r.get(0)?,
                    month: r.get(1)?,
                    dimension: r.get(2)?,
                    member: r.get(3)?,
                    uscc: r.get(4)?,
                    delta: r.get(5)?,
                })
            },
            sink,
        )?;
        export_rows(
            c,
            "SELECT run_id, group_id, firms, in_circles, total_amount, detail FROM circles ORDER BY run_id, group_id",
            |r| {
                Ok(Record::Circle {
                    run_id: r.get(0)?,
                    group_id: r.get(1)?,
                    firms: u64_of(r, 2)?,
                    in_circles: u64_of(r, 3)?,
                    total_amount: r.get(4)?,
                    detail: r.get(5)?,
                })
            },
            sink,
        )?;
        for t in rows::exported() {
            let (_, sql) = rows::select_sql(&rows::RowQuery::all(t.name), &DIALECT)?;
            export_rows(
                c,
                &sql,
                |r| {
                    Ok(Record::Row {
                        table: t.name,
                        row: spec_row(t, r)?,
                    })
                },
                sink,
            )?;
        }
        sink(Record::ContentHash(self.content_hash()?))
    }

    /// Inserts one record (import).
    fn import_one(&self, rec: &Record) -> Result<()> {
        let c = &self.conn;
        let exec = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<()> {
            c.prepare_cached(sql).map_err(be)?.execute(p).map_err(be)?;
            Ok(())
        };
        let n = |v: u64| v as i64;
        match rec {
            Record::Batch { meta: m, counts: k, diagnostics } => exec(
                "INSERT INTO batches (batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, \
                 replaced, unchanged, retired, quarantined, diagnostics) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)",
                params![
                    m.batch_id, m.source, m.dataset, m.file_name, m.delivered_on, m.ingested_at,
                    n(k.rows_read), n(k.inserted), n(k.replaced), n(k.unchanged), n(k.retired), n(k.quarantined),
                    diagnostics
                ],
            ),
            Record::Chunk { batch_id, chunk } => exec(
                "INSERT INTO archive_chunks (batch_id, chunk, first_row, data) VALUES (?1,?2,?3,?4)",
                params![batch_id, chunk.chunk, n(chunk.first_row), chunk.data],
            ),
            Record::Fact(f) => exec(
                "INSERT INTO facts (fact_id, uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, \
                 batch_id, row, n_rows, known_from, known_to, ingested_at, superseded_by) \
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)",
                params![
                    f.fact_id, f.uscc, f.source, f.dataset, f.key, f.period, f.event_date, f.end_date, f.fields,
                    f.content_hash, f.batch_id, n(f.row), n(f.n_rows), f.known_from, f.known_to, f.ingested_at,
                    f.superseded_by
                ],
            ),
            Record::Quarantine { id, row: q } => exec(
                "INSERT INTO quarantine (id, batch_id, source, dataset, row, reason, detail, raw) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![id, q.batch_id, q.source, q.dataset, n(q.row), q.reason, q.detail, q.raw],
            ),
            Record::Model { version, created_at, json } => exec(
                "INSERT INTO models (version, created_at, json) VALUES (?1,?2,?3)",
                params![version, created_at, json],
            ),
            Record::Run { run_id, as_of, model_version, created_at, firms, benchmarks } => exec(
                "INSERT INTO score_runs (run_id, as_of, model_version, created_at, firms, benchmarks) VALUES (?1,?2,?3,?4,?5,?6)",
                params![run_id, as_of, model_version, created_at, n(*firms), benchmarks],
            ),
            Record::Score { run_id, row: r } => exec(
                "INSERT INTO scores (run_id, uscc, score, pd, grade, grade_unadjusted, colour, detail) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![run_id, r.uscc, r.score, r.pd, r.grade, r.grade_unadjusted, r.colour, r.detail],
            ),
            Record::Warning { run_id, row: w } => exec(
                "INSERT INTO warnings (run_id, uscc, rule, colour, since, clears_on, evidence) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                params![run_id, w.uscc, w.rule, w.colour, w.since, w.clears_on, w.evidence],
            ),
            Record::Span { run_id, uscc, rule, colour, start, end } => exec(
                "INSERT INTO warning_spans (run_id, uscc, rule, colour, start, end_date) VALUES (?1,?2,?3,?4,?5,?6)",
                params![run_id, uscc, rule, colour, start, end],
            ),
            Record::Event { row: e, first_run } => exec(
                "INSERT INTO credit_events (event_id, uscc, date, kind, rule, before, after, first_run) VALUES (?1,?2,?3,?4,?5,?6,?7,?8)",
                params![e.id, e.uscc, e.date, e.kind, e.rule, e.before, e.after, first_run],
            ),
            Record::FirmMonth { run_id, uscc, month, pd, score, grade, colour } => exec(
                "INSERT INTO firm_months (run_id, uscc, month, pd, score, grade, colour) VALUES (?1,?2,?3,?4,?5,?6,?7)",
                params![run_id, uscc, month, pd, score, grade, colour],
            ),
            Record::Index { run_id, month, dimension, member, value, detail } => exec(
                "INSERT INTO risk_index (run_id, month, dimension, member, value, detail) VALUES (?1,?2,?3,?4,?5,?6)",
                params![run_id, month, dimension, member, value, detail],
            ),
            Record::Mover { run_id, month, dimension, member, uscc, delta } => exec(
                "INSERT INTO index_movers (run_id, month, dimension, member, uscc, delta) VALUES (?1,?2,?3,?4,?5,?6)",
                params![run_id, month, dimension, member, uscc, delta],
            ),
            Record::Circle { run_id, group_id, firms, in_circles, total_amount, detail } => exec(
                "INSERT INTO circles (run_id, group_id, firms, in_circles, total_amount, detail) VALUES (?1,?2,?3,?4,?5,?6)",
                params![run_id, group_id, n(*firms), n(*in_circles), total_amount, detail],
            ),
            Record::Row { table, row } => {
                let t = rows::spec(table)?;
                rows::check_row(t, row)?;
                exec_values(c, &rows::insert_sql(t, &DIALECT, false), row).map(|_| ())
            }
            Record::ContentHash(_) => Ok(()),
        }
    }
}

impl Store for SqliteStore {
    fn export(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        // A deferred read transaction: its snapshot is taken at the first read and kept to the end, while a
        // writer on another connection goes on (WAL).
        let tx = self.conn.unchecked_transaction().map_err(be)?;
        self.export_all(sink)?;
        tx.commit().map_err(be)
    }

    fn import(&mut self, next: &mut dyn FnMut() -> Result<Option<Record>>) -> Result<u64> {
        let tx =
            rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate).map_err(be)?;
        for t in TABLES.into_iter().chain(rows::TABLES.iter().map(|t| t.name)) {
            let any: bool = self
                .conn
                .query_row(&format!("SELECT EXISTS (SELECT 1 FROM {t})"), [], |r| r.get(0))
                .map_err(be)?;
            if any {
                return Err(not_empty(t));
            }
        }
        let (mut n, mut expected) = (0u64, None);
        while let Some(rec) = next()? {
            match rec {
                Record::ContentHash(h) => expected = Some(h),
                r => {
                    self.import_one(&r)?;
                    n += 1;
                }
            }
        }
        if let Some(h) = expected {
            let got = self.content_hash()?;
            if got != h {
                return Err(hash_mismatch(&h, &got));
            }
        }
        tx.commit().map_err(be)?;
        Ok(n)
    }

    fn has_batch(&self, batch_id: &str) -> Result<bool> {
        self.conn
            .query_row("SELECT 1 FROM batches WHERE batch_id=?1", [batch_id], |_| Ok(()))
            .optional()
            .map(|o| o.is_some())
            .map_err(be)
    }

    fn batch_firms(&self, batch_id: &str) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT DISTINCT uscc FROM facts WHERE batch_id = ?1 ORDER BY uscc")
            .map_err(be)?;
        let rows = st.query_map([batch_id], |r| r.get(0)).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn batch_ids(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare("SELECT batch_id FROM batches").map_err(be)?;
        let rows = st.query_map([], |r| r.get(0)).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn begin<'s>(&'s mut self) -> Result<Box<dyn BatchWriter + 's>> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(be)?;
        Ok(Box::new(Writer { tx, meta: None }))
    }

    fn crosswalk(&self) -> Result<Vec<(String, Option<String>)>> {
        let mut st = self
            .conn
            // `source` too, so that the partial index `facts_current (source, dataset, key)` finds the register's
            // rows (without it SQLite scans every current fact: 1.2 s at district scale, on every ingest).
            .prepare("SELECT uscc, json_extract(fields, '$.reg_no') FROM facts WHERE source='amr' AND dataset='amr.registration' AND known_to IS NULL")
            .map_err(be)?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn fact(&self, fact_id: i64) -> Result<StoredFact> {
        self.conn
            .query_row(
                &format!("SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) WHERE f.fact_id=?1"),
                [fact_id],
                stored,
            )
            .optional()
            .map_err(be)?
            .ok_or_else(|| StoreError::NotFound(format!("fact {fact_id}")))
    }

    fn facts_of(&self, uscc: &str, as_of: Option<&str>) -> Result<Vec<StoredFact>> {
        let sql = match as_of {
            None => format!("SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) WHERE f.uscc=?1 AND f.known_to IS NULL ORDER BY f.dataset, f.key"),
            Some(_) => format!(
                "SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) WHERE f.uscc=?1 AND f.known_from <= ?2 AND (f.known_to IS NULL OR f.known_to > ?2) ORDER BY f.dataset, f.key"
            ),
        };
        let mut st = self.conn.prepare(&sql).map_err(be)?;
        let rows = match as_of {
            None => st.query_map([uscc], stored),
            Some(t) => st.query_map(params![uscc, t], stored),
        }
        .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn current_facts(&self, source: &str, dataset: &str) -> Result<Vec<StoredFact>> {
        let sql = format!(
            "SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) \
             WHERE f.source=?1 AND f.dataset=?2 AND f.known_to IS NULL ORDER BY f.key"
        );
        let mut st = self.conn.prepare(&sql).map_err(be)?;
        let rows = st.query_map([source, dataset], stored).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn chunk_for(&self, batch_id: &str, row: u64) -> Result<ArchiveChunk> {
        self.conn
            .query_row(
                "SELECT chunk, first_row, data FROM archive_chunks WHERE batch_id=?1 AND first_row <= ?2 ORDER BY first_row DESC LIMIT 1",
                params![batch_id, row as i64],
                |r| Ok(ArchiveChunk { chunk: r.get(0)?, first_row: r.get::<_, i64>(1)? as u64, data: r.get(2)? }),
            )
            .optional()
            .map_err(be)?
            .ok_or_else(|| StoreError::NotFound(format!("row {row} of batch {batch_id}")))
    }

    fn stats(&self) -> Result<StoreStats> {
        let one = |sql: &str| -> Result<u64> {
            self.conn
                .query_row(sql, [], |r| r.get::<_, i64>(0))
                .map(|v| v as u64)
                .map_err(be)
        };
        let pairs = |sql: &str| -> Result<Vec<(String, u64)>> {
            let mut st = self.conn.prepare(sql).map_err(be)?;
            let rows = st
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)))
                .map_err(be)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
        };
        Ok(StoreStats {
            batches: one("SELECT count(*) FROM batches")?,
            firms: one(
                "SELECT count(*) FROM facts WHERE source='amr' AND dataset='amr.registration' AND known_to IS NULL",
            )?,
            facts_current: one("SELECT count(*) FROM facts WHERE known_to IS NULL")?,
            facts_history: one("SELECT count(*) FROM facts WHERE known_to IS NOT NULL")?,
            source_rows: one("SELECT coalesce(sum(rows_read), 0) FROM batches")?,
            facts_by_source: pairs(
                "SELECT source, count(*) FROM facts WHERE known_to IS NULL GROUP BY source ORDER BY source",
            )?,
            quarantine_by_reason: pairs(
                "SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY count(*) DESC, reason",
            )?,
        })
    }

    fn quarantine_rows(&self, reason_prefix: Option<&str>, limit: u64) -> Result<Vec<StoredQuarantine>> {
        let mut st = self
            .conn
            .prepare("SELECT batch_id, source, dataset, row, reason, detail, raw FROM quarantine WHERE reason LIKE ?1 || '%' ORDER BY id LIMIT ?2")
            .map_err(be)?;
        let rows = st
            .query_map(params![reason_prefix.unwrap_or(""), limit as i64], quarantined)
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn content_hash(&self) -> Result<String> {
        let mut h = Sha256::new();
        for sql in [
            "SELECT batch_id || '|' || source || '|' || dataset || '|' || delivered_on || '|' || rows_read || '|' || inserted || '|' || replaced || '|' || unchanged || '|' || retired || '|' || quarantined FROM batches ORDER BY batch_id",
            "SELECT source || '|' || dataset || '|' || key || '|' || content_hash || '|' || batch_id || '|' || row || '|' || known_from || '|' || coalesce(known_to, '') FROM facts ORDER BY source, dataset, key, known_from, batch_id",
            "SELECT batch_id || '|' || row || '|' || reason || '|' || detail || '|' || raw FROM quarantine ORDER BY batch_id, row, reason",
        ] {
            let mut st = self.conn.prepare(sql).map_err(be)?;
            let mut rows = st.query([]).map_err(be)?;
            while let Some(r) = rows.next().map_err(be)? {
                let s: String = r.get(0).map_err(be)?;
                h.update(s.as_bytes());
                h.update(b"\n");
            }
        }
        Ok(hex::encode(h.finalize()))
    }

    fn scan_facts(&self, known_by: &str, f: &mut dyn FnMut(ScanFact) -> Result<()>) -> Result<()> {
        scan_fact_range(&self.conn, known_by, i64::MIN, i64::MAX, f)
    }

    /// One range of fact ids per sink, each read on its own thread through its own read-only connection (the
    /// rows of a fact scan are half the work of loading a district). All of them must read one committed state,
    /// as a single scan does: each connection opens a read transaction and reads a marker of the state (the
    /// fact id range and the latest batch; every write of facts commits with a batch row), before any scanning
    /// starts. Should a write commit between two of those reads, the markers differ and the facts are read on
    /// this thread instead, through one connection. An in-memory database (no second connection can see it)
    /// is read on this thread too.
    fn scan_facts_split(&self, known_by: &str, sinks: &mut [&mut FactSink<'_>]) -> Result<()> {
        let path = self.conn.path().filter(|p| !p.is_empty()).map(std::path::PathBuf::from);
        let (Some(path), true) = (path, sinks.len() > 1) else {
            return scan_into_first(self, known_by, sinks);
        };
        type Marker = (Option<i64>, Option<i64>, Option<i64>);
        let mut readers: Vec<(Connection, Marker)> = Vec::with_capacity(sinks.len());
        for _ in 0..sinks.len() {
            let conn = Connection::open_with_flags(
                &path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(be)?;
            // A quarter of the main connection's page cache each: the scan reads every page once.
            conn.execute_batch("PRAGMA busy_timeout=10000; PRAGMA cache_size=-262144; BEGIN")
                .map_err(be)?;
            let marker: Marker = conn
                .query_row(
                    "SELECT (SELECT min(fact_id) FROM facts), (SELECT max(fact_id) FROM facts), \
                     (SELECT max(rowid) FROM batches)",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .map_err(be)?;
            readers.push((conn, marker));
        }
        let marker = readers[0].1;
        if readers.iter().any(|(_, m)| *m != marker) {
            return scan_into_first(self, known_by, sinks);
        }
        let (Some(lo), Some(hi)) = (marker.0, marker.1) else {
            return Ok(());
        };
        // In i128: ids anywhere in i64 split without overflow.
        let (lo, hi, n) = (i128::from(lo), i128::from(hi), sinks.len() as i128);
        let span = (hi - lo) / n + 1;
        let bound = |x: i128| x.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64;
        std::thread::scope(|scope| {
            let handles: Vec<_> = sinks
                .iter_mut()
                .zip(readers)
                .enumerate()
                .map(|(i, (sink, (conn, _)))| {
                    let i = i as i128;
                    let (from, to) = (bound(lo + i * span), bound((lo + (i + 1) * span - 1).min(hi)));
                    scope.spawn(move || scan_fact_range(&conn, known_by, from, to, &mut **sink))
                })
                .collect();
            // The first error is returned; the scope still waits for every thread.
            handles
                .into_iter()
                .try_for_each(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
        })
    }

    fn fact_generation(&self) -> Result<Option<u64>> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT coalesce((SELECT n FROM fact_generation WHERE id = 0), 0)",
                [],
                |r| r.get(0),
            )
            .map_err(be)?;
        Ok(Some(n as u64))
    }

    fn read_fact_cache(&self, key: &str, part: &mut dyn FnMut(&[u8]) -> Result<()>) -> Result<bool> {
        // One statement reads one committed state: the cache of the current generation, or nothing.
        let mut st = self
            .conn
            .prepare(
                "SELECT data FROM fact_cache WHERE key = ?1 \
                 AND generation = coalesce((SELECT n FROM fact_generation WHERE id = 0), 0) ORDER BY part",
            )
            .map_err(be)?;
        let mut rows = st.query([key]).map_err(be)?;
        let mut any = false;
        while let Some(r) = rows.next().map_err(be)? {
            let data = r
                .get_ref(0)
                .map_err(be)?
                .as_blob()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            part(data)?;
            any = true;
        }
        Ok(any)
    }

    fn write_fact_cache(&self, generation: u64, key: &str, parts: &[Vec<u8>]) -> Result<bool> {
        let tx =
            rusqlite::Transaction::new_unchecked(&self.conn, rusqlite::TransactionBehavior::Immediate).map_err(be)?;
        if self.fact_generation()? != Some(generation) {
            return Ok(false);
        }
        tx.execute("DELETE FROM fact_cache", []).map_err(be)?;
        {
            let mut ins = tx
                .prepare("INSERT INTO fact_cache (part, generation, key, data) VALUES (?1, ?2, ?3, ?4)")
                .map_err(be)?;
            for (i, p) in parts.iter().enumerate() {
                ins.execute(params![i as i64, generation as i64, key, p]).map_err(be)?;
            }
        }
        tx.commit().map_err(be)?;
        Ok(true)
    }

    fn data_cutoff(&self) -> Result<Option<String>> {
        self.conn
            .query_row("SELECT max(delivered_on) FROM batches", [], |r| r.get(0))
            .map_err(be)
    }

    fn guarantees_given(&self, guarantor: &str, known_by: &str) -> Result<Vec<ScanFact>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT fact_id, uscc, source, dataset, period, event_date, end_date, fields, known_from, known_to \
                 FROM facts WHERE dataset IN ('lender.bank.guarantees', 'lender.gc.guarantees') \
                 AND json_extract(fields, '$.guarantor_id') = ?1 AND known_from <= ?2 \
                 AND (known_to IS NULL OR known_to > ?2) ORDER BY fact_id",
            )
            .map_err(be)?;
        let rows = st
            .query_map(params![guarantor, known_by], |r| {
                Ok(ScanFact {
                    fact_id: r.get(0)?,
                    uscc: r.get(1)?,
                    source: r.get(2)?,
                    dataset: r.get(3)?,
                    period: r.get(4)?,
                    event_date: r.get(5)?,
                    end_date: r.get(6)?,
                    fields: r.get(7)?,
                    known_from: r.get(8)?,
                    known_to: r.get(9)?,
                })
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn put_model(&mut self, version: &str, created_at: &str, json: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR IGNORE INTO models(version, created_at, json) VALUES (?1, ?2, ?3)",
                params![version, created_at, json],
            )
            .map_err(be)?;
        Ok(())
    }

    fn model(&self, version: Option<&str>) -> Result<Option<(String, String)>> {
        let q = |sql: &str, p: &[&dyn rusqlite::ToSql]| {
            self.conn
                .query_row(sql, p, |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(be)
        };
        match version {
            Some(v) => q("SELECT version, json FROM models WHERE version = ?1", &[&v]),
            None => q(
                "SELECT version, json FROM models ORDER BY created_at DESC, rowid DESC LIMIT 1",
                &[],
            ),
        }
    }

    fn put_run(&mut self, run: &ScoreRun) -> Result<()> {
        let tx = self.conn.transaction().map_err(be)?;
        for t in [
            "score_runs",
            "scores",
            "warnings",
            "warning_spans",
            "firm_months",
            "risk_index",
            "index_movers",
            "circles",
        ] {
            tx.execute(&format!("DELETE FROM {t} WHERE run_id = ?1"), [&run.run_id])
                .map_err(be)?;
        }
        tx.execute(
            "INSERT INTO score_runs(run_id, as_of, model_version, created_at, firms, benchmarks) VALUES (?1,?2,?3,?4,?5,?6)",
            params![run.run_id, run.as_of, run.model_version, run.created_at, run.scores.len() as i64, run.benchmarks],
        )
        .map_err(be)?;
        {
            let mut st = tx
                .prepare("INSERT INTO scores VALUES (?1,?2,?3,?4,?5,?6,?7,?8)")
                .map_err(be)?;
            for r in &run.scores {
                st.execute(params![
                    run.run_id,
                    r.uscc,
                    r.score,
                    r.pd,
                    r.grade,
                    r.grade_unadjusted,
                    r.colour,
                    r.detail
                ])
                .map_err(be)?;
            }
            let mut st = tx
                .prepare("INSERT INTO warnings VALUES (?1,?2,?3,?4,?5,?6,?7)")
                .map_err(be)?;
            for w in &run.warnings {
                st.execute(params![
                    run.run_id,
                    w.uscc,
                    w.rule,
                    w.colour,
                    w.since,
                    w.clears_on,
                    w.evidence
                ])
                .map_err(be)?;
            }
            let mut st = tx
                .prepare("INSERT INTO warning_spans VALUES (?1,?2,?3,?4,?5,?6)")
                .map_err(be)?;
            for (u, rule, c, start, end) in &run.spans {
                st.execute(params![run.run_id, u, rule, c, start, end]).map_err(be)?;
            }
            let mut st = tx
                .prepare("INSERT OR IGNORE INTO credit_events VALUES (?1,?2,?3,?4,?5,?6,?7,?8)")
                .map_err(be)?;
            // In key order, here and below: each insert (or ignored duplicate) then touches the B-tree pages the
            // previous one did. A stable sort: of two events with one id, the first still wins.
            let mut events: Vec<&EventRow> = run.events.iter().collect();
            events.sort_by(|a, b| a.id.cmp(&b.id));
            for e in events {
                st.execute(params![
                    e.id, e.uscc, e.date, e.kind, e.rule, e.before, e.after, run.run_id
                ])
                .map_err(be)?;
            }
            let mut st = tx
                .prepare("INSERT INTO firm_months VALUES (?1,?2,?3,?4,?5,?6,?7)")
                .map_err(be)?;
            let mut history: Vec<_> = run.history.iter().collect();
            history.sort_unstable_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
            for (u, m, pd, sc, g, c) in history {
                st.execute(params![run.run_id, u, m, pd, sc, g, c]).map_err(be)?;
            }
            let mut st = tx
                .prepare("INSERT INTO risk_index VALUES (?1,?2,?3,?4,?5,?6)")
                .map_err(be)?;
            for (m, dim, mem, v, d) in &run.index {
                st.execute(params![run.run_id, m, dim, mem, v, d]).map_err(be)?;
            }
            let mut st = tx
                .prepare("INSERT INTO index_movers VALUES (?1,?2,?3,?4,?5,?6)")
                .map_err(be)?;
            for (m, dim, mem, u, d) in &run.movers {
                st.execute(params![run.run_id, m, dim, mem, u, d]).map_err(be)?;
            }
            let mut st = tx
                .prepare("INSERT INTO circles VALUES (?1,?2,?3,?4,?5,?6)")
                .map_err(be)?;
            for (id, n, nc, amount, d) in &run.circles {
                st.execute(params![run.run_id, id, *n as i64, *nc as i64, amount, d])
                    .map_err(be)?;
            }
        }
        tx.commit().map_err(be)
    }

    fn runs(&self) -> Result<Vec<RunInfo>> {
        let mut st = self
            .conn
            .prepare("SELECT run_id, as_of, model_version, created_at, firms FROM score_runs ORDER BY as_of DESC, created_at DESC")
            .map_err(be)?;
        let rows = st
            .query_map([], |r| {
                Ok(RunInfo {
                    run_id: r.get(0)?,
                    as_of: r.get(1)?,
                    model_version: r.get(2)?,
                    created_at: r.get(3)?,
                    firms: r.get::<_, i64>(4)? as u64,
                })
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn run_benchmarks(&self, run_id: &str) -> Result<String> {
        self.conn
            .query_row("SELECT benchmarks FROM score_runs WHERE run_id = ?1", [run_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(be)?
            .ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))
    }

    fn run_score(&self, run_id: &str, uscc: &str) -> Result<Option<String>> {
        self.conn
            .query_row(
                "SELECT detail FROM scores WHERE run_id = ?1 AND uscc = ?2",
                params![run_id, uscc],
                |r| r.get(0),
            )
            .optional()
            .map_err(be)
    }

    fn run_scores(&self, run_id: &str) -> Result<Vec<ScoreRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT uscc, score, pd, grade, grade_unadjusted, colour FROM scores WHERE run_id = ?1 ORDER BY uscc",
            )
            .map_err(be)?;
        let rows = st
            .query_map([run_id], |r| {
                Ok(ScoreRow {
                    uscc: r.get(0)?,
                    score: r.get(1)?,
                    pd: r.get(2)?,
                    grade: r.get(3)?,
                    grade_unadjusted: r.get(4)?,
                    colour: r.get(5)?,
                    detail: String::new(),
                })
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn run_index(&self, run_id: &str, dimension: Option<&str>) -> Result<Vec<(String, String, String, f64)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT month, dimension, member, value FROM risk_index WHERE run_id = ?1 AND (?2 IS NULL OR dimension = ?2) \
                 ORDER BY dimension, member, month",
            )
            .map_err(be)?;
        let rows = st
            .query_map(params![run_id, dimension], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn run_movers(&self, run_id: &str, dimension: &str, member: &str, month: &str) -> Result<Vec<(String, f64)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT uscc, delta FROM index_movers WHERE run_id = ?1 AND dimension = ?2 AND member = ?3 AND month = ?4 \
                 ORDER BY abs(delta) DESC, uscc",
            )
            .map_err(be)?;
        let rows = st
            .query_map(params![run_id, dimension, member, month], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn run_circles(&self, run_id: &str, group_id: Option<&str>) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT detail FROM circles WHERE run_id = ?1 AND (?2 IS NULL OR group_id = ?2) \
                 ORDER BY total_amount DESC, group_id",
            )
            .map_err(be)?;
        let rows = st.query_map(params![run_id, group_id], |r| r.get(0)).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn batches_of(&self, source: &str) -> Result<Vec<(BatchMeta, BatchCounts)>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, replaced, \
                 unchanged, retired, quarantined FROM batches WHERE source = ?1 \
                 ORDER BY delivered_on DESC, ingested_at DESC, batch_id",
            )
            .map_err(be)?;
        let rows = st
            .query_map([source], |r| {
                Ok((
                    BatchMeta {
                        batch_id: r.get(0)?,
                        source: r.get(1)?,
                        dataset: r.get(2)?,
                        file_name: r.get(3)?,
                        delivered_on: r.get(4)?,
                        ingested_at: r.get(5)?,
                    },
                    BatchCounts {
                        rows_read: u64_of(r, 6)?,
                        inserted: u64_of(r, 7)?,
                        replaced: u64_of(r, 8)?,
                        unchanged: u64_of(r, 9)?,
                        retired: u64_of(r, 10)?,
                        quarantined: u64_of(r, 11)?,
                    },
                ))
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn quarantine_of(&self, batch_id: &str, limit: u64) -> Result<Vec<StoredQuarantine>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT batch_id, source, dataset, row, reason, detail, raw FROM quarantine WHERE batch_id = ?1 \
                 ORDER BY row, id LIMIT ?2",
            )
            .map_err(be)?;
        let rows = st
            .query_map(params![batch_id, limit.min(i64::MAX as u64) as i64], quarantined)
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    fn apply_rows(&mut self, ops: &[rows::RowOp]) -> Result<()> {
        let checked = ops.iter().map(rows::check_op).collect::<Result<Vec<_>>>()?;
        let tx = self.conn.transaction().map_err(be)?;
        for (op, (t, values)) in ops.iter().zip(checked) {
            let sql = match op {
                rows::RowOp::Insert { .. } => rows::insert_sql(t, &DIALECT, false),
                rows::RowOp::Put { .. } => rows::insert_sql(t, &DIALECT, true),
                rows::RowOp::Delete { .. } => rows::delete_sql(t, &DIALECT),
                rows::RowOp::Update { key, set, expect, .. } => {
                    let (sql, params) = rows::update_sql(t, &DIALECT, key, set, expect)?;
                    let vals: Vec<rows::Value> = params.into_iter().map(|(_, v)| v.clone()).collect();
                    if exec_values(&tx, &sql, &vals)? == 0 {
                        return Err(rows::conflict(t, key));
                    }
                    continue;
                }
            };
            exec_values(&tx, &sql, values)?;
        }
        tx.commit().map_err(be)
    }

    fn rows(&self, q: &rows::RowQuery) -> Result<Vec<rows::Row>> {
        let (t, sql) = rows::select_sql(q, &DIALECT)?;
        let vals: Vec<rusqlite::types::Value> = q.params().into_iter().map(|(_, v)| sql_value(v)).collect();
        let mut st = self.conn.prepare_cached(&sql).map_err(be)?;
        let out = st
            .query_map(rusqlite::params_from_iter(vals), |r| spec_row(t, r))
            .map_err(be)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(be);
        out
    }

    fn ping(&self) -> Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(())).map_err(be)
    }

    fn credit_events(&self, uscc: Option<&str>) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT event_id, uscc, date, kind, rule, before, after FROM credit_events WHERE (?1 IS NULL OR uscc = ?1) \
                 ORDER BY date, uscc, event_id",
            )
            .map_err(be)?;
        let rows = st
            .query_map([uscc], |r| {
                Ok(EventRow {
                    id: r.get(0)?,
                    uscc: r.get(1)?,
                    date: r.get(2)?,
                    kind: r.get(3)?,
                    rule: r.get(4)?,
                    before: r.get(5)?,
                    after: r.get(6)?,
                })
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }
}

/// The fact versions known by `known_by` with ids in `from..=to`, in id order, handed to `f`.
fn scan_fact_range(
    conn: &Connection,
    known_by: &str,
    from: i64,
    to: i64,
    f: &mut dyn FnMut(ScanFact) -> Result<()>,
) -> Result<()> {
    let mut st = conn
        .prepare(
            "SELECT fact_id, uscc, source, dataset, period, event_date, end_date, fields, known_from, known_to \
             FROM facts WHERE known_from <= ?1 AND fact_id BETWEEN ?2 AND ?3 ORDER BY fact_id",
        )
        .map_err(be)?;
    let mut rows = st.query(params![known_by, from, to]).map_err(be)?;
    while let Some(r) = rows.next().map_err(be)? {
        f(ScanFact {
            fact_id: r.get(0).map_err(be)?,
            uscc: r.get(1).map_err(be)?,
            source: r.get(2).map_err(be)?,
            dataset: r.get(3).map_err(be)?,
            period: r.get(4).map_err(be)?,
            event_date: r.get(5).map_err(be)?,
            end_date: r.get(6).map_err(be)?,
            fields: r.get(7).map_err(be)?,
            known_from: r.get(8).map_err(be)?,
            known_to: r.get(9).map_err(be)?,
        })?;
    }
    Ok(())
}
