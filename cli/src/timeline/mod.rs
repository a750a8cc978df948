//! `sluice timeline`: a rollout's story on one time axis. Three panels from Prometheus range queries
//! (canary share of requests, success rate and p99 latency of canary vs stable), vertical markers from
//! `status.history` (steps, the first failed analysis, pause, rollback, promotion), drawn to SVG
//! and/or PNG, plus a one-screen text summary on stdout.

mod draw;
mod model;
mod query;

use controller::local::files::StateFile;
use draw::{Drawing, Format};
use rollout::api::{CohortRolloutStatus, Phase};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(clap::Args)]
pub struct TimelineArgs {
    /// The CohortRollout (local mode: its name in the state file).
    rollout: String,
    #[arg(
        long,
        env = "SLUICE_PROMETHEUS",
        default_value = "http://127.0.0.1:9090"
    )]
    prometheus: String,
    /// Local mode: the controller's state file (status with its history).
    #[arg(long, value_name = "PATH", required_unless_present = "kube")]
    state_file: Option<PathBuf>,
    /// Read status from the CohortRollout in Kubernetes instead of a state file.
    #[arg(long, conflicts_with = "state_file")]
    kube: bool,
    #[arg(long, short, default_value = "default")]
    namespace: String,
    /// FILE.svg draws SVG, FILE.png draws PNG; any other name is a stem and both STEM.svg and
    /// STEM.png are written.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Start: RFC 3339 (2026-11-25T17:00:00Z) or unix seconds. Default: a tenth of the recorded
    /// span (5 s to 2 min) before the first recorded decision (30m before the end without history).
    #[arg(long, conflicts_with = "since")]
    from: Option<String>,
    /// End: RFC 3339 or unix seconds. Default: now, or that margin after a finished rollout's last
    /// decision.
    #[arg(long)]
    to: Option<String>,
    /// Start this long before the end ("15m", "2h").
    #[arg(long, value_name = "DURATION")]
    since: Option<String>,
    /// Resolution of the range queries ("5s"). Default: the range / 400, at least 1s.
    #[arg(long, value_name = "DURATION")]
    step: Option<String>,
    /// The rate() window of each point ("30s"). Default: twice the step, at least 15s (several
    /// scrapes at Prometheus' usual intervals).
    #[arg(long, value_name = "DURATION")]
    window: Option<String>,
}

pub async fn run(args: TimelineArgs) -> controller::Result<()> {
    let status = load_status(&args).await?;
    let entry = status.entry.clone().unwrap_or_else(|| args.rollout.clone());
    let (from, to) = time_range(&args, &status, now()).map_err(invalid)?;
    let step_secs = match &args.step {
        Some(s) => duration(s).map_err(invalid)?,
        None => ((to - from) / 400).max(1),
    };
    let window_secs = match &args.window {
        Some(w) => duration(w).map_err(invalid)?,
        None => (2 * step_secs).max(15),
    };
    let range = query::Range {
        start: from,
        end: to,
        step_secs,
        window_secs,
    };
    let panels = query::fetch(&args.prometheus, &entry, range)
        .await
        .map_err(|e| controller::Error::Rollout(rollout::Error::Metrics(e)))?;
    let markers = model::markers(&status.history, from, to);
    let title = format!("sluice timeline: {}", args.rollout);
    let drawing = Drawing {
        title: &title,
        from,
        to,
        panels: &panels,
        markers: &markers,
    };
    for (path, format) in outputs(&args.out) {
        draw::render(&drawing, &path, format)
            .map_err(|e| invalid(format!("cannot draw the timeline: {e}")))?;
        println!("wrote {}", path.display());
    }
    print!(
        "{}",
        model::summary(&args.rollout, status.phase, &status.history, from, to)
    );
    Ok(())
}

async fn load_status(args: &TimelineArgs) -> controller::Result<CohortRolloutStatus> {
    let missing = |where_: String| {
        invalid(format!(
            "no status for rollout {:?} in {where_}",
            args.rollout
        ))
    };
    match &args.state_file {
        Some(path) => {
            let mut doc = StateFile { path: path.clone() }.read()?;
            doc.rollouts
                .remove(&args.rollout)
                .ok_or_else(|| missing(path.display().to_string()))
        }
        None => {
            let list = controller::kube::commands::list_rollouts(Some(&args.namespace)).await?;
            list.into_iter()
                .find(|r| r.metadata.name.as_deref() == Some(args.rollout.as_str()))
                .and_then(|r| r.status)
                .ok_or_else(|| missing(format!("namespace {}", args.namespace)))
        }
    }
}

/// The files to write for `--out`.
fn outputs(out: &Path) -> Vec<(PathBuf, Format)> {
    let with = |ext: &str| {
        let mut name = out.as_os_str().to_owned();
        name.push(ext);
        PathBuf::from(name)
    };
    match out.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("svg") => vec![(out.to_path_buf(), Format::Svg)],
        Some(e) if e.eq_ignore_ascii_case("png") => vec![(out.to_path_buf(), Format::Png)],
        _ => vec![(with(".svg"), Format::Svg), (with(".png"), Format::Png)],
    }
}

fn time_range(
    args: &TimelineArgs,
    status: &CohortRolloutStatus,
    now: u64,
) -> Result<(u64, u64), String> {
    let finished = matches!(status.phase, Phase::RolledBack | Phase::Promoted);
    let last = status.history.last().map(|e| e.time);
    // A tenth of the recorded span on either side (5 s to 2 min): a 30 s demo and a day-long
    // rollout both fill the picture.
    let span = match (status.history.first(), last) {
        (Some(first), Some(last)) => last.saturating_sub(first.time),
        _ => 0,
    };
    let margin = (span / 10).clamp(5, 120);
    let to = match (&args.to, last) {
        (Some(t), _) => instant(t)?,
        (None, Some(last)) if finished => now.min(last + margin),
        (None, _) => now,
    };
    let from = match (&args.from, &args.since, status.history.first()) {
        (Some(f), _, _) => instant(f)?,
        (None, Some(since), _) => to.saturating_sub(duration(since)?),
        (None, None, Some(first)) => first.time.saturating_sub(margin),
        (None, None, None) => to.saturating_sub(1800),
    };
    if from >= to {
        return Err(format!(
            "the range is empty: from {from} is not before to {to}"
        ));
    }
    Ok((from, to))
}

/// RFC 3339 or unix seconds.
fn instant(text: &str) -> Result<u64, String> {
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(secs);
    }
    humantime::parse_rfc3339_weak(text)
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .ok_or_else(|| {
            format!("{text:?} is neither RFC 3339 (2026-11-25T17:00:00Z) nor unix seconds")
        })
}

fn duration(text: &str) -> Result<u64, String> {
    humantime::parse_duration(text)
        .map(|d: Duration| d.as_secs().max(1))
        .map_err(|e| format!("{text:?} is not a duration like 30s or 5m: {e}"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn invalid(problem: String) -> controller::Error {
    controller::Error::Rollout(rollout::Error::Parse {
        path: "sluice timeline".into(),
        problem,
    })
}
