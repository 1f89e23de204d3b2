//! The platform's vocabulary: identifiers that can only hold valid values, and the code lists.
//!
//! Architecture invariant: this crate does no IO and depends on no other workspace crate.
//! Code lists are embedded copies of `../shared/data/` (a test keeps them equal).

#![warn(missing_docs)]

pub mod industry;
pub mod legacy;
pub mod normalize;
pub mod orgcode;
pub mod region;
pub mod uscc;

pub use industry::Industry;
pub use legacy::{
    candidates, classify, IdError, LegacyId, RegNo, RegNoError, ResolveError, Resolver, TaxId, TaxIdError,
};
pub use orgcode::{OrgCode, OrgCodeError};
pub use uscc::{Uscc, UsccError};
