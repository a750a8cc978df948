//! sluice's config contract and cohort decision. No proxy-wasm, no I/O: the controller writes the
//! [`SluiceConfig`] document, the filter compiles it with [`CompiledConfig::from_json`] and calls [`decide`].

mod compile;
mod decide;
mod error;
pub mod murmur3;
pub mod schema;
mod select;

pub use compile::{parse, CompiledConfig, CompiledRollout};
pub use decide::{cookie_value, decide, Cohort, Decision, Reason, RequestFacts};
pub use error::{ConfigError, Result};
pub use schema::*;
pub use select::MAX_KEY_LEN;
