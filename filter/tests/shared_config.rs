#![cfg(test)]
//! Compiling once per proxy: the second VM to configure a document loads the first one's city table,
//! a different document is compiled afresh, and an invalid one is refused whatever is shared.

use cohort::{decide, RequestFacts};
use sluice_filter::shared_config::{compile, prefix_key, table_key, Source};
use sluice_filter::shared_window::SharedData;
use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Default)]
struct Store(RefCell<HashMap<String, Vec<u8>>>);

impl SharedData for Store {
    fn get(&self, key: &str) -> (Option<Vec<u8>>, Option<u32>) {
        (self.0.borrow().get(key).cloned(), Some(1))
    }
    fn set(&self, key: &str, value: &[u8], _cas: Option<u32>) -> bool {
        self.0.borrow_mut().insert(key.to_string(), value.to_vec());
        true
    }
}

fn document(small_city_population: u64) -> Vec<u8> {
    let mut cities = String::new();
    for k in 0..2000 {
        cities.push_str(&format!(
            r#""town-{k}": {{"population": 500000, "region": "eu"}}, "#
        ));
    }
    format!(
        r#"{{"generation": 1, "cities": {{{cities} "Faro": {{"population": {small_city_population},
        "region": "eu"}}}}, "rollouts": [{{"name": "shop",
        "stage": {{"max_city_population": 100000, "percent": 100}}}}]}}"#
    )
    .into_bytes()
}

/// Whether a user in Faro goes to the canary under `config`.
fn faro_in_canary(config: &cohort::CompiledConfig) -> bool {
    let facts = RequestFacts {
        authority: b"shop",
        path: b"/",
        user_id: Some(b"u1"),
        city: Some(b"faro"),
        ..RequestFacts::default()
    };
    decide(config, &facts).is_some_and(|d| d.cohort == cohort::Cohort::Canary)
}

#[test]
fn the_second_vm_loads_the_table_the_first_compiled_for_the_same_document() {
    let store = Store::default();
    let small = document(60_000);
    let (first, source) = compile(&store, "shop", &small).unwrap();
    assert_eq!(source, Source::Compiled);
    let (second, source) = compile(&store, "shop", &small).unwrap();
    assert_eq!(source, Source::Loaded);
    assert!(faro_in_canary(&first) && faro_in_canary(&second));

    // Faro grew past the cutoff: a worker must not keep the old table's population.
    let grown = document(600_000);
    let (third, source) = compile(&store, "shop", &grown).unwrap();
    assert_eq!(source, Source::Compiled);
    assert!(!faro_in_canary(&third));
    // Another plugin's table is its own.
    assert_eq!(
        compile(&store, "other", &grown).unwrap().1,
        Source::Compiled
    );
    assert!(store.0.borrow().contains_key(&table_key("other")));
}

#[test]
fn an_invalid_document_is_refused_even_with_a_table_shared() {
    let store = Store::default();
    compile(&store, "shop", &document(60_000)).unwrap();
    let invalid = String::from_utf8(document(60_000))
        .unwrap()
        .replace("\"percent\": 100", "\"percent\": 101");
    let error = compile(&store, "shop", invalid.as_bytes()).unwrap_err();
    assert!(error.to_string().contains("percent"), "{error}");
}

#[test]
fn a_document_without_cities_withdraws_the_table_an_older_one_shared() {
    let store = Store::default();
    let with_cities = document(60_000);
    compile(&store, "shop", &with_cities).unwrap();
    assert_eq!(
        store.0.borrow()[&prefix_key("shop")].len(),
        cohort::precompiled::FORM_PREFIX
    );
    let without = br#"{"generation": 2, "rollouts": [{"name": "shop", "stage": {"percent": 5}}]}"#;
    assert_eq!(
        compile(&store, "shop", without).unwrap().1,
        Source::Compiled
    );
    assert!(store.0.borrow()[&prefix_key("shop")].is_empty());
    // The older document's table is no longer offered, even for that document.
    assert_eq!(
        compile(&store, "shop", &with_cities).unwrap().1,
        Source::Compiled
    );
}
