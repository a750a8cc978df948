//! The generation of the next sluice config document pushed. The filter exports the generation in
//! force (`sluice_config_generation`) and status records the one that carried the rollout's last
//! change; a generation reused for other content would make both say what is not so. A person who
//! re-applies the WasmPlugin with a lower generation (the example has 1) must therefore not make the
//! controller count up from there again: the next push goes above the document and the recorded one.

/// The generation of a document pushed after `current_doc` (the generation of the document read),
/// given `recorded` (the `configGeneration` in the rollout's status; 0 when none).
pub fn next_generation(current_doc: u64, recorded: u64) -> u64 {
    current_doc.max(recorded).saturating_add(1)
}
