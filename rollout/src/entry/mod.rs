//! The sluice config a rollout pushes: its own `rollouts[]` entry, merged into the document that also
//! carries the shared settings and the other rollouts' entries. An entry has one owner (the
//! CohortRollout that wrote it; no other edits it), and the entries are kept most specific match first,
//! since the filter gives a request to the first entry that matches it.

mod build;
mod check;
mod namespace;
mod order;
mod working;

pub use build::{
    entry_owner_in, own_entry, own_entry_among, own_entry_in, owned_entry, owner_in, owner_of,
    rollout_entry,
};
pub use check::{check_conflicts, check_conflicts_in, check_entry, check_entry_in};
pub use namespace::{
    check_kind_namespace_allowed, check_namespace_allowed, ALLOWED_NAMESPACES_ANNOTATION,
};
pub use order::merge;
pub use working::{in_order, Working};
