//! `xinyong serve`: the web platform over a pool of stores of the chosen backend.

use anyhow::{Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};
use xinyong_server::{AppState, ServerConfig};
use xinyong_store::pool::{Pool, PoolConfig};

#[derive(Args)]
pub struct ServeArgs {
    /// The store: a SQLite file or a PostgreSQL URL (overrides the configuration file; default
    /// data/xinyong.db).
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// The configuration file (`config/xinyong.example.toml` documents every key).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The address to listen on (overrides the configuration file).
    #[arg(long)]
    pub listen: Option<String>,
}

pub fn serve(a: &ServeArgs) -> Result<()> {
    let mut cfg = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            ServerConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", p.display()))?
        }
        None => ServerConfig::default(),
    };
    if let Some(l) = &a.listen {
        cfg.listen = l.clone();
    }
    let db =
        a.db.clone()
            .or_else(|| cfg.db.clone().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("data/xinyong.db"));
    run(&db, cfg)
}

/// Serves the store at `db` until ctrl-c.
pub fn run(db: &Path, cfg: ServerConfig) -> Result<()> {
    // Refuses a store that does not exist, as every reading command does.
    drop(crate::store_cmd::open(db)?);
    let target = db.to_path_buf();
    let pool = Pool::new(
        &PoolConfig {
            max_size: cfg.pool_size,
            wait: cfg.pool_wait(),
        },
        // `open`, not `open_or_create`: a SQLite file that vanished while the server runs is an error on the
        // next new connection, never a new empty store served as if it were the district.
        Box::new(move || {
            crate::store_cmd::open_pooled(&target).map_err(|e| xinyong_store::StoreError::Backend(format!("{e:#}")))
        }),
    )?;
    // Uploaded deliveries go through the same ingest path as `xinyong ingest`.
    let registry = std::sync::Arc::new(xinyong_registry::Registry::builtin().context("the built-in registry")?);
    let ingest: xinyong_server::data::IngestFn = std::sync::Arc::new(move |store, dir| {
        let (mut batches, mut changed) = (Vec::new(), Vec::new());
        let s = xinyong_app::ingest_paths(
            store,
            &registry,
            &[dir.to_path_buf()],
            &xinyong_app::IngestOptions::default(),
            &mut |b, _, _| {
                batches.push(b.batch_id.clone());
                changed.extend(b.changed.iter().cloned());
            },
        )
        .map_err(|e| e.to_string())?;
        changed.sort_unstable();
        changed.dedup();
        Ok(xinyong_server::data::IngestReport {
            files: s.files,
            skipped: s.skipped,
            rows_read: s.counts.rows_read,
            quarantined: s.counts.quarantined,
            batches,
            changed,
        })
    });
    let state = AppState::new(pool, cfg.clone())?
        .with_ingest(ingest)
        .with_rescore(xinyong_app::credit::live_rescorer())
        .with_what_if(xinyong_app::credit::what_if());
    let firms = state.index.read().map(|i| i.len()).unwrap_or(0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let listen = cfg.listen.clone();
    // The last reference to the pool is dropped here, after the runtime returns: a PostgreSQL connection closes
    // itself with a runtime of its own, which must not happen on a thread that drives async tasks.
    let keep = state.clone();
    let served = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("listening on {listen}"))?;
        let addr = listener.local_addr()?;
        println!("serving {firms} firms at http://{addr} (ctrl-c stops)");
        xinyong_server::serve(listener, state)
            .await
            .with_context(|| format!("serving on {addr}"))
    });
    drop(rt);
    drop(keep);
    served
}

#[derive(clap::Subcommand)]
pub enum AccountsCmd {
    /// Create (or replace) one demo account per role, with fresh passwords and TOTP secrets, and print them.
    Demo {
        #[command(flatten)]
        db: crate::store_cmd::DbArgs,
        /// Print them as JSON (for scripts and the browser suite).
        #[arg(long)]
        json: bool,
    },
    /// Create an API token for an account (printed once: only its hash is stored).
    Token {
        #[command(flatten)]
        db: crate::store_cmd::DbArgs,
        /// The account.
        #[arg(long)]
        user: String,
        /// What the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Create a push key for a source's front-end machine (real-time pushes, `POST /api/v1/push/DATASET`):
    /// prints the key id and its HMAC secret (shown once here; give both to the machine).
    PushKey {
        #[command(flatten)]
        db: crate::store_cmd::DbArgs,
        /// The source (a registry id: court, hrss, bank01 ...).
        #[arg(long)]
        source: String,
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List the accounts (never their secrets).
    List {
        #[command(flatten)]
        db: crate::store_cmd::DbArgs,
    },
}

pub fn accounts(cmd: &AccountsCmd) -> Result<()> {
    match cmd {
        AccountsCmd::Demo { db, json } => {
            let mut store = crate::store_cmd::open(&db.db)?;
            let made = xinyong_server::demo::create(&mut *store, &xinyong_server::timestamp())?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&made)?);
            } else {
                print!("{}", xinyong_server::demo::describe(&made));
            }
            Ok(())
        }
        AccountsCmd::PushKey { db, source, json } => {
            let mut store = crate::store_cmd::open(&db.db)?;
            let k = xinyong_server::push::create_key(&mut *store, source, &xinyong_server::timestamp())?;
            if *json {
                println!(
                    "{}",
                    serde_json::json!({ "key_id": k.key_id, "source": k.source, "secret": k.secret })
                );
            } else {
                println!("key id:  {}\nsecret:  {}\nsource:  {}", k.key_id, k.secret, k.source);
            }
            Ok(())
        }
        AccountsCmd::Token { db, user, label } => {
            let mut store = crate::store_cmd::open(&db.db)?;
            let u = xinyong_server::auth::user(&*store, user)?.ok_or_else(|| anyhow::anyhow!("no account {user}"))?;
            let p = xinyong_server::auth::Principal::of(u);
            let (token, _) = xinyong_server::auth::create_token(&mut *store, &p, label, &xinyong_server::timestamp())?;
            println!("{token}");
            Ok(())
        }
        AccountsCmd::List { db } => {
            let store = crate::store_cmd::open(&db.db)?;
            for u in xinyong_server::auth::users(&*store)? {
                println!(
                    "{:<20} {:<11} {:<20} {}{}",
                    u.user_id,
                    u.role.code(),
                    u.org,
                    u.name,
                    if u.disabled { " (disabled)" } else { "" }
                );
            }
            Ok(())
        }
    }
}

#[derive(clap::Subcommand)]
pub enum AuditCmd {
    /// Check the audit log's hash chain from its first row to its last.
    Verify {
        #[command(flatten)]
        db: crate::store_cmd::DbArgs,
    },
}

pub fn audit(cmd: &AuditCmd) -> Result<()> {
    match cmd {
        AuditCmd::Verify { db } => {
            let store = crate::store_cmd::open(&db.db)?;
            let n = xinyong_server::audit::verify(&*store).map_err(|e| anyhow::anyhow!("audit log: {e}"))?;
            println!("audit log: {n} rows, the hash chain holds");
            Ok(())
        }
    }
}
