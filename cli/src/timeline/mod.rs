//! `sluice timeline`: a rollout's story on one time axis. Three panels from Prometheus range queries
//! (canary share of requests, success rate and p99 latency of canary vs stable), vertical markers from
//! `status.history` (steps, the first failed analysis, pause, rollback, promotion) and the caller's
//! `--mark`s, drawn to SVG and/or PNG, plus a one-screen text summary on stdout (with `--cities`,
//! the share of users exposed at each step).

mod clock;
mod draw;
mod exposure;
mod marks;
mod model;
mod query;

use crate::cluster::KubeFlags;
use clock::instant;
use controller::kube::commands::list_rollouts_with;
use controller::local::files::{load_rollout, StateFile};
use draw::{Drawing, Format};
use marks::Mark;
use rollout::api::{CohortRolloutSpec, CohortRolloutStatus, Phase};
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
    #[arg(long, value_name = "PATH")]
    pub state_file: Option<PathBuf>,
    /// Kubernetes mode (`sluice timeline --kube`, or `kubectl sluice timeline`): where the
    /// CohortRollout is. Set by the caller, which owns the flags.
    #[arg(skip)]
    pub cluster: Option<KubeFlags>,
    /// FILE.svg draws SVG, FILE.png draws PNG; any other name is a stem and both STEM.svg and
    /// STEM.png are written.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Start: RFC 3339 (2026-11-25T17:00:00Z) or unix seconds (fractions are widened to whole
    /// seconds). Default: a tenth of the recorded span (5 s to 2 min) before the first recorded
    /// decision (30m before the end without history).
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
    /// A moment to mark on every panel and in the summary: TIME=LABEL, TIME as --from takes it
    /// (fractions of a second allowed), e.g. 1795628876.3="v3 starts failing". Repeatable; the
    /// summary times the rollback from the first mark.
    #[arg(long = "mark", value_name = "TIME=LABEL", value_parser = marks::parse_mark)]
    marks: Vec<Mark>,
    /// A sluice config carrying the city table, JSON or the WasmPlugin or TrafficExtension YAML
    /// carrying one (as for `sluice plan --cities`): the summary then shows the expected share of
    /// cities and users exposed at each step.
    #[arg(long, value_name = "FILE")]
    cities: Option<PathBuf>,
    /// Local mode: the rollout file the controller drives (as for `sluice status --rollout`), for
    /// each step's regions and city cutoff (history records only step and percent). With --kube,
    /// the CohortRollout's own spec is used unless this is given.
    #[arg(long = "rollout", value_name = "ROLLOUT.yaml")]
    rollout_file: Option<PathBuf>,
}

pub async fn run(args: TimelineArgs) -> controller::Result<()> {
    let (status, kube_spec) = load_status(&args).await?;
    let entry = status.entry.clone().unwrap_or_else(|| args.rollout.clone());
    let (from, to) = time_range(&args, &status, now()).map_err(invalid)?;
    // Before any query: a wrong --rollout or --cities file fails at once.
    let exposure = exposure_section(&args, kube_spec, &status, from, to)?;
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
    let markers = model::all_markers(&status.history, &args.marks, from, to);
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
        model::summary(
            &args.rollout,
            status.phase,
            &status.history,
            &args.marks,
            from,
            to
        )
    );
    print!("{exposure}");
    Ok(())
}

/// The exposure per step, from the spec (`--rollout`, or the CohortRollout's) and `--cities`.
fn exposure_section(
    args: &TimelineArgs,
    kube_spec: Option<CohortRolloutSpec>,
    status: &CohortRolloutStatus,
    from: u64,
    to: u64,
) -> controller::Result<String> {
    let spec = match &args.rollout_file {
        Some(path) => {
            let file = load_rollout(path)?;
            // Another rollout's steps would show exposure its users never had.
            let name = file.metadata.name.unwrap_or_default();
            if name != args.rollout {
                return Err(invalid(format!(
                    "{} is the rollout {name:?}, not {:?}",
                    path.display(),
                    args.rollout
                )));
            }
            Some((path.display().to_string(), file.spec))
        }
        None => kube_spec.map(|s| ("the CohortRollout's spec".to_string(), s)),
    };
    let steps = spec.map(|(origin, spec)| {
        let steps = rollout::plan::steps(&spec).map_err(|e| e.to_string());
        (origin, steps)
    });
    let table = match &args.cities {
        Some(path) => {
            let config = crate::validate::sluice_config(path)?;
            Some((path.display().to_string(), config.cities))
        }
        None => None,
    };
    let sources = exposure::Sources {
        steps,
        cities: table.as_ref().map(|(origin, t)| (origin.clone(), t)),
    };
    Ok(exposure::section(&sources, status, from, to))
}

/// The status, and in Kubernetes the CohortRollout's spec with it.
async fn load_status(
    args: &TimelineArgs,
) -> controller::Result<(CohortRolloutStatus, Option<CohortRolloutSpec>)> {
    let missing = |where_: String| {
        invalid(format!(
            "no status for rollout {:?} in {where_}",
            args.rollout
        ))
    };
    match &args.state_file {
        Some(path) => {
            let mut doc = StateFile { path: path.clone() }.read()?;
            let status = doc
                .rollouts
                .remove(&args.rollout)
                .ok_or_else(|| missing(path.display().to_string()))?;
            Ok((status, None))
        }
        None => {
            let Some(flags) = &args.cluster else {
                return Err(invalid("give --state-file (local mode) or --kube".into()));
            };
            let cluster = flags.connect().await?;
            let namespace = Some(cluster.namespace.as_str());
            let list = list_rollouts_with(cluster.client.clone(), namespace).await;
            let what = format!(
                "reading CohortRollout {}/{}",
                cluster.namespace, args.rollout
            );
            list.map_err(|e| cluster.failed(&what, e))?
                .into_iter()
                .find(|r| r.metadata.name.as_deref() == Some(args.rollout.as_str()))
                .and_then(|r| r.status.map(|status| (status, Some(r.spec))))
                .ok_or_else(|| {
                    missing(format!(
                        "namespace {} of {}",
                        cluster.namespace, cluster.described
                    ))
                })
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
        (Some(t), _) => instant(t)?.ceil() as u64,
        (None, Some(last)) if finished => now.min(last + margin),
        (None, _) => now,
    };
    let from = match (&args.from, &args.since, status.history.first()) {
        (Some(f), _, _) => instant(f)?.floor() as u64,
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
