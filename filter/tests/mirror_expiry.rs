#![cfg(test)]
//! The mirror's book across config reloads: copies whose answer can no longer come.

use sluice_filter::mirror::{Book, Compared, InFlight};
use std::time::{Duration, UNIX_EPOCH};

/// A call the host dropped without an answer (its root context went away with a config reload) is
/// written off after its expiry, giving its place back; each root context knows its own calls.
#[test]
fn copies_no_answer_will_come_for_are_written_off_and_free_their_places() {
    let mut book: Book<&str> = Book::default();
    let at = |ms: u64| UNIX_EPOCH + Duration::from_millis(ms);
    let mut ids = Vec::new();
    for (token, root, expires) in [(1, 10, 5_000), (2, 10, 9_000), (3, 11, 5_000)] {
        let id = book.reserve().unwrap();
        ids.push(id);
        let flight = InFlight {
            id,
            sent_at: at(0),
            expires_at: at(expires),
            root,
            origin: "x",
        };
        book.sent(token, flight);
    }
    assert_eq!((book.in_flight_of(10), book.in_flight_of(11)), (2, 1));
    assert!(book.expire(at(4_999)).is_empty(), "nothing expired yet");
    let expired = book.expire(at(6_000));
    let mut gone: Vec<u64> = expired.iter().map(|f| f.id).collect();
    gone.sort();
    assert_eq!(gone, [ids[0], ids[2]]);
    assert_eq!((book.in_flight_of(10), book.in_flight_of(11)), (1, 0));
    assert_eq!(
        book.outstanding(),
        1,
        "the written-off copies freed their places"
    );
    // Written off: a late answer changes nothing; the live one still compares.
    assert!(book.take_in_flight(1).is_none());
    assert_eq!(book.mirror_answered(ids[0], 2), None);
    assert_eq!(book.primary_answered(ids[1], 2), None);
    assert_eq!(book.mirror_answered(ids[1], 2), Some(Compared::Same));
    assert_eq!(book.outstanding(), 0);
}
