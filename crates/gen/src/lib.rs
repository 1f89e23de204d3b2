//! The synthetic district generator: a realistic county with a hidden ground truth.
//!
//! `world` builds the firms, persons, guarantee circles and loans and runs the hidden monthly health
//! process (with guarantee contagion); `emit` turns the world into every registered dataset's export,
//! in that dataset's format, encoding, date style and units, with the defects real exports have;
//! `truth` writes the hidden truth into its own folder.
//!
//! Architecture invariant: output is a pure function of the configuration and the seed — byte-identical
//! at any thread count. Every random draw comes from a ChaCha stream keyed by (seed, purpose, firm,
//! batch), never from a stream shared across threads.

pub mod emit;
pub mod graph;
pub mod names;
pub mod rng;
pub mod truth;
pub mod world;

use std::path::PathBuf;

/// How big a district to make.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GenConfig {
    pub enterprises: usize,
    pub years: u32,
    pub seed: u64,
    /// Mean VAT invoice amount in yuan: sets how many invoice rows the tax bureau delivers.
    pub invoice_mean_yuan: f64,
    /// Write the largest daily feeds gzip-compressed (as real exchanges often do).
    pub gzip_large: bool,
    /// The last simulated month is December of this year.
    pub end_year: i32,
    /// Build the world and write the hidden truth only (for calibrating the health process).
    #[serde(skip)]
    pub truth_only: bool,
}

impl GenConfig {
    /// `demo`: small enough that the whole demo runs in about a minute.
    pub fn demo(seed: u64) -> Self {
        GenConfig {
            enterprises: 1500,
            years: 3,
            seed,
            invoice_mean_yuan: 250_000.0,
            gzip_large: false,
            end_year: 2025,
            truth_only: false,
        }
    }
    /// `district`: about 21,000 firms over 5 years and over 400 million source records.
    pub fn district(seed: u64) -> Self {
        GenConfig {
            enterprises: 21_000,
            years: 5,
            seed,
            invoice_mean_yuan: 3_200.0,
            gzip_large: true,
            end_year: 2025,
            truth_only: false,
        }
    }
    pub fn months(&self) -> usize {
        self.years as usize * 12
    }
}

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    #[error("io: {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("xlsx: {0}")]
    Xlsx(String),
    #[error("registry: {0}")]
    Registry(String),
}

/// What was written.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Summary {
    pub firms: usize,
    pub batches: usize,
    pub records: u64,
    pub bytes: u64,
    pub defaults: usize,
    pub annual_default_rate: f64,
    pub oracle_auc: f64,
}

/// Generates a district into `out`: `sources/<source>/<dataset>__<delivered>.<ext>`, `manifest.jsonl`,
/// and `truth/` (the hidden truth, read only to validate models).
pub fn generate(
    cfg: &GenConfig,
    out: &std::path::Path,
    progress: &(dyn Fn(&str, u64, u64) + Sync),
) -> Result<Summary, GenError> {
    let registry = xinyong_registry::Registry::builtin().map_err(|e| GenError::Registry(e.to_string()))?;
    let world = world::World::build(cfg);
    let (truth_stats, _) = truth::write(&world, &out.join("truth"))?;
    let mut summary = if cfg.truth_only {
        Summary::default()
    } else {
        emit::write_all(&world, &registry, out, progress)?
    };
    summary.firms = world.firms.iter().filter(|f| f.in_district).count();
    summary.defaults = truth_stats.defaults;
    summary.annual_default_rate = truth_stats.annual_default_rate;
    summary.oracle_auc = truth_stats.oracle_auc;
    let path = out.join("summary.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&summary).unwrap_or_default())
        .map_err(|source| GenError::Io { path, source })?;
    Ok(summary)
}
