#![cfg(test)]
//! The precompiled city table: a worker loading it decides exactly as if it had compiled the document,
//! and a form made for any other document, or damaged, is never used.

use cohort::precompiled::FormFor;
use cohort::{decide, parse, CompiledConfig, Decision, RequestFacts};
use serde_json::{json, Value};

/// A config with `cities` towns (and a few written in mixed case) gated by region and city size.
fn document(cities: usize) -> Value {
    let mut table = serde_json::Map::new();
    for k in 0..cities {
        let key = if k % 7 == 0 {
            format!("Town-{k}")
        } else {
            format!("town-{k}")
        };
        table.insert(
            key,
            json!({"population": k * 10, "region": format!("region-{}", k % 3)}),
        );
    }
    json!({
        "generation": 4,
        "geo": {"region_header": "x-geo-region", "city_header": "x-geo-city"},
        "cities": table,
        "identity": {"sources": [{"header": "x-user-id"}], "when_missing": "stable"},
        "rollouts": [{
            "name": "shop", "salt": "shop-v2", "match": {"path_prefix": "/"},
            "stage": {"regions": ["region-0", "region-1"], "max_city_population": 20_000,
                      "percent": 50}
        }],
    })
}

fn form_for(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut doc = parse(bytes).expect("valid config");
    let config = CompiledConfig::compile(&doc).expect("compiles");
    FormFor::new(bytes).form(&mut doc, &config)
}

/// The decisions of `config` for users in many towns, known and unknown, in various cases.
fn decisions(config: &CompiledConfig, cities: usize) -> Vec<Option<Decision>> {
    let mut out = Vec::new();
    for k in 0..cities + 50 {
        for city in [
            format!("town-{k}"),
            format!("TOWN-{k}"),
            format!(" town-{k} "),
        ] {
            let user = format!("user-{k}");
            let facts = RequestFacts {
                authority: b"shop.example.com",
                path: b"/cart",
                user_id: Some(user.as_bytes()),
                region: Some(format!("region-{}", k % 3).into_bytes().leak()),
                city: Some(city.as_bytes()),
                ..RequestFacts::default()
            };
            out.push(decide(config, &facts));
        }
    }
    out
}

#[test]
fn a_worker_loading_the_form_decides_as_if_it_had_compiled_the_document() {
    for cities in [0, 1, 3000] {
        for text in [
            document(cities).to_string(),
            serde_json::to_string_pretty(&document(cities)).unwrap(),
        ] {
            let bytes = text.as_bytes();
            let form = form_for(bytes).expect("the document has a cities member");
            let loaded = FormFor::new(bytes)
                .load(form.clone())
                .expect("the form is for this document");
            let compiled = CompiledConfig::from_json(bytes).unwrap();
            assert_eq!(
                decisions(&loaded, cities),
                decisions(&compiled, cities),
                "{cities} cities"
            );
            assert_eq!(loaded.generation(), 4);
            assert_eq!(loaded.city_header(), "x-geo-city");
        }
    }
}

#[test]
fn a_form_is_used_only_for_the_exact_document_it_was_made_for() {
    let bytes = document(500).to_string().into_bytes();
    let form = form_for(&bytes).unwrap();
    // One city's population changed, same length: another table.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let changed = text.replacen("\"population\":4990", "\"population\":4991", 1);
    assert_ne!(changed, text);
    assert_eq!(changed.len(), text.len());
    assert!(FormFor::new(changed.as_bytes())
        .load(form.clone())
        .is_none());
    // The same table, but the rollout moved on: the worker must not keep the old stage either.
    let next = text.replacen("\"percent\":50", "\"percent\":60", 1);
    assert!(FormFor::new(next.as_bytes()).load(form.clone()).is_none());
    assert!(FormFor::new(&bytes[..bytes.len() - 1])
        .load(form.clone())
        .is_none());
    assert!(FormFor::new(&bytes).load(form.clone()).is_some());
}

#[test]
fn a_damaged_form_is_refused_not_used_and_never_hangs() {
    let bytes = document(200).to_string().into_bytes();
    let form = form_for(&bytes).unwrap();
    for cut in [0, 7, 30, 80, form.len() / 2, form.len() - 1] {
        assert!(
            FormFor::new(&bytes).load(form[..cut].to_vec()).is_none(),
            "cut at {cut}"
        );
    }
    let mut magic = form.clone();
    magic[6] ^= 1;
    assert!(FormFor::new(&bytes).load(magic).is_none());
    // Every slot taken: a lookup would never find an empty one.
    let mut full = form.clone();
    let slots_at = 8 + 16 + 7 * 8;
    let slot_count =
        u64::from_le_bytes(full[8 + 16 + 32..8 + 16 + 40].try_into().unwrap()) as usize;
    for slot in full[slots_at..slots_at + 8 * slot_count].chunks_exact_mut(8) {
        slot.copy_from_slice(&(u64::MAX << 32 | 1).to_le_bytes());
    }
    assert!(FormFor::new(&bytes).load(full).is_none());
}

#[test]
fn only_the_top_level_cities_member_is_cut_however_the_document_is_written() {
    // A rollout whose strings hold braces, quotes and the word "cities", and cities written last,
    // first, or with escapes in its strings.
    let tricky = r#"{"generation": 2, "rollouts": [{"name": "cities", "salt": "a\"}{[\\\"cities\":",
        "match": {"path_prefix": "/cities/"}, "stage": {"percent": 1}}],
        "cities" :	{"Qu\u00e9bec": {"population": 1, "region": "ca\"east"}, "x": {"population": 2,
        "region": "r"}} }"#;
    let first = r#"{"cities":{"a":{"population":1,"region":"r"}},"generation":3}"#;
    for text in [tricky, first] {
        let form = form_for(text.as_bytes()).expect("cities found");
        let loaded = FormFor::new(text.as_bytes()).load(form).unwrap();
        let compiled = CompiledConfig::from_json(text.as_bytes()).unwrap();
        assert_eq!(format!("{loaded:?}"), format!("{compiled:?}"));
    }
    // Without a cities member there is nothing to share: the worker compiles.
    assert!(form_for(br#"{"generation": 1}"#).is_none());
}
