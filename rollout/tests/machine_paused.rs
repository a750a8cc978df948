#![cfg(test)]
//! A paused rollout (by a person, at a gate) still serves its stage, so it is still judged: a breach
//! applies `onFailure`; only advancing waits for a person.

#[path = "support/machine.rs"]
mod fixture;

use fixture::*;
use rollout::api::Phase;
use rollout::machine::{next, Action, State};

#[test]
fn a_paused_rollout_is_still_judged_and_only_advancing_waits() {
    let at_gate = State {
        at_gate: true,
        ..st(Phase::Paused, 1)
    };
    let late = T0 + DEADLINE * 10;
    for paused in [st(Phase::Paused, 1), at_gate] {
        let name = if paused.at_gate {
            "at a gate"
        } else {
            "by a person"
        };
        // Healthy, inconclusive or not analysed: held where it is, whatever the deadline.
        for checks in [&[][..], &[PASS], &[INC]] {
            let (got, action) = next(paused, &gated(), checks, None, late);
            assert_eq!(got, paused, "{name} with {checks:?}");
            assert!(
                matches!(&action, Action::Hold(m) if m.starts_with("Paused")),
                "{name} with {checks:?}: {action:?}"
            );
        }
        // A breach applies onFailure: rollback.
        for (checks, why) in [
            (&[CRITICAL_FAIL][..], "critical"),
            (&[FAIL, FAIL], "threshold of 2"),
        ] {
            let (got, action) = next(paused, &gated(), checks, None, late);
            assert_eq!(got.phase, Phase::RolledBack, "{name} with {checks:?}");
            assert!(
                matches!(&action, Action::Rollback(m) if m.contains(why)),
                "{name} with {checks:?}: {action:?}"
            );
        }
        // One failure below the threshold is counted, and held.
        let (got, action) = next(paused, &gated(), &[FAIL], None, late);
        assert_eq!((got.phase, got.failed_checks), (Phase::Paused, 1), "{name}");
        assert!(matches!(action, Action::Hold(_)), "{name}: {action:?}");
        // Query errors count towards the streak while paused too.
        let erring = State {
            consecutive_errors: 2,
            ..paused
        };
        let (got, action) = next(erring, &gated(), &[ERR], None, late);
        assert_eq!(got.phase, Phase::RolledBack, "{name}: {action:?}");
        // onFailure: pause keeps it paused (at its gate) and says it is still failing.
        let (got, action) = next(paused, &pausing(), &[CRITICAL_FAIL], None, late);
        assert_eq!(
            (got.phase, got.at_gate),
            (Phase::Paused, paused.at_gate),
            "{name}"
        );
        assert!(
            matches!(&action, Action::Hold(m) if m.contains("still failing")),
            "{name}: {action:?}"
        );
    }
}
