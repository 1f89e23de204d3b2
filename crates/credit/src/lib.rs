//! The credit models, pure (no IO): a firm's facts in memory with both times (`data`), the indicator catalogue
//! computed as of any date (`features`), industry benchmarks (`bench`), the warning engine with its rules as
//! data (`warnings`), the scorecard-based 5-forces score (`score`), the macro risk index (`index`), and the
//! whole recompute (`run`). The storage layer loads facts into `FirmData`; everything here is deterministic.

pub mod bench;
pub mod data;
pub mod features;
pub mod index;
pub mod live;
pub mod network;
pub mod run;
pub mod score;
pub mod warnings;

pub use data::{FirmData, RawFact};
pub use run::{recompute, RunOutput};
pub use score::{CreditModel, FirmScore, ScoringConfig};
