//! What the timeline shows, apart from drawing: the panels' series, the markers the step history
//! puts on the time axis, and the one-screen text summary.

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
    /// The first failed analysis of a run.
    Breach,
    Pause,
    Resume,
    Rollback,
    Promotion,
}

/// A vertical line on every panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub time: u64,
    pub kind: MarkerKind,
    pub label: String,
}

/// The markers of the events within `from..=to`. Only the first failed analysis of each run is a
/// breach: later failures of the same run are its consequences, and would crowd the axis.
pub fn markers(history: &[HistoryEvent], from: u64, to: u64) -> Vec<Marker> {
    let mut out = Vec::new();
    let mut breached = false;
    for e in history {
        let kind = match e.reason.as_str() {
            "Started" => MarkerKind::Start,
            "StepAdvanced" => MarkerKind::Step,
            "CheckFailed" if breached => continue,
            "CheckFailed" => MarkerKind::Breach,
            "Paused" => MarkerKind::Pause,
            "Resumed" => MarkerKind::Resume,
            "RolledBack" => MarkerKind::Rollback,
            "Promoted" => MarkerKind::Promotion,
            _ => continue,
        };
        // A new run may breach again; a run ends with its rollback or promotion.
        breached = match kind {
            MarkerKind::Start | MarkerKind::Rollback | MarkerKind::Promotion => false,
            MarkerKind::Breach => true,
            _ => breached,
        };
        if (from..=to).contains(&e.time) {
            out.push(Marker {
                time: e.time,
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
        MarkerKind::Breach => "breach".into(),
        MarkerKind::Pause => "paused".into(),
        MarkerKind::Resume => "resumed".into(),
        MarkerKind::Rollback => "rollback".into(),
        MarkerKind::Promotion => "promoted".into(),
    }
}

/// `HH:MM:SS` UTC of unix seconds.
pub fn clock(secs: u64) -> String {
    let s = secs % 86_400;
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `1h02m03s`, `4m05s`, `6s`.
pub fn span(secs: u64) -> String {
    match (secs / 3600, secs / 60 % 60, secs % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, s) => format!("{m}m{s:02}s"),
        (h, m, s) => format!("{h}h{m:02}m{s:02}s"),
    }
}

/// The text printed beside the drawing: each event with how long its stage lasted, then how long
/// the rollback took after the breach.
pub fn summary(name: &str, phase: Phase, history: &[HistoryEvent], from: u64, to: u64) -> String {
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
        let mut message = e.message.clone();
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
    let marks = markers(history, from, to);
    let breach = marks.iter().find(|m| m.kind == MarkerKind::Breach);
    let rollback = breach.and_then(|b| {
        marks
            .iter()
            .find(|m| m.kind == MarkerKind::Rollback && m.time >= b.time)
    });
    match (breach, rollback) {
        (Some(b), Some(r)) => out.push_str(&format!(
            "  rollback at {}, {} after the first failed analysis at {}\n",
            clock(r.time),
            span(r.time - b.time),
            clock(b.time)
        )),
        (Some(b), None) => out.push_str(&format!(
            "  first failed analysis at {}; no rollback recorded after it\n",
            clock(b.time)
        )),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{markers, summary, MarkerKind};
    use rollout::api::{HistoryEvent, Phase};

    fn event(time: u64, step: u32, percent: f64, reason: &str) -> HistoryEvent {
        HistoryEvent {
            time,
            step,
            percent,
            phase: Phase::Progressing,
            reason: reason.into(),
            message: format!("{reason} message"),
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

    #[test]
    fn steps_the_first_failed_analysis_of_each_run_and_the_rollback_become_markers() {
        let kinds: Vec<(u64, MarkerKind, String)> = markers(&run(), 0, u64::MAX)
            .into_iter()
            .map(|m| (m.time, m.kind, m.label))
            .collect();
        assert_eq!(
            kinds,
            [
                (1000, MarkerKind::Start, "start: step 0 1%".to_string()),
                (1060, MarkerKind::Step, "step 1 10%".to_string()),
                (1120, MarkerKind::Step, "step 2 50%".to_string()),
                (1180, MarkerKind::Breach, "breach".to_string()),
                (1240, MarkerKind::Rollback, "rollback".to_string()),
                (2000, MarkerKind::Start, "start: step 0 1%".to_string()),
                (2060, MarkerKind::Breach, "breach".to_string()),
            ]
        );
    }

    #[test]
    fn markers_outside_the_range_are_left_out_but_still_decide_the_first_breach() {
        let times: Vec<(u64, MarkerKind)> = markers(&run(), 1200, 1300)
            .into_iter()
            .map(|m| (m.time, m.kind))
            .collect();
        // The failure at 1240 is not a breach: the run already breached at 1180.
        assert_eq!(times, [(1240, MarkerKind::Rollback)]);
    }

    #[test]
    fn the_summary_gives_each_stage_its_time_and_the_rollback_its_delay() {
        let text = summary("checkout", Phase::RolledBack, &run()[..6], 1000, 1300);
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
                "rollback at 00:20:40, 1m00s after the first failed analysis at 00:19:40"
            ),
            "{text}"
        );
    }
}
