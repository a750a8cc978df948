use std::fmt;

/// The most of an offending value an error shows: enough to find it, never a whole document in a log.
pub const MAX_SHOWN_VALUE: usize = 100;

/// A rejected config: the JSON path of the offending field, its value and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub path: String,
    /// The value as written (Debug-quoted), cut to about [`MAX_SHOWN_VALUE`] bytes; empty when not shown.
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
            path: cut_path(path.into()),
            value: cut(&format!("{value:?}"), MAX_SHOWN_VALUE),
            problem: problem.into(),
        }
    }

    /// An error about a field whose value must never be printed (a secret, or what may be one).
    pub fn redacted(path: impl Into<String>, problem: impl Into<String>) -> Self {
        Self {
            path: cut_path(path.into()),
            value: String::new(),
            problem: problem.into(),
        }
    }
}

/// A path may quote a key of the document (a city, an unknown field): cut like a value, with room for
/// the field names around it, so that the key and a parser message quoting it stay near 100 bytes each.
fn cut_path(path: String) -> String {
    cut(&path, 2 * MAX_SHOWN_VALUE)
}

/// `text` cut to at most `max` bytes on a character boundary, saying how long it was.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &text[..end], text.len())
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
