//! Commands for a local controller (`sluice pause|resume|promote|abort NAME --state-file PATH`): one
//! file per command in `<state file>.commands/`, named `<send time>-<pid>-<n>.<rollout>` with a
//! fixed-width key, so that a rollout's commands sort in the order they were sent. A file holds the
//! request `<command>/<id>`. The controller takes them oldest first and removes each only after the
//! state file records its id (`status.lastCommand`): a crash or a failed round never loses one, and
//! none is applied twice.

use super::durable::{create_dir, io, remove_durably, write_atomic};
use crate::schedule::new_command_id;
use rollout::command::{self, Command};
use rollout::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The command files beside one state file.
pub struct CommandQueue {
    pub dir: PathBuf,
}

/// A command waiting in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub path: PathBuf,
    /// `<command>/<id>`, the value status records.
    pub request: String,
    pub command: Command,
}

impl CommandQueue {
    /// `<state file>.commands/`.
    pub fn beside(state_file: &Path) -> CommandQueue {
        let mut name = state_file.file_name().unwrap_or_default().to_os_string();
        name.push(".commands");
        CommandQueue {
            dir: state_file.with_file_name(name),
        }
    }

    /// Queues `command` for `rollout` with a fresh id; returns the request.
    pub fn send(&self, rollout: &str, command: Command) -> Result<String> {
        check_name("name", rollout)?;
        create_dir(&self.dir)?;
        let request = command.request(&new_command_id());
        write_atomic(
            &self.dir.join(format!("{}.{rollout}", send_key())),
            request.as_bytes(),
        )?;
        Ok(request)
    }

    /// `rollout`'s commands, oldest first. A file that is no request is logged and removed: it can
    /// never be applied, and must not hold up the commands after it.
    pub fn pending(&self, rollout: &str) -> Result<Vec<Pending>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(io(&self.dir, source)),
        };
        let mut files: Vec<(String, PathBuf)> = entries
            .filter_map(std::result::Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let (key, owner) = name.split_once('.')?;
                (owner == rollout && is_send_key(key)).then(|| (key.to_string(), entry.path()))
            })
            .collect();
        files.sort();
        let mut pending = Vec::with_capacity(files.len());
        for (_, path) in files {
            let text = match std::fs::read_to_string(&path) {
                Ok(text) => text,
                // Removed since the listing (by another controller on this state file).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(source) => return Err(io(&path, source)),
            };
            match command::parse_request(&path.display().to_string(), &text) {
                Ok((request, command)) => pending.push(Pending {
                    path,
                    request,
                    command,
                }),
                Err(e) => {
                    tracing::warn!(rollout, "dropping a command file that is no command: {e}");
                    remove_durably(&path)?;
                }
            }
        }
        Ok(pending)
    }

    /// Removes the commands that status has settled and returns those still waiting. Commands run in
    /// queue order, so every command up to the one status records was applied, or was overtaken by
    /// that abort (see [`pick`]) and is moot: everyone is on stable.
    pub fn settle(&self, rollout: &str, recorded: Option<&str>) -> Result<Vec<Pending>> {
        let mut pending = self.pending(rollout)?;
        let Some(recorded) = recorded else {
            return Ok(pending);
        };
        let Some(at) = pending.iter().position(|p| p.request == recorded) else {
            return Ok(pending);
        };
        for done in pending.drain(..=at) {
            if done.request != recorded {
                tracing::warn!(
                    rollout,
                    "{} not applied: overtaken by {recorded}",
                    done.request
                );
            }
            remove_durably(&done.path)?;
        }
        Ok(pending)
    }

    /// Removes every command waiting for `rollout` (it is gone: they are moot).
    pub fn drop_all(&self, rollout: &str) -> Result<Vec<Pending>> {
        let pending = self.pending(rollout)?;
        for p in &pending {
            remove_durably(&p.path)?;
        }
        Ok(pending)
    }
}

/// The command to apply now: the oldest, unless it failed and waits for its retry (`waiting`); then
/// the first abort after it that is not waiting, so that an abort never waits behind a command that
/// cannot be applied now (a pause while the spec is invalid). The commands it overtakes are then
/// moot and are removed unapplied once it is recorded.
pub fn pick(pending: &[Pending], waiting: impl Fn(&str) -> bool) -> Option<&Pending> {
    let oldest = pending.first()?;
    if !waiting(&oldest.request) {
        return Some(oldest);
    }
    pending
        .iter()
        .skip(1)
        .find(|p| p.command == Command::Abort && !waiting(&p.request))
}

/// A rollout name that can be part of a file name.
pub fn check_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.contains(['/', '\\', '\0']) || name.len() > 200 {
        let shown: String = name.chars().take(64).collect();
        return Err(Error::invalid(
            field,
            shown,
            "a rollout name must be 1-200 characters without '/', '\\' or NUL",
        ));
    }
    Ok(())
}

/// `<nanoseconds since the epoch, 20 digits>-<pid, 10 digits>-<n, 6 digits>`: sorts in send order.
fn send_key() -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = SEQ.fetch_add(1, Ordering::Relaxed) % 1_000_000;
    format!("{nanos:020}-{:010}-{n:06}", std::process::id())
}

fn is_send_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('-').collect();
    matches!(parts.as_slice(), [a, b, c] if [(a, 20), (b, 10), (c, 6)]
        .iter()
        .all(|(p, len)| p.len() == *len && p.bytes().all(|b| b.is_ascii_digit())))
}
