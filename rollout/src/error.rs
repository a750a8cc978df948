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
    /// A batch's push went without this rollout: it was not ready by then (`round::PushDue`).
    #[error("left out of this round's push: {0}")]
    PushDue(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Parse { path: String, problem: String },
}

/// A batch's rollouts each get their copy of an error they share (the document could not be read).
impl Clone for Error {
    fn clone(&self) -> Self {
        match self {
            Error::InvalidSpec {
                field,
                value,
                problem,
            } => Error::InvalidSpec {
                field: field.clone(),
                value: value.clone(),
                problem: problem.clone(),
            },
            Error::Config(e) => Error::Config(e.clone()),
            Error::Metrics(e) => Error::Metrics(e.clone()),
            Error::Sink(e) => Error::Sink(e.clone()),
            Error::Conflict(e) => Error::Conflict(e.clone()),
            Error::Status(e) => Error::Status(e.clone()),
            Error::Alert(e) => Error::Alert(e.clone()),
            Error::PushDue(e) => Error::PushDue(e.clone()),
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Parse { path, problem } => Error::Parse {
                path: path.clone(),
                problem: problem.clone(),
            },
        }
    }
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
