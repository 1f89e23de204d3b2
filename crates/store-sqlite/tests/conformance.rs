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
