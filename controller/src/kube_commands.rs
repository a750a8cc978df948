//! What people do from the command line in Kubernetes mode: commands travel to the controller as
//! the annotation `sluice.dev/command: "<command>/<id>"` (the id makes each invocation apply once,
//! see `CohortRolloutStatus::last_command`), and `sluice status` renders the CohortRollouts as a table.

use crate::error::{Error, Result};
use crate::machine::Command;
use crate::spec::{CohortRollout, CohortRolloutStatus};
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;
use std::time::{SystemTime, UNIX_EPOCH};

pub const COMMAND_ANNOTATION: &str = "sluice.dev/command";

pub fn command_name(command: Command) -> &'static str {
    match command {
        Command::Pause => "pause",
        Command::Resume => "resume",
        Command::Promote => "promote",
        Command::Abort => "abort",
    }
}

/// `"pause/1a2b"` -> the whole value as the id (recorded in status) and the command.
pub fn parse_command(value: &str) -> Result<(String, Command)> {
    let invalid = |problem: &str| {
        Error::invalid(
            format!("metadata.annotations[{COMMAND_ANNOTATION}]"),
            value,
            problem,
        )
    };
    let (name, id) = value
        .split_once('/')
        .ok_or_else(|| invalid("expected <command>/<id>"))?;
    if id.is_empty() {
        return Err(invalid("the id after / is empty"));
    }
    let command = match name {
        "pause" => Command::Pause,
        "resume" => Command::Resume,
        "promote" => Command::Promote,
        "abort" => Command::Abort,
        _ => {
            return Err(invalid(
                "the command must be pause, resume, promote or abort",
            ))
        }
    };
    Ok((value.to_string(), command))
}

/// The command a CohortRollout carries, if any. A malformed annotation is logged and ignored: it must
/// not stop the rollout's analysis.
pub fn command_of(rollout: &CohortRollout) -> Option<(String, Command)> {
    let value = rollout.annotations().get(COMMAND_ANNOTATION)?;
    parse_command(value)
        .inspect_err(|e| tracing::warn!(rollout = rollout.name_any(), "{e}"))
        .ok()
}

/// An id unique per invocation: nanoseconds since the epoch and the process id.
pub fn new_command_id() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}-{}", std::process::id())
}

/// Sets the command annotation (a merge patch, so nothing else of the object is touched).
pub async fn send_command_with(
    client: Client,
    namespace: &str,
    name: &str,
    command: Command,
    id: &str,
) -> Result<String> {
    let value = format!("{}/{id}", command_name(command));
    let api: Api<CohortRollout> = Api::namespaced(client, namespace);
    let patch = json!({"metadata": {"annotations": {COMMAND_ANNOTATION: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| match &e {
            kube::Error::Api(s) if s.is_not_found() => {
                Error::invalid("CohortRollout", format!("{namespace}/{name}"), "not found")
            }
            _ => Error::Kube(e),
        })?;
    Ok(value)
}

/// The CohortRollouts of `namespace` (None = every namespace) as `sluice status` prints them.
pub async fn status_table_with(client: Client, namespace: Option<&str>) -> Result<String> {
    let api: Api<CohortRollout> = match namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let mut rollouts = api.list(&ListParams::default()).await?.items;
    rollouts.sort_by_key(|r| (r.namespace(), r.name_any()));
    Ok(render_status_table(&rollouts, namespace.is_none()))
}

/// PHASE, STEP, PERCENT, REGIONS, CUTOFF, GENERATION and MESSAGE of a status.
fn status_cells(status: &CohortRolloutStatus) -> Vec<String> {
    let stage = status.stage.as_ref();
    let regions = match stage {
        Some(s) if s.regions.is_empty() => "all".to_string(),
        Some(s) => s.regions.join(","),
        None => "-".to_string(),
    };
    let message = status.conditions.iter().find(|c| c.type_ == "Progressing");
    vec![
        format!("{:?}", status.phase),
        status.current_step.to_string(),
        stage.map_or("-".into(), |s| s.percent.to_string()),
        regions,
        stage
            .and_then(|s| s.max_city_population)
            .map_or("-".into(), |c| c.to_string()),
        status.config_generation.to_string(),
        message.map_or(String::new(), |c| c.message.clone()),
    ]
}

pub fn render_status_table(rollouts: &[CohortRollout], with_namespace: bool) -> String {
    render_status_rows(
        rollouts.iter().map(|r| {
            (
                r.namespace().unwrap_or_default(),
                r.name_any(),
                r.status.as_ref(),
            )
        }),
        with_namespace,
    )
}

/// The table of `sluice status`, Kubernetes or local: (namespace, name, status) per rollout.
pub fn render_status_rows<'a>(
    entries: impl IntoIterator<Item = (String, String, Option<&'a CohortRolloutStatus>)>,
    with_namespace: bool,
) -> String {
    let mut header = vec![
        "NAME",
        "PHASE",
        "STEP",
        "PERCENT",
        "REGIONS",
        "CUTOFF",
        "GENERATION",
        "MESSAGE",
    ];
    if with_namespace {
        header.insert(0, "NAMESPACE");
    }
    let mut rows = vec![header.into_iter().map(String::from).collect::<Vec<_>>()];
    for (namespace, name, status) in entries {
        let mut row = vec![name];
        row.extend(match status {
            Some(status) => status_cells(status),
            // Not reconciled yet.
            None => ["-", "-", "-", "-", "-", "-", ""]
                .map(String::from)
                .to_vec(),
        });
        if with_namespace {
            row.insert(0, namespace);
        }
        rows.push(row);
    }
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            // The last column (the message) is not padded: no trailing blanks.
            .map(|(c, cell)| {
                if c + 1 == columns {
                    cell.clone()
                } else {
                    format!("{cell:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}
