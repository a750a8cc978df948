//! What the timeline shows, apart from drawing: the panels' series, the markers the step history
//! and the caller's marks put on the time axis, and the one-screen text summary.

use super::clock::{clock, clock_tenths, delay, span};
use super::marks::{self, Mark};
use rollout::api::{HistoryEvent, Phase};

/// One line of a panel: `canary`, `stable`, or `share` (the canary's share of the rollout).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// (unix seconds, value)
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub unit: String,
    pub series: Vec<Series>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkerKind {
    /// A run begins (first round, or a restart after a rollback).
    Start,
    /// A step change.
    Step,
    /// The first failed analysis of a run: when the controller saw the failure, which is after
    /// the failure began.
    CheckFailed,
    Pause,
    Resume,
    Rollback,
    Promotion,
    /// The caller's `--mark`.
    Mark,
}

/// A vertical line on every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    /// Unix seconds; a caller's mark may have a fraction.
    pub time: f64,
    pub kind: MarkerKind,
    pub label: String,
}

/// The markers of the events within `from..=to`. Only the first failed analysis of each run is
/// marked: later failures of the same run are its consequences, and would crowd the axis.
pub fn markers(history: &[HistoryEvent], from: u64, to: u64) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut failed = false;
    for e in history {
        let kind = match e.reason.as_str() {
            "Started" => MarkerKind::Start,
            "StepAdvanced" => MarkerKind::Step,
            "CheckFailed" if failed => continue,
            "CheckFailed" => MarkerKind::CheckFailed,
            "Paused" => MarkerKind::Pause,
            "Resumed" => MarkerKind::Resume,
            "RolledBack" => MarkerKind::Rollback,
            "Promoted" => MarkerKind::Promotion,
            _ => continue,
        };
        // A new run may fail again; a run ends with its rollback or promotion.
        failed = match kind {
            MarkerKind::Start | MarkerKind::Rollback | MarkerKind::Promotion => false,
            MarkerKind::CheckFailed => true,
            _ => failed,
        };
        if (from..=to).contains(&e.time) {
            out.push(Marker {
                time: e.time as f64,
                kind,
                label: label(kind, e),
            });
        }
    }
    out
}

fn label(kind: MarkerKind, e: &HistoryEvent) -> String {
    let stage = format!("step {} {}%", e.step, e.percent);
    match kind {
        MarkerKind::Start => format!("start: {stage}"),
        MarkerKind::Step => stage,
        MarkerKind::CheckFailed => "check failed".into(),
        MarkerKind::Pause => "paused".into(),
        MarkerKind::Resume => "resumed".into(),
        MarkerKind::Rollback => "rollback".into(),
        MarkerKind::Promotion => "promoted".into(),
        // Not from history: a caller's mark brings its own label.
        MarkerKind::Mark => e.reason.clone(),
    }
}

/// The history's markers and the caller's marks within `from..=to`, in time order (the drawing
/// staggers labels in this order, so that markers close in time stay readable).
pub fn all_markers(history: &[HistoryEvent], marks: &[Mark], from: u64, to: u64) -> Vec<Marker> {
    let mut out = markers(history, from, to);
    out.extend(
        marks
            .iter()
            .filter(|m| (from as f64..=to as f64).contains(&m.time))
            .map(|m| Marker {
                time: m.time,
                kind: MarkerKind::Mark,
                label: m.label.clone(),
            }),
    );
    out.sort_by(|a, b| a.time.total_cmp(&b.time));
    out
}

/// The text printed beside the drawing: each event with how long its stage lasted, the caller's
/// marks, then how long the rollback took after the first failed analysis and the first mark.
pub fn summary(
    name: &str,
    phase: Phase,
    history: &[HistoryEvent],
    user_marks: &[Mark],
    from: u64,
    to: u64,
) -> String {
    let mut out = format!(
        "{name}: {} .. {} UTC, now {phase:?}\n",
        clock(from),
        clock(to)
    );
    let shown: Vec<&HistoryEvent> = history
        .iter()
        .filter(|e| (from..=to).contains(&e.time))
        .collect();
    if shown.is_empty() {
        out.push_str("  no recorded decisions in this range (status.history is empty or older)\n");
    }
    for (i, e) in shown.iter().enumerate() {
        // A stage lasts until the next decision that moves users (a failed check does not).
        let until = shown[i + 1..]
            .iter()
            .find(|n| n.reason != "CheckFailed")
            .map_or(to, |n| n.time);
        let lasted = if e.reason == "CheckFailed" {
            String::new()
        } else {
            span(until.saturating_sub(e.time))
        };
        let mut message = e.message.to_string();
        if message.chars().count() > 60 {
            message = message.chars().take(57).collect::<String>() + "...";
        }
        out.push_str(&format!(
            "  {}  {:<13} step {:<2} {:>6}%  {:>8}  {message}\n",
            clock(e.time),
            e.reason,
            e.step,
            e.percent,
            lasted
        ));
    }
    out.push_str(&marks::summary_lines(user_marks, from, to));
    out.push_str(&rollback_line(&markers(history, from, to), user_marks));
    out
}

/// How long after the first failed analysis (and the first mark) the rollback came.
fn rollback_line(history_markers: &[Marker], user_marks: &[Mark]) -> String {
    let failed = history_markers
        .iter()
        .find(|m| m.kind == MarkerKind::CheckFailed);
    let mark = marks::first(user_marks);
    // The rollback answering the failure (or, without one, following the mark).
    let after = failed.map(|f| f.time).or(mark.map(|m| m.time));
    let rollback = after.and_then(|t| {
        history_markers
            .iter()
            .find(|m| m.kind == MarkerKind::Rollback && m.time >= t)
    });
    let Some(r) = rollback else {
        return match (failed, mark) {
            (Some(f), _) => format!(
                "  first failed analysis at {}; no rollback recorded after it\n",
                clock(f.time as u64)
            ),
            (None, Some(m)) => format!(
                "  no rollback recorded after the mark {:?} at {}\n",
                m.label,
                clock_tenths(m.time)
            ),
            (None, None) => String::new(),
        };
    };
    let mut line = format!("  rollback at {}", clock(r.time as u64));
    if let Some(f) = failed {
        line.push_str(&format!(
            ", {} after the first failed analysis at {}",
            span((r.time - f.time) as u64),
            clock(f.time as u64)
        ));
    }
    // The mark's own time is on its line above.
    if let Some(m) = mark.filter(|m| m.time <= r.time) {
        line.push_str(&format!(
            ", {} after the mark {:?}",
            delay(r.time - m.time),
            m.label
        ));
    }
    line + "\n"
}

#[cfg(test)]
mod tests {
    use super::{all_markers, markers, summary, Mark, MarkerKind};
    use rollout::api::{HistoryEvent, Phase};

    fn event(time: u64, step: u32, percent: f64, reason: &str) -> HistoryEvent {
        HistoryEvent {
            time,
            step,
            percent,
            phase: Phase::Progressing,
            reason: reason.into(),
            message: format!("{reason} message").into(),
        }
    }

    fn run() -> Vec<HistoryEvent> {
        vec![
            event(1000, 0, 1.0, "Started"),
            event(1060, 1, 10.0, "StepAdvanced"),
            event(1120, 2, 50.0, "StepAdvanced"),
            event(1180, 2, 50.0, "CheckFailed"),
            event(1240, 2, 50.0, "CheckFailed"),
            event(1240, 2, 50.0, "RolledBack"),
            event(2000, 0, 1.0, "Started"),
            event(2060, 0, 1.0, "CheckFailed"),
        ]
    }

    fn mark(time: f64, label: &str) -> Mark {
        Mark {
            time,
            label: label.into(),
        }
    }

    #[test]
    fn steps_the_first_failed_analysis_of_each_run_and_the_rollback_become_markers() {
        let kinds: Vec<(f64, MarkerKind, String)> = markers(&run(), 0, u64::MAX)
            .into_iter()
            .map(|m| (m.time, m.kind, m.label))
            .collect();
        assert_eq!(
            kinds,
            [
                (1000.0, MarkerKind::Start, "start: step 0 1%".to_string()),
                (1060.0, MarkerKind::Step, "step 1 10%".to_string()),
                (1120.0, MarkerKind::Step, "step 2 50%".to_string()),
                (1180.0, MarkerKind::CheckFailed, "check failed".to_string()),
                (1240.0, MarkerKind::Rollback, "rollback".to_string()),
                (2000.0, MarkerKind::Start, "start: step 0 1%".to_string()),
                (2060.0, MarkerKind::CheckFailed, "check failed".to_string()),
            ]
        );
    }

    #[test]
    fn markers_outside_the_range_are_left_out_but_still_decide_the_first_failed_check() {
        let times: Vec<(f64, MarkerKind)> = markers(&run(), 1200, 1300)
            .into_iter()
            .map(|m| (m.time, m.kind))
            .collect();
        // The failure at 1240 is not marked: the run already failed a check at 1180.
        assert_eq!(times, [(1240.0, MarkerKind::Rollback)]);
    }

    #[test]
    fn marks_join_the_markers_in_time_order_and_only_within_the_range() {
        let marks = [mark(1170.5, "v3 starts failing"), mark(5000.0, "later")];
        let shown: Vec<(f64, MarkerKind, String)> = all_markers(&run()[..6], &marks, 1100, 1300)
            .into_iter()
            .map(|m| (m.time, m.kind, m.label))
            .collect();
        assert_eq!(
            shown,
            [
                (1120.0, MarkerKind::Step, "step 2 50%".to_string()),
                (1170.5, MarkerKind::Mark, "v3 starts failing".to_string()),
                (1180.0, MarkerKind::CheckFailed, "check failed".to_string()),
                (1240.0, MarkerKind::Rollback, "rollback".to_string()),
            ]
        );
    }

    #[test]
    fn the_summary_gives_each_stage_its_time_and_the_rollback_its_delay() {
        let text = summary("checkout", Phase::RolledBack, &run()[..6], &[], 1000, 1300);
        assert!(text.contains("now RolledBack"), "{text}");
        assert!(
            text.contains("StepAdvanced  step 1      10%     1m00s"),
            "{text}"
        );
        assert!(
            text.contains("StepAdvanced  step 2      50%     2m00s"),
            "{text}"
        );
        assert!(
            text.contains(
                "rollback at 00:20:40, 1m00s after the first failed analysis at 00:19:40\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn with_a_mark_the_summary_lists_it_and_times_the_rollback_from_it() {
        let marks = [mark(1215.3, "v3 starts failing")];
        let text = summary(
            "checkout",
            Phase::RolledBack,
            &run()[..6],
            &marks,
            1000,
            1300,
        );
        assert!(
            text.contains("  mark 00:20:15.3  v3 starts failing\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "rollback at 00:20:40, 1m00s after the first failed analysis at 00:19:40, \
                 24.7s after the mark \"v3 starts failing\"\n"
            ),
            "{text}"
        );
        // No failed check recorded (a manual abort): the delay still counts from the mark.
        let aborted = [
            event(1000, 0, 1.0, "Started"),
            event(1240, 0, 1.0, "RolledBack"),
        ];
        let text = summary("checkout", Phase::RolledBack, &aborted, &marks, 1000, 1300);
        assert!(
            text.contains("rollback at 00:20:40, 24.7s after the mark"),
            "{text}"
        );
        let healthy = [event(1000, 0, 1.0, "Started")];
        let text = summary("checkout", Phase::Progressing, &healthy, &marks, 1000, 1300);
        assert!(
            text.contains("no rollback recorded after the mark \"v3 starts failing\""),
            "{text}"
        );
    }
}
