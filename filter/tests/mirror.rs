#![cfg(test)]
//! The mirror's host-free side: what a copy of a user's request carries, which requests are copied,
//! and the worker's book of copies (its bound, its comparisons, no slot left behind).

use cohort::{Cohort, CompiledConfig, Decision, Reason};
use sluice_filter::glue;
use sluice_filter::mirror::{copy_headers, Book, Compared, InFlight, MAX_OUTSTANDING};
use std::time::{Duration, UNIX_EPOCH};

fn headers(pairs: &[(&str, &[u8])]) -> Vec<(String, Vec<u8>)> {
    pairs
        .iter()
        .map(|(name, value)| ((*name).to_string(), value.to_vec()))
        .collect()
}

/// A GET to `authority` with nothing else.
fn request_to(authority: &[u8]) -> Vec<(String, Vec<u8>)> {
    headers(&[
        (":method", b"GET"),
        (":path", b"/"),
        (":authority", authority),
    ])
}

fn copied(headers: &[(String, Vec<u8>)], body_len: Option<usize>) -> Vec<(String, String)> {
    copy_headers(headers, body_len).expect("the request can be copied")
}

fn pairs(copy: &[(String, String)]) -> Vec<(&str, &str)> {
    copy.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
}

#[test]
fn a_copy_keeps_the_users_headers_and_drops_hop_by_hop_framing_and_sluice_headers() {
    let request = headers(&[
        (":method", b"GET"),
        (":scheme", b"https"),
        (":path", b"/cart?page=2"),
        (":authority", b"shop.example:8080"),
        (":authority", b"evil.example"),
        ("cookie", b"uid=u1"),
        ("cookie", b"theme=dark"),
        ("x-user-id", b"u1"),
        ("x-request-id", b"4f1c"),
        ("accept", b"text/html"),
        ("connection", b"keep-alive"),
        ("keep-alive", b"timeout=5"),
        ("proxy-connection", b"keep-alive"),
        ("transfer-encoding", b"chunked"),
        ("te", b"trailers"),
        ("trailer", b"x-checksum"),
        ("upgrade", b"websocket"),
        ("content-length", b"999"),
        ("expect", b"100-continue"),
        ("x-sluice-override", b"canary"),
        ("x-sluice-override-token", b"secret"),
        ("x-sluice-cohort", b"stable"),
        ("x-envoy-attempt-count", b"1"),
        ("x-envoy-expected-rq-timeout-ms", b"15000"),
    ]);
    let copy = copied(&request, None);
    assert_eq!(
        pairs(&copy),
        [
            (":method", "GET"),
            (":scheme", "https"),
            (":path", "/cart?page=2"),
            (":authority", "shop.example-shadow:8080"),
            ("cookie", "uid=u1"),
            ("cookie", "theme=dark"),
            ("x-user-id", "u1"),
            ("x-request-id", "4f1c"),
            ("accept", "text/html"),
        ]
    );
}

#[test]
fn a_copy_with_a_body_says_how_long_the_copied_body_is() {
    let mut request = request_to(b"shop.example");
    request[0].1 = b"POST".to_vec();
    request.extend(headers(&[("content-length", b"999"), ("x-user-id", b"u1")]));
    let copy = copied(&request, Some(11));
    let lengths: Vec<&str> = pairs(&copy)
        .into_iter()
        .filter(|(n, _)| *n == "content-length")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(lengths, ["11"]);
    let without_body = copied(&request, None);
    assert!(without_body.iter().all(|(n, _)| n != "content-length"));
}

#[test]
fn the_copys_authority_is_marked_as_a_shadow_like_envoys_own_mirror() {
    // Envoy's shadowAppendedHost puts the suffix before a port, after an IPv6 literal's bracket.
    let cases: [(&[u8], &str); 7] = [
        (b"shop.example", "shop.example-shadow"),
        (b"shop.example:8080", "shop.example-shadow:8080"),
        (b"10.0.0.1:80", "10.0.0.1-shadow:80"),
        (b"[::1]:8080", "[::1]-shadow:8080"),
        (b"[::1]", "[::1]-shadow"),
        (b"[2001:db8::1]:443", "[2001:db8::1]-shadow:443"),
        (b"[2001:db8::1]", "[2001:db8::1]-shadow"),
    ];
    for (authority, expected) in cases {
        let copy = copied(&request_to(authority), None);
        let shadow = copy.iter().find(|(n, _)| n == ":authority").map(|(_, v)| v);
        assert_eq!(shadow.map(String::as_str), Some(expected), "{expected}");
    }
}

#[test]
fn a_request_without_method_path_or_authority_or_with_a_non_utf8_value_is_not_copied() {
    let full = request_to(b"shop.example");
    for missing in [":method", ":path", ":authority"] {
        let partial: Vec<_> = full.iter().filter(|(n, _)| n != missing).cloned().collect();
        assert_eq!(copy_headers(&partial, None), None, "without {missing}");
    }
    let mut latin1 = full.clone();
    latin1.push(("x-name".into(), b"Ren\xe9".to_vec()));
    assert_eq!(copy_headers(&latin1, None), None);
    let mut bad_authority = request_to(b"caf\xe9.example");
    assert_eq!(copy_headers(&bad_authority, None), None);
    // A header the copy drops anyway does not stop it.
    bad_authority[2].1 = b"shop.example".to_vec();
    bad_authority.push(("x-sluice-override".into(), b"\xff".to_vec()));
    assert!(copy_headers(&bad_authority, None).is_some());
}

fn mirror_config() -> CompiledConfig {
    let doc = r#"{"generation": 1, "rollouts": [
        {"name": "api", "match": {"path_prefix": "/api"}, "stage": {"percent": 0}},
        {"name": "shop", "stage": {"percent": 0,
            "mirror": {"percent": 50, "cluster": "outbound|80|canary|shop"}}}]}"#;
    CompiledConfig::from_json(doc.as_bytes()).expect("valid config")
}

#[test]
fn mirror_of_copies_the_rollouts_share_of_idempotent_requests_without_a_body() {
    let config = mirror_config();
    let stable = |rollout| Decision {
        rollout,
        cohort: Cohort::Stable,
        reason: Reason::Bucket,
    };
    let get = request_to(b"shop.example");
    let mut post = get.clone();
    post[0].1 = b"POST".to_vec();
    // 50% copies the draws whose basis point is below 5000.
    let cases = [
        (stable(1), &get, false, 4_999, true),
        (stable(1), &get, false, 5_000, false),
        (stable(1), &get, true, 0, false),
        (stable(1), &post, false, 0, false),
        (stable(0), &get, false, 0, false),
    ];
    for (i, (decision, request, has_body, random, expected)) in cases.into_iter().enumerate() {
        let mirror = glue::mirror_of(&config, &decision, request, has_body, || random);
        assert_eq!(mirror.is_some(), expected, "case {i}");
        if let Some(m) = mirror {
            assert_eq!(m.cluster, "outbound|80|canary|shop");
        }
    }
    // A request the rollout's stage does not send to stable by itself is never drawn for.
    let overridden = Decision {
        reason: Reason::Override,
        ..stable(1)
    };
    let drawn = glue::mirror_of(&config, &overridden, &get, false, || {
        panic!("no draw for an override")
    });
    assert!(drawn.is_none());
}

#[test]
fn a_worker_holds_at_most_max_outstanding_copies_and_finished_ones_free_their_place() {
    let mut book: Book<()> = Book::default();
    let ids: Vec<u64> = (0..MAX_OUTSTANDING).map_while(|_| book.reserve()).collect();
    assert_eq!(ids.len(), MAX_OUTSTANDING);
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "ids are distinct");
    assert_eq!(book.outstanding(), MAX_OUTSTANDING);
    assert_eq!(
        book.reserve(),
        None,
        "past the limit a request is not copied"
    );

    book.abandon(ids[0]);
    book.primary_done(ids[0]);
    let again = book.reserve().expect("an abandoned copy frees its place");
    assert_eq!(book.reserve(), None);
    book.primary_answered(ids[1], 2);
    assert_eq!(book.mirror_answered(ids[1], 2), Some(Compared::Same));
    assert!(book.reserve().is_some(), "an answered copy frees its place");
    assert_eq!(book.reserve(), None);
    assert_ne!(again, ids[0], "an id is never reused");
}

/// Which of the copy's events come, in what order.
#[derive(Debug, Clone, Copy)]
enum Event {
    Primary(u8),
    PrimaryDone,
    Mirror(u8),
    Abandon,
}

/// Plays `events` for one copy; the comparisons they produce.
fn play(book: &mut Book<()>, id: u64, events: &[Event]) -> Vec<Compared> {
    let mut compared = Vec::new();
    for event in events {
        let outcome = match *event {
            Event::Primary(class) => book.primary_answered(id, class),
            Event::Mirror(class) => book.mirror_answered(id, class),
            Event::PrimaryDone => {
                book.primary_done(id);
                None
            }
            Event::Abandon => {
                book.abandon(id);
                None
            }
        };
        compared.extend(outcome);
    }
    compared
}

#[test]
fn each_copy_is_compared_once_whichever_answer_comes_first_and_leaves_nothing_behind() {
    use Event::*;
    let cases: [(&[Event], &[Compared]); 12] = [
        (&[Primary(2), Mirror(2), PrimaryDone], &[Compared::Same]),
        (&[Primary(2), PrimaryDone, Mirror(2)], &[Compared::Same]),
        (&[Mirror(2), Primary(2), PrimaryDone], &[Compared::Same]),
        (&[Primary(2), Mirror(5), PrimaryDone], &[Compared::Differs]),
        (&[Mirror(5), Primary(2), PrimaryDone], &[Compared::Differs]),
        (&[Primary(2), PrimaryDone, Mirror(0)], &[Compared::Differs]),
        // The user's request ended without an answer: nothing to compare with.
        (&[PrimaryDone, Mirror(2)], &[]),
        (&[Mirror(2), PrimaryDone], &[]),
        // The copy was never sent.
        (&[Primary(2), Abandon, PrimaryDone], &[]),
        (&[Abandon, PrimaryDone], &[]),
        // Late or repeated events change nothing.
        (
            &[Primary(2), Mirror(2), Mirror(5), Primary(5), PrimaryDone],
            &[Compared::Same],
        ),
        (
            &[Mirror(5), Mirror(2), Abandon, Primary(2), PrimaryDone],
            &[Compared::Differs],
        ),
    ];
    let mut book: Book<()> = Book::default();
    for (events, expected) in cases {
        let id = book.reserve().expect("room for a copy");
        assert_eq!(play(&mut book, id, events), expected, "{events:?}");
        assert_eq!(book.outstanding(), 0, "{events:?} left a copy outstanding");
    }
    // Every slot is gone: the whole capacity is there again, twice over.
    for _ in 0..2 {
        let ids: Vec<u64> = (0..MAX_OUTSTANDING).map_while(|_| book.reserve()).collect();
        assert_eq!(ids.len(), MAX_OUTSTANDING);
        for id in ids {
            play(&mut book, id, &[Mirror(2), PrimaryDone]);
        }
        assert_eq!(book.outstanding(), 0);
    }
}

#[test]
fn a_second_answer_for_the_same_copy_frees_nothing() {
    let mut book: Book<()> = Book::default();
    let first = book.reserve().expect("room");
    let second = book.reserve().expect("room");
    assert_eq!(
        book.mirror_answered(first, 2),
        None,
        "the primary is pending"
    );
    assert_eq!(book.outstanding(), 1);
    assert_eq!(book.mirror_answered(first, 2), None);
    book.abandon(first);
    assert_eq!(
        book.outstanding(),
        1,
        "the second copy is still outstanding"
    );
    book.abandon(second);
    book.abandon(second);
    assert_eq!(book.mirror_answered(second, 2), None);
    assert_eq!(book.outstanding(), 0);
    // An id the book never gave out is ignored.
    assert_eq!(book.mirror_answered(first + 100, 2), None);
    assert_eq!(book.primary_answered(first + 100, 2), None);
}

#[test]
fn requests_whose_users_never_finish_cannot_grow_the_book_without_bound() {
    let mut book: Book<()> = Book::default();
    let mut waiting = Vec::new();
    // Every copy answers, but no user's request ends.
    while let Some(id) = book.reserve() {
        assert_eq!(book.mirror_answered(id, 2), None);
        waiting.push(id);
    }
    assert_eq!(book.outstanding(), 0);
    assert_eq!(waiting.len(), 2 * MAX_OUTSTANDING);
    book.primary_done(waiting[0]);
    assert!(
        book.reserve().is_some(),
        "a finished request frees its slot"
    );
}

#[test]
fn queued_copies_leave_oldest_first_and_an_answer_finds_its_copy_by_token() {
    let mut book: Book<&str> = Book::default();
    assert!(!book.has_queued());
    let (a, b) = (book.reserve().expect("room"), book.reserve().expect("room"));
    for (id, origin) in [(a, "a"), (b, "b")] {
        book.queue(sluice_filter::mirror::Copy {
            id,
            cluster: "canary".into(),
            headers: Vec::new(),
            body: None,
            timeout_ms: 5_000,
            origin,
        });
    }
    assert!(book.has_queued());
    let queued = book.take_queued();
    assert_eq!(
        queued.iter().map(|c| c.origin).collect::<Vec<_>>(),
        ["a", "b"]
    );
    assert!(!book.has_queued() && book.take_queued().is_empty());

    for (token, copy) in [(7, &queued[0]), (9, &queued[1])] {
        let flight = InFlight {
            id: copy.id,
            sent_at: UNIX_EPOCH + Duration::from_millis(100),
            expires_at: UNIX_EPOCH + Duration::from_secs(10),
            root: 1,
            origin: copy.origin,
        };
        book.sent(token, flight);
    }
    assert!(book.take_in_flight(8).is_none(), "an unknown token");
    let second = book.take_in_flight(9).expect("token 9 is in flight");
    assert_eq!((second.id, second.origin), (b, "b"));
    assert!(book.take_in_flight(9).is_none(), "taken once");
    let first = book.take_in_flight(7).expect("token 7 is in flight");
    assert_eq!(
        (first.id, first.sent_at, first.origin),
        (a, UNIX_EPOCH + Duration::from_millis(100), "a")
    );
}
