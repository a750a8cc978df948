//! The analysis and step logic: a pure state machine (no clock, no I/O). Each round it takes the
//! rollout's state, the verdicts of this interval's checks and any command from a person, and returns
//! the next state and what to do about it.

use crate::api::{CohortRolloutStatus, OnFailure, Phase, Verdict};
use crate::command::Command;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckOutcome {
    pub verdict: Verdict,
    pub critical: bool,
    /// The proxies' guardrail check: its Fail means they already cut the canary off.
    pub guardrail: bool,
}

/// Why a rollout fails when the proxies' guardrail tripped: the reason in status and in the alert.
pub const GUARDRAIL_TRIPPED: &str =
    "the proxies cut the canary off: their guardrail tripped on the canary's 5xx rate";

/// What the rollout is doing, as stored in status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct State {
    pub phase: Phase,
    /// Index of the step in force.
    pub step: usize,
    pub failed_checks: u32,
    pub consecutive_errors: u32,
    /// Unix seconds of the last step change.
    pub last_progress: u64,
    /// Paused at a gate: resuming enters `step + 1`.
    pub at_gate: bool,
}

impl State {
    /// The state a status records, for a plan of `step_count` steps.
    pub fn recorded(p: &CohortRolloutStatus, step_count: usize) -> State {
        State {
            phase: p.phase,
            step: (p.current_step as usize).min(step_count.saturating_sub(1)),
            failed_checks: p.failed_checks,
            consecutive_errors: p.consecutive_errors,
            last_progress: p.last_progress_time,
            at_gate: p.at_gate,
        }
    }

    pub fn start(now: u64) -> State {
        State {
            phase: Phase::Progressing,
            step: 0,
            failed_checks: 0,
            consecutive_errors: 0,
            last_progress: now,
            at_gate: false,
        }
    }
}

/// The parts of the spec the machine needs.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub step_count: usize,
    /// `gates[i]`: pause before entering step i.
    pub gates: Vec<bool>,
    pub threshold: u32,
    pub max_consecutive_errors: u32,
    pub progress_deadline_secs: Option<u64>,
    pub on_failure: OnFailure,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing changes (still at this step, or waiting for a person).
    Hold(String),
    /// Moved to the step in the new state.
    Advance,
    Pause(String),
    Rollback(String),
    Promote,
}

/// One round. `checks` is empty when no analysis ran (a command-only round).
///
/// A paused rollout (by a person, at a gate, or after a failure with `onFailure: pause`) still serves
/// its stage, so it is still judged: a failure applies `onFailure` as when progressing. Only advancing
/// waits for a person.
pub fn next(
    state: State,
    policy: &Policy,
    checks: &[CheckOutcome],
    command: Option<Command>,
    now: u64,
) -> (State, Action) {
    if let Some(command) = command {
        return apply_command(state, policy, command, now);
    }
    let paused = match state.phase {
        Phase::Progressing => false,
        Phase::Paused => true,
        Phase::RolledBack | Phase::Promoted => {
            return (state, Action::Hold(format!("{:?}", state.phase)))
        }
    };
    let mut s = state;
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count() as u32;
    if failed > 0 && !checks.iter().any(|c| c.verdict == Verdict::Error) {
        // Every query answered: the error streak is broken.
        s.consecutive_errors = 0;
    }
    s.failed_checks += failed;
    // Always a rollback, whatever `onFailure` says: the proxies have proven the canary fails users, and a
    // pause would hand them back to it when the trip's hold ends.
    if checks
        .iter()
        .any(|c| c.verdict == Verdict::Fail && c.guardrail)
    {
        s.phase = Phase::RolledBack;
        return (s, Action::Rollback(GUARDRAIL_TRIPPED.into()));
    }
    if checks
        .iter()
        .any(|c| c.verdict == Verdict::Fail && c.critical)
    {
        return fail(s, policy, "a critical check failed".into());
    }
    if failed > 0 {
        if s.failed_checks >= policy.threshold {
            let why = format!(
                "{} failed checks reached the threshold of {}",
                s.failed_checks, policy.threshold
            );
            return fail(s, policy, why);
        }
        return (
            s,
            Action::Hold(format!(
                "{failed} check(s) failed ({} of {} allowed)",
                s.failed_checks, policy.threshold
            )),
        );
    }
    if checks.iter().any(|c| c.verdict == Verdict::Error) {
        s.consecutive_errors += 1;
        if s.consecutive_errors >= policy.max_consecutive_errors {
            let why = format!(
                "{} consecutive rounds with query errors",
                s.consecutive_errors
            );
            return fail(s, policy, why);
        }
        if paused {
            return (s, Action::Hold("Paused; a query failed".into()));
        }
        return deadline_or_hold(s, policy, now, "a query failed".into());
    }
    s.consecutive_errors = 0;
    if paused {
        // A person holds it on purpose: no deadline, no step.
        let why = if s.at_gate {
            "Paused at a gate: healthy, waiting for `sluice resume`"
        } else {
            "Paused: waiting for `sluice resume`"
        };
        return (s, Action::Hold(why.into()));
    }
    if checks.is_empty() || checks.iter().any(|c| c.verdict == Verdict::Inconclusive) {
        return deadline_or_hold(s, policy, now, "inconclusive: not enough data".into());
    }
    // Every check passed.
    if s.step + 1 >= policy.step_count {
        s.phase = Phase::Promoted;
        s.last_progress = now;
        return (s, Action::Promote);
    }
    if policy.gates.get(s.step + 1).copied().unwrap_or(false) {
        s.phase = Phase::Paused;
        s.at_gate = true;
        return (
            s,
            Action::Pause(format!(
                "gate before step {}: waiting for `sluice resume`",
                s.step + 1
            )),
        );
    }
    s.step += 1;
    s.last_progress = now;
    (s, Action::Advance)
}

fn deadline_or_hold(s: State, policy: &Policy, now: u64, why: String) -> (State, Action) {
    match policy.progress_deadline_secs {
        Some(deadline) if now.saturating_sub(s.last_progress) >= deadline => fail(
            s,
            policy,
            format!(
                "no progress for {}s ({why})",
                now.saturating_sub(s.last_progress)
            ),
        ),
        _ => (s, Action::Hold(why)),
    }
}

fn fail(mut s: State, policy: &Policy, why: String) -> (State, Action) {
    match policy.on_failure {
        OnFailure::Rollback => {
            s.phase = Phase::RolledBack;
            (s, Action::Rollback(why))
        }
        // Already paused: the person who will decide was told when it paused (or paused it).
        OnFailure::Pause if s.phase == Phase::Paused => {
            (s, Action::Hold(format!("Paused; still failing: {why}")))
        }
        OnFailure::Pause => {
            s.phase = Phase::Paused;
            s.at_gate = false;
            (s, Action::Pause(why))
        }
    }
}

fn apply_command(mut s: State, policy: &Policy, command: Command, now: u64) -> (State, Action) {
    match (command, s.phase) {
        (Command::Abort, Phase::RolledBack) | (Command::Promote, Phase::Promoted) => {
            (s, Action::Hold("already there".into()))
        }
        (Command::Abort, _) => {
            s.phase = Phase::RolledBack;
            (s, Action::Rollback("aborted by a person".into()))
        }
        (Command::Promote, _) => {
            s.phase = Phase::Promoted;
            s.last_progress = now;
            (s, Action::Promote)
        }
        (Command::Pause, Phase::Progressing) => {
            s.phase = Phase::Paused;
            s.at_gate = false;
            (s, Action::Pause("paused by a person".into()))
        }
        (Command::Resume, Phase::Paused) => {
            s.phase = Phase::Progressing;
            s.consecutive_errors = 0;
            s.last_progress = now;
            if std::mem::take(&mut s.at_gate) && s.step + 1 < policy.step_count {
                s.step += 1;
                return (s, Action::Advance);
            }
            (s, Action::Hold("resumed".into()))
        }
        // A rolled-back rollout starts over from the first step: the fix is deployed, try again.
        (Command::Resume, Phase::RolledBack) => {
            let restarted = State::start(now);
            (restarted, Action::Advance)
        }
        (Command::Pause | Command::Resume, _) => (
            s,
            Action::Hold(format!("{command:?} ignored in {:?}", s.phase)),
        ),
    }
}
