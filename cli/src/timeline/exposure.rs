//! The summary's exposure per step: each step's regions, city cutoff and percent, and with a city
//! table the expected share of cities and users on the canary, as `sluice plan` computes it
//! (`rollout::plan::exposure`). History records only step and percent, so the regions and cutoffs
//! come from the rollout's spec, or for the current step from `status.stage`.

use super::clock::clock;
use crate::render::stage_columns;
use cohort::City;
use rollout::api::{CohortRolloutStatus, HistoryEvent, Step};
use std::collections::BTreeMap;

/// What the exposure is computed from.
pub struct Sources<'a> {
    /// Where the spec came from, and its steps (Err: why the spec's steps are invalid).
    pub steps: Option<(String, Result<Vec<Step>, String>)>,
    /// Where the city table came from, and the table.
    pub cities: Option<(String, &'a BTreeMap<String, City>)>,
}

/// One step as far as it is known: its stage (None: only the percent history recorded).
struct Row {
    step: usize,
    percent: f64,
    stage: Option<Step>,
}

pub fn section(src: &Sources<'_>, status: &CohortRolloutStatus, from: u64, to: u64) -> String {
    let shown: Vec<&HistoryEvent> = status
        .history
        .iter()
        .filter(|e| (from..=to).contains(&e.time))
        .collect();
    let mut notes = Vec::new();
    let spec_steps = match &src.steps {
        Some((_, Ok(steps))) => Some(steps),
        Some((origin, Err(why))) => {
            notes.push(format!("the steps of {origin} are invalid: {why}"));
            None
        }
        None => None,
    };
    let rows = match spec_steps {
        Some(steps) => {
            if let Some(note) = spec_mismatch(steps, &shown) {
                notes.push(note);
            }
            steps
                .iter()
                .enumerate()
                .map(|(i, s)| Row {
                    step: i,
                    percent: s.percent,
                    stage: Some(s.clone()),
                })
                .collect()
        }
        None => {
            notes.push(
                "for each step's regions and city cutoff pass --rollout ROLLOUT.yaml (history has \
                 only step and percent)"
                    .to_string(),
            );
            known_rows(status, &shown)
        }
    };
    if src.cities.is_none() {
        notes.push(
            "for the share of cities and users exposed pass --cities FILE (a sluice config \
             JSON, as for `sluice plan`)"
                .to_string(),
        );
    }
    let origin = match (&src.steps, &src.cities) {
        (Some((s, Ok(_))), Some((c, _))) => format!(" (steps of {s}, cities of {c})"),
        (Some((s, Ok(_))), None) => format!(" (steps of {s})"),
        (_, Some((c, _))) => format!(" (cities of {c})"),
        _ => String::new(),
    };
    let mut out = format!("  exposure per step{origin}:\n");
    out.push_str(&table(&rows, src.cities.as_ref().map(|c| c.1), &shown));
    for note in notes {
        out.push_str(&format!("  note: {note}\n"));
    }
    out
}

/// Without the spec: the steps history recorded, with the current step's stage from status.
fn known_rows(status: &CohortRolloutStatus, shown: &[&HistoryEvent]) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    for e in shown {
        if !rows.iter().any(|r| r.step == e.step as usize) {
            rows.push(Row {
                step: e.step as usize,
                percent: e.percent,
                stage: None,
            });
        }
    }
    if let Some(stage) = &status.stage {
        let current = status.current_step as usize;
        match rows.iter_mut().find(|r| r.step == current) {
            Some(row) => row.stage = Some(stage.clone()),
            None => rows.push(Row {
                step: current,
                percent: stage.percent,
                stage: Some(stage.clone()),
            }),
        }
    }
    rows.sort_by_key(|r| r.step);
    rows
}

/// A recorded step whose percent is not the spec's: the spec changed after the rollout ran, and
/// the exposure shown would not be what users saw.
fn spec_mismatch(steps: &[Step], shown: &[&HistoryEvent]) -> Option<String> {
    shown.iter().find_map(|e| {
        let spec = steps.get(e.step as usize).map(|s| s.percent);
        match spec {
            Some(p) if (p - e.percent).abs() < 1e-9 => None,
            Some(p) => Some(format!(
                "history records step {} at {}% but the spec's step {} is {p}%: the spec changed \
                 since, and the exposure shown is the current spec's",
                e.step, e.percent, e.step
            )),
            None => Some(format!(
                "history records step {} but the spec has {} steps: the spec changed since",
                e.step,
                steps.len()
            )),
        }
    })
}

fn table(rows: &[Row], cities: Option<&BTreeMap<String, City>>, shown: &[&HistoryEvent]) -> String {
    let mut out = format!(
        "    {:>4} {:>8}  {:<24} {:>10} {:>7} {:>8}  {}\n",
        "STEP", "PERCENT", "REGIONS", "CUTOFF", "CITIES", "USERS", "IN FORCE"
    );
    // `sluice plan`'s computation, on the steps whose stage is known.
    let stages: Vec<Step> = rows.iter().filter_map(|r| r.stage.clone()).collect();
    let exposure = cities.map(|c| rollout::plan::exposure(&stages, c));
    let mut known = 0;
    for row in rows {
        let (regions, cutoff, cities_col, users) = match &row.stage {
            Some(stage) => {
                let e = exposure.as_ref().and_then(|all| all.get(known));
                known += 1;
                let (cities_col, users) = match (e, cities) {
                    (Some(e), Some(c)) => (
                        format!("{}/{}", e.eligible_cities.len(), c.len()),
                        format!("{:.2}%", e.user_share * 100.0),
                    ),
                    _ => ("?".to_string(), "?".to_string()),
                };
                let (regions, cutoff) = stage_columns(stage);
                (regions, cutoff, cities_col, users)
            }
            None => ("?".into(), "?".into(), "?".into(), "?".into()),
        };
        out.push_str(&format!(
            "    {:>4} {:>7}%  {:<24} {:>10} {:>7} {:>8}  {}\n",
            row.step,
            row.percent,
            regions,
            cutoff,
            cities_col,
            users,
            in_force(row.step, shown)
        ));
    }
    out
}

/// When the step was first in force in the shown range, and how its run ended there.
fn in_force(step: usize, shown: &[&HistoryEvent]) -> String {
    let at_step = |e: &&&HistoryEvent| e.step as usize == step;
    let Some(first) = shown.iter().find(at_step) else {
        return "-".to_string();
    };
    let end = shown
        .iter()
        .filter(at_step)
        .find_map(|e| match e.reason.as_str() {
            "RolledBack" => Some(format!(", rolled back {}", clock(e.time))),
            "Promoted" => Some(format!(", promoted {}", clock(e.time))),
            _ => None,
        })
        .unwrap_or_default();
    format!("from {}{end}", clock(first.time))
}

#[cfg(test)]
mod tests {
    use super::{section, Sources};
    use cohort::City;
    use rollout::api::{CohortRolloutStatus, HistoryEvent, Phase, Step};
    use std::collections::BTreeMap;

    fn event(time: u64, step: u32, percent: f64, reason: &str) -> HistoryEvent {
        HistoryEvent {
            time,
            step,
            percent,
            phase: Phase::Progressing,
            reason: reason.into(),
            message: "".into(),
        }
    }

    fn step(regions: &[&str], cutoff: Option<u64>, percent: f64) -> Step {
        Step {
            regions: regions.iter().map(|r| r.to_string()).collect(),
            max_city_population: cutoff,
            percent,
            pause_before: false,
            mirror: None,
        }
    }

    fn cities() -> BTreeMap<String, City> {
        let city = |population, region: &str| City {
            population,
            region: region.into(),
        };
        BTreeMap::from([
            ("a".to_string(), city(100, "north")),
            ("b".to_string(), city(300, "north")),
            ("c".to_string(), city(600, "south")),
        ])
    }

    fn status() -> CohortRolloutStatus {
        CohortRolloutStatus {
            phase: Phase::RolledBack,
            current_step: 1,
            stage: Some(step(&["north"], None, 50.0)),
            history: vec![
                event(1000, 0, 50.0, "Started"),
                event(1060, 1, 50.0, "StepAdvanced"),
                event(1090, 1, 50.0, "RolledBack"),
            ],
            ..CohortRolloutStatus::default()
        }
    }

    #[test]
    fn with_the_spec_and_cities_each_step_shows_its_share_of_cities_and_users() {
        let steps = vec![
            step(&["north"], Some(100), 50.0),
            step(&["north"], None, 50.0),
            step(&[], None, 50.0),
        ];
        let table = cities();
        let src = Sources {
            steps: Some(("r.yaml".into(), Ok(steps))),
            cities: Some(("c.json".into(), &table)),
        };
        let text = section(&src, &status(), 0, 2000);
        println!("{text}");
        assert!(
            text.contains("(steps of r.yaml, cities of c.json)"),
            "{text}"
        );
        // Step 1: north's 400 of 1000 people, half of them on the canary.
        let row = |s: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(s))
                .unwrap()
        };
        assert!(
            row("0 ").contains("1/3") && row("0 ").contains("5.00%"),
            "{text}"
        );
        assert!(
            row("1 ").contains("2/3") && row("1 ").contains("20.00%"),
            "{text}"
        );
        assert!(
            row("1 ").contains("from 00:17:40, rolled back 00:18:10"),
            "{text}"
        );
        assert!(
            row("2 ").contains("3/3") && row("2 ").contains("50.00%"),
            "{text}"
        );
        assert!(!text.contains("note:"), "{text}");
    }

    #[test]
    fn without_the_spec_the_current_stage_is_known_and_the_summary_says_how_to_get_the_rest() {
        let table = cities();
        let src = Sources {
            steps: None,
            cities: Some(("c.json".into(), &table)),
        };
        let text = section(&src, &status(), 0, 2000);
        let row = |s: &str| {
            text.lines()
                .find(|l| l.trim_start().starts_with(s))
                .unwrap()
        };
        assert!(row("0 ").contains('?'), "{text}");
        assert!(
            row("1 ").contains("north") && row("1 ").contains("20.00%"),
            "{text}"
        );
        assert!(text.contains("pass --rollout ROLLOUT.yaml"), "{text}");

        let text = section(
            &Sources {
                steps: None,
                cities: None,
            },
            &status(),
            0,
            2000,
        );
        assert!(text.contains("pass --cities FILE"), "{text}");
    }

    #[test]
    fn a_spec_whose_percent_differs_from_history_is_flagged() {
        let steps = vec![step(&["north"], Some(100), 10.0), step(&[], None, 50.0)];
        let src = Sources {
            steps: Some(("r.yaml".into(), Ok(steps))),
            cities: None,
        };
        let text = section(&src, &status(), 0, 2000);
        assert!(
            text.contains("history records step 0 at 50% but the spec's step 0 is 10%"),
            "{text}"
        );
    }
}
