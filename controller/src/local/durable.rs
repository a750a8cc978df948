//! Durable writes for local mode's files. A file is replaced by writing a temp file of a unique name
//! beside it, fsyncing it, renaming it over the file and fsyncing the directory: a reader (Envoy's
//! file watch, `sluice status`) sees the old file or the new one, never half of one; two writers never
//! share a temp file; and a write or removal that returned survives a crash.

use rollout::{Error, Result};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Replaces `path` with `bytes`, atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let (tmp, mut file) = create_temp(path)?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|source| io(&tmp, source));
    drop(file);
    let renamed =
        written.and_then(|()| std::fs::rename(&tmp, path).map_err(|source| io(path, source)));
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed?;
    sync_dir(&dir_of(path))
}

/// Removes `path` durably; a file already gone is fine.
pub fn remove_durably(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(&dir_of(path)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(io(path, source)),
    }
}

/// Creates `dir` (and its parents) if missing, durably.
pub fn create_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir).map_err(|source| io(dir, source))?;
    sync_dir(&dir_of(dir))
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| io(dir, source))
}

fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `.<name>.<pid>-<nanos>-<n>.tmp` beside `path`, created exclusively: never another writer's file.
/// The leading dot keeps it out of listings that look for command files.
fn create_temp(path: &Path) -> Result<(PathBuf, File)> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("path", path.display().to_string(), "no file name"))?
        .to_string_lossy();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut last = None;
    for _ in 0..8 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = path.with_file_name(format!(".{name}.{}-{nanos:x}-{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&tmp) {
            Ok(file) => return Ok((tmp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((tmp, e)),
            Err(source) => return Err(io(&tmp, source)),
        }
    }
    let (tmp, source) =
        last.unwrap_or_else(|| (path.to_path_buf(), std::io::ErrorKind::AlreadyExists.into()));
    Err(io(&tmp, source))
}

pub fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

pub fn parse(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Parse {
        path: path.display().to_string(),
        problem: e.to_string(),
    }
}
