//! What `sluice validate` found, and how it prints: `FILE: PATH = VALUE: message` lines for people,
//! or a JSON array for CI annotations.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The filter or the controller would refuse it.
    Error,
    /// Said so that nothing is skipped silently (a kind that is not sluice's, a check that needs the
    /// cluster); never fails the run.
    Note,
}

/// Where a finding is: a file, and a document in it (1-based; 0 = the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct At {
    pub file: String,
    pub document: usize,
    /// `CohortRollout shop/checkout`, `WasmPlugin istio-system/sluice`, `sluice config`; empty when
    /// the document could not be read.
    pub object: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    pub file: String,
    pub document: usize,
    pub object: String,
    /// The field, as a JSON/YAML path inside the document (`.` for the document itself).
    pub path: String,
    /// The value as written, quoted; empty when not shown (a secret, or none to show).
    pub value: String,
    pub message: String,
    pub severity: Severity,
}

/// The findings, in the order the files and documents were given.
#[derive(Default)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// Documents per file, to say which document a line is about only when there are several.
    pub documents: Vec<(String, usize)>,
}

impl Report {
    pub fn error(&mut self, at: &At, path: &str, value: &str, message: impl Into<String>) {
        self.push(at, path, value, message.into(), Severity::Error);
    }

    pub fn note(&mut self, at: &At, message: impl Into<String>) {
        self.push(at, ".", "", message.into(), Severity::Note);
    }

    /// A controller error: `InvalidSpec` keeps its field, value and problem apart.
    pub fn rollout_error(&mut self, at: &At, error: rollout::Error) {
        match error {
            rollout::Error::InvalidSpec {
                field,
                value,
                problem,
            } => self.error(at, &field, &value, problem),
            other => self.error(at, ".", "", other.to_string()),
        }
    }

    /// A filter error (`cohort::ConfigError`), its path under `prefix` (where the document carries the
    /// sluice config, e.g. `spec.pluginConfig`).
    pub fn config_error(&mut self, at: &At, prefix: &str, error: cohort::ConfigError) {
        let path = join(prefix, &error.path);
        self.error(at, &path, &error.value, error.problem);
    }

    fn push(&mut self, at: &At, path: &str, value: &str, message: String, severity: Severity) {
        self.findings.push(Finding {
            file: at.file.clone(),
            document: at.document,
            object: at.object.clone(),
            path: path.to_string(),
            value: value.to_string(),
            message,
            severity,
        });
    }

    pub fn errors(&self) -> usize {
        let errors = self
            .findings
            .iter()
            .filter(|f| f.severity == Severity::Error);
        errors.count()
    }

    /// Sorted by file (in the order given) and document; a finding's own order is kept within one.
    pub fn sort(&mut self) {
        let order = |file: &str| self.documents.iter().position(|(f, _)| f == file);
        let mut keyed: Vec<_> = self
            .findings
            .drain(..)
            .map(|f| ((order(&f.file), f.document), f))
            .collect();
        keyed.sort_by_key(|(key, _)| *key);
        self.findings = keyed.into_iter().map(|(_, f)| f).collect();
    }

    /// One line per finding: `FILE: PATH = VALUE: message`, `FILE#2: ...` when the file holds several
    /// documents; notes as `FILE: note: message`.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for f in &self.findings {
            let several = self
                .documents
                .iter()
                .any(|(file, n)| *file == f.file && *n > 1);
            let place = match (several, f.document) {
                (true, n) if n > 0 => format!("{}#{n}", f.file),
                _ => f.file.clone(),
            };
            let line = match (f.severity, f.value.is_empty()) {
                (Severity::Note, _) => format!("{place}: note: {}", f.message),
                (Severity::Error, true) => format!("{place}: {}: {}", f.path, f.message),
                (Severity::Error, false) => {
                    format!("{place}: {} = {}: {}", f.path, f.value, f.message)
                }
            };
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    pub fn json(&self) -> serde_json::Result<String> {
        serde_json::to_string_pretty(&self.findings).map(|s| s + "\n")
    }
}

/// `prefix.path`, where `path` `.` is the document itself and an empty prefix is the top level.
pub fn join(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path == "." || path.is_empty()) {
        (true, _) => path.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if path.starts_with('[') => format!("{prefix}{path}"),
        (false, false) => format!("{prefix}.{path}"),
    }
}
