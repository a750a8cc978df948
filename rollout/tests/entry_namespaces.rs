#![cfg(test)]
//! A CohortRollout writes a WasmPlugin of another namespace only when that WasmPlugin allows its
//! namespace, in the `sluice.dev/allowed-namespaces` annotation.

use rollout::entry::{check_namespace_allowed, ALLOWED_NAMESPACES_ANNOTATION};
use rollout::Error;

#[test]
#[rustfmt::skip]
fn a_wasm_plugin_allows_its_own_namespace_and_the_ones_it_lists() {
    // (case, plugin namespace, annotation, rollout namespace, allowed)
    let cases: Vec<(&str, &str, Option<&str>, &str, bool)> = vec![
        ("same namespace, no annotation", "shop", None, "shop", true),
        ("same namespace, annotation without it", "shop", Some("search"), "shop", true),
        ("other namespace, no annotation", "istio-system", None, "shop", false),
        ("listed alone", "istio-system", Some("shop"), "shop", true),
        ("listed among others, with spaces", "istio-system", Some("search, shop ,blog"), "shop", true),
        ("every namespace", "istio-system", Some("*"), "shop", true),
        ("not listed", "istio-system", Some("search,blog"), "shop", false),
        ("a prefix is not a namespace", "istio-system", Some("shop-staging"), "shop", false),
        ("names are exact", "istio-system", Some("Shop"), "shop", false),
        ("empty annotation", "istio-system", Some(""), "shop", false),
        ("only commas", "istio-system", Some(" , ,"), "shop", false),
    ];
    for (case, plugin, annotation, rollout, want) in cases {
        let got = check_namespace_allowed(plugin, annotation, rollout);
        assert_eq!(got.is_ok(), want, "{case}: {got:?}");
    }
}

#[test]
fn a_refusal_names_the_field_the_namespaces_and_the_annotation() {
    let error = check_namespace_allowed("istio-system", Some("search"), "shop").unwrap_err();
    let Error::InvalidSpec {
        field,
        value,
        problem,
    } = &error
    else {
        panic!("{error:?}")
    };
    assert_eq!(field, "spec.target.wasmPlugin.namespace");
    assert!(value.contains("istio-system"), "{value}");
    assert!(problem.contains("namespace shop"), "{problem}");
    assert!(problem.contains(ALLOWED_NAMESPACES_ANNOTATION), "{problem}");
    assert!(problem.contains("\"search\""), "{problem}");
    assert_eq!(
        ALLOWED_NAMESPACES_ANNOTATION,
        "sluice.dev/allowed-namespaces"
    );

    // A long annotation is quoted cut short.
    let long = "ns-".repeat(500);
    let error = check_namespace_allowed("istio-system", Some(&long), "shop").unwrap_err();
    assert!(error.to_string().len() < 600, "{error}");
}
