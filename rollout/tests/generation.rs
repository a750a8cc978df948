#![cfg(test)]

//! The generation of the next document pushed: never one the filter (or status) has seen with other
//! content, also after a person re-applied the WasmPlugin with a lower one.

use rollout::generation::next_generation;

#[test]
fn the_next_generation_is_above_the_document_and_what_status_recorded() {
    // (generation of the document read, generation recorded in status, next generation)
    let table = [
        (8, 8, 9),   // the usual round: the document is where status says
        (8, 0, 9),   // a new rollout: nothing recorded yet
        (12, 8, 13), // other rollouts pushed since: above the document
        (1, 8, 9), // a person re-applied the example (generation 1): above the recorded 8, never 2
        (0, 0, 1),
    ];
    for (document, recorded, next) in table {
        assert_eq!(
            next_generation(document, recorded),
            next,
            "document {document}, recorded {recorded}"
        );
    }
}

#[test]
fn the_next_generation_saturates_instead_of_wrapping_to_zero() {
    assert_eq!(next_generation(u64::MAX, 3), u64::MAX);
    assert_eq!(next_generation(3, u64::MAX), u64::MAX);
}
