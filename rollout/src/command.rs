//! What a person asks of a rollout (`sluice pause|resume|promote|abort`), and how the request travels:
//! `<command>/<id>`, in the `sluice.dev/command` annotation (Kubernetes) or a command file (local mode).
//! The id makes each invocation apply once: the round records the whole value in `status.lastCommand`.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// The annotation that carries a command to the Kubernetes controller.
pub const COMMAND_ANNOTATION: &str = "sluice.dev/command";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    Pause,
    Resume,
    Promote,
    Abort,
}

impl Command {
    pub const ALL: [Command; 4] = [
        Command::Pause,
        Command::Resume,
        Command::Promote,
        Command::Abort,
    ];

    /// The word people type and the request carries.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Pause => "pause",
            Command::Resume => "resume",
            Command::Promote => "promote",
            Command::Abort => "abort",
        }
    }

    /// The request for this command with a fresh `id`: `"pause/<id>"`.
    pub fn request(self, id: &str) -> String {
        format!("{}/{id}", self.as_str())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A word that is not a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the command must be pause, resume, promote or abort")]
pub struct UnknownCommand;

impl FromStr for Command {
    type Err = UnknownCommand;

    fn from_str(word: &str) -> std::result::Result<Self, Self::Err> {
        Command::ALL
            .into_iter()
            .find(|c| c.as_str() == word)
            .ok_or(UnknownCommand)
    }
}

/// `"pause/1a2b"` -> the whole value (the id recorded in status) and the command. `field` names where
/// the value came from, for the error.
pub fn parse_request(field: &str, value: &str) -> Result<(String, Command)> {
    let invalid = |problem: &str| Error::invalid(field, value, problem);
    let (word, id) = value
        .trim()
        .split_once('/')
        .ok_or_else(|| invalid("expected <command>/<id>"))?;
    if id.is_empty() {
        return Err(invalid("the id after / is empty"));
    }
    let command = word
        .parse()
        .map_err(|e: UnknownCommand| invalid(&e.to_string()))?;
    Ok((value.trim().to_string(), command))
}
