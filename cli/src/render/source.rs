//! Where `sluice status` reads rollouts: the local state file (with the rollout files for the checks'
//! thresholds), or the CohortRollouts in Kubernetes. Read anew for every `--watch` frame.

use super::output::{status_output, Format};
use super::shown::Shown;
use crate::cluster::{Cluster, KubeFlags};
use controller::kube::commands::list_rollouts_with;
use controller::local::files::{load_rollout, StateFile};
use controller::Result;
use std::path::PathBuf;
use tokio::sync::OnceCell;

pub struct StatusSource {
    /// Local mode; None = Kubernetes.
    pub state_file: Option<PathBuf>,
    /// Local mode: the rollout files the controllers drive.
    pub rollout_files: Vec<PathBuf>,
    /// Kubernetes mode: the kubeconfig, context and namespace.
    pub kube: KubeFlags,
    /// Kubernetes mode: every namespace rather than one.
    pub all_namespaces: bool,
    /// Connected at the first frame, kept for the `--watch` frames after it.
    pub cluster: OnceCell<Cluster>,
}

impl StatusSource {
    pub async fn read(&self) -> Result<Vec<Shown>> {
        let Some(path) = &self.state_file else {
            let cluster = self.cluster.get_or_try_init(|| self.kube.connect()).await?;
            let namespace = (!self.all_namespaces).then_some(cluster.namespace.as_str());
            let what = match namespace {
                Some(ns) => format!("listing the CohortRollouts of namespace {ns}"),
                None => "listing the CohortRollouts of every namespace".to_string(),
            };
            let rollouts = list_rollouts_with(cluster.client.clone(), namespace)
                .await
                .map_err(|e| cluster.failed(&what, e))?;
            return Ok(rollouts.into_iter().map(Shown::from_resource).collect());
        };
        let mut specs = Vec::new();
        for file in &self.rollout_files {
            let rollout = load_rollout(file)?;
            specs.push((rollout.metadata.name.unwrap_or_default(), rollout.spec));
        }
        let doc = StateFile { path: path.clone() }.read()?;
        let spec_of = |name: &str| {
            specs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, spec)| spec.clone())
        };
        let mut shown: Vec<Shown> = doc
            .rollouts
            .into_iter()
            .map(|(name, status)| Shown {
                namespace: None,
                spec: spec_of(&name),
                name,
                status: Some(status),
                spec_changed: false,
            })
            .collect();
        // A rollout file whose controller has not saved status yet still gets its row.
        for (name, spec) in specs {
            if !shown.iter().any(|s| s.name == name) {
                shown.push(Shown {
                    namespace: None,
                    name,
                    status: None,
                    spec: Some(spec),
                    spec_changed: false,
                });
            }
        }
        Ok(shown)
    }

    /// The status as `format` prints it.
    pub async fn render(&self, format: Format) -> Result<String> {
        let shown = self.read().await?;
        let with_namespace = self.state_file.is_none() && self.all_namespaces;
        Ok(status_output(&shown, format, with_namespace)?)
    }
}
