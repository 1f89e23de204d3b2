//! The SQLite backend passes the storage conformance story.

#[test]
fn sqlite_passes_the_conformance_story() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = xinyong_store_sqlite::SqliteStore::open(&dir.path().join("x.db")).unwrap();
    xinyong_store::conformance::run(&mut store);
}

#[test]
fn sqlite_exports_and_imports() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = xinyong_store_sqlite::SqliteStore::open(&dir.path().join("a.db")).unwrap();
    let mut b = xinyong_store_sqlite::SqliteStore::open(&dir.path().join("b.db")).unwrap();
    xinyong_store::conformance::round_trip(&mut a, &mut b);
}

#[test]
fn sqlite_bulk_writes_store_what_single_writes_store() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = xinyong_store_sqlite::SqliteStore::open(&dir.path().join("a.db")).unwrap();
    let mut b = xinyong_store_sqlite::SqliteStore::open(&dir.path().join("b.db")).unwrap();
    xinyong_store::conformance::bulk(&mut a, &mut b);
}

/// A batch row written by another program (an older build, a shell) retires the derived cache too: the
/// trigger on `batches` moves the generation. Opening a store takes no write lock for it.
#[test]
fn a_batch_written_by_another_program_retires_the_cache() {
    use xinyong_store::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    let store = xinyong_store_sqlite::SqliteStore::open(&path).unwrap();
    assert_eq!(store.fact_generation().unwrap(), Some(0));
    assert!(store.write_fact_cache(0, "k", &[b"x".to_vec()]).unwrap());
    let read = |s: &xinyong_store_sqlite::SqliteStore| s.read_fact_cache("k", &mut |_| Ok(())).unwrap();
    assert!(read(&store));
    // Another connection holding the write lock does not stop a store from opening.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let again = xinyong_store_sqlite::SqliteStore::open(&path).unwrap();
    assert!(read(&again));
    other
        .execute_batch(
            "INSERT INTO batches VALUES ('b','s','d','f','2025-01-01','2025-01-01T00:00:00',0,0,0,0,0,0,''); COMMIT",
        )
        .unwrap();
    assert_eq!(store.fact_generation().unwrap(), Some(1));
    assert!(
        !read(&store) && !read(&again),
        "a batch from elsewhere retires the cache"
    );
    assert!(
        !store.write_fact_cache(0, "k", &[b"x".to_vec()]).unwrap(),
        "a passed generation"
    );
}
