/// What can go wrong at the edges, beyond a round's own errors (`rollout::Error`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Rollout(#[from] rollout::Error),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("the CohortRollout CRD is not installed: apply deploy/crd.yaml ({0})")]
    CrdMissing(String),
    /// Kubernetes mode: a round is cut off before the Lease's renew deadline.
    #[error("the round did not finish within {0:?} (rounds end before the Lease's renew deadline): stopped, the next round starts over")]
    RoundDeadline(std::time::Duration),
    /// Kubernetes mode: adding or removing the finalizer of a CohortRollout.
    #[error("finalizer: {0}")]
    Finalizer(String),
}

impl From<cohort::ConfigError> for Error {
    fn from(e: cohort::ConfigError) -> Self {
        Error::Rollout(e.into())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
