//! The rules of mirror steps: they come first, expose no user, send their copies to the target's
//! `canaryCluster`, and take what the filter takes (checked by the filter's own compile step, so the
//! two never disagree, with the errors renamed to the spec's fields).

use crate::api::{BuiltinSli, CohortRolloutSpec, MirrorStep, Step, DEFAULT_MIRROR_TIMEOUT_MS};
use crate::error::{Error, Result};
use cohort::{Bucketing, Mirror, Rollout, RolloutState, SluiceConfig, Stage};

/// Mirror steps only before the first user step, without exposure of their own, followed by at least
/// one user step, with a `canaryCluster` and a mirror the filter takes.
pub(super) fn check_mirror_steps(steps: &[Step], spec: &CohortRolloutSpec) -> Result<()> {
    let from_shorthand = spec.steps.is_empty();
    let Some(first_user) = steps.iter().position(|s| !s.is_mirror()) else {
        let field = if from_shorthand {
            "spec.stepsFrom"
        } else {
            "spec.steps"
        };
        return Err(Error::invalid(
            field,
            "only mirror steps",
            "add a step that exposes users after the mirror: passing the mirror stage would otherwise \
             promote the canary to every user at once",
        ));
    };
    for (i, step) in steps.iter().enumerate() {
        let Some(mirror) = &step.mirror else { continue };
        // A shorthand's mirror is step 0 of the expansion, but the person wrote `stepsFrom.mirror`.
        let here = if from_shorthand {
            "spec.stepsFrom.mirror".to_string()
        } else {
            format!("spec.steps[{i}].mirror")
        };
        if i > first_user {
            return Err(Error::invalid(
                here,
                "mirror",
                format!(
                    "mirror steps come before every step that exposes users (spec.steps[{first_user}] does)"
                ),
            ));
        }
        let field = |f: &str| format!("spec.steps[{i}].{f}");
        let exposes = [
            (
                field("percent"),
                step.percent != 0.0,
                step.percent.to_string(),
            ),
            (
                field("regions"),
                !step.regions.is_empty(),
                step.regions.join(","),
            ),
            (
                field("maxCityPopulation"),
                step.max_city_population.is_some(),
                format!("{:?}", step.max_city_population),
            ),
        ];
        if let Some((f, _, value)) = exposes.into_iter().find(|(_, set, _)| *set) {
            return Err(Error::invalid(
                f,
                value,
                "a mirror step exposes no user and copies requests from every region and city: \
                 leave percent, regions and maxCityPopulation out (set mirror.percent for the copies)",
            ));
        }
        let Some(cluster) = spec.target.canary_cluster.as_deref() else {
            return Err(Error::invalid(
                "spec.target.canaryCluster",
                "",
                format!(
                    "{here} needs the Envoy cluster the proxies send copies to (local Envoy: the \
                     canary's cluster; Istio: outbound|<port>|<canary subset>|<host>)"
                ),
            ));
        };
        check_filter_takes(mirror, cluster, &here)?;
    }
    Ok(())
}

/// The cohort stage a mirror step pushes (`cluster`: the target's `canaryCluster`).
pub fn mirror_stage(mirror: &MirrorStep, cluster: &str) -> Mirror {
    Mirror {
        percent: mirror.percent,
        methods: mirror.methods.clone(),
        cluster: cluster.to_string(),
        timeout_ms: mirror.timeout_ms.unwrap_or(DEFAULT_MIRROR_TIMEOUT_MS),
    }
}

/// Compiles the mirror alone, as the filter would, and names the spec's field in its error.
fn check_filter_takes(mirror: &MirrorStep, cluster: &str, here: &str) -> Result<()> {
    let probe = SluiceConfig {
        generation: 1,
        geo: Default::default(),
        cities: Default::default(),
        identity: Default::default(),
        overrides: Default::default(),
        rollouts: vec![Rollout {
            name: "mirror".into(),
            owner: None,
            request_match: None,
            salt: None,
            bucketing: Bucketing::BasisPoints,
            stage: Stage {
                regions: vec![],
                max_city_population: None,
                percent: 0.0,
                mirror: Some(mirror_stage(mirror, cluster)),
            },
            state: RolloutState::Progressing,
            routing_header: cohort::DEFAULT_ROUTING_HEADER.into(),
            guardrail: None,
        }],
    };
    let Err(e) = cohort::CompiledConfig::compile(&probe) else {
        return Ok(());
    };
    let field = match e.path.split_once(".stage.mirror.").map(|(_, f)| f) {
        Some("cluster") => "spec.target.canaryCluster".to_string(),
        Some("timeout_ms") => format!("{here}.timeoutMs"),
        Some(f) => format!("{here}.{f}"),
        None => here.to_string(),
    };
    Err(Error::invalid(field, e.value, e.problem))
}

/// `mirrorMismatch` compares the mirror's answers with stable's: it needs a mirror step to judge,
/// another check for the user steps, and no comparison with stable of its own.
pub(super) fn check_mismatch_checks(spec: &CohortRolloutSpec, steps: &[Step]) -> Result<()> {
    let metrics = &spec.analysis.metrics;
    let is_mismatch = |m: &&crate::api::MetricCheck| m.builtin == Some(BuiltinSli::MirrorMismatch);
    let Some(i) = metrics.iter().position(|m| is_mismatch(&m)) else {
        return Ok(());
    };
    let field = format!("spec.analysis.metrics[{i}].builtin");
    if !steps.iter().any(Step::is_mirror) {
        return Err(Error::invalid(
            field,
            "mirrorMismatch",
            "judged only in mirror steps, and this plan has none: add a mirror step or remove the check",
        ));
    }
    if metrics.iter().all(|m| is_mismatch(&m)) {
        return Err(Error::invalid(
            field,
            "mirrorMismatch",
            "judged only in mirror steps: add a check that judges the user steps too",
        ));
    }
    if let Some(j) = metrics
        .iter()
        .position(|m| is_mismatch(&m) && m.compare_to_stable.is_some())
    {
        return Err(Error::invalid(
            format!("spec.analysis.metrics[{j}].compareToStable"),
            "compareToStable",
            "mirrorMismatch already compares each copy's answer with stable's",
        ));
    }
    Ok(())
}
