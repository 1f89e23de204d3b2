//! The SQLite store behind the connection pool: concurrent readers and writers, bounded size, waiting.

use std::time::Duration;
use xinyong_store::pool::{Pool, PoolConfig};
use xinyong_store::Store;
use xinyong_store_sqlite::SqliteStore;

fn pool(path: std::path::PathBuf, max_size: u32, wait: Duration) -> Pool {
    let cfg = PoolConfig { max_size, wait };
    Pool::new(
        &cfg,
        Box::new(move || Ok(Box::new(SqliteStore::open(&path)?) as Box<dyn Store + Send>)),
    )
    .expect("pool")
}

#[test]
fn sqlite_serves_many_threads_through_the_pool() {
    let dir = tempfile::tempdir().unwrap();
    xinyong_store::conformance::pool(&pool(dir.path().join("x.db"), 3, Duration::from_secs(30)), 3);
}

#[test]
fn a_full_sqlite_pool_makes_a_request_wait_then_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    xinyong_store::conformance::pool_wait(&pool(dir.path().join("x.db"), 1, Duration::from_millis(200)));
}
