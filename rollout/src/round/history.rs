//! Appends a round's decisions to `status.history`, bounded: what a timeline needs to place each step,
//! the first failed analysis and the rollback or promotion in time. Rounds that decide nothing (a
//! hold, a push retry, an alert delivery) add nothing, so a quiet rollout's status does not change.

use crate::api::{CheckStatus, CohortRolloutStatus, HistoryEvent, Phase, Verdict, HISTORY_LIMIT};
use crate::machine::{Action, GUARDRAIL_TRIPPED};

/// "name: message; ..." of this round's failed checks; empty when none failed.
pub(crate) fn failed_checks(checks: &[CheckStatus]) -> String {
    checks
        .iter()
        .filter(|c| c.verdict == Verdict::Fail)
        .map(|c| format!("{}: {}", c.name, c.message))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A rollback or pause on failed checks, naming them: the alert and status say which SLI broke, and
/// by how much. The guardrail's reason already says it.
pub(crate) fn naming_failures(action: Action, failed: &str) -> Action {
    let named = |why: String| {
        if failed.is_empty() || why == GUARDRAIL_TRIPPED {
            why
        } else {
            format!("{why} ({failed})")
        }
    };
    match action {
        Action::Rollback(why) => Action::Rollback(named(why)),
        Action::Pause(why) => Action::Pause(named(why)),
        other => other,
    }
}

/// Records this round: its failed checks (if any), then its decision. `status` already holds the
/// state after the decision; `before` is the phase the round started from.
pub(crate) fn record(
    status: &mut CohortRolloutStatus,
    before: Option<Phase>,
    action: Option<&Action>,
    failed: &str,
    message: &str,
    now: u64,
) {
    if !failed.is_empty() {
        push(status, "CheckFailed", failed, now);
    }
    let reason = match action {
        // A first round, or a restart after a rollback: step 0 of a new run.
        Some(Action::Advance) if matches!(before, None | Some(Phase::RolledBack)) => "Started",
        Some(Action::Advance) => "StepAdvanced",
        Some(Action::Pause(_)) => "Paused",
        Some(Action::Rollback(_)) => "RolledBack",
        Some(Action::Promote) => "Promoted",
        Some(Action::Hold(_))
            if before == Some(Phase::Paused) && status.phase == Phase::Progressing =>
        {
            "Resumed"
        }
        Some(Action::Hold(_)) | None => return,
    };
    push(status, reason, message, now);
}

fn push(status: &mut CohortRolloutStatus, reason: &str, message: &str, now: u64) {
    let event = HistoryEvent {
        time: now,
        step: status.current_step,
        percent: status.stage.as_ref().map_or(0.0, |s| s.percent),
        phase: status.phase,
        reason: reason.to_string(),
        message: message.into(),
    };
    // Room is made first: a full history then never grows past its capacity (a copy of a status
    // has room for exactly its events, and a batch holds a thousand of them).
    let excess = (status.history.len() + 1).saturating_sub(HISTORY_LIMIT);
    status.history.drain(..excess);
    status.history.push(event);
}

#[cfg(test)]
mod tests {
    use super::{failed_checks, record};
    use crate::api::{CheckStatus, CohortRolloutStatus, Phase, Step, Verdict, HISTORY_LIMIT};
    use crate::machine::Action;

    fn at(step: u32, percent: f64, phase: Phase) -> CohortRolloutStatus {
        CohortRolloutStatus {
            phase,
            current_step: step,
            stage: Some(Step {
                percent,
                ..Step::default()
            }),
            ..CohortRolloutStatus::default()
        }
    }

    fn reasons(s: &CohortRolloutStatus) -> Vec<(u64, u32, &str)> {
        s.history
            .iter()
            .map(|e| (e.time, e.step, e.reason.as_str()))
            .collect()
    }

    #[test]
    fn steps_a_failed_check_and_the_rollback_are_recorded_with_their_times() {
        let mut s = at(0, 5.0, Phase::Progressing);
        record(
            &mut s,
            None,
            Some(&Action::Advance),
            "",
            "step 0 in force",
            100,
        );
        s.current_step = 1;
        record(
            &mut s,
            Some(Phase::Progressing),
            Some(&Action::Advance),
            "",
            "step 1",
            160,
        );
        record(
            &mut s,
            Some(Phase::Progressing),
            Some(&Action::Hold("ok".into())),
            "",
            "hold",
            220,
        );
        let check = CheckStatus {
            name: "success-rate".into(),
            query: String::new(),
            value: Some(40.0),
            stable_value: Some(99.9),
            samples: Some(300),
            verdict: Verdict::Fail,
            message: "40 < 99".into(),
        };
        let failed = failed_checks(&[check]);
        s.phase = Phase::RolledBack;
        let rollback = Action::Rollback("success-rate".into());
        record(
            &mut s,
            Some(Phase::Progressing),
            Some(&rollback),
            &failed,
            "back",
            280,
        );
        assert_eq!(
            reasons(&s),
            [
                (100, 0, "Started"),
                (160, 1, "StepAdvanced"),
                (280, 1, "CheckFailed"),
                (280, 1, "RolledBack")
            ]
        );
        assert_eq!(&*s.history[2].message, "success-rate: 40 < 99");
        assert_eq!(s.history[3].phase, Phase::RolledBack);
        assert_eq!(s.history[1].percent, 5.0);
    }

    #[test]
    fn a_resume_and_a_restart_after_rollback_are_named() {
        let mut s = at(2, 50.0, Phase::Progressing);
        record(
            &mut s,
            Some(Phase::Paused),
            Some(&Action::Hold("resumed".into())),
            "",
            "",
            10,
        );
        record(
            &mut s,
            Some(Phase::RolledBack),
            Some(&Action::Advance),
            "",
            "",
            20,
        );
        assert_eq!(reasons(&s), [(10, 2, "Resumed"), (20, 2, "Started")]);
    }

    #[test]
    fn history_keeps_only_the_newest_events() {
        let mut s = at(0, 1.0, Phase::Progressing);
        for t in 0..(HISTORY_LIMIT as u64 + 7) {
            record(
                &mut s,
                Some(Phase::Progressing),
                Some(&Action::Advance),
                "",
                "",
                t,
            );
        }
        assert_eq!(s.history.len(), HISTORY_LIMIT);
        assert_eq!(s.history.first().map(|e| e.time), Some(7));
        assert_eq!(
            s.history.last().map(|e| e.time),
            Some(HISTORY_LIMIT as u64 + 6)
        );
    }
}
