//! PostgreSQL backend: the storage interface on a PostgreSQL server, with the semantics of the SQLite
//! backend (`store-sqlite`): the same bitemporal facts, outcomes, orderings and content hash.
//!
//! Durability: a committed transaction is durable. The server's default `synchronous_commit=on` makes
//! `COMMIT` return only after the commit record is flushed to the WAL on disk; [`PgStore::connect`] raises the
//! session's setting to `on` if the server was configured with `off` (`local` and the replication levels are
//! kept, they are at least as strong). That holds while the server runs with `fsync=on`, as it must in
//! production. Batches are committed in groups by the caller; the verbatim archive of each delivered file
//! lives in the same database, so one commit covers facts, quarantine and archive.
//!
//! Schema: versioned migrations in `schema_migrations`, applied on connect under an advisory lock (so that
//! processes connecting at once apply each migration once). Migration 1 is the schema of the SQLite backend:
//! dates as TEXT (the same strings), BIGINT ids, DOUBLE PRECISION reals, BYTEA archive chunks. Every text
//! column compares bytewise (`COLLATE "C"`), as SQLite's BINARY collation does, so orderings and the content
//! hash do not depend on the server's locale.
//!
//! Writers: one at a time per database, like SQLite's `BEGIN IMMEDIATE`: [`Store::begin`] takes a
//! transaction-level advisory lock (a second writer waits for the first to commit or roll back), and so does
//! [`Store::put_run`] (with a lock of its own: runs and deliveries touch different tables).
//!
//! Reads: `scan_facts` streams its rows from the server while it calls the callback, so the callback must not
//! use the same store (that is an error here; SQLite allows it).
//!
//! Fact ids: a current version is inserted only when its key has none (checked in the same statement by
//! `put_fact`; by the slice's lookup under the writer's lock in the bulk `put_facts`), so no id is drawn
//! for an unchanged delivery, and the same write history gives the same fact ids as SQLite. (A rolled-back transaction, or a server crash, still consumes sequence values: ids then stay
//! increasing, as the credit models need, but may skip.)

use postgres::fallible_iterator::FallibleIterator;
use postgres::types::ToSql;
use postgres::{Client, GenericClient, IsolationLevel, NoTls, Row, Statement, Transaction};
use sha2::{Digest, Sha256};
use std::cell::{RefCell, RefMut};
use xinyong_store::*;

/// Migration 1: the whole schema of the SQLite backend.
const MIGRATION_1: &str = r#"
CREATE TABLE batches (
  batch_id TEXT COLLATE "C" PRIMARY KEY,          -- SHA-256 of the delivered file's bytes
  source TEXT COLLATE "C" NOT NULL, dataset TEXT COLLATE "C" NOT NULL, file_name TEXT COLLATE "C" NOT NULL,
  delivered_on TEXT COLLATE "C" NOT NULL, ingested_at TEXT COLLATE "C" NOT NULL,
  rows_read BIGINT NOT NULL, inserted BIGINT NOT NULL, replaced BIGINT NOT NULL,
  unchanged BIGINT NOT NULL, retired BIGINT NOT NULL, quarantined BIGINT NOT NULL,
  diagnostics TEXT COLLATE "C" NOT NULL
);
CREATE TABLE archive_chunks (                    -- the delivered file, verbatim, as gzip members
  batch_id TEXT COLLATE "C" NOT NULL, chunk BIGINT NOT NULL, first_row BIGINT NOT NULL,
  data BYTEA NOT NULL, PRIMARY KEY (batch_id, chunk)
);
CREATE TABLE facts (
  fact_id BIGSERIAL PRIMARY KEY,
  uscc TEXT COLLATE "C" NOT NULL, source TEXT COLLATE "C" NOT NULL, dataset TEXT COLLATE "C" NOT NULL,
  key TEXT COLLATE "C" NOT NULL, period TEXT COLLATE "C", event_date TEXT COLLATE "C", end_date TEXT COLLATE "C",
  fields TEXT COLLATE "C" NOT NULL, content_hash TEXT COLLATE "C" NOT NULL,
  batch_id TEXT COLLATE "C" NOT NULL, row BIGINT NOT NULL, n_rows BIGINT NOT NULL,
  known_from TEXT COLLATE "C" NOT NULL,           -- the delivery date of its batch
  known_to TEXT COLLATE "C",                      -- NULL while current; the delivery date of its replacement
  ingested_at TEXT COLLATE "C" NOT NULL, superseded_by BIGINT
);
CREATE UNIQUE INDEX facts_current ON facts (source, dataset, key) WHERE known_to IS NULL;
CREATE INDEX facts_uscc ON facts (uscc, dataset);
-- Guarantees are stored under the borrower; the guarantor's side is found through this partial index.
-- (jsonb cannot hold the escape \u0000, which a cell with a NUL character becomes in the canonical fields:
-- it is read as U+FFFD here, so that such a fact is stored, as SQLite stores it, instead of failing the commit.)
CREATE INDEX facts_guarantor ON facts ((replace(fields, '\u0000', '\ufffd')::jsonb ->> 'guarantor_id'))
  WHERE dataset IN ('lender.bank.guarantees', 'lender.gc.guarantees');
-- A rejected row may hold any character (NUL too, which TEXT cannot): detail and raw are its UTF-8 bytes.
CREATE TABLE quarantine (
  id BIGSERIAL PRIMARY KEY, batch_id TEXT COLLATE "C" NOT NULL, source TEXT COLLATE "C" NOT NULL,
  dataset TEXT COLLATE "C" NOT NULL, row BIGINT NOT NULL, reason TEXT COLLATE "C" NOT NULL,
  detail BYTEA NOT NULL, raw BYTEA NOT NULL
);
CREATE INDEX quarantine_reason ON quarantine (reason);
-- Credit model results. Enterprise-scoped tables carry the USCC (see ARCHITECTURE.md, distribution plan).
-- `seq` is the insertion order (SQLite's rowid), the tie-break of the latest model.
CREATE TABLE models (
  version TEXT COLLATE "C" PRIMARY KEY, created_at TEXT COLLATE "C" NOT NULL, json TEXT COLLATE "C" NOT NULL,
  seq BIGSERIAL NOT NULL
);
CREATE TABLE score_runs (
  run_id TEXT COLLATE "C" PRIMARY KEY, as_of TEXT COLLATE "C" NOT NULL, model_version TEXT COLLATE "C" NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL, firms BIGINT NOT NULL, benchmarks TEXT COLLATE "C" NOT NULL
);
CREATE TABLE scores (
  run_id TEXT COLLATE "C" NOT NULL, uscc TEXT COLLATE "C" NOT NULL, score DOUBLE PRECISION NOT NULL,
  pd DOUBLE PRECISION NOT NULL, grade TEXT COLLATE "C" NOT NULL, grade_unadjusted TEXT COLLATE "C" NOT NULL,
  colour TEXT COLLATE "C", detail TEXT COLLATE "C" NOT NULL, PRIMARY KEY (uscc, run_id)
);
CREATE INDEX scores_run ON scores (run_id);
CREATE TABLE warnings (
  run_id TEXT COLLATE "C" NOT NULL, uscc TEXT COLLATE "C" NOT NULL, rule BIGINT NOT NULL,
  colour TEXT COLLATE "C" NOT NULL, since TEXT COLLATE "C", clears_on TEXT COLLATE "C",
  evidence TEXT COLLATE "C" NOT NULL, PRIMARY KEY (uscc, run_id, rule)
);
CREATE INDEX warnings_run ON warnings (run_id);
CREATE TABLE warning_spans (
  run_id TEXT COLLATE "C" NOT NULL, uscc TEXT COLLATE "C" NOT NULL, rule BIGINT NOT NULL,
  colour TEXT COLLATE "C" NOT NULL, start TEXT COLLATE "C" NOT NULL, end_date TEXT COLLATE "C"
);
CREATE INDEX warning_spans_uscc ON warning_spans (uscc, run_id);
CREATE TABLE credit_events (
  event_id TEXT COLLATE "C" PRIMARY KEY, uscc TEXT COLLATE "C" NOT NULL, date TEXT COLLATE "C" NOT NULL,
  kind TEXT COLLATE "C" NOT NULL, rule BIGINT, before TEXT COLLATE "C" NOT NULL, after TEXT COLLATE "C" NOT NULL,
  first_run TEXT COLLATE "C" NOT NULL
);
CREATE INDEX credit_events_uscc ON credit_events (uscc, date);
CREATE TABLE firm_months (
  run_id TEXT COLLATE "C" NOT NULL, uscc TEXT COLLATE "C" NOT NULL, month TEXT COLLATE "C" NOT NULL,
  pd DOUBLE PRECISION NOT NULL, score DOUBLE PRECISION NOT NULL, grade TEXT COLLATE "C" NOT NULL,
  colour TEXT COLLATE "C", PRIMARY KEY (uscc, run_id, month)
);
CREATE INDEX firm_months_run ON firm_months (run_id);
CREATE TABLE risk_index (
  run_id TEXT COLLATE "C" NOT NULL, month TEXT COLLATE "C" NOT NULL, dimension TEXT COLLATE "C" NOT NULL,
  member TEXT COLLATE "C" NOT NULL, value DOUBLE PRECISION NOT NULL, detail TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (run_id, dimension, member, month)
);
CREATE TABLE index_movers (
  run_id TEXT COLLATE "C" NOT NULL, month TEXT COLLATE "C" NOT NULL, dimension TEXT COLLATE "C" NOT NULL,
  member TEXT COLLATE "C" NOT NULL, uscc TEXT COLLATE "C" NOT NULL, delta DOUBLE PRECISION NOT NULL
);
CREATE INDEX index_movers_run ON index_movers (run_id, dimension, member, month);
CREATE TABLE circles (
  run_id TEXT COLLATE "C" NOT NULL, group_id TEXT COLLATE "C" NOT NULL, firms BIGINT NOT NULL,
  in_circles BIGINT NOT NULL, total_amount DOUBLE PRECISION NOT NULL, detail TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (run_id, group_id)
);
"#;

/// The schema migrations, in order: (version, SQL). A migration is applied once, in one transaction with
/// its row in `schema_migrations`; released migrations are never edited, only followed by new ones.
const MIGRATIONS: &[(i64, &str)] = &[(1, MIGRATION_1), (2, MIGRATION_2)];

/// Migration 2: a batch's quarantine rows and a source's batches are looked up directly (the department's
/// data page).
const MIGRATION_2: &str = "
CREATE INDEX IF NOT EXISTS quarantine_batch ON quarantine(batch_id, row);
CREATE INDEX IF NOT EXISTS batches_source ON batches(source, delivered_on);
";

/// Advisory lock keys (per database): schema migrations, the batch writer, scoring runs.
const LOCK_MIGRATE: i64 = 0x7879_0001;
const LOCK_WRITER: i64 = 0x7879_0002;
const LOCK_RUNS: i64 = 0x7879_0003;

/// Facts written before the first refresh of the planner's statistics (see [`Growth`]).
const ANALYZE_MIN: u64 = 20_000;

/// Rows per multi-row insert of a scoring run.
const RUN_CHUNK: usize = 5_000;

/// The driver's error with its causes (the server's message among them).
fn pg_msg(e: &postgres::Error) -> String {
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

fn be(e: postgres::Error) -> StoreError {
    StoreError::Backend(pg_msg(&e))
}

fn no_batch() -> StoreError {
    StoreError::Backend("no batch started".into())
}

/// A stored non-negative integer (rows, counts) back as u64, as SQLite's `as u64`.
fn u(v: i64) -> u64 {
    v as u64
}

fn u32_of(v: i64, what: &str) -> Result<u32> {
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} out of range")))
}

fn text_of(b: Vec<u8>) -> Result<String> {
    String::from_utf8(b).map_err(|e| StoreError::Backend(format!("stored text is not UTF-8: {e}")))
}

/// The statements of the write path, prepared once per connection.
struct Stmts {
    /// Inserts the current version unless the key has one; returns the new fact id (no row otherwise).
    insert_current: Statement,
    /// Inserts a historical version (known_to set); returns the new fact id.
    insert_history: Statement,
    current: Statement,
    /// The current versions of many keys of one source and dataset.
    current_many: Statement,
    /// Closes many versions at one date.
    close_many: Statement,
    /// Points the closed versions at the current versions of their keys.
    supersede_many: Statement,
    at: Statement,
    next_from: Statement,
    set_known_to: Statement,
    set_superseded: Statement,
    retire_candidates: Statement,
    quarantine: Statement,
    chunk: Statement,
    batch: Statement,
}

impl Stmts {
    fn prepare(c: &mut Client) -> Result<Stmts> {
        let mut p = |sql: &str| c.prepare(sql).map_err(be);
        Ok(Stmts {
            insert_current: p("INSERT INTO facts (uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, batch_id, row, n_rows, known_from, known_to, ingested_at)
                 SELECT $1::text, $2::text, $3::text, $4::text, $5::text, $6::text, $7::text, $8::text, $9::text, $10::text, $11::bigint, $12::bigint, $13::text, NULL, $14::text
                 WHERE NOT EXISTS (SELECT 1 FROM facts WHERE source = $2 AND dataset = $3 AND key = $4 AND known_to IS NULL)
                 ON CONFLICT (source, dataset, key) WHERE known_to IS NULL DO NOTHING
                 RETURNING fact_id")?,
            insert_history: p("INSERT INTO facts (uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, batch_id, row, n_rows, known_from, known_to, ingested_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
                 RETURNING fact_id")?,
            current: p("SELECT fact_id, content_hash, known_from FROM facts WHERE source = $1 AND dataset = $2 AND key = $3 AND known_to IS NULL")?,
            current_many: p("SELECT key, fact_id, content_hash, known_from FROM facts
                 WHERE source = $1 AND dataset = $2 AND key = ANY($3) AND known_to IS NULL")?,
            close_many: p("UPDATE facts SET known_to = $1 WHERE fact_id = ANY($2)")?,
            supersede_many: p("UPDATE facts o SET superseded_by = n.fact_id FROM facts n
                 WHERE o.fact_id = ANY($1) AND n.source = o.source AND n.dataset = o.dataset AND n.key = o.key
                 AND n.known_to IS NULL")?,
            at: p("SELECT fact_id, content_hash FROM facts WHERE source = $1 AND dataset = $2 AND key = $3
                 AND known_from <= $4 AND known_to > $4 ORDER BY known_from DESC LIMIT 1")?,
            next_from: p("SELECT min(known_from) FROM facts WHERE source = $1 AND dataset = $2 AND key = $3 AND known_from > $4")?,
            set_known_to: p("UPDATE facts SET known_to = $1 WHERE fact_id = $2")?,
            set_superseded: p("UPDATE facts SET superseded_by = $1 WHERE fact_id = $2")?,
            retire_candidates: p("SELECT fact_id, key FROM facts WHERE uscc = $1 AND dataset = $2 AND source = $3
                 AND period IS NOT DISTINCT FROM $4::text AND known_to IS NULL AND known_from <= $5 ORDER BY fact_id")?,
            quarantine: p("INSERT INTO quarantine (batch_id, source, dataset, row, reason, detail, raw) VALUES ($1, $2, $3, $4, $5, $6, $7)")?,
            chunk: p("INSERT INTO archive_chunks (batch_id, chunk, first_row, data) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (batch_id, chunk) DO UPDATE SET first_row = EXCLUDED.first_row, data = EXCLUDED.data")?,
            batch: p("INSERT INTO batches (batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, replaced, unchanged, retired, quarantined, diagnostics)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")?,
        })
    }
}

/// The PostgreSQL store: one connection. Reads take `&self` (the connection sits in a `RefCell`): a read
/// started from inside a `scan_facts` callback on the same store is an error, not a deadlock.
pub struct PgStore {
    client: RefCell<Client>,
    st: Stmts,
    growth: Growth,
    /// Read statements prepared once per connection (a served page runs a handful of the same queries; the
    /// client has no cache of its own, and preparing costs a round trip each time).
    prepared: RefCell<std::collections::HashMap<String, postgres::Statement>>,
}

impl PgStore {
    /// Connects (`postgres://user@host:port/db` or `host=… user=… dbname=…`, without TLS) and applies
    /// the schema migrations the database does not have yet.
    pub fn connect(url: &str) -> Result<PgStore> {
        let mut client = Client::connect(url, NoTls).map_err(be)?;
        let sc: String = client.query_one("SHOW synchronous_commit", &[]).map_err(be)?.get(0);
        if sc == "off" {
            client.batch_execute("SET synchronous_commit = on").map_err(be)?;
        }
        let enc: String = client.query_one("SHOW server_encoding", &[]).map_err(be)?.get(0);
        if enc != "UTF8" {
            return Err(StoreError::Backend(format!(
                "the database's encoding is {enc}: the store needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8')"
            )));
        }
        migrate(&mut client)?;
        let st = Stmts::prepare(&mut client)?;
        // ANALYZE by a role that does not own the table is skipped with a mere warning: say so once.
        let owner: bool = client
            .query_one(
                "SELECT pg_has_role(relowner, 'USAGE') FROM pg_class WHERE oid = 'facts'::regclass",
                &[],
            )
            .map_err(be)?
            .get(0);
        if !owner {
            eprintln!(
                "note: this database role does not own the facts table, so bulk ingest cannot refresh its planner \
                 statistics; large loads may slow down until autovacuum analyses it"
            );
        }
        let analysed_at = reltuples(&mut client)?;
        Ok(PgStore {
            client: RefCell::new(client),
            prepared: RefCell::new(std::collections::HashMap::new()),
            st,
            growth: Growth {
                analysed_at,
                since: 0,
                min: ANALYZE_MIN,
            },
        })
    }

    /// Refreshes the planner statistics after `n` facts written at the earliest (default 20,000; tests
    /// lower it to exercise the refresh inside a transaction).
    pub fn set_analyze_min(&mut self, n: u64) {
        self.growth.min = n.max(1);
    }

    /// The schema version of the database (the last migration applied).
    pub fn schema_version(&self) -> Result<i64> {
        let row = self
            .client()?
            .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])
            .map_err(be)?;
        Ok(row.get(0))
    }

    fn client(&self) -> Result<RefMut<'_, Client>> {
        self.client
            .try_borrow_mut()
            .map_err(|_| StoreError::Backend("the store was used again from inside a scan_facts callback".into()))
    }

    /// The rows of a read query (its statement prepared once per connection).
    fn rows(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let mut c = self.client()?;
        let cached = self.prepared.borrow().get(sql).cloned();
        let st = match cached {
            Some(st) => st,
            None => {
                let st = c.prepare(sql).map_err(be)?;
                let mut m = self.prepared.borrow_mut();
                if m.len() >= 256 {
                    m.clear();
                }
                m.insert(sql.to_string(), st.clone());
                st
            }
        };
        c.query(&st, params).map_err(be)
    }

    /// Streams the rows of a read query to `f`, one at a time.
    fn each(&self, sql: &str, params: &[&(dyn ToSql + Sync)], f: &mut dyn FnMut(&Row) -> Result<()>) -> Result<()> {
        let mut c = self.client()?;
        let mut it = c.query_raw(sql, params.iter().copied()).map_err(be)?;
        while let Some(r) = it.next().map_err(be)? {
            f(&r)?;
        }
        Ok(())
    }
}

/// Applies the migrations the database does not have, in one transaction under an advisory lock.
fn migrate(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction().map_err(be)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_MIGRATE])
        .map_err(be)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
           version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(be)?;
    let have: i64 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM schema_migrations", &[])
        .map_err(be)?
        .get(0);
    let latest = MIGRATIONS.last().map_or(0, |m| m.0);
    if have > latest {
        return Err(StoreError::Backend(format!(
            "the database has schema version {have}, newer than this build knows ({latest})"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
        tx.batch_execute(sql)
            .map_err(|e| StoreError::Backend(format!("migration {version}: {}", pg_msg(&e))))?;
        tx.execute("INSERT INTO schema_migrations (version) VALUES ($1)", &[version])
            .map_err(be)?;
    }
    // The spec'd tables (`rows::TABLES`): created when missing; a change to a released one needs a migration.
    for t in rows::TABLES {
        tx.batch_execute(&rows::create_sql(t, &DIALECT))
            .map_err(|e| StoreError::Backend(format!("table {}: {}", t.name, pg_msg(&e))))?;
    }
    tx.commit().map_err(be)
}

struct Writer<'s> {
    tx: Transaction<'s>,
    st: &'s Stmts,
    meta: Option<BatchMeta>,
    /// The growth as this transaction sees it; written back to `home` only when it commits.
    growth: Growth,
    home: &'s mut Growth,
}

/// The facts table's size when its planner statistics were last refreshed, and the facts written since.
/// A bulk load into a small table outgrows the statistics the planner had when it cached the writer's
/// plans: a fact was then looked up through the (source, dataset) prefix of the index and filtered by key,
/// a scan of the whole dataset per lookup. The writer refreshes the statistics (ANALYZE, which sees the
/// transaction's own rows) each time the table has grown by as much as it held, so that the plans are
/// made again for its size: a handful of times over a district's load.
#[derive(Clone, Copy)]
struct Growth {
    /// The table's estimated rows at the last refresh (the server's own estimate, `pg_class.reltuples`).
    analysed_at: u64,
    /// Facts written since (new versions only: an unchanged delivery does not grow the table).
    since: u64,
    /// No refresh before this many facts are written.
    min: u64,
}

impl Writer<'_> {
    fn grew(&mut self, n: u64) -> Result<()> {
        let g = &mut self.growth;
        g.since += n;
        if g.since >= g.min.max(g.analysed_at) {
            self.tx.batch_execute("ANALYZE facts").map_err(be)?;
            g.analysed_at = reltuples(&mut self.tx)?;
            g.since = 0;
        }
        Ok(())
    }
}

/// The server's estimate of the facts table's rows (0 before any ANALYZE).
fn reltuples<C: GenericClient>(c: &mut C) -> Result<u64> {
    let r: f32 = c
        .query_one("SELECT reltuples FROM pg_class WHERE oid = 'facts'::regclass", &[])
        .map_err(be)?
        .get(0);
    Ok(r.max(0.0) as u64)
}

impl Writer<'_> {
    /// A delivery older than the current version arrives late: it becomes the version known from its
    /// delivery date until the next later version, and the version before it (if any) ends there.
    fn backdate(&mut self, f: &NewFact<'_>) -> Result<PutOutcome> {
        let m = self.meta.as_ref().ok_or_else(no_batch)?;
        let (s, d, k, t) = (&m.source, &m.dataset, f.key, &m.delivered_on);
        let at: Option<(i64, String)> = self
            .tx
            .query_opt(&self.st.at, &[s, d, &k, t])
            .map_err(be)?
            .map(|r| (r.get(0), r.get(1)));
        if at.as_ref().is_some_and(|(_, h)| h == f.content_hash) {
            return Ok(PutOutcome::Unchanged);
        }
        let next_from: Option<String> = self
            .tx
            .query_one(&self.st.next_from, &[s, d, &k, t])
            .map_err(be)?
            .get(0);
        let next_from =
            next_from.ok_or_else(|| StoreError::Backend(format!("no later version of fact {k} to backdate before")))?;
        if let Some((prev, _)) = at {
            self.tx.execute(&self.st.set_known_to, &[t, &prev]).map_err(be)?;
        }
        insert_fact(&mut self.tx, self.st, m, f, Some(&next_from))?;
        Ok(PutOutcome::Backdated)
    }
}

impl BatchWriter for Writer<'_> {
    fn start_batch(&mut self, meta: &BatchMeta) -> Result<()> {
        self.meta = Some(meta.clone());
        Ok(())
    }

    fn put_fact(&mut self, f: &NewFact<'_>) -> Result<PutOutcome> {
        let m = self.meta.as_ref().ok_or_else(no_batch)?;
        // Most facts are new: try the insert first; it is a no-op when the key is already current.
        if insert_fact(&mut self.tx, self.st, m, f, None)?.is_some() {
            return Ok(PutOutcome::Inserted);
        }
        let cur = self
            .tx
            .query_opt(&self.st.current, &[&m.source, &m.dataset, &f.key])
            .map_err(be)?
            .ok_or_else(|| StoreError::Backend(format!("fact {} is neither new nor current", f.key)))?;
        let (old, hash, old_from): (i64, String, String) = (cur.get(0), cur.get(1), cur.get(2));
        if m.delivered_on < old_from {
            return self.backdate(f);
        }
        if hash == f.content_hash {
            return Ok(PutOutcome::Unchanged);
        }
        self.tx
            .execute(&self.st.set_known_to, &[&m.delivered_on, &old])
            .map_err(be)?;
        let new = insert_fact(&mut self.tx, self.st, m, f, None)?
            .ok_or_else(|| StoreError::Backend(format!("could not replace fact {}", f.key)))?;
        self.tx.execute(&self.st.set_superseded, &[&new, &old]).map_err(be)?;
        Ok(PutOutcome::Replaced)
    }

    /// In bulk: one query finds the keys' current versions, one update closes the replaced ones, COPY
    /// writes the new versions in the given order (so that their ids are drawn in that order, as one
    /// `put_fact` after another would draw them), and one update links the closed versions to their
    /// successors. A call with a key twice, or with a late (backdated) delivery, is stored one fact at a
    /// time instead (before anything is written), since each fact then depends on the one before it.
    fn put_facts(&mut self, facts: &[NewFact<'_>]) -> Result<Vec<PutOutcome>> {
        let m = self.meta.clone().ok_or_else(no_batch)?;
        let one_by_one = |w: &mut Self| -> Result<Vec<PutOutcome>> {
            let out: Vec<PutOutcome> = facts.iter().map(|f| w.put_fact(f)).collect::<Result<_>>()?;
            w.grew(out.iter().filter(|o| **o != PutOutcome::Unchanged).count() as u64)?;
            Ok(out)
        };
        let mut seen = std::collections::HashSet::with_capacity(facts.len());
        if facts.len() < 2 || !facts.iter().all(|f| seen.insert(f.key)) {
            return one_by_one(self);
        }
        let keys: Vec<&str> = facts.iter().map(|f| f.key).collect();
        let mut current = std::collections::HashMap::with_capacity(facts.len());
        for r in self
            .tx
            .query(&self.st.current_many, &[&m.source, &m.dataset, &keys])
            .map_err(be)?
        {
            let (key, id, hash, from): (String, i64, String, String) = (r.get(0), r.get(1), r.get(2), r.get(3));
            current.insert(key, (id, hash, from));
        }
        let mut out = Vec::with_capacity(facts.len());
        let mut closed: Vec<i64> = Vec::new();
        for f in facts {
            out.push(match current.get(f.key) {
                None => PutOutcome::Inserted,
                Some((_, _, from)) if m.delivered_on < *from => return one_by_one(self),
                Some((_, hash, _)) if hash == f.content_hash => PutOutcome::Unchanged,
                Some((id, _, _)) => {
                    closed.push(*id);
                    PutOutcome::Replaced
                }
            });
        }
        if !closed.is_empty() {
            self.tx
                .execute(&self.st.close_many, &[&m.delivered_on, &closed])
                .map_err(be)?;
        }
        copy_facts(
            &mut self.tx,
            &m,
            facts.iter().zip(&out).filter(|(_, o)| **o != PutOutcome::Unchanged),
        )?;
        if !closed.is_empty() {
            self.tx.execute(&self.st.supersede_many, &[&closed]).map_err(be)?;
        }
        self.grew(out.iter().filter(|o| **o != PutOutcome::Unchanged).count() as u64)?;
        Ok(out)
    }

    fn retire_absent(&mut self, uscc: &str, period: Option<&str>, keep: &[&str]) -> Result<u64> {
        let m = self.meta.as_ref().ok_or_else(no_batch)?;
        let current = self
            .tx
            .query(
                &self.st.retire_candidates,
                &[&uscc, &m.dataset, &m.source, &period, &m.delivered_on],
            )
            .map_err(be)?;
        let mut n = 0;
        for r in current {
            let (id, key): (i64, &str) = (r.get(0), r.get(1));
            if !keep.contains(&key) {
                self.tx
                    .execute(&self.st.set_known_to, &[&m.delivered_on, &id])
                    .map_err(be)?;
                n += 1;
            }
        }
        Ok(n)
    }

    fn quarantine(&mut self, q: &QuarantineRow<'_>) -> Result<()> {
        let m = self.meta.as_ref().ok_or_else(no_batch)?;
        let row = q.row as i64;
        self.tx
            .execute(
                &self.st.quarantine,
                &[
                    &m.batch_id,
                    &m.source,
                    &m.dataset,
                    &row,
                    &q.reason,
                    &q.detail.as_bytes(),
                    &q.raw.as_bytes(),
                ],
            )
            .map_err(be)?;
        Ok(())
    }

    fn add_chunk(&mut self, c: &ArchiveChunk) -> Result<()> {
        let m = self.meta.as_ref().ok_or_else(no_batch)?;
        let (chunk, first_row) = (i64::from(c.chunk), c.first_row as i64);
        self.tx
            .execute(&self.st.chunk, &[&m.batch_id, &chunk, &first_row, &c.data])
            .map_err(be)?;
        Ok(())
    }

    fn end_batch(&mut self, c: BatchCounts, diagnostics: &[String]) -> Result<()> {
        let m = self.meta.take().ok_or_else(no_batch)?;
        let n = |v: u64| v as i64;
        self.tx
            .execute(
                &self.st.batch,
                &[
                    &m.batch_id,
                    &m.source,
                    &m.dataset,
                    &m.file_name,
                    &m.delivered_on,
                    &m.ingested_at,
                    &n(c.rows_read),
                    &n(c.inserted),
                    &n(c.replaced),
                    &n(c.unchanged),
                    &n(c.retired),
                    &n(c.quarantined),
                    &diagnostics.join("\n"),
                ],
            )
            .map_err(be)?;
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let Writer { tx, growth, home, .. } = *self;
        tx.commit().map_err(be)?;
        *home = growth;
        Ok(())
    }
}

/// Writes current versions with COPY (binary format), in the iterator's order.
fn copy_facts<'f: 'i, 'i>(
    tx: &mut Transaction<'_>,
    m: &BatchMeta,
    facts: impl Iterator<Item = (&'i NewFact<'f>, &'i PutOutcome)>,
) -> Result<()> {
    use postgres::binary_copy::BinaryCopyInWriter;
    use postgres::types::Type;
    let sink = tx
        .copy_in(
            "COPY facts (uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, batch_id, \
             row, n_rows, known_from, ingested_at) FROM STDIN (FORMAT binary)",
        )
        .map_err(be)?;
    let (t, i) = (Type::TEXT, Type::INT8);
    let types = [
        t.clone(),
        t.clone(),
        t.clone(),
        t.clone(),
        t.clone(),
        t.clone(),
        t.clone(),
        t.clone(),
        t.clone(),
        t.clone(),
        i.clone(),
        i,
        t.clone(),
        t,
    ];
    let mut w = BinaryCopyInWriter::new(sink, &types);
    for (f, _) in facts {
        let (row, n_rows) = (f.row as i64, f.n_rows as i64);
        w.write(&[
            &f.uscc,
            &m.source,
            &m.dataset,
            &f.key,
            &f.period,
            &f.date,
            &f.end_date,
            &f.fields,
            &f.content_hash,
            &m.batch_id,
            &row,
            &n_rows,
            &m.delivered_on,
            &m.ingested_at,
        ])
        .map_err(be)?;
    }
    w.finish().map_err(be)?;
    Ok(())
}

/// Inserts a version of a fact: the current one (`known_to` None; nothing is inserted, and None returned, when
/// its key already has a current version) or a historical one known until `known_to`. Returns the new fact id.
fn insert_fact(
    tx: &mut Transaction<'_>,
    st: &Stmts,
    m: &BatchMeta,
    f: &NewFact<'_>,
    known_to: Option<&str>,
) -> Result<Option<i64>> {
    let (row, n_rows) = (f.row as i64, f.n_rows as i64);
    let mut params: Vec<&(dyn postgres::types::ToSql + Sync)> = vec![
        &f.uscc,
        &m.source,
        &m.dataset,
        &f.key,
        &f.period,
        &f.date,
        &f.end_date,
        &f.fields,
        &f.content_hash,
        &m.batch_id,
        &row,
        &n_rows,
        &m.delivered_on,
    ];
    let stmt = match &known_to {
        Some(k) => {
            params.push(k);
            &st.insert_history
        }
        None => &st.insert_current,
    };
    params.push(&m.ingested_at);
    let r = tx.query_opt(stmt, &params).map_err(be)?;
    Ok(r.map(|r| r.get(0)))
}

/// A quarantine row as read (`batch_id, source, dataset, row, reason, detail, raw`).
fn quarantined(r: &Row) -> Result<StoredQuarantine> {
    Ok(StoredQuarantine {
        batch_id: r.get(0),
        source: r.get(1),
        dataset: r.get(2),
        row: u(r.get(3)),
        reason: r.get(4),
        detail: text_of(r.get(5))?,
        raw: text_of(r.get(6))?,
    })
}

fn stored(r: &Row) -> StoredFact {
    StoredFact {
        fact_id: r.get(0),
        uscc: r.get(1),
        source: r.get(2),
        dataset: r.get(3),
        key: r.get(4),
        period: r.get(5),
        fields: r.get(6),
        batch_id: r.get(7),
        row: u(r.get(8)),
        n_rows: u(r.get(9)),
        known_from: r.get(10),
        known_to: r.get(11),
        ingested_at: r.get(12),
    }
}

fn scanned(r: &Row) -> ScanFact {
    ScanFact {
        fact_id: r.get(0),
        uscc: r.get(1),
        source: r.get(2),
        dataset: r.get(3),
        period: r.get(4),
        event_date: r.get(5),
        end_date: r.get(6),
        fields: r.get(7),
        known_from: r.get(8),
        known_to: r.get(9),
    }
}

const FACT_COLS: &str = "f.fact_id, f.uscc, f.source, f.dataset, f.key, f.period, f.fields, f.batch_id, f.row, f.n_rows, f.known_from, f.known_to, f.ingested_at";
/// The guarantees naming a guarantor: the predicate and expression of the partial index `facts_guarantor`.
const GUARANTEE_DATASETS: &str = "dataset IN ('lender.bank.guarantees', 'lender.gc.guarantees')";
const GUARANTOR: &str = "(replace(fields, '\\u0000', '\\ufffd')::jsonb ->> 'guarantor_id')";
const SCAN_COLS: &str = "fact_id, uscc, source, dataset, period, event_date, end_date, fields, known_from, known_to";

/// One column of a chunk of rows, as an array parameter.
fn col<'a, T, U>(c: &'a [T], f: impl Fn(&'a T) -> U) -> Vec<U> {
    c.iter().map(f).collect()
}

/// Tables holding a run's rows (deleted when the run is written again).
const RUN_TABLES: [&str; 8] = [
    "score_runs",
    "scores",
    "warnings",
    "warning_spans",
    "firm_months",
    "risk_index",
    "index_movers",
    "circles",
];

/// Streams the rows of a read query on `c` to `f`, one at a time.
fn each_on<C: GenericClient>(
    c: &mut C,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    f: &mut dyn FnMut(&Row) -> Result<()>,
) -> Result<()> {
    let mut it = c.query_raw(sql, params.iter().copied()).map_err(be)?;
    while let Some(r) = it.next().map_err(be)? {
        f(&r)?;
    }
    Ok(())
}

/// The SQLite backend's algorithm: the same lines in the same order (bytewise, with the insertion order
/// breaking ties, as SQLite's sort does), so equal content gives equal hashes across backends. On a client or
/// inside a transaction (an export's snapshot, an import before it commits).
fn content_hash_on<C: GenericClient>(c: &mut C) -> Result<String> {
    let mut h = Sha256::new();
    let mut line = |parts: &[&[u8]]| {
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                h.update(b"|");
            }
            h.update(p);
        }
        h.update(b"\n");
    };
    each_on(
        c,
        "SELECT batch_id, source, dataset, delivered_on, rows_read, inserted, replaced, unchanged, retired, quarantined \
         FROM batches ORDER BY batch_id",
        &[],
        &mut |r| {
            let n: Vec<String> = (4..10).map(|i| r.get::<_, i64>(i).to_string()).collect();
            let s: Vec<&str> = (0..4).map(|i| r.get::<_, &str>(i)).collect();
            line(&[
                s[0].as_bytes(),
                s[1].as_bytes(),
                s[2].as_bytes(),
                s[3].as_bytes(),
                n[0].as_bytes(),
                n[1].as_bytes(),
                n[2].as_bytes(),
                n[3].as_bytes(),
                n[4].as_bytes(),
                n[5].as_bytes(),
            ]);
            Ok(())
        },
    )?;
    each_on(
        c,
        "SELECT source, dataset, key, content_hash, batch_id, row, known_from, coalesce(known_to, '') FROM facts \
         ORDER BY source, dataset, key, known_from, batch_id, fact_id",
        &[],
        &mut |r| {
            let row = r.get::<_, i64>(5).to_string();
            let s = |i: usize| r.get::<_, &str>(i).as_bytes();
            line(&[s(0), s(1), s(2), s(3), s(4), row.as_bytes(), s(6), s(7)]);
            Ok(())
        },
    )?;
    each_on(
        c,
        "SELECT batch_id, row, reason, detail, raw FROM quarantine ORDER BY batch_id, row, reason, id",
        &[],
        &mut |r| {
            let row = r.get::<_, i64>(1).to_string();
            line(&[
                r.get::<_, &str>(0).as_bytes(),
                row.as_bytes(),
                r.get::<_, &str>(2).as_bytes(),
                r.get::<_, &[u8]>(3),
                r.get::<_, &[u8]>(4),
            ]);
            Ok(())
        },
    )?;
    Ok(hex::encode(h.finalize()))
}

fn opt_u32(v: Option<i64>, what: &str) -> Result<Option<u32>> {
    v.map(|v| u32_of(v, what)).transpose()
}

/// Every table's rows as records, from the transaction's snapshot, then its content hash.
fn export_all(tx: &mut Transaction<'_>, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
    let mut rows =
        |sql: &str, f: &dyn Fn(&Row) -> Result<Record>| -> Result<()> { each_on(tx, sql, &[], &mut |r| sink(f(r)?)) };
    rows(
        "SELECT batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, replaced, \
         unchanged, retired, quarantined, diagnostics FROM batches ORDER BY batch_id",
        &|r| {
            Ok(Record::Batch {
                meta: BatchMeta {
                    batch_id: r.get(0),
                    source: r.get(1),
                    dataset: r.get(2),
                    file_name: r.get(3),
                    delivered_on: r.get(4),
                    ingested_at: r.get(5),
                },
                counts: BatchCounts {
                    rows_read: u(r.get(6)),
                    inserted: u(r.get(7)),
                    replaced: u(r.get(8)),
                    unchanged: u(r.get(9)),
                    retired: u(r.get(10)),
                    quarantined: u(r.get(11)),
                },
                diagnostics: r.get(12),
            })
        },
    )?;
    rows(
        "SELECT batch_id, chunk, first_row, data FROM archive_chunks ORDER BY batch_id, chunk",
        &|r| {
            Ok(Record::Chunk {
                batch_id: r.get(0),
                chunk: ArchiveChunk {
                    chunk: u32_of(r.get(1), "chunk")?,
                    first_row: u(r.get(2)),
                    data: r.get(3),
                },
            })
        },
    )?;
    rows(
        "SELECT fact_id, uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, batch_id, \
         row, n_rows, known_from, known_to, ingested_at, superseded_by FROM facts ORDER BY fact_id",
        &|r| {
            Ok(Record::Fact(FactRecord {
                fact_id: r.get(0),
                uscc: r.get(1),
                source: r.get(2),
                dataset: r.get(3),
                key: r.get(4),
                period: r.get(5),
                event_date: r.get(6),
                end_date: r.get(7),
                fields: r.get(8),
                content_hash: r.get(9),
                batch_id: r.get(10),
                row: u(r.get(11)),
                n_rows: u(r.get(12)),
                known_from: r.get(13),
                known_to: r.get(14),
                ingested_at: r.get(15),
                superseded_by: r.get(16),
            }))
        },
    )?;
    rows(
        "SELECT id, batch_id, source, dataset, row, reason, detail, raw FROM quarantine ORDER BY id",
        &|r| {
            Ok(Record::Quarantine {
                id: r.get(0),
                row: StoredQuarantine {
                    batch_id: r.get(1),
                    source: r.get(2),
                    dataset: r.get(3),
                    row: u(r.get(4)),
                    reason: r.get(5),
                    detail: text_of(r.get(6))?,
                    raw: text_of(r.get(7))?,
                },
            })
        },
    )?;
    rows("SELECT version, created_at, json FROM models ORDER BY seq", &|r| {
        Ok(Record::Model {
            version: r.get(0),
            created_at: r.get(1),
            json: r.get(2),
        })
    })?;
    rows(
        "SELECT run_id, as_of, model_version, created_at, firms, benchmarks FROM score_runs ORDER BY run_id",
        &|r| {
            Ok(Record::Run {
                run_id: r.get(0),
                as_of: r.get(1),
                model_version: r.get(2),
                created_at: r.get(3),
                firms: u(r.get(4)),
                benchmarks: r.get(5),
            })
        },
    )?;
    rows(
        "SELECT run_id, uscc, score, pd, grade, grade_unadjusted, colour, detail FROM scores ORDER BY run_id, uscc",
        &|r| {
            Ok(Record::Score {
                run_id: r.get(0),
                row: ScoreRow {
                    uscc: r.get(1),
                    score: r.get(2),
                    pd: r.get(3),
                    grade: r.get(4),
                    grade_unadjusted: r.get(5),
                    colour: r.get(6),
                    detail: r.get(7),
                },
            })
        },
    )?;
    rows(
        "SELECT run_id, uscc, rule, colour, since, clears_on, evidence FROM warnings ORDER BY run_id, uscc, rule",
        &|r| {
            Ok(Record::Warning {
                run_id: r.get(0),
                row: WarningRow {
                    uscc: r.get(1),
                    rule: u32_of(r.get(2), "rule")?,
                    colour: r.get(3),
                    since: r.get(4),
                    clears_on: r.get(5),
                    evidence: r.get(6),
                },
            })
        },
    )?;
    // No insertion order is kept for spans and movers: every column orders them.
    rows(
        "SELECT run_id, uscc, rule, colour, start, end_date FROM warning_spans \
         ORDER BY run_id, uscc, rule, colour, start, end_date NULLS FIRST",
        &|r| {
            Ok(Record::Span {
                run_id: r.get(0),
                uscc: r.get(1),
                rule: u32_of(r.get(2), "rule")?,
                colour: r.get(3),
                start: r.get(4),
                end: r.get(5),
            })
        },
    )?;
    rows(
        "SELECT event_id, uscc, date, kind, rule, before, after, first_run FROM credit_events ORDER BY event_id",
        &|r| {
            Ok(Record::Event {
                row: EventRow {
                    id: r.get(0),
                    uscc: r.get(1),
                    date: r.get(2),
                    kind: r.get(3),
                    rule: opt_u32(r.get(4), "rule")?,
                    before: r.get(5),
                    after: r.get(6),
                },
                first_run: r.get(7),
            })
        },
    )?;
    rows(
        "SELECT run_id, uscc, month, pd, score, grade, colour FROM firm_months ORDER BY run_id, uscc, month",
        &|r| {
            Ok(Record::FirmMonth {
                run_id: r.get(0),
                uscc: r.get(1),
                month: r.get(2),
                pd: r.get(3),
                score: r.get(4),
                grade: r.get(5),
                colour: r.get(6),
            })
        },
    )?;
    rows(
        "SELECT run_id, month, dimension, member, value, detail FROM risk_index ORDER BY run_id, dimension, member, month",
        &|r| {
            Ok(Record::Index {
                run_id: r.get(0),
                month: r.get(1),
                dimension: r.get(2),
                member: r.get(3),
                value: r.get(4),
                detail: r.get(5),
            })
        },
    )?;
    rows(
        "SELECT run_id, month, dimension, member, uscc, delta FROM index_movers \
         ORDER BY run_id, month, dimension, member, uscc, delta",
        &|r| {
            Ok(Record::Mover {
                run_id: r.get(0),
                month: r.get(1),
                dimension: r.get(2),
                member: r.get(3),
                uscc: r.get(4),
                delta: r.get(5),
            })
        },
    )?;
    rows(
        "SELECT run_id, group_id, firms, in_circles, total_amount, detail FROM circles ORDER BY run_id, group_id",
        &|r| {
            Ok(Record::Circle {
                run_id: r.get(0),
                group_id: r.get(1),
                firms: u(r.get(2)),
                in_circles: u(r.get(3)),
                total_amount: r.get(4),
                detail: r.get(5),
            })
        },
    )?;
    for t in rows::exported() {
        let (_, sql) = rows::select_sql(&rows::RowQuery::all(t.name), &DIALECT)?;
        each_on(tx, &sql, &[], &mut |r| {
            sink(Record::Row {
                table: t.name,
                row: spec_row(t, r),
            })
        })?;
    }
    let h = content_hash_on(tx)?;
    sink(Record::ContentHash(h))
}

/// The INSERT of an exported record's table (its column list is also the COPY's); None for the content hash.
fn insert_sql(rec: &Record) -> Option<&'static str> {
    Some(match rec {
        Record::Batch { .. } => {
            "INSERT INTO batches (batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, \
             replaced, unchanged, retired, quarantined, diagnostics) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)"
        }
        Record::Chunk { .. } => "INSERT INTO archive_chunks (batch_id, chunk, first_row, data) VALUES ($1,$2,$3,$4)",
        Record::Fact(_) => {
            "INSERT INTO facts (fact_id, uscc, source, dataset, key, period, event_date, end_date, fields, content_hash, \
             batch_id, row, n_rows, known_from, known_to, ingested_at, superseded_by) \
             VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)"
        }
        Record::Quarantine { .. } => {
            "INSERT INTO quarantine (id, batch_id, source, dataset, row, reason, detail, raw) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
        }
        Record::Model { .. } => "INSERT INTO models (version, created_at, json) VALUES ($1,$2,$3)",
        Record::Run { .. } => {
            "INSERT INTO score_runs (run_id, as_of, model_version, created_at, firms, benchmarks) VALUES ($1,$2,$3,$4,$5,$6)"
        }
        Record::Score { .. } => {
            "INSERT INTO scores (run_id, uscc, score, pd, grade, grade_unadjusted, colour, detail) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
        }
        Record::Warning { .. } => {
            "INSERT INTO warnings (run_id, uscc, rule, colour, since, clears_on, evidence) VALUES ($1,$2,$3,$4,$5,$6,$7)"
        }
        Record::Span { .. } => {
            "INSERT INTO warning_spans (run_id, uscc, rule, colour, start, end_date) VALUES ($1,$2,$3,$4,$5,$6)"
        }
        Record::Event { .. } => {
            "INSERT INTO credit_events (event_id, uscc, date, kind, rule, before, after, first_run) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)"
        }
        Record::FirmMonth { .. } => {
            "INSERT INTO firm_months (run_id, uscc, month, pd, score, grade, colour) VALUES ($1,$2,$3,$4,$5,$6,$7)"
        }
        Record::Index { .. } => {
            "INSERT INTO risk_index (run_id, month, dimension, member, value, detail) VALUES ($1,$2,$3,$4,$5,$6)"
        }
        Record::Mover { .. } => {
            "INSERT INTO index_movers (run_id, month, dimension, member, uscc, delta) VALUES ($1,$2,$3,$4,$5,$6)"
        }
        Record::Circle { .. } => {
            "INSERT INTO circles (run_id, group_id, firms, in_circles, total_amount, detail) VALUES ($1,$2,$3,$4,$5,$6)"
        }
        Record::Row { .. } | Record::ContentHash(_) => return None,
    })
}

/// Calls `f` with the values of an exported record, in its INSERT's column order.
fn with_values<R>(rec: &Record, put: &mut dyn FnMut(&[&(dyn ToSql + Sync)]) -> R) -> R {
    let n = |v: u64| v as i64;
    match rec {
        Record::Batch {
            meta: m,
            counts: k,
            diagnostics,
        } => put(&[
            &m.batch_id,
            &m.source,
            &m.dataset,
            &m.file_name,
            &m.delivered_on,
            &m.ingested_at,
            &n(k.rows_read),
            &n(k.inserted),
            &n(k.replaced),
            &n(k.unchanged),
            &n(k.retired),
            &n(k.quarantined),
            diagnostics,
        ]),
        Record::Chunk { batch_id, chunk } => {
            put(&[batch_id, &i64::from(chunk.chunk), &n(chunk.first_row), &chunk.data])
        }
        Record::Fact(f) => put(&[
            &f.fact_id,
            &f.uscc,
            &f.source,
            &f.dataset,
            &f.key,
            &f.period,
            &f.event_date,
            &f.end_date,
            &f.fields,
            &f.content_hash,
            &f.batch_id,
            &n(f.row),
            &n(f.n_rows),
            &f.known_from,
            &f.known_to,
            &f.ingested_at,
            &f.superseded_by,
        ]),
        Record::Quarantine { id, row: q } => put(&[
            id,
            &q.batch_id,
            &q.source,
            &q.dataset,
            &n(q.row),
            &q.reason,
            &q.detail.as_bytes(),
            &q.raw.as_bytes(),
        ]),
        Record::Model {
            version,
            created_at,
            json,
        } => put(&[version, created_at, json]),
        Record::Run {
            run_id,
            as_of,
            model_version,
            created_at,
            firms,
            benchmarks,
        } => put(&[run_id, as_of, model_version, created_at, &n(*firms), benchmarks]),
        Record::Score { run_id, row: r } => put(&[
            run_id,
            &r.uscc,
            &r.score,
            &r.pd,
            &r.grade,
            &r.grade_unadjusted,
            &r.colour,
            &r.detail,
        ]),
        Record::Warning { run_id, row: w } => put(&[
            run_id,
            &w.uscc,
            &i64::from(w.rule),
            &w.colour,
            &w.since,
            &w.clears_on,
            &w.evidence,
        ]),
        Record::Span {
            run_id,
            uscc,
            rule,
            colour,
            start,
            end,
        } => put(&[run_id, uscc, &i64::from(*rule), colour, start, end]),
        Record::Event { row: e, first_run } => put(&[
            &e.id,
            &e.uscc,
            &e.date,
            &e.kind,
            &e.rule.map(i64::from),
            &e.before,
            &e.after,
            first_run,
        ]),
        Record::FirmMonth {
            run_id,
            uscc,
            month,
            pd,
            score,
            grade,
            colour,
        } => put(&[run_id, uscc, month, pd, score, grade, colour]),
        Record::Index {
            run_id,
            month,
            dimension,
            member,
            value,
            detail,
        } => put(&[run_id, month, dimension, member, value, detail]),
        Record::Mover {
            run_id,
            month,
            dimension,
            member,
            uscc,
            delta,
        } => put(&[run_id, month, dimension, member, uscc, delta]),
        Record::Circle {
            run_id,
            group_id,
            firms,
            in_circles,
            total_amount,
            detail,
        } => put(&[run_id, group_id, &n(*firms), &n(*in_circles), total_amount, detail]),
        Record::Row { .. } | Record::ContentHash(_) => put(&[]),
    }
}

/// How PostgreSQL spells the spec'd tables' types and parameters ([`rows`]); text compares bytewise.
const DIALECT: rows::Dialect = rows::Dialect {
    types: ["BIGINT", "DOUBLE PRECISION", "TEXT COLLATE \"C\"", "BYTEA"],
    param: |i| format!("${i}"),
};

/// Row values as parameters; a NULL takes its column's type.
fn row_params<'c>(cols: impl Iterator<Item = &'c rows::Column>, values: &[rows::Value]) -> Vec<Box<dyn ToSql + Sync>> {
    cols.zip(values)
        .map(|(c, v)| -> Box<dyn ToSql + Sync> {
            match (v, c.ty) {
                (rows::Value::Int(i), _) => Box::new(*i),
                (rows::Value::Real(f), _) => Box::new(*f),
                (rows::Value::Text(t), _) => Box::new(t.clone()),
                (rows::Value::Bytes(b), _) => Box::new(b.clone()),
                (rows::Value::Null, rows::SqlType::Int) => Box::new(None::<i64>),
                (rows::Value::Null, rows::SqlType::Real) => Box::new(None::<f64>),
                (rows::Value::Null, rows::SqlType::Text) => Box::new(None::<String>),
                (rows::Value::Null, rows::SqlType::Bytes) => Box::new(None::<Vec<u8>>),
            }
        })
        .collect()
}

/// A spec'd table's row as read.
fn spec_row(t: &rows::TableSpec, r: &Row) -> rows::Row {
    t.columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let v = match c.ty {
                rows::SqlType::Int => r.get::<_, Option<i64>>(i).map(rows::Value::Int),
                rows::SqlType::Real => r.get::<_, Option<f64>>(i).map(rows::Value::Real),
                rows::SqlType::Text => r.get::<_, Option<String>>(i).map(rows::Value::Text),
                rows::SqlType::Bytes => r.get::<_, Option<Vec<u8>>>(i).map(rows::Value::Bytes),
            };
            v.unwrap_or(rows::Value::Null)
        })
        .collect()
}

fn refs(p: &[Box<dyn ToSql + Sync>]) -> Vec<&(dyn ToSql + Sync)> {
    p.iter().map(|b| &**b).collect()
}

impl Store for PgStore {
    fn export(&self, sink: &mut dyn FnMut(Record) -> Result<()>) -> Result<()> {
        // One REPEATABLE READ transaction: every query sees the snapshot of its first, while writers go on.
        let mut c = self.client()?;
        let mut tx = c
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(be)?;
        export_all(&mut tx, sink)?;
        tx.commit().map_err(be)
    }

    fn import(&mut self, next: &mut dyn FnMut() -> Result<Option<Record>>) -> Result<u64> {
        let mut tx = self.client.get_mut().transaction().map_err(be)?;
        // No batch writer nor run writer meanwhile.
        tx.execute(
            "SELECT pg_advisory_xact_lock($1), pg_advisory_xact_lock($2)",
            &[&LOCK_WRITER, &LOCK_RUNS],
        )
        .map_err(be)?;
        for t in TABLES.into_iter().chain(rows::TABLES.iter().map(|t| t.name)) {
            let any: bool = tx
                .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {t})"), &[])
                .map_err(be)?
                .get(0);
            if any {
                return Err(not_empty(t));
            }
        }
        // Each run of records of one table is loaded with one COPY (binary), whose column types are those of
        // the table's INSERT, prepared once.
        let mut copies: std::collections::HashMap<&'static str, (String, Vec<postgres::types::Type>)> =
            std::collections::HashMap::new();
        let (mut n, mut expected) = (0u64, None);
        let mut pending = next()?;
        while let Some(first) = pending.take() {
            if let Record::Row { table, row } = &first {
                let t = rows::spec(table)?;
                rows::check_row(t, row)?;
                let p = row_params(t.columns.iter(), row);
                tx.execute(&rows::insert_sql(t, &DIALECT, false), &refs(&p))
                    .map_err(be)?;
                n += 1;
                pending = next()?;
                continue;
            }
            let Some(sql) = insert_sql(&first) else {
                if let Record::ContentHash(h) = first {
                    expected = Some(h);
                }
                pending = next()?;
                continue;
            };
            let table = first.table();
            if !copies.contains_key(table) {
                let types = tx.prepare(sql).map_err(be)?.params().to_vec();
                let cols = &sql[..sql.find(" VALUES").unwrap_or(sql.len())];
                let copy = format!("{} FROM STDIN (FORMAT binary)", cols.replacen("INSERT INTO", "COPY", 1));
                copies.insert(table, (copy, types));
            }
            let (copy, types) = &copies[table];
            let mut w = postgres::binary_copy::BinaryCopyInWriter::new(tx.copy_in(copy.as_str()).map_err(be)?, types);
            let mut rec = Some(first);
            while let Some(r) = rec.take() {
                if r.table() != table || matches!(r, Record::ContentHash(_)) {
                    pending = Some(r);
                    break;
                }
                with_values(&r, &mut |v| {
                    if v.len() != types.len() {
                        return Err(StoreError::Backend(format!(
                            "{table}: {} values for {} columns",
                            v.len(),
                            types.len()
                        )));
                    }
                    w.write(v).map_err(be)
                })?;
                n += 1;
                rec = next()?;
            }
            w.finish().map_err(be)?;
        }
        // New facts and quarantine rows get ids after the imported ones.
        tx.batch_execute(
            "SELECT setval(pg_get_serial_sequence('facts', 'fact_id'), (SELECT coalesce(max(fact_id), 0) + 1 FROM facts), false);
             SELECT setval(pg_get_serial_sequence('quarantine', 'id'), (SELECT coalesce(max(id), 0) + 1 FROM quarantine), false);",
        )
        .map_err(be)?;
        if let Some(h) = expected {
            let got = content_hash_on(&mut tx)?;
            if got != h {
                return Err(hash_mismatch(&h, &got));
            }
        }
        tx.commit().map_err(be)?;
        // The planner's statistics for what was just loaded: without them a restored or migrated store reads
        // with plans made for empty tables until autovacuum comes by (measured: a served overview took ~20 ms
        // instead of ~1 ms). Skipped with a note by a role that does not own the tables.
        if let Err(e) = self.client.get_mut().batch_execute("ANALYZE") {
            eprintln!("note: ANALYZE after the import failed ({}); run it by hand", pg_msg(&e));
        }
        Ok(n)
    }

    fn has_batch(&self, batch_id: &str) -> Result<bool> {
        Ok(self
            .client()?
            .query_opt("SELECT 1 FROM batches WHERE batch_id = $1", &[&batch_id])
            .map_err(be)?
            .is_some())
    }

    fn batch_firms(&self, batch_id: &str) -> Result<Vec<String>> {
        Ok(self
            .rows(
                "SELECT DISTINCT uscc FROM facts WHERE batch_id = $1 ORDER BY uscc",
                &[&batch_id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn batch_ids(&self) -> Result<Vec<String>> {
        Ok(self
            .rows("SELECT batch_id FROM batches ORDER BY batch_id", &[])?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn begin<'s>(&'s mut self) -> Result<Box<dyn BatchWriter + 's>> {
        let PgStore { client, st, growth, .. } = self;
        let mut tx = client.get_mut().transaction().map_err(be)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_WRITER])
            .map_err(be)?;
        Ok(Box::new(Writer {
            tx,
            st,
            meta: None,
            growth: *growth,
            home: growth,
        }))
    }

    fn crosswalk(&self) -> Result<Vec<(String, Option<String>)>> {
        Ok(self
            .rows(
                "SELECT uscc, replace(fields, '\\u0000', '\\ufffd')::jsonb ->> 'reg_no' FROM facts \
                 WHERE source = 'amr' AND dataset = 'amr.registration' AND known_to IS NULL \
                 ORDER BY source, dataset, key",
                &[],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn fact(&self, fact_id: i64) -> Result<StoredFact> {
        self.client()?
            .query_opt(
                &format!("SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) WHERE f.fact_id = $1"),
                &[&fact_id],
            )
            .map_err(be)?
            .map(|r| stored(&r))
            .ok_or_else(|| StoreError::NotFound(format!("fact {fact_id}")))
    }

    fn facts_of(&self, uscc: &str, as_of: Option<&str>) -> Result<Vec<StoredFact>> {
        let rows = match as_of {
            None => self.rows(
                &format!(
                    "SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) \
                     WHERE f.uscc = $1 AND f.known_to IS NULL ORDER BY f.dataset, f.key, f.fact_id"
                ),
                &[&uscc],
            )?,
            Some(t) => self.rows(
                &format!(
                    "SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) \
                     WHERE f.uscc = $1 AND f.known_from <= $2 AND (f.known_to IS NULL OR f.known_to > $2) \
                     ORDER BY f.dataset, f.key, f.fact_id"
                ),
                &[&uscc, &t],
            )?,
        };
        Ok(rows.iter().map(stored).collect())
    }

    fn current_facts(&self, source: &str, dataset: &str) -> Result<Vec<StoredFact>> {
        let rows = self.rows(
            &format!(
                "SELECT {FACT_COLS} FROM facts f JOIN batches b USING (batch_id) \
                 WHERE f.source = $1 AND f.dataset = $2 AND f.known_to IS NULL ORDER BY f.key"
            ),
            &[&source, &dataset],
        )?;
        Ok(rows.iter().map(stored).collect())
    }

    fn chunk_for(&self, batch_id: &str, row: u64) -> Result<ArchiveChunk> {
        let r = self
            .client()?
            .query_opt(
                "SELECT chunk, first_row, data FROM archive_chunks WHERE batch_id = $1 AND first_row <= $2 \
                 ORDER BY first_row DESC LIMIT 1",
                &[&batch_id, &(row as i64)],
            )
            .map_err(be)?
            .ok_or_else(|| StoreError::NotFound(format!("row {row} of batch {batch_id}")))?;
        Ok(ArchiveChunk {
            chunk: u32_of(r.get(0), "chunk")?,
            first_row: u(r.get(1)),
            data: r.get(2),
        })
    }

    fn stats(&self) -> Result<StoreStats> {
        let mut c = self.client()?;
        let mut one = |sql: &str| -> Result<u64> { Ok(u(c.query_one(sql, &[]).map_err(be)?.get(0))) };
        let batches = one("SELECT count(*) FROM batches")?;
        let firms = one(
            "SELECT count(*) FROM facts WHERE source = 'amr' AND dataset = 'amr.registration' AND known_to IS NULL",
        )?;
        let facts_current = one("SELECT count(*) FROM facts WHERE known_to IS NULL")?;
        let facts_history = one("SELECT count(*) FROM facts WHERE known_to IS NOT NULL")?;
        let source_rows = one("SELECT coalesce(sum(rows_read), 0)::bigint FROM batches")?;
        let mut pairs = |sql: &str| -> Result<Vec<(String, u64)>> {
            Ok(c.query(sql, &[])
                .map_err(be)?
                .iter()
                .map(|r| (r.get(0), u(r.get(1))))
                .collect())
        };
        Ok(StoreStats {
            batches,
            firms,
            facts_current,
            facts_history,
            source_rows,
            facts_by_source: pairs(
                "SELECT source, count(*) FROM facts WHERE known_to IS NULL GROUP BY source ORDER BY source",
            )?,
            quarantine_by_reason: pairs(
                "SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY count(*) DESC, reason",
            )?,
        })
    }

    fn quarantine_rows(&self, reason_prefix: Option<&str>, limit: u64) -> Result<Vec<StoredQuarantine>> {
        // SQLite's LIKE: ASCII-only case folding (ILIKE under the "C" collation), no escape character.
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.rows(
            "SELECT batch_id, source, dataset, row, reason, detail, raw FROM quarantine \
             WHERE reason ILIKE ($1::text || '%') ESCAPE '' ORDER BY id LIMIT $2",
            &[&reason_prefix.unwrap_or(""), &limit],
        )?;
        rows.iter().map(quarantined).collect()
    }

    fn content_hash(&self) -> Result<String> {
        content_hash_on(&mut *self.client()?)
    }

    fn scan_facts(&self, known_by: &str, f: &mut dyn FnMut(ScanFact) -> Result<()>) -> Result<()> {
        self.each(
            &format!("SELECT {SCAN_COLS} FROM facts WHERE known_from <= $1 ORDER BY fact_id"),
            &[&known_by],
            &mut |r| f(scanned(r)),
        )
    }

    fn data_cutoff(&self) -> Result<Option<String>> {
        Ok(self
            .client()?
            .query_one("SELECT max(delivered_on) FROM batches", &[])
            .map_err(be)?
            .get(0))
    }

    fn guarantees_given(&self, guarantor: &str, known_by: &str) -> Result<Vec<ScanFact>> {
        Ok(self
            .rows(
                &format!(
                    "SELECT {SCAN_COLS} FROM facts WHERE {GUARANTEE_DATASETS} AND {GUARANTOR} = $1 AND known_from <= $2 \
                     AND (known_to IS NULL OR known_to > $2) ORDER BY fact_id"
                ),
                &[&guarantor, &known_by],
            )?
            .iter()
            .map(scanned)
            .collect())
    }

    fn put_model(&mut self, version: &str, created_at: &str, json: &str) -> Result<()> {
        self.client
            .get_mut()
            .execute(
                "INSERT INTO models (version, created_at, json) VALUES ($1, $2, $3) ON CONFLICT (version) DO NOTHING",
                &[&version, &created_at, &json],
            )
            .map_err(be)?;
        Ok(())
    }

    fn model(&self, version: Option<&str>) -> Result<Option<(String, String)>> {
        let mut c = self.client()?;
        let r = match version {
            Some(v) => c.query_opt("SELECT version, json FROM models WHERE version = $1", &[&v]),
            None => c.query_opt(
                "SELECT version, json FROM models ORDER BY created_at DESC, seq DESC LIMIT 1",
                &[],
            ),
        }
        .map_err(be)?;
        Ok(r.map(|r| (r.get(0), r.get(1))))
    }

    fn put_run(&mut self, run: &ScoreRun) -> Result<()> {
        let mut tx = self.client.get_mut().transaction().map_err(be)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK_RUNS])
            .map_err(be)?;
        let id = &run.run_id;
        for t in RUN_TABLES {
            tx.execute(&format!("DELETE FROM {t} WHERE run_id = $1"), &[id])
                .map_err(be)?;
        }
        tx.execute(
            "INSERT INTO score_runs (run_id, as_of, model_version, created_at, firms, benchmarks) VALUES ($1, $2, $3, $4, $5, $6)",
            &[id, &run.as_of, &run.model_version, &run.created_at, &(run.scores.len() as i64), &run.benchmarks],
        )
        .map_err(be)?;
        // Rows go in chunks of multi-row inserts (one round trip per chunk), column by column.
        for c in run.scores.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO scores (run_id, uscc, score, pd, grade, grade_unadjusted, colour, detail) \
                 SELECT $1::text, * FROM unnest($2::text[], $3::float8[], $4::float8[], $5::text[], $6::text[], $7::text[], $8::text[])",
                &[
                    id,
                    &col(c, |r| r.uscc.as_str()),
                    &col(c, |r| r.score),
                    &col(c, |r| r.pd),
                    &col(c, |r| r.grade.as_str()),
                    &col(c, |r| r.grade_unadjusted.as_str()),
                    &col(c, |r| r.colour.as_deref()),
                    &col(c, |r| r.detail.as_str()),
                ],
            )
            .map_err(be)?;
        }
        for c in run.warnings.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO warnings (run_id, uscc, rule, colour, since, clears_on, evidence) \
                 SELECT $1::text, * FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], $6::text[], $7::text[])",
                &[
                    id,
                    &col(c, |w| w.uscc.as_str()),
                    &col(c, |w| i64::from(w.rule)),
                    &col(c, |w| w.colour.as_str()),
                    &col(c, |w| w.since.as_deref()),
                    &col(c, |w| w.clears_on.as_deref()),
                    &col(c, |w| w.evidence.as_str()),
                ],
            )
            .map_err(be)?;
        }
        for c in run.spans.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO warning_spans (run_id, uscc, rule, colour, start, end_date) \
                 SELECT $1::text, * FROM unnest($2::text[], $3::int8[], $4::text[], $5::text[], $6::text[])",
                &[
                    id,
                    &col(c, |s| s.0.as_str()),
                    &col(c, |s| i64::from(s.1)),
                    &col(c, |s| s.2.as_str()),
                    &col(c, |s| s.3.as_str()),
                    &col(c, |s| s.4.as_deref()),
                ],
            )
            .map_err(be)?;
        }
        // Events are kept once per id, the first written winning (SQLite's INSERT OR IGNORE, in order).
        for c in run.events.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO credit_events (event_id, uscc, date, kind, rule, before, after, first_run) \
                 SELECT e.id, e.uscc, e.date, e.kind, e.rule, e.before, e.after, $1::text \
                 FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::text[], $8::text[]) \
                 WITH ORDINALITY AS e(id, uscc, date, kind, rule, before, after, ord) \
                 ORDER BY e.ord ON CONFLICT (event_id) DO NOTHING",
                &[
                    id,
                    &col(c, |e| e.id.as_str()),
                    &col(c, |e| e.uscc.as_str()),
                    &col(c, |e| e.date.as_str()),
                    &col(c, |e| e.kind.as_str()),
                    &col(c, |e| e.rule.map(i64::from)),
                    &col(c, |e| e.before.as_str()),
                    &col(c, |e| e.after.as_str()),
                ],
            )
            .map_err(be)?;
        }
        for c in run.history.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO firm_months (run_id, uscc, month, pd, score, grade, colour) \
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::float8[], $5::float8[], $6::text[], $7::text[])",
                &[
                    id,
                    &col(c, |h| h.0.as_str()),
                    &col(c, |h| h.1.as_str()),
                    &col(c, |h| h.2),
                    &col(c, |h| h.3),
                    &col(c, |h| h.4.as_str()),
                    &col(c, |h| h.5.as_deref()),
                ],
            )
            .map_err(be)?;
        }
        for c in run.index.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO risk_index (run_id, month, dimension, member, value, detail) \
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[], $5::float8[], $6::text[])",
                &[
                    id,
                    &col(c, |x| x.0.as_str()),
                    &col(c, |x| x.1.as_str()),
                    &col(c, |x| x.2.as_str()),
                    &col(c, |x| x.3),
                    &col(c, |x| x.4.as_str()),
                ],
            )
            .map_err(be)?;
        }
        for c in run.movers.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO index_movers (run_id, month, dimension, member, uscc, delta) \
                 SELECT $1::text, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::float8[])",
                &[
                    id,
                    &col(c, |x| x.0.as_str()),
                    &col(c, |x| x.1.as_str()),
                    &col(c, |x| x.2.as_str()),
                    &col(c, |x| x.3.as_str()),
                    &col(c, |x| x.4),
                ],
            )
            .map_err(be)?;
        }
        for c in run.circles.chunks(RUN_CHUNK) {
            tx.execute(
                "INSERT INTO circles (run_id, group_id, firms, in_circles, total_amount, detail) \
                 SELECT $1::text, * FROM unnest($2::text[], $3::int8[], $4::int8[], $5::float8[], $6::text[])",
                &[
                    id,
                    &col(c, |x| x.0.as_str()),
                    &col(c, |x| x.1 as i64),
                    &col(c, |x| x.2 as i64),
                    &col(c, |x| x.3),
                    &col(c, |x| x.4.as_str()),
                ],
            )
            .map_err(be)?;
        }
        tx.commit().map_err(be)
    }

    fn runs(&self) -> Result<Vec<RunInfo>> {
        Ok(self
            .rows(
                "SELECT run_id, as_of, model_version, created_at, firms FROM score_runs ORDER BY as_of DESC, created_at DESC",
                &[],
            )?
            .iter()
            .map(|r| RunInfo {
                run_id: r.get(0),
                as_of: r.get(1),
                model_version: r.get(2),
                created_at: r.get(3),
                firms: u(r.get(4)),
            })
            .collect())
    }

    fn run_benchmarks(&self, run_id: &str) -> Result<String> {
        self.client()?
            .query_opt("SELECT benchmarks FROM score_runs WHERE run_id = $1", &[&run_id])
            .map_err(be)?
            .map(|r| r.get(0))
            .ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))
    }

    fn run_score(&self, run_id: &str, uscc: &str) -> Result<Option<String>> {
        Ok(self
            .client()?
            .query_opt(
                "SELECT detail FROM scores WHERE run_id = $1 AND uscc = $2",
                &[&run_id, &uscc],
            )
            .map_err(be)?
            .map(|r| r.get(0)))
    }

    fn run_scores(&self, run_id: &str) -> Result<Vec<ScoreRow>> {
        Ok(self
            .rows(
                "SELECT uscc, score, pd, grade, grade_unadjusted, colour FROM scores WHERE run_id = $1 ORDER BY uscc",
                &[&run_id],
            )?
            .iter()
            .map(|r| ScoreRow {
                uscc: r.get(0),
                score: r.get(1),
                pd: r.get(2),
                grade: r.get(3),
                grade_unadjusted: r.get(4),
                colour: r.get(5),
                detail: String::new(),
            })
            .collect())
    }

    fn run_index(&self, run_id: &str, dimension: Option<&str>) -> Result<Vec<(String, String, String, f64)>> {
        Ok(self
            .rows(
                "SELECT month, dimension, member, value FROM risk_index \
                 WHERE run_id = $1 AND ($2::text IS NULL OR dimension = $2::text) ORDER BY dimension, member, month",
                &[&run_id, &dimension],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }

    fn run_movers(&self, run_id: &str, dimension: &str, member: &str, month: &str) -> Result<Vec<(String, f64)>> {
        Ok(self
            .rows(
                "SELECT uscc, delta FROM index_movers WHERE run_id = $1 AND dimension = $2 AND member = $3 AND month = $4 \
                 ORDER BY abs(delta) DESC, uscc",
                &[&run_id, &dimension, &member, &month],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect())
    }

    fn run_circles(&self, run_id: &str, group_id: Option<&str>) -> Result<Vec<String>> {
        Ok(self
            .rows(
                "SELECT detail FROM circles WHERE run_id = $1 AND ($2::text IS NULL OR group_id = $2::text) \
                 ORDER BY total_amount DESC, group_id",
                &[&run_id, &group_id],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    fn batches_of(&self, source: &str) -> Result<Vec<(BatchMeta, BatchCounts)>> {
        let rows = self.rows(
            "SELECT batch_id, source, dataset, file_name, delivered_on, ingested_at, rows_read, inserted, replaced, \
             unchanged, retired, quarantined FROM batches WHERE source = $1 \
             ORDER BY delivered_on DESC, ingested_at DESC, batch_id",
            &[&source],
        )?;
        Ok(rows
            .iter()
            .map(|r| {
                (
                    BatchMeta {
                        batch_id: r.get(0),
                        source: r.get(1),
                        dataset: r.get(2),
                        file_name: r.get(3),
                        delivered_on: r.get(4),
                        ingested_at: r.get(5),
                    },
                    BatchCounts {
                        rows_read: u(r.get(6)),
                        inserted: u(r.get(7)),
                        replaced: u(r.get(8)),
                        unchanged: u(r.get(9)),
                        retired: u(r.get(10)),
                        quarantined: u(r.get(11)),
                    },
                )
            })
            .collect())
    }

    fn quarantine_of(&self, batch_id: &str, limit: u64) -> Result<Vec<StoredQuarantine>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self.rows(
            "SELECT batch_id, source, dataset, row, reason, detail, raw FROM quarantine WHERE batch_id = $1 \
             ORDER BY row, id LIMIT $2",
            &[&batch_id, &limit],
        )?;
        rows.iter().map(quarantined).collect()
    }

    fn apply_rows(&mut self, ops: &[rows::RowOp]) -> Result<()> {
        let checked = ops.iter().map(rows::check_op).collect::<Result<Vec<_>>>()?;
        let mut tx = self.client.get_mut().transaction().map_err(be)?;
        for (op, (t, values)) in ops.iter().zip(checked) {
            let sql = match op {
                rows::RowOp::Insert { .. } => rows::insert_sql(t, &DIALECT, false),
                rows::RowOp::Put { .. } => rows::insert_sql(t, &DIALECT, true),
                rows::RowOp::Delete { .. } => rows::delete_sql(t, &DIALECT),
                rows::RowOp::Update { key, set, expect, .. } => {
                    let (sql, params) = rows::update_sql(t, &DIALECT, key, set, expect)?;
                    let vals: Vec<rows::Value> = params.iter().map(|(_, v)| (*v).clone()).collect();
                    let p = row_params(params.iter().map(|(c, _)| *c), &vals);
                    if tx.execute(sql.as_str(), &refs(&p)).map_err(be)? == 0 {
                        return Err(rows::conflict(t, key));
                    }
                    continue;
                }
            };
            let p = row_params(t.columns.iter(), values);
            tx.execute(sql.as_str(), &refs(&p)).map_err(be)?;
        }
        tx.commit().map_err(be)
    }

    fn rows(&self, q: &rows::RowQuery) -> Result<Vec<rows::Row>> {
        let (t, sql) = rows::select_sql(q, &DIALECT)?;
        let params = q.params();
        let cols = params
            .iter()
            .map(|(c, _)| t.column(c).map(|x| x.1))
            .collect::<Result<Vec<_>>>()?;
        let vals: Vec<rows::Value> = params.iter().map(|(_, v)| (*v).clone()).collect();
        let p = row_params(cols.into_iter(), &vals);
        Ok(self.rows(&sql, &refs(&p))?.iter().map(|r| spec_row(t, r)).collect())
    }

    fn ping(&self) -> Result<()> {
        self.client()?.simple_query("SELECT 1").map_err(be)?;
        Ok(())
    }

    fn is_broken(&self) -> bool {
        self.client.try_borrow().map(|c| c.is_closed()).unwrap_or(false)
    }

    fn credit_events(&self, uscc: Option<&str>) -> Result<Vec<EventRow>> {
        self.rows(
            "SELECT event_id, uscc, date, kind, rule, before, after FROM credit_events \
             WHERE ($1::text IS NULL OR uscc = $1::text) ORDER BY date, uscc, event_id",
            &[&uscc],
        )?
        .iter()
        .map(|r| {
            Ok(EventRow {
                id: r.get(0),
                uscc: r.get(1),
                date: r.get(2),
                kind: r.get(3),
                rule: r.get::<_, Option<i64>>(4).map(|v| u32_of(v, "rule")).transpose()?,
                before: r.get(5),
                after: r.get(6),
            })
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guarantor_query_matches_its_index() {
        let index = format!("CREATE INDEX facts_guarantor ON facts ({GUARANTOR})\n  WHERE {GUARANTEE_DATASETS};");
        assert!(MIGRATION_1.contains(&index), "{index}");
    }
}
