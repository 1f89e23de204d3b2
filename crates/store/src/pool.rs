//! A pool of open stores on one database, for a server that answers many requests at once: each request
//! takes a connection, uses it as a [`Store`], and gives it back when the handle is dropped.
//!
//! The pool is r2d2's (bounded size, a wait with a timeout when all connections are out, a check that a
//! connection still answers before it is handed out, broken connections replaced); what a connection is comes
//! from the caller, so this crate stays free of database drivers: the binary passes a function that opens the
//! backend it chose (`PgStore::connect(url)` or `SqliteStore::open(path)`).
//!
//! Writers still take turns as each backend arranges (SQLite's `BEGIN IMMEDIATE` with a busy timeout,
//! PostgreSQL's advisory lock in `begin`); readers run side by side.

use crate::{Result, Store, StoreError};
use std::time::Duration;

/// Opens one connection.
pub type Opener = dyn Fn() -> Result<Box<dyn Store + Send>> + Send + Sync;

/// r2d2's view of a store: how to open one and how to tell it is still good.
pub struct Manager(Box<Opener>);

impl r2d2::ManageConnection for Manager {
    type Connection = Box<dyn Store + Send>;
    type Error = StoreError;

    fn connect(&self) -> Result<Self::Connection> {
        (self.0)()
    }

    fn is_valid(&self, conn: &mut Self::Connection) -> Result<()> {
        conn.ping()
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.is_broken()
    }
}

/// A connection taken from the pool: derefs to the store; back in the pool when dropped.
pub type Pooled = r2d2::PooledConnection<Manager>;

/// How big the pool is and how long a request waits for a connection.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// At most this many connections are open.
    pub max_size: u32,
    /// A request that finds every connection out waits this long, then gets an error.
    pub wait: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_size: 8,
            wait: Duration::from_secs(10),
        }
    }
}

/// A bounded pool of stores on one database.
#[derive(Clone)]
pub struct Pool(r2d2::Pool<Manager>);

impl Pool {
    /// Opens the pool. One connection is opened (and closed) at once, so that a wrong address or a schema
    /// that cannot be migrated fails here, with the backend's own error, not at the first request; the
    /// pool then opens connections as requests need them.
    pub fn new(cfg: &PoolConfig, open: Box<Opener>) -> Result<Pool> {
        drop(open()?);
        let p = r2d2::Pool::builder()
            .max_size(cfg.max_size.max(1))
            .min_idle(Some(0))
            .connection_timeout(cfg.wait.max(Duration::from_millis(1)))
            .test_on_check_out(true)
            .build_unchecked(Manager(open));
        Ok(Pool(p))
    }

    /// A connection: an idle one (checked with `ping`), a new one while the pool is below its size, or
    /// the next one given back; an error after the configured wait.
    pub fn get(&self) -> Result<Pooled> {
        self.0
            .get()
            .map_err(|e| StoreError::Backend(format!("no store connection free: {e}")))
    }

    /// Open connections and idle ones.
    pub fn state(&self) -> (u32, u32) {
        let s = self.0.state();
        (s.connections, s.idle_connections)
    }
}
