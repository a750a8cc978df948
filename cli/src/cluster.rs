//! Which cluster the commands talk to, by kubectl's conventions: `--kubeconfig` or `KUBECONFIG` (else
//! `~/.kube/config`, else the in-cluster service account), `--context` (else the current context), and
//! `-n/--namespace` (else the context's namespace). Every failure names the context and the server, so
//! a command sent to the wrong cluster says which one it reached for.

use controller::process::install_crypto_provider;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use std::path::PathBuf;

#[derive(clap::Args, Clone, Debug, Default)]
pub struct KubeFlags {
    /// The namespace (default: the kubeconfig context's, else `default`).
    #[arg(long, short = 'n', global = true)]
    pub namespace: Option<String>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// The kubeconfig file (default: KUBECONFIG, else ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
}

/// A client and what to call it in messages.
pub struct Cluster {
    pub client: Client,
    /// `-n`, else the context's namespace.
    pub namespace: String,
    /// `context "NAME" (server URL)`.
    pub described: String,
}

impl KubeFlags {
    pub async fn connect(&self) -> controller::Result<Cluster> {
        install_crypto_provider();
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..KubeConfigOptions::default()
        };
        let (config, context) = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| fail(self.source(), e))?;
                let context = self.context.clone().or(file.current_context.clone());
                let config = Config::from_custom_kubeconfig(file, &options).await;
                (config.map_err(|e| fail(self.source(), e))?, context)
            }
            (None, Some(context)) => {
                let config = Config::from_kubeconfig(&options).await;
                let config = config.map_err(|e| fail(self.source(), e))?;
                (config, Some(context.clone()))
            }
            // As kubectl does without flags, but also inside a pod (the service account).
            (None, None) => {
                let context = Kubeconfig::read().ok().and_then(|k| k.current_context);
                let config = Config::infer().await.map_err(|e| fail(self.source(), e))?;
                (config, context)
            }
        };
        let context = context.map_or("in-cluster".to_string(), |c| format!("context {c:?}"));
        let described = format!("{context} (server {})", config.cluster_url);
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(|e| fail(described.clone(), e))?;
        Ok(Cluster {
            client,
            namespace,
            described,
        })
    }

    /// `-n`, else the namespace of the kubeconfig's context (`--context`, else its current one), else
    /// `default`, read without contacting the cluster: an unreadable kubeconfig is not an error (for
    /// offline commands).
    pub fn offline_namespace(&self) -> String {
        if let Some(namespace) = &self.namespace {
            return namespace.clone();
        }
        let file = match &self.kubeconfig {
            Some(path) => Kubeconfig::read_from(path),
            None => Kubeconfig::read(),
        };
        let namespace = file.ok().and_then(|file| {
            let wanted = self.context.clone().or(file.current_context)?;
            let named = file.contexts.into_iter().find(|c| c.name == wanted)?;
            named.context?.namespace
        });
        namespace.unwrap_or_else(|| "default".to_string())
    }

    /// Where the kubeconfig was looked for, and the context asked for.
    fn source(&self) -> String {
        let file = match &self.kubeconfig {
            Some(path) => path.display().to_string(),
            None => std::env::var("KUBECONFIG").unwrap_or_else(|_| "~/.kube/config".into()),
        };
        match &self.context {
            Some(context) => format!("kubeconfig {file}, context {context:?}"),
            None => format!("kubeconfig {file}"),
        }
    }
}

impl Cluster {
    /// `error` of doing `what`, saying on which cluster.
    pub fn failed(&self, what: &str, error: controller::Error) -> controller::Error {
        fail(format!("{what} on {}", self.described), error)
    }
}

fn fail(place: String, error: impl std::fmt::Display) -> controller::Error {
    controller::Error::Rollout(rollout::Error::Parse {
        path: place,
        problem: error.to_string(),
    })
}
