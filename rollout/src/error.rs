/// Everything that can go wrong in a round, named so that logs and status say what to fix. The ports'
/// implementations report their failures as `Sink`, `Status`, `Alert`, `Io` or `Parse`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid CohortRollout at {field} = {value}: {problem}")]
    InvalidSpec {
        field: String,
        value: String,
        problem: String,
    },
    #[error(transparent)]
    Config(#[from] cohort::ConfigError),
    #[error("metrics query failed: {0}")]
    Metrics(String),
    #[error("config sink: {0}")]
    Sink(String),
    /// The config document changed since it was read (HTTP 409): re-read and merge again.
    #[error("config sink: {0}")]
    Conflict(String),
    #[error("status store: {0}")]
    Status(String),
    #[error("alert: {0}")]
    Alert(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Parse { path: String, problem: String },
}

impl Error {
    pub fn invalid(
        field: impl Into<String>,
        value: impl std::fmt::Debug,
        problem: impl Into<String>,
    ) -> Self {
        Error::InvalidSpec {
            field: field.into(),
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
