//! sluice's config contract and cohort decision. No proxy-wasm, no I/O: the controller writes the
//! [`SluiceConfig`] document, the filter compiles it with [`CompiledConfig::from_json`] and calls [`decide`].

pub mod checks;
mod compile;
mod compile_rollout;
mod decide;
mod error;
pub mod guardrail;
pub mod identity;
mod key_table;
pub mod mirror;
pub mod murmur3;
pub mod precompiled;
pub mod schema;
mod select;
pub mod signed;

pub use compile::{parse, CompiledConfig};
pub use compile_rollout::CompiledRollout;
pub use decide::{decide, Decision, Reason, RequestFacts};
pub use error::{ConfigError, Result, MAX_SHOWN_VALUE};
pub use guardrail::{Epoch, GuardrailSettings, GuardrailWindow};
pub use identity::cookie_value;
pub use key_table::MAX_KEY_LEN;
pub use mirror::{status_class, CompiledMirror, DEFAULT_MIRROR_METHODS};
pub use schema::*;
