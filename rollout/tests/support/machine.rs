//! The state machine's table fixture: policies, states, check outcomes and the expected actions.
#![allow(dead_code)]

use rollout::api::{OnFailure, Phase, Verdict};
use rollout::command::Command;
use rollout::machine::{next, Action, CheckOutcome, Policy, State};

pub const T0: u64 = 10_000;
pub const DEADLINE: u64 = 600;

/// 4 steps, no gates, threshold 2, 3 consecutive errors, 600 s deadline, roll back on failure.
pub fn policy() -> Policy {
    Policy {
        step_count: 4,
        gates: vec![false; 4],
        threshold: 2,
        max_consecutive_errors: 3,
        progress_deadline_secs: Some(DEADLINE),
        on_failure: OnFailure::Rollback,
    }
}

pub fn pausing() -> Policy {
    Policy {
        on_failure: OnFailure::Pause,
        ..policy()
    }
}

/// A gate before step 2.
pub fn gated() -> Policy {
    Policy {
        gates: vec![false, false, true, false],
        ..policy()
    }
}

pub fn no_deadline() -> Policy {
    Policy {
        progress_deadline_secs: None,
        ..policy()
    }
}

pub fn st(phase: Phase, step: usize) -> State {
    State {
        phase,
        step,
        ..State::start(T0)
    }
}

pub fn progressing(step: usize) -> State {
    st(Phase::Progressing, step)
}

pub const fn outcome(verdict: Verdict, critical: bool) -> CheckOutcome {
    CheckOutcome {
        verdict,
        critical,
        guardrail: false,
    }
}
pub const PASS: CheckOutcome = outcome(Verdict::Pass, false);
pub const FAIL: CheckOutcome = outcome(Verdict::Fail, false);
pub const INC: CheckOutcome = outcome(Verdict::Inconclusive, false);
pub const ERR: CheckOutcome = outcome(Verdict::Error, false);
pub const CRITICAL_FAIL: CheckOutcome = outcome(Verdict::Fail, true);
pub const CRITICAL_PASS: CheckOutcome = outcome(Verdict::Pass, true);
/// The built-in `guardrail` check: the proxies cut the canary off, or did not.
pub const GUARDRAIL_TRIPPED: CheckOutcome = CheckOutcome {
    guardrail: true,
    ..CRITICAL_FAIL
};
pub const GUARDRAIL_OK: CheckOutcome = CheckOutcome {
    guardrail: true,
    ..CRITICAL_PASS
};

/// The expected action; messages are matched by a substring a person would read.
#[derive(Debug)]
pub enum Want {
    Hold(&'static str),
    Advance,
    Pause(&'static str),
    Rollback(&'static str),
    Promote,
}

pub fn matches(got: &Action, want: &Want) -> bool {
    match (got, want) {
        (Action::Hold(m), Want::Hold(s))
        | (Action::Pause(m), Want::Pause(s))
        | (Action::Rollback(m), Want::Rollback(s)) => m.contains(s),
        (Action::Advance, Want::Advance) | (Action::Promote, Want::Promote) => true,
        _ => false,
    }
}

pub struct Case {
    pub name: &'static str,
    pub policy: Policy,
    pub state: State,
    pub checks: Vec<CheckOutcome>,
    pub command: Option<Command>,
    pub now: u64,
    pub want_state: State,
    pub want: Want,
}

pub fn run_table(cases: Vec<Case>) {
    for c in cases {
        let (state, action) = next(c.state, &c.policy, &c.checks, c.command, c.now);
        assert_eq!(state, c.want_state, "{}: state", c.name);
        assert!(
            matches(&action, &c.want),
            "{}: action {action:?}, want {:?}",
            c.name,
            c.want
        );
    }
}
