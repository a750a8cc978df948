//! Compiling a config once per proxy: the first VM to configure a document (Envoy's main thread,
//! which serves no requests) shares its compiled city table; each worker then loads that table
//! instead of parsing and hashing every city while its requests wait (`cohort::precompiled`).

use crate::shared_window::SharedData;
use cohort::precompiled::{FormFor, FORM_PREFIX};
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

/// The key of the start of that table's form, naming the document it was compiled for: a VM reads
/// the whole table only when it is for its document (a table is hundreds of KB, and a VM's linear
/// memory never shrinks).
pub fn prefix_key(plugin: &str) -> String {
    format!("sluice/{plugin}/city-table-for")
}

/// `document` compiled, with the city table another VM shared for exactly this document when there
/// is one; otherwise compiled here, and the table shared for the VMs that configure next.
pub fn compile(
    store: &impl SharedData,
    plugin: &str,
    document: &[u8],
) -> cohort::Result<(CompiledConfig, Source)> {
    let (key, prefix) = (table_key(plugin), prefix_key(plugin));
    let named = FormFor::new(document);
    if let (Some(shared_prefix), _) = store.get(&prefix) {
        if named.is_named_by(&shared_prefix) {
            if let (Some(form), _) = store.get(&key) {
                if let Some(config) = named.load(form) {
                    return Ok((config, Source::Loaded));
                }
            }
        }
    }
    let mut doc = parse(document)?;
    let config = CompiledConfig::compile(&doc)?;
    match named.form(&mut doc, &config) {
        Some(form) => {
            store.set(&key, &form, None);
            store.set(&prefix, form.get(..FORM_PREFIX).unwrap_or_default(), None);
        }
        // Nothing to share: no VM may take an older document's table for this one.
        None => {
            store.set(&prefix, &[], None);
        }
    }
    Ok((config, Source::Compiled))
}
