//! Compiling a config once per proxy: the first VM to configure a document (Envoy's main thread,
//! which serves no requests) shares its compiled city table; each worker then loads that table
//! instead of parsing and hashing every city while its requests wait (`cohort::precompiled`).

use crate::shared_window::SharedData;
use cohort::precompiled::{from_precompiled, precompiled_form};
use cohort::{parse, CompiledConfig};

/// Where a VM's compiled config came from, for its log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Compiled here (and its city table shared).
    Compiled,
    /// Compiled here with the city table another VM of this proxy compiled for the same document.
    Loaded,
}

/// The key of a plugin's shared city table.
pub fn table_key(plugin: &str) -> String {
    format!("sluice/{plugin}/city-table")
}

/// `document` compiled, with the city table another VM shared for exactly this document when there
/// is one; otherwise compiled here, and the table shared for the VMs that configure next.
pub fn compile(
    store: &impl SharedData,
    plugin: &str,
    document: &[u8],
) -> cohort::Result<(CompiledConfig, Source)> {
    let key = table_key(plugin);
    if let (Some(form), _) = store.get(&key) {
        if let Some(config) = from_precompiled(document, form) {
            return Ok((config, Source::Loaded));
        }
    }
    let mut doc = parse(document)?;
    let config = CompiledConfig::compile(&doc)?;
    if let Some(form) = precompiled_form(document, &mut doc, &config) {
        store.set(&key, &form, None);
    }
    Ok((config, Source::Compiled))
}
