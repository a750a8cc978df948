#![cfg(test)]
//! An entry may record the CohortRollout that owns it. The filter carries the field and decides
//! exactly as without it.

use cohort::{decide, parse, CompiledConfig, RequestFacts};
use serde_json::json;

fn doc(owner: Option<&str>) -> serde_json::Value {
    let mut entry = json!({"name": "checkout", "match": {"authority": "shop.example.com"},
                           "stage": {"percent": 50}});
    if let Some(owner) = owner {
        entry["owner"] = json!(owner);
    }
    json!({"generation": 3, "rollouts": [entry, {"name": "rest", "stage": {"percent": 5}}]})
}

#[test]
fn an_entry_records_its_owner_and_decides_as_without_it() {
    let owned = doc(Some("shop/checkout"));
    let parsed = parse(owned.to_string().as_bytes()).unwrap();
    assert_eq!(parsed.rollouts[0].owner.as_deref(), Some("shop/checkout"));
    assert_eq!(parsed.rollouts[1].owner, None);
    // Written back as read: an entry without an owner gets no `owner` field.
    assert_eq!(
        serde_json::to_value(&parsed).unwrap()["rollouts"][0]["owner"],
        "shop/checkout"
    );
    let rest = serde_json::to_value(&parsed).unwrap()["rollouts"][1].clone();
    assert!(rest.get("owner").is_none(), "{rest}");

    let with = CompiledConfig::from_json(owned.to_string().as_bytes()).unwrap();
    let without = CompiledConfig::from_json(doc(None).to_string().as_bytes()).unwrap();
    for authority in ["shop.example.com", "blog.example.com"] {
        for user in 0..200 {
            let user = format!("user-{user}");
            let facts = RequestFacts {
                authority: authority.as_bytes(),
                path: b"/",
                user_id: Some(user.as_bytes()),
                ..Default::default()
            };
            assert_eq!(
                decide(&with, &facts),
                decide(&without, &facts),
                "{authority} {user}"
            );
        }
    }
}

#[test]
fn an_empty_owner_is_rejected_naming_the_field() {
    let e = CompiledConfig::from_json(doc(Some("")).to_string().as_bytes()).unwrap_err();
    assert_eq!(e.path, "rollouts[0].owner", "{e}");
    assert!(e.problem.contains("must not be empty"), "{e}");
}
