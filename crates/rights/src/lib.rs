//! An enterprise's rights as rules, pure and deterministic: the working-day calendar (`calendar`), lengths
//! of time as the rules state them (`span`), objection clocks (`clock`), and retention and publicity windows
//! with credit repair (`windows`). The configuration lives in `config/` (embedded; a deployment may replace
//! each file). The web platform keeps the objections and repairs; this crate says when.

pub mod calendar;
pub mod clock;
pub mod span;
pub mod windows;

pub use calendar::{shanghai_day, Calendar};
pub use clock::{Clock, Regime, Regimes, Stage};
pub use span::Span;
pub use windows::{Shown, View, Windows};
