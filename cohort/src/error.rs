use std::fmt;

/// A rejected config: the JSON path of the offending field, its value and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: String,
    pub value: String,
    pub problem: String,
}

impl ConfigError {
    pub fn new(
        path: impl Into<String>,
        value: impl fmt::Debug,
        problem: impl Into<String>,
    ) -> Self {
        Self {
            path: path.into(),
            value: format!("{value:?}"),
            problem: problem.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.value.is_empty() {
            write!(
                f,
                "invalid sluice config at {}: {}",
                self.path, self.problem
            )
        } else {
            write!(
                f,
                "invalid sluice config at {} = {}: {}",
                self.path, self.value, self.problem
            )
        }
    }
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;
