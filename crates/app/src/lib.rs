//! Orchestration: the pipelines the CLI and (later) the server call.
//!
//! Architecture invariant: depends on the storage *interface*, never on a backend; the binary picks
//! the backend. This is the only library crate that touches the file system.

pub mod archive;
pub mod backup;
pub mod credit;
pub mod fact_cache;
pub mod network;
pub mod pipeline;
pub mod validate;

pub use pipeline::{ingest_paths, raw_row, BatchReport, IngestOptions, IngestSummary};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("io: {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(transparent)]
    Store(#[from] xinyong_store::StoreError),
    #[error("registry: {0}")]
    Registry(String),
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, AppError>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> AppError + '_ {
    move |source| AppError::Io {
        path: path.display().to_string(),
        source,
    }
}
