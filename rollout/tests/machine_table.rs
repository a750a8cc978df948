#![cfg(test)]
//! Table tests of the rollout state machine: one round = (state, checks, command, now) -> (state, action).

#[path = "support/machine.rs"]
mod fixture;

use fixture::*;
use rollout::api::Phase;
use rollout::command::Command;
use rollout::machine::{next, Action, CheckOutcome, Policy, State};

#[test]
#[rustfmt::skip]
fn analysis_rounds() {
    let now = T0 + 60;
    let p = progressing;
    run_table(vec![
        Case { name: "all pass advances and records progress", policy: policy(), state: p(0), checks: vec![PASS, PASS], command: None, now,
            want_state: State { step: 1, last_progress: now, ..p(0) }, want: Want::Advance },
        Case { name: "a passing critical check advances too", policy: policy(), state: p(1), checks: vec![CRITICAL_PASS], command: None, now,
            want_state: State { step: 2, last_progress: now, ..p(1) }, want: Want::Advance },
        Case { name: "all pass at the last step promotes", policy: policy(), state: p(3), checks: vec![PASS], command: None, now,
            want_state: State { phase: Phase::Promoted, last_progress: now, ..p(3) }, want: Want::Promote },
        Case { name: "one inconclusive holds", policy: policy(), state: p(1), checks: vec![PASS, INC], command: None, now,
            want_state: p(1), want: Want::Hold("inconclusive") },
        Case { name: "one error holds and counts", policy: policy(), state: p(1), checks: vec![PASS, ERR], command: None, now,
            want_state: State { consecutive_errors: 1, ..p(1) }, want: Want::Hold("query failed") },
        Case { name: "error beats inconclusive", policy: policy(), state: p(1), checks: vec![INC, ERR], command: None, now,
            want_state: State { consecutive_errors: 1, ..p(1) }, want: Want::Hold("query failed") },
        Case { name: "no checks holds", policy: policy(), state: p(2), checks: vec![], command: None, now,
            want_state: p(2), want: Want::Hold("inconclusive") },
        Case { name: "a fail below threshold holds and counts", policy: policy(), state: p(1), checks: vec![PASS, FAIL], command: None, now,
            want_state: State { failed_checks: 1, ..p(1) }, want: Want::Hold("1 of 2 allowed") },
        Case { name: "a fail reaching threshold rolls back", policy: policy(), state: State { failed_checks: 1, ..p(2) }, checks: vec![FAIL, PASS], command: None, now,
            want_state: State { phase: Phase::RolledBack, failed_checks: 2, ..p(2) }, want: Want::Rollback("threshold of 2") },
        Case { name: "two fails in one round reach threshold", policy: policy(), state: p(0), checks: vec![FAIL, FAIL], command: None, now,
            want_state: State { phase: Phase::RolledBack, failed_checks: 2, ..p(0) }, want: Want::Rollback("2 failed checks") },
        Case { name: "a fail beats an error in the same round", policy: policy(), state: p(1), checks: vec![FAIL, ERR], command: None, now,
            want_state: State { failed_checks: 1, ..p(1) }, want: Want::Hold("check(s) failed") },
        Case { name: "critical fail rolls back below threshold and is counted", policy: Policy { threshold: 10, ..policy() }, state: p(1), checks: vec![PASS, CRITICAL_FAIL], command: None, now,
            want_state: State { phase: Phase::RolledBack, failed_checks: 1, ..p(1) }, want: Want::Rollback("critical") },
        Case { name: "a guardrail trip rolls back below threshold, naming the proxies' cut-off", policy: Policy { threshold: 10, ..policy() }, state: p(1), checks: vec![PASS, GUARDRAIL_TRIPPED], command: None, now,
            want_state: State { phase: Phase::RolledBack, failed_checks: 1, ..p(1) }, want: Want::Rollback("the proxies cut the canary off") },
        Case { name: "a guardrail trip beats inconclusive and failing checks", policy: policy(), state: p(1), checks: vec![INC, FAIL, CRITICAL_FAIL, GUARDRAIL_TRIPPED], command: None, now,
            want_state: State { phase: Phase::RolledBack, failed_checks: 3, ..p(1) }, want: Want::Rollback("the proxies cut the canary off") },
        Case { name: "a guardrail trip is no error: the error streak breaks", policy: policy(), state: State { consecutive_errors: 2, ..p(1) }, checks: vec![GUARDRAIL_TRIPPED], command: None, now,
            want_state: State { phase: Phase::RolledBack, failed_checks: 1, ..p(1) }, want: Want::Rollback("the proxies cut the canary off") },
        Case { name: "an untripped guardrail lets the step advance", policy: policy(), state: p(1), checks: vec![PASS, GUARDRAIL_OK], command: None, now,
            want_state: State { step: 2, last_progress: now, ..p(1) }, want: Want::Advance },
        Case { name: "onFailure pause: a guardrail trip still rolls back (a pause would hand users back when the trip ends)", policy: pausing(), state: p(1), checks: vec![GUARDRAIL_TRIPPED], command: None, now,
            want_state: State { phase: Phase::RolledBack, failed_checks: 1, ..p(1) }, want: Want::Rollback("the proxies cut the canary off") },
        Case { name: "a trip while paused at a gate rolls back", policy: gated(), state: State { at_gate: true, ..st(Phase::Paused, 1) }, checks: vec![PASS, GUARDRAIL_TRIPPED], command: None, now,
            want_state: State { phase: Phase::RolledBack, at_gate: true, failed_checks: 1, ..st(Phase::Paused, 1) }, want: Want::Rollback("the proxies cut the canary off") },
        Case { name: "onFailure pause: threshold pauses", policy: pausing(), state: State { failed_checks: 1, ..p(2) }, checks: vec![FAIL], command: None, now,
            want_state: State { phase: Phase::Paused, failed_checks: 2, ..p(2) }, want: Want::Pause("threshold") },
        Case { name: "onFailure pause: critical pauses", policy: pausing(), state: p(1), checks: vec![CRITICAL_FAIL], command: None, now,
            want_state: State { phase: Phase::Paused, failed_checks: 1, ..p(1) }, want: Want::Pause("critical") },
        Case { name: "errors reaching max roll back", policy: policy(), state: State { consecutive_errors: 2, ..p(1) }, checks: vec![ERR], command: None, now,
            want_state: State { phase: Phase::RolledBack, consecutive_errors: 3, ..p(1) }, want: Want::Rollback("3 consecutive") },
        Case { name: "onFailure pause: errors reaching max pause", policy: pausing(), state: State { consecutive_errors: 2, ..p(1) }, checks: vec![ERR], command: None, now,
            want_state: State { phase: Phase::Paused, consecutive_errors: 3, ..p(1) }, want: Want::Pause("query errors") },
        Case { name: "a pass resets the error count", policy: policy(), state: State { consecutive_errors: 2, ..p(1) }, checks: vec![PASS], command: None, now,
            want_state: State { step: 2, last_progress: now, ..p(1) }, want: Want::Advance },
        Case { name: "an inconclusive round resets the error count", policy: policy(), state: State { consecutive_errors: 2, ..p(1) }, checks: vec![INC], command: None, now,
            want_state: p(1), want: Want::Hold("inconclusive") },
        Case { name: "gate before step 2 pauses after step 1 passes", policy: gated(), state: p(1), checks: vec![PASS], command: None, now,
            want_state: State { phase: Phase::Paused, at_gate: true, ..p(1) }, want: Want::Pause("gate before step 2") },
        Case { name: "no gate before step 1 advances", policy: gated(), state: p(0), checks: vec![PASS], command: None, now,
            want_state: State { step: 1, last_progress: now, ..p(0) }, want: Want::Advance },
        Case { name: "a gate does not open on failure", policy: gated(), state: p(1), checks: vec![FAIL], command: None, now,
            want_state: State { failed_checks: 1, ..p(1) }, want: Want::Hold("failed") },
    ]);
}

#[test]
#[rustfmt::skip]
fn progress_deadline() {
    let inc = || vec![INC];
    let err = || vec![ERR];
    let p = progressing;
    let rolled_back = State { phase: Phase::RolledBack, ..p(1) };
    run_table(vec![
        Case { name: "inconclusive before the deadline holds", policy: policy(), state: p(1), checks: inc(), command: None, now: T0 + DEADLINE - 1,
            want_state: p(1), want: Want::Hold("inconclusive") },
        Case { name: "inconclusive at the deadline fails", policy: policy(), state: p(1), checks: inc(), command: None, now: T0 + DEADLINE,
            want_state: rolled_back, want: Want::Rollback("no progress for 600s") },
        Case { name: "inconclusive beyond the deadline fails", policy: policy(), state: p(1), checks: inc(), command: None, now: T0 + DEADLINE + 30,
            want_state: rolled_back, want: Want::Rollback("no progress for 630s (inconclusive") },
        Case { name: "no checks beyond the deadline fails", policy: policy(), state: p(1), checks: vec![], command: None, now: T0 + DEADLINE + 1,
            want_state: rolled_back, want: Want::Rollback("no progress") },
        Case { name: "error before the deadline holds", policy: policy(), state: p(1), checks: err(), command: None, now: T0 + DEADLINE - 1,
            want_state: State { consecutive_errors: 1, ..p(1) }, want: Want::Hold("query failed") },
        Case { name: "error beyond the deadline fails", policy: policy(), state: p(1), checks: err(), command: None, now: T0 + DEADLINE + 1,
            want_state: State { consecutive_errors: 1, ..rolled_back }, want: Want::Rollback("a query failed") },
        Case { name: "onFailure pause: deadline pauses", policy: pausing(), state: p(1), checks: inc(), command: None, now: T0 + DEADLINE + 1,
            want_state: State { phase: Phase::Paused, ..p(1) }, want: Want::Pause("no progress") },
        Case { name: "a pass beyond the deadline still advances", policy: policy(), state: p(1), checks: vec![PASS], command: None, now: T0 + 5 * DEADLINE,
            want_state: State { step: 2, last_progress: T0 + 5 * DEADLINE, ..p(1) }, want: Want::Advance },
        Case { name: "no deadline: holds forever", policy: no_deadline(), state: p(1), checks: inc(), command: None, now: T0 + 1_000_000,
            want_state: p(1), want: Want::Hold("inconclusive") },
        Case { name: "a clock behind last progress holds", policy: policy(), state: p(1), checks: inc(), command: None, now: T0 - 5,
            want_state: p(1), want: Want::Hold("inconclusive") },
    ]);
}

#[test]
#[rustfmt::skip]
fn commands() {
    let now = T0 + 120;
    let p = progressing;
    let paused = |step| st(Phase::Paused, step);
    let at_gate = State { at_gate: true, ..paused(1) };
    let promoted = st(Phase::Promoted, 3);
    let rolled_back = State { failed_checks: 2, consecutive_errors: 1, ..st(Phase::RolledBack, 2) };
    run_table(vec![
        Case { name: "pause while progressing", policy: policy(), state: p(1), checks: vec![], command: Some(Command::Pause), now,
            want_state: paused(1), want: Want::Pause("paused by a person") },
        Case { name: "a command wins over this round's checks", policy: policy(), state: p(1), checks: vec![PASS], command: Some(Command::Pause), now,
            want_state: paused(1), want: Want::Pause("by a person") },
        Case { name: "resume at the gate enters step 2", policy: gated(), state: at_gate, checks: vec![], command: Some(Command::Resume), now,
            want_state: State { phase: Phase::Progressing, step: 2, at_gate: false, last_progress: now, ..at_gate }, want: Want::Advance },
        Case { name: "resume after a person's pause keeps the step", policy: policy(), state: State { consecutive_errors: 2, failed_checks: 1, ..paused(1) }, checks: vec![], command: Some(Command::Resume), now,
            want_state: State { last_progress: now, failed_checks: 1, ..p(1) }, want: Want::Hold("resumed") },
        Case { name: "pause at the gate is ignored and keeps the gate", policy: gated(), state: at_gate, checks: vec![], command: Some(Command::Pause), now,
            want_state: at_gate, want: Want::Hold("Pause ignored in Paused") },
        Case { name: "abort while progressing", policy: policy(), state: p(2), checks: vec![], command: Some(Command::Abort), now,
            want_state: st(Phase::RolledBack, 2), want: Want::Rollback("aborted") },
        Case { name: "abort while paused", policy: policy(), state: paused(1), checks: vec![], command: Some(Command::Abort), now,
            want_state: st(Phase::RolledBack, 1), want: Want::Rollback("aborted") },
        Case { name: "abort after promotion", policy: policy(), state: promoted, checks: vec![], command: Some(Command::Abort), now,
            want_state: st(Phase::RolledBack, 3), want: Want::Rollback("aborted") },
        Case { name: "abort when rolled back", policy: policy(), state: rolled_back, checks: vec![], command: Some(Command::Abort), now,
            want_state: rolled_back, want: Want::Hold("already there") },
        Case { name: "promote while progressing", policy: policy(), state: p(1), checks: vec![FAIL], command: Some(Command::Promote), now,
            want_state: State { phase: Phase::Promoted, last_progress: now, ..p(1) }, want: Want::Promote },
        Case { name: "promote while paused", policy: policy(), state: paused(2), checks: vec![], command: Some(Command::Promote), now,
            want_state: State { phase: Phase::Promoted, last_progress: now, ..paused(2) }, want: Want::Promote },
        Case { name: "promote when promoted", policy: policy(), state: promoted, checks: vec![], command: Some(Command::Promote), now,
            want_state: promoted, want: Want::Hold("already there") },
        Case { name: "resume when rolled back restarts at step 0", policy: policy(), state: rolled_back, checks: vec![], command: Some(Command::Resume), now,
            want_state: State::start(now), want: Want::Advance },
        Case { name: "pause ignored when promoted", policy: policy(), state: promoted, checks: vec![], command: Some(Command::Pause), now,
            want_state: promoted, want: Want::Hold("Pause ignored in Promoted") },
        Case { name: "resume ignored when promoted", policy: policy(), state: promoted, checks: vec![], command: Some(Command::Resume), now,
            want_state: promoted, want: Want::Hold("Resume ignored in Promoted") },
        Case { name: "resume ignored when progressing", policy: policy(), state: p(1), checks: vec![], command: Some(Command::Resume), now,
            want_state: p(1), want: Want::Hold("Resume ignored in Progressing") },
        Case { name: "pause ignored when rolled back", policy: policy(), state: rolled_back, checks: vec![], command: Some(Command::Pause), now,
            want_state: rolled_back, want: Want::Hold("Pause ignored in RolledBack") },
    ]);
}

#[test]
fn rounds_without_command_change_nothing_once_rolled_back_or_promoted() {
    let rolled_back = State {
        failed_checks: 2,
        ..st(Phase::RolledBack, 2)
    };
    let states = [
        (rolled_back, "RolledBack"),
        (st(Phase::Promoted, 3), "Promoted"),
    ];
    let rounds: [&[CheckOutcome]; 5] = [&[], &[PASS], &[FAIL, FAIL], &[CRITICAL_FAIL], &[ERR]];
    for (state, phase) in states {
        for checks in rounds {
            let (got, action) = next(state, &gated(), checks, None, T0 + DEADLINE * 10);
            assert_eq!(got, state, "{phase} with {checks:?}");
            assert_eq!(
                action,
                Action::Hold(phase.into()),
                "{phase} with {checks:?}"
            );
        }
    }
}

type Round = (&'static [CheckOutcome], Option<Command>, Want);

/// Runs the rounds in order, the i-th at `T0 + 60 * (i + 1)`, checking each action; returns the last state.
fn run(name: &str, policy: &Policy, mut state: State, rounds: Vec<Round>) -> State {
    for (i, (checks, command, want)) in rounds.into_iter().enumerate() {
        let (s, action) = next(state, policy, checks, command, T0 + 60 * (i as u64 + 1));
        assert!(
            matches(&action, &want),
            "{name}, round {i}: {action:?}, want {want:?}"
        );
        state = s;
    }
    state
}

/// (phase, step, failed_checks, consecutive_errors, at_gate)
type Summary = (Phase, usize, u32, u32, bool);

fn summary(s: State) -> Summary {
    (
        s.phase,
        s.step,
        s.failed_checks,
        s.consecutive_errors,
        s.at_gate,
    )
}

#[test]
#[rustfmt::skip]
fn scenarios() {
    use Command::{Abort, Resume};
    let start = State::start(T0);
    let cases: Vec<(&str, Policy, State, Vec<Round>, Summary)> = vec![
        ("failed checks accumulate across rounds and steps", Policy { threshold: 3, ..no_deadline() }, start, vec![
            (&[FAIL], None, Want::Hold("1 of 3 allowed")),
            (&[PASS], None, Want::Advance),
            (&[FAIL, PASS], None, Want::Hold("2 of 3 allowed")),
            (&[FAIL], None, Want::Rollback("3 failed checks reached the threshold of 3")),
        ], (Phase::RolledBack, 1, 3, 0, false)),
        ("uninterrupted error rounds fail", no_deadline(), start, vec![
            (&[ERR], None, Want::Hold("query failed")),
            (&[ERR, PASS], None, Want::Hold("query failed")),
            (&[ERR], None, Want::Rollback("3 consecutive rounds with query errors")),
        ], (Phase::RolledBack, 0, 0, 3, false)),
        ("an inconclusive round breaks the error streak", no_deadline(), start, vec![
            (&[ERR], None, Want::Hold("query failed")),
            (&[ERR], None, Want::Hold("query failed")),
            (&[INC], None, Want::Hold("inconclusive")),
            (&[ERR], None, Want::Hold("query failed")),
            (&[ERR], None, Want::Hold("query failed")),
        ], (Phase::Progressing, 0, 0, 2, false)),
        ("a passing round breaks the error streak", no_deadline(), start, vec![
            (&[ERR], None, Want::Hold("query failed")),
            (&[ERR], None, Want::Hold("query failed")),
            (&[PASS], None, Want::Advance),
            (&[ERR], None, Want::Hold("query failed")),
        ], (Phase::Progressing, 1, 0, 1, false)),
        ("through a gate to promotion", gated(), start, vec![
            (&[PASS], None, Want::Advance),
            (&[PASS], None, Want::Pause("gate before step 2")),
            (&[PASS], None, Want::Hold("Paused")),
            (&[], Some(Resume), Want::Advance),
            (&[PASS], None, Want::Advance),
            (&[PASS], None, Want::Promote),
        ], (Phase::Promoted, 3, 0, 0, false)),
        ("abort twice, then resume starts over", policy(), State { failed_checks: 1, consecutive_errors: 2, ..progressing(2) }, vec![
            (&[], Some(Abort), Want::Rollback("aborted by a person")),
            (&[], Some(Abort), Want::Hold("already there")),
            (&[PASS], None, Want::Hold("RolledBack")),
            (&[], Some(Resume), Want::Advance),
            (&[PASS], None, Want::Advance),
        ], (Phase::Progressing, 1, 0, 0, false)),
        ("onFailure pause: resume after a failure keeps counting", Policy { threshold: 1, ..pausing() }, progressing(1), vec![
            (&[FAIL], None, Want::Pause("threshold of 1")),
            (&[], Some(Resume), Want::Hold("resumed")),
            (&[PASS], None, Want::Advance),
        ], (Phase::Progressing, 2, 1, 0, false)),
    ];
    for (name, policy, start, rounds, want) in cases {
        assert_eq!(summary(run(name, &policy, start, rounds)), want, "{name}");
    }
}

#[test]
fn a_failing_round_breaks_the_error_streak() {
    let p = Policy {
        threshold: 10,
        max_consecutive_errors: 2,
        ..no_deadline()
    };
    let rounds = vec![
        (&[ERR][..], None, Want::Hold("query failed")),
        (&[FAIL][..], None, Want::Hold("1 of 10 allowed")),
        (&[ERR][..], None, Want::Hold("query failed")),
    ];
    let end = run("error, fail, error", &p, State::start(T0), rounds);
    assert_eq!(
        end.phase,
        Phase::Progressing,
        "not 2 consecutive error rounds"
    );
}
