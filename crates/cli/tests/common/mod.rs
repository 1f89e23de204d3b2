//! Helpers shared by the end-to-end tests: the binary, scratch folders, running a command, and the stores under
//! test — the embedded SQLite file and a fresh database on the local PostgreSQL server.
//!
//! The PostgreSQL server is the one .ci/run starts (XINYONG_PG_URL, default
//! postgres://postgres@127.0.0.1:5432/postgres, trusting local TCP). An unreachable server fails the test that
//! asks for a database: the PostgreSQL half of a test is never skipped.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_xinyong")
}

/// A fresh scratch folder named after the test binary's purpose, the process and `name`.
pub fn tmp(purpose: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xinyong-{purpose}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

/// Runs `xinyong ARGS` with a fixed clock; panics with its output unless it succeeds; returns standard output.
pub fn run(args: &[&str]) -> String {
    let out = Command::new(bin())
        .args(args)
        .env("XINYONG_CLOCK", "2026-02-01T00:00:00")
        .output()
        .expect("run xinyong");
    assert!(
        out.status.success(),
        "xinyong {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The administrative URL of the local PostgreSQL server.
pub fn server_url() -> String {
    std::env::var("XINYONG_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The prefix of every database the tests create: `xinyong_t_<purpose>_<pid>_<n>`.
const TEST_DB_PREFIX: &str = "xinyong_t_";

fn connect_admin(admin: &str) -> postgres::Client {
    postgres::Client::connect(admin, postgres::NoTls).unwrap_or_else(|e| {
        panic!("PostgreSQL at {admin} is not reachable ({e}); .ci/run starts it, or set XINYONG_PG_URL")
    })
}

/// The process id in a test database's name `xinyong_t_<purpose>_<pid>_<n>`, or None when the name is not one.
fn test_db_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEST_DB_PREFIX)?;
    let mut parts = rest.rsplitn(3, '_');
    let n = parts.next()?;
    let pid = parts.next()?;
    let purpose = parts.next()?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if purpose.is_empty() || !digits(n) || !digits(pid) {
        return None;
    }
    pid.parse().ok()
}

/// Drops the test databases left behind by test processes that are gone (a database held in a `static` is
/// never dropped, nor is one of a killed test run). Only names of the form `xinyong_t_<purpose>_<pid>_<n>`
/// whose pid is not a running process; never any other database.
fn drop_leftovers(c: &mut postgres::Client) {
    let rows = c
        .query(
            "SELECT datname FROM pg_database WHERE starts_with(datname, $1)",
            &[&TEST_DB_PREFIX],
        )
        .expect("list databases");
    let me = std::process::id();
    for r in rows {
        let name: String = r.get(0);
        let Some(pid) = test_db_pid(&name) else { continue };
        if pid == me || Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        // Another test process may be dropping the same one: a failure here is not this test's.
        match c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")) {
            Ok(()) => eprintln!("dropped the leftover test database {name} (process {pid} is gone)"),
            Err(e) => eprintln!("could not drop the leftover test database {name}: {e}"),
        }
    }
}

/// A fresh database on the local server, named `xinyong_t_<purpose>_<pid>_<n>`, dropped when the guard goes.
pub struct FreshDb {
    admin: String,
    name: String,
}

impl FreshDb {
    /// Creates the database; panics if the server is not reachable. `purpose`: lowercase letters, digits, `_`.
    pub fn new(purpose: &str) -> FreshDb {
        static CLEANED: Once = Once::new();
        static N: AtomicU32 = AtomicU32::new(0);
        assert!(
            !purpose.is_empty()
                && purpose
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database purpose {purpose:?}: lowercase letters, digits and _ only"
        );
        let admin = server_url();
        let mut c = connect_admin(&admin);
        CLEANED.call_once(|| drop_leftovers(&mut c));
        let name = format!(
            "{TEST_DB_PREFIX}{purpose}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        c.batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap_or_else(|e| panic!("create database {name} on {admin}: {e}"));
        FreshDb { admin, name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The database's URL: the admin URL with the database part replaced.
    pub fn url(&self) -> String {
        match self.admin.rfind('/') {
            Some(i) => format!("{}/{}", &self.admin[..i], self.name),
            None => panic!("XINYONG_PG_URL has no database part"),
        }
    }
}

impl Drop for FreshDb {
    fn drop(&mut self) {
        let dropped = postgres::Client::connect(&self.admin, postgres::NoTls)
            .and_then(|mut c| c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name)));
        if let Err(e) = dropped {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// One store under test: a SQLite file or a fresh PostgreSQL database (dropped with the value).
pub enum Db {
    Sqlite(PathBuf),
    Postgres { db: FreshDb, url: String },
}

impl Db {
    /// The SQLite store in the file `path` (created by the first command that writes).
    pub fn sqlite(path: impl Into<PathBuf>) -> Db {
        Db::Sqlite(path.into())
    }

    /// A fresh PostgreSQL database named after this test binary; panics if the server is not reachable.
    pub fn postgres() -> Db {
        let db = FreshDb::new(env!("CARGO_CRATE_NAME"));
        let url = db.url();
        Db::Postgres { db, url }
    }

    /// What to pass to `--db`.
    pub fn arg(&self) -> String {
        match self {
            Db::Sqlite(p) => p.to_str().expect("a UTF-8 path").to_string(),
            Db::Postgres { url, .. } => url.clone(),
        }
    }

    /// The backend's name, for assertion messages.
    pub fn label(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres { .. } => "postgresql",
        }
    }

    /// Opens the store through its backend, as the binary does.
    pub fn open(&self) -> Box<dyn xinyong_store::Store> {
        match self {
            Db::Sqlite(p) => Box::new(
                xinyong_store_sqlite::SqliteStore::open(p)
                    .unwrap_or_else(|e| panic!("open the SQLite store {}: {e}", p.display())),
            ),
            Db::Postgres { url, .. } => Box::new(
                xinyong_store_postgres::PgStore::connect(url)
                    .unwrap_or_else(|e| panic!("connect to the PostgreSQL store {url}: {e}")),
            ),
        }
    }

    /// Names the backend on standard error if the current thread panics before the guard goes, so that a
    /// failure deep in a check (an `expect`, a helper's assertion) still says which store it was.
    pub fn checking(&self) -> Checking<'_> {
        Checking(self)
    }
}

impl std::fmt::Display for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// See [`Db::checking`].
pub struct Checking<'a>(&'a Db);

impl Drop for Checking<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "the failure above is on the {} store ({})",
                self.0.label(),
                self.0.arg()
            );
        }
    }
}

/// Both stores under test: the SQLite file `dir/x.db` and a fresh PostgreSQL database.
pub fn both(dir: &Path) -> [Db; 2] {
    [Db::sqlite(dir.join("x.db")), Db::postgres()]
}
