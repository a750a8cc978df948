#![cfg(test)]
//! The identity cookie: `cookie_value` finds the named cookie in a `Cookie` header, without allocating.

use cohort::cookie_value;

#[test]
fn cookie_value_finds_the_named_cookie() {
    // (Cookie header, value of cookie "uid")
    let cases: [(&[u8], Option<&[u8]>); 10] = [
        (b"a=1; uid=42", Some(b"42")),
        (b"uid=42", Some(b"42")),
        (b"a=1;uid=\"q 7\";b=2", Some(b"q 7")),
        (b"a=1; b=2", None),
        (b"", None),
        (b"uid=; a=1", None),
        (b"uid=\"\"", None),
        (b"uidx=1; uid=2", Some(b"2")),
        (b"uid=2; uidx=1", Some(b"2")),
        // Cookie names are case-sensitive.
        (b"xuid=1; UID=3", None),
    ];
    for (header, expected) in cases {
        let got = cookie_value(header, b"uid");
        assert_eq!(got, expected, "{:?}", String::from_utf8_lossy(header));
    }
}
