//! Which files `sluice validate` reads. A folder with a kustomization is read as `kubectl apply -k`
//! would apply it: exactly its `resources:` (files, and folders read the same way), so the two example
//! variants (`deploy/example/` and `deploy/example/trafficextension/`) are never mixed. A folder
//! without one is read whole, recursively. Each file is read once, however often it is reached (a
//! folder given with its parent, a base two overlays share).

use super::report::{At, Report};
use serde_yaml::Value;
use std::collections::HashSet;
use std::path::{Component, Path, PathBuf};

/// The names kustomize looks for in a folder, in its order.
const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Fields of a kustomization that change the resources; sluice reads the files as written.
const NOT_RENDERED: [&str; 11] = [
    "patches",
    "patchesJson6902",
    "patchesStrategicMerge",
    "components",
    "namespace",
    "namePrefix",
    "nameSuffix",
    "replacements",
    "transformers",
    "generators",
    "helmCharts",
];

/// The files named, folders expanded (sorted), each once.
pub fn files(named: &[PathBuf], report: &mut Report) -> Vec<PathBuf> {
    let mut found = Found::default();
    for path in named {
        if path == Path::new("-") {
            found.files.push(path.clone());
        } else if path.is_dir() {
            found.folder(path, report);
        } else {
            found.file(path);
        }
    }
    found.files
}

#[derive(Default)]
struct Found {
    files: Vec<PathBuf>,
    /// Canonical paths of the files and folders taken.
    seen: HashSet<PathBuf>,
}

impl Found {
    /// Whether `path` is new (by its canonical path: `deploy/example` and `deploy/x/../example` are
    /// one).
    fn first_time(&mut self, path: &Path) -> bool {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        self.seen.insert(key)
    }

    fn file(&mut self, path: &Path) {
        if self.first_time(path) {
            self.files.push(path.to_path_buf());
        }
    }

    fn folder(&mut self, dir: &Path, report: &mut Report) {
        if !self.first_time(dir) {
            return;
        }
        match KUSTOMIZATION_FILES
            .iter()
            .map(|name| dir.join(name))
            .find(|p| p.is_file())
        {
            Some(kustomization) => self.kustomization(dir, &kustomization, report),
            None => self.walk(dir, report),
        }
    }

    /// A kustomization's resources, in its order.
    fn kustomization(&mut self, dir: &Path, file: &Path, report: &mut Report) {
        let at = At {
            file: file.display().to_string(),
            document: 0,
            object: String::new(),
        };
        let value = match std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| serde_yaml::from_str::<Value>(&text).map_err(|e| e.to_string()))
        {
            Ok(value) => value,
            Err(e) => {
                report.error(&at, ".", "", format!("cannot read the kustomization: {e}"));
                return;
            }
        };
        let rendered: Vec<&str> = NOT_RENDERED
            .iter()
            .copied()
            .filter(|f| value.get(f).is_some())
            .collect();
        if !rendered.is_empty() {
            let note = format!(
                "{} not rendered: its resources are checked as written (`kustomize build {} | \
                 sluice validate -` checks what is applied)",
                rendered.join(", "),
                dir.display()
            );
            report.note(&at, note);
        }
        let resources = value.get("resources").and_then(Value::as_sequence);
        for (i, resource) in resources.into_iter().flatten().enumerate() {
            let field = format!("resources[{i}]");
            let Some(name) = resource.as_str() else {
                report.error(&at, &field, "", "not a path");
                continue;
            };
            let quoted = format!("{name:?}");
            if name.contains("://") || name.starts_with("github.com/") {
                report.note(&at, format!("{field} = {quoted}: remote, not read"));
                continue;
            }
            let path = lexical(&dir.join(name));
            if path.is_dir() {
                self.folder(&path, report);
            } else if path.is_file() {
                self.file(&path);
            } else {
                report.error(&at, &field, &quoted, "not found (kustomize would fail)");
            }
        }
    }

    fn walk(&mut self, dir: &Path, report: &mut Report) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                let at = At {
                    file: dir.display().to_string(),
                    document: 0,
                    object: String::new(),
                };
                report.error(&at, ".", "", format!("cannot read the directory: {e}"));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            let ext = path
                .extension()
                .and_then(|e| e.to_str())
                .unwrap_or_default();
            if path.is_dir() {
                self.folder(&path, report);
            } else if ["yaml", "yml", "json"].contains(&ext.to_ascii_lowercase().as_str()) {
                self.file(&path);
            }
        }
    }
}

/// `path` with `a/..` and `.` taken out, as written (symbolic links not followed): findings name
/// `deploy/example/app/x.yaml`, not `deploy/example/trafficextension/../app/x.yaml`.
fn lexical(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
