//! `xinyong ingest`, `demo`, `stats`, `fact`, `quarantine`: the store's commands. The backend is
//! picked here (SQLite, the embedded default).

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;
use xinyong_app::IngestOptions;
use xinyong_store::{Record, Store, StoreError};
use xinyong_store_sqlite::SqliteStore;

#[derive(Args, Clone)]
pub struct DbArgs {
    /// The store: a SQLite database file (the embedded default; it also holds the verbatim archive of
    /// delivered files), or a PostgreSQL URL (`postgres://user@host:5432/db`).
    #[arg(long, default_value = "data/xinyong.db")]
    pub db: PathBuf,
}

#[derive(Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Also print the content hash of the facts, their history, quarantine and batches (the same on every
    /// backend for the same content: how a migration or a restore is checked).
    #[arg(long)]
    pub hash: bool,
}

#[derive(Args)]
pub struct IngestArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// A fixed ingest time recorded on every batch (for reproducible stores).
    #[arg(long, env = "XINYONG_CLOCK")]
    pub clock: Option<String>,
    /// Print one line per committed file (`stored BATCH_ID PATH`): the acknowledgement.
    #[arg(long)]
    pub verbose: bool,
    /// Only deliveries dated on or before this day (YYYY-MM-DD): later ones are left for a live feed
    /// (`xinyong feed simulate`).
    #[arg(long)]
    pub until: Option<String>,
    /// A folder of extra dataset definitions (*.toml, the format of crates/registry/sources/): a new
    /// department's export is added by writing a definition, not code.
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Files or folders of deliveries (SOURCE/DATASET__YYYY-MM-DD__LABEL.ext).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Where the demo district is generated (reused when it is already there).
    #[arg(long, default_value = "data/demo")]
    pub dir: PathBuf,
    #[arg(long, default_value = "data/demo.db")]
    pub db: PathBuf,
    #[arg(long, default_value_t = 20151231)]
    pub seed: u64,
    /// End after printing, instead of serving the web platform.
    #[arg(long)]
    pub no_serve: bool,
    /// Where the web platform listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
}

#[derive(Args)]
pub struct FactArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The fact to show.
    #[arg(required_unless_present = "sample")]
    pub fact_id: Option<i64>,
    /// Instead: look up N facts spread over the store, each back to its raw row, and print the
    /// latency distribution (for docs/benchmarks.md).
    #[arg(long)]
    pub sample: Option<u64>,
}

#[derive(Args)]
pub struct QuarantineArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// Only reasons starting with this (e.g. `id:`, `date`, `duplicate`).
    #[arg(long)]
    pub reason: Option<String>,
    #[arg(long, default_value_t = 20)]
    pub limit: u64,
}

/// Opens the store named by `--db`: a `postgres://` (or `postgresql://`) URL is the PostgreSQL server store;
/// anything else is a SQLite database file (the embedded default; `sqlite://PATH` names it too), created with
/// its folder if needed.
pub fn open_or_create(db: &Path) -> Result<Box<dyn Store + Send>> {
    let s = db.to_string_lossy();
    if let Some(path) = s.strip_prefix("sqlite://") {
        return open_or_create(Path::new(path));
    }
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        let st =
            xinyong_store_postgres::PgStore::connect(&s).with_context(|| format!("connecting to {}", redact(&s)))?;
        return Ok(Box::new(st));
    }
    if let Some(p) = db.parent() {
        std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
    }
    Ok(Box::new(
        SqliteStore::open(db).with_context(|| format!("opening {}", db.display()))?,
    ))
}

/// Opens an existing store (commands that read it): a SQLite file that does not exist is an error, not a new
/// empty store.
pub fn open(db: &Path) -> Result<Box<dyn Store + Send>> {
    let s = db.to_string_lossy();
    let path = Path::new(s.strip_prefix("sqlite://").unwrap_or(&s));
    let url = s.starts_with("postgres://") || s.starts_with("postgresql://");
    if !url && !path.exists() {
        anyhow::bail!(
            "no store at {}: ingest deliveries into it first (`xinyong ingest --db {} DIR`)",
            path.display(),
            path.display()
        );
    }
    open_or_create(db)
}

/// Opens an existing store as one of a server's pooled connections: like [`open`], with a 64 MiB SQLite page
/// cache per connection instead of 1 GiB (a pool of 8 stays well under a gigabyte).
pub fn open_pooled(db: &Path) -> Result<Box<dyn Store + Send>> {
    let s = db.to_string_lossy();
    if s.starts_with("postgres://") || s.starts_with("postgresql://") {
        return open(db);
    }
    let path = Path::new(s.strip_prefix("sqlite://").unwrap_or(&s));
    anyhow::ensure!(path.exists(), "no store at {}", path.display());
    Ok(Box::new(
        SqliteStore::open_with_cache(path, 64).with_context(|| format!("opening {}", path.display()))?,
    ))
}

/// The store named as in `--db`, for messages (a URL without its password).
fn shown(db: &Path) -> String {
    redact(&db.to_string_lossy())
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(a), Some(b)) if b > a => {
            let cred = &url[a + 3..b];
            match cred.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..a + 3], &cred[..c], &url[b..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// The built-in registry plus the definitions in `extra` (every *.toml in it).
pub fn registry(extra: Option<&Path>) -> Result<xinyong_registry::Registry> {
    let mut r = xinyong_registry::Registry::builtin()?;
    if let Some(dir) = extra {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        for f in files {
            let text = std::fs::read_to_string(&f).with_context(|| format!("reading {}", f.display()))?;
            r.add_toml(&f.display().to_string(), &text)?;
        }
    }
    Ok(r)
}

fn run_ingest(
    db: &Path,
    paths: &[PathBuf],
    opts: IngestOptions,
    verbose: bool,
    extra: Option<&Path>,
) -> Result<xinyong_app::IngestSummary> {
    let mut store = open_or_create(db)?;
    let registry = registry(extra)?;
    let bar = crate::gen_cmd::bar();
    let mut on_batch = |r: &xinyong_app::BatchReport, done: u64, total: u64| {
        if verbose && !r.skipped {
            println!("stored {} {}", r.batch_id, r.path);
        }
        bar("ingest", done, total);
    };
    Ok(xinyong_app::ingest_paths(
        store.as_mut(),
        &registry,
        paths,
        &opts,
        &mut on_batch,
    )?)
}

pub fn ingest(a: &IngestArgs) -> Result<()> {
    let t = Instant::now();
    if let Some(u) = &a.until {
        chrono::NaiveDate::parse_from_str(u, "%Y-%m-%d").with_context(|| format!("--until {u}: YYYY-MM-DD"))?;
    }
    let opts = IngestOptions {
        clock: a.clock.clone(),
        until: a.until.clone(),
    };
    // The facts' generation before this run: a commit moves it on and retires the credit cache.
    let generation = open_or_create(&a.db.db)?.fact_generation()?;
    let s = run_ingest(&a.db.db, &a.paths, opts, a.verbose, a.registry.as_deref())?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "ingested {} files ({} already stored), {} source rows in {:.1} s ({:.0} rows/s): {} new facts, {} replaced, {} unchanged, {} retired, {} quarantined",
        s.files,
        s.skipped,
        s.counts.rows_read,
        secs,
        s.counts.rows_read as f64 / secs.max(1e-9),
        s.counts.inserted,
        s.counts.replaced,
        s.counts.unchanged,
        s.counts.retired,
        s.counts.quarantined
    );
    // The credit loader's records, cached again for the next recompute (it then parses no fact's JSON) when
    // this run's commits retired the cache.
    let t = Instant::now();
    let store = open(&a.db.db)?;
    // The delivery is stored whatever happens here: a failure is reported, and the next recompute reads the facts.
    if store.fact_generation()? != generation {
        use xinyong_app::fact_cache::{self, CacheUse};
        match fact_cache::refresh(&*store) {
            // (After a delivery the old cache is retired, so a refresh finds none to replace.)
            Ok(Some((n, CacheUse::Written | CacheUse::Replaced))) => println!(
                "cached the credit records of {n} firms in {:.1} s",
                t.elapsed().as_secs_f64()
            ),
            Ok(Some((_, CacheUse::WriteFailed(e)))) => {
                eprintln!("the credit records were not cached ({e}); the next recompute reads the facts")
            }
            Err(e) => eprintln!("the credit records were not cached ({e}); the next recompute reads the facts"),
            Ok(_) => {}
        }
    }
    Ok(())
}

pub fn print_stats(store: &dyn Store) -> Result<()> {
    let st = store.stats()?;
    println!(
        "store: {} firms registered, {} batches, {} source rows",
        st.firms, st.batches, st.source_rows
    );
    println!(
        "facts: {} current, {} earlier versions kept for history",
        st.facts_current, st.facts_history
    );
    println!("facts by source:");
    for (s, n) in &st.facts_by_source {
        println!("  {s:<12} {n:>10}");
    }
    println!("quarantined rows by reason:");
    for (r, n) in &st.quarantine_by_reason {
        println!("  {r:<24} {n:>8}");
    }
    Ok(())
}

pub fn stats(a: &StatsArgs) -> Result<()> {
    let store = open(&a.db.db)?;
    print_stats(store.as_ref())?;
    if a.hash {
        println!("content hash: {}", store.content_hash()?);
    }
    Ok(())
}

pub fn demo(a: &DemoArgs) -> Result<()> {
    let cfg = xinyong_gen::GenConfig::demo(a.seed);
    let marker = a.dir.join("summary.json");
    if marker.exists() {
        println!("reusing the demo district in {}", a.dir.display());
    } else {
        let t = Instant::now();
        let s = xinyong_gen::generate(&cfg, &a.dir, &crate::gen_cmd::bar())?;
        println!(
            "generated the demo district in {:.1} s: {} firms, {} files, {} source records; annual default rate {:.2} %, oracle AUC {:.3}",
            t.elapsed().as_secs_f64(),
            s.firms,
            s.batches,
            s.records,
            s.annual_default_rate * 100.0,
            s.oracle_auc
        );
    }
    let t = Instant::now();
    let s = run_ingest(&a.db, &[a.dir.join("sources")], IngestOptions::default(), false, None)?;
    println!(
        "ingested {} files ({} already stored), {} source rows in {:.1} s into {}",
        s.files,
        s.skipped,
        s.counts.rows_read,
        t.elapsed().as_secs_f64(),
        a.db.display()
    );
    print_stats(open(&a.db)?.as_ref())?;
    // The credit models over what was ingested: scores, grades, warnings, the index.
    println!();
    crate::score_cmd::score(&crate::score_cmd::ScoreArgs::for_db(&a.db))?;
    let store = open(&a.db)?;
    crate::score_cmd::show_examples(&*store)?;
    // The guarantee network: circles, top contagion risks and a what-if.
    println!();
    crate::network_cmd::demo(&*store)?;
    drop(store);
    if a.no_serve {
        return Ok(());
    }
    // The web platform over the demo store (plain HTTP on the loopback: no HSTS), with an account per role.
    println!();
    let mut store = open(&a.db)?;
    let accounts = xinyong_server::demo::create(&mut *store, &xinyong_server::timestamp())?;
    drop(store);
    print!("{}", xinyong_server::demo::describe(&accounts));
    let cfg = xinyong_server::ServerConfig {
        listen: a.listen.clone(),
        hsts: false,
        ..Default::default()
    };
    crate::serve_cmd::run(&a.db, cfg)
}

pub fn fact(a: &FactArgs) -> Result<()> {
    let store = open(&a.db.db)?;
    if let Some(n) = a.sample {
        return sample(&*store, n);
    }
    let id = a.fact_id.context("a fact id")?;
    let t = Instant::now();
    let (f, raw) = xinyong_app::raw_row(&*store, id)?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    println!(
        "fact {} of {} ({} {}), key {}",
        f.fact_id, f.uscc, f.source, f.dataset, f.key
    );
    println!("fields: {}", f.fields);
    println!(
        "batch {} row {} ({} source rows), known from {} to {}",
        f.batch_id,
        f.row,
        f.n_rows,
        f.known_from,
        f.known_to.as_deref().unwrap_or("now")
    );
    println!("ingested at {}", f.ingested_at);
    println!("raw row: {raw}");
    println!("looked up in {ms:.1} ms");
    Ok(())
}

/// Looks up `n` facts spread evenly over the fact ids, each back to its raw row.
fn sample(store: &dyn Store, n: u64) -> Result<()> {
    let st = store.stats()?;
    let max = st.facts_current + st.facts_history;
    let n = n.clamp(1, max.max(1));
    let mut ms: Vec<f64> = Vec::new();
    for k in 0..n {
        let id = 1 + (k * max / n) as i64;
        let t = Instant::now();
        let (_, raw) = xinyong_app::raw_row(store, id)?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(!raw.is_empty(), "fact {id}: empty raw row");
    }
    ms.sort_by(f64::total_cmp);
    let q = |p: f64| ms[((ms.len() - 1) as f64 * p).round() as usize];
    println!(
        "{} facts looked up back to their raw rows: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    );
    Ok(())
}

pub fn quarantine(a: &QuarantineArgs) -> Result<()> {
    let store = open(&a.db.db)?;
    for q in store.quarantine_rows(a.reason.as_deref(), a.limit)? {
        println!(
            "{}\t{}\t{}\trow {}\t{}\t{}\t{}",
            q.source,
            q.dataset,
            &q.batch_id[..12],
            q.row,
            q.reason,
            q.detail,
            q.raw
        );
    }
    Ok(())
}

#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    pub db: DbArgs,
    /// The backup file to write (gzip-compressed JSON lines; replaced only once complete).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(Args)]
pub struct RestoreArgs {
    /// The backup file (written by `xinyong backup`).
    #[arg(long)]
    pub file: PathBuf,
    /// The store to restore into: a new SQLite file or an empty PostgreSQL database (as `--db` takes it).
    #[arg(long)]
    pub db: PathBuf,
}

#[derive(Args)]
pub struct MigrateArgs {
    /// The store to copy (as `--db` takes it: a SQLite path, `sqlite://PATH` or a `postgres://` URL).
    #[arg(long)]
    pub from: PathBuf,
    /// The store to copy into: a new SQLite file or an empty PostgreSQL database.
    #[arg(long)]
    pub to: PathBuf,
}

fn now() -> String {
    std::env::var("XINYONG_CLOCK")
        .unwrap_or_else(|_| chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Fails unless the two content hashes agree.
fn compare(what: &str, source: &str, target: &str) -> Result<()> {
    println!("source content hash {source}");
    println!("target content hash {target}");
    anyhow::ensure!(
        source == target,
        "{what}: the content hashes differ: the copy is not the source's content"
    );
    println!("{what}: content hashes agree");
    Ok(())
}

/// `xinyong backup`: one consistent snapshot of the store (ingest and scoring may go on meanwhile), written to
/// a file, then read back and checked.
pub fn backup(a: &BackupArgs) -> Result<()> {
    let t = Instant::now();
    let store = open(&a.db.db)?;
    let h = xinyong_app::backup::write(&*store, &a.out, &now())?;
    println!(
        "backed up {} rows of {} to {} in {:.1} s",
        h.rows(),
        shown(&a.db.db),
        a.out.display(),
        t.elapsed().as_secs_f64()
    );
    // Read back: every record decodes, the counts and the content hash agree with the header.
    let mut r = xinyong_app::backup::read(&a.out)?;
    let mut trailer = None;
    while let Some(rec) = r.next_record()? {
        if let Record::ContentHash(h) = rec {
            trailer = Some(h);
        }
    }
    compare(
        "backup",
        &h.content_hash,
        trailer.as_deref().context("the file has no content hash")?,
    )
}

/// `xinyong restore`: a backup file into a new, empty store, checked against the backup's content hash.
pub fn restore(a: &RestoreArgs) -> Result<()> {
    let t = Instant::now();
    let mut r = xinyong_app::backup::read(&a.file)?;
    let header = r.header().clone();
    let mut store = open_or_create(&a.db)?;
    let n = store
        .import(&mut || r.next_record().map_err(|e| StoreError::Backend(e.to_string())))
        .with_context(|| format!("restoring {} into {}", a.file.display(), shown(&a.db)))?;
    anyhow::ensure!(
        n == header.rows(),
        "restored {n} rows, the backup's header counts {}",
        header.rows()
    );
    println!(
        "restored {n} rows (backup of {}) into {} in {:.1} s",
        header.created_at,
        shown(&a.db),
        t.elapsed().as_secs_f64()
    );
    compare("restore", &header.content_hash, &store.content_hash()?)
}

/// `xinyong migrate`: one store's export imported straight into another (empty) one, of either backend.
pub fn migrate(a: &MigrateArgs) -> Result<()> {
    anyhow::ensure!(a.from != a.to, "--from and --to name the same store");
    let t = Instant::now();
    let from = open(&a.from)?;
    let mut to = open_or_create(&a.to)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Record>(4096);
    let (imported, exported, source_hash) = std::thread::scope(|s| {
        let exporter = s.spawn(move || {
            from.export(&mut |r| {
                tx.send(r)
                    .map_err(|_| StoreError::Backend("migrate: the import stopped".into()))
            })
        });
        let mut hash: Option<String> = None;
        let mut next = || match rx.recv() {
            Ok(r) => {
                if let Record::ContentHash(h) = &r {
                    hash = Some(h.clone());
                }
                Ok(Some(r))
            }
            // The export ended: completely only if its content hash came last.
            Err(_) if hash.is_some() => Ok(None),
            Err(_) => Err(StoreError::Backend("migrate: the export ended early".into())),
        };
        let imported = to.import(&mut next);
        // Unblocks the exporter if the import stopped early.
        drop(rx);
        let exported = exporter.join().map_err(|_| anyhow::anyhow!("the export panicked"))?;
        Ok::<_, anyhow::Error>((imported, exported, hash))
    })?;
    // The import's error first: when it stops, the export fails only for want of a reader.
    let n = imported.with_context(|| format!("importing into {}", shown(&a.to)))?;
    exported.with_context(|| format!("exporting {}", shown(&a.from)))?;
    println!(
        "migrated {n} rows from {} to {} in {:.1} s",
        shown(&a.from),
        shown(&a.to),
        t.elapsed().as_secs_f64()
    );
    compare(
        "migrate",
        source_hash.as_deref().context("no content hash from the export")?,
        &to.content_hash()?,
    )
}
