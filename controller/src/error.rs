/// What can go wrong at the edges, beyond a round's own errors (`rollout::Error`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rollout(#[from] rollout::Error),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("the CohortRollout CRD is not installed: apply deploy/crd.yaml ({0})")]
    CrdMissing(String),
}

impl From<cohort::ConfigError> for Error {
    fn from(e: cohort::ConfigError) -> Self {
        Error::Rollout(e.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
