//! The mirror stage: which requests are copied to the canary (pure, allocation-free), and how the
//! canary's answer compares with stable's.

use crate::checks::{at_most, length_at_most, percent_threshold};
use crate::error::{ConfigError, Result};
use crate::murmur3::bucket_basis_points;
use crate::schema::{Bucketing, Mirror};

/// Copied when a mirror lists no methods: the methods RFC 9110 defines as safe, minus TRACE.
pub const DEFAULT_MIRROR_METHODS: [&str; 3] = ["GET", "HEAD", "OPTIONS"];
pub const MAX_MIRROR_METHODS: usize = 16;
const MAX_METHOD_LEN: usize = 32;
/// Longer than any cluster name Istio writes (`outbound|65535|<subset>|<253-byte host>`).
pub const MAX_CLUSTER_LEN: usize = 512;

#[derive(Debug, Clone)]
pub struct CompiledMirror {
    /// Basis points of requests copied, 1..=10000.
    pub(crate) threshold: u16,
    pub(crate) methods: Vec<Box<[u8]>>,
    /// Methods were listed: requests with a body are copied too.
    pub bodies: bool,
    pub cluster: String,
    pub timeout_ms: u64,
}

impl CompiledMirror {
    /// Whether a request of `method` (with or without a body) is copied, `random` being this request's
    /// draw: the share copied is the configured percent of the eligible requests.
    pub fn copies(&self, method: &[u8], has_body: bool, random: u32) -> bool {
        self.takes(method, has_body) && self.selects(random)
    }

    /// Whether requests of `method` (with or without a body) are copied at all.
    pub fn takes(&self, method: &[u8], has_body: bool) -> bool {
        (self.bodies || !has_body) && self.methods.iter().any(|m| **m == *method)
    }

    /// Whether this request's draw falls within the share copied.
    pub fn selects(&self, random: u32) -> bool {
        bucket_basis_points(random) < self.threshold
    }

    /// The methods copied, for logs and `sluice plan`.
    pub fn methods(&self) -> impl Iterator<Item = &str> {
        self.methods
            .iter()
            .map(|m| std::str::from_utf8(m).unwrap_or("?"))
    }
}

/// Validates a stage's mirror.
pub(crate) fn compile_mirror(path: &str, mirror: &Mirror) -> Result<CompiledMirror> {
    let path = format!("{path}.stage.mirror");
    let threshold = percent_threshold(
        &format!("{path}.percent"),
        mirror.percent,
        Bucketing::BasisPoints,
    )?;
    if threshold == 0 {
        return Err(ConfigError::new(
            format!("{path}.percent"),
            mirror.percent,
            "must be above 0 (remove the mirror to stop copying)",
        ));
    }
    let methods = match &mirror.methods {
        None => DEFAULT_MIRROR_METHODS
            .iter()
            .map(|m| m.as_bytes().into())
            .collect(),
        Some(listed) => methods(&path, listed)?,
    };
    let cluster_path = format!("{path}.cluster");
    length_at_most(&cluster_path, &mirror.cluster, MAX_CLUSTER_LEN)?;
    if mirror.cluster.is_empty() || mirror.cluster.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(ConfigError::new(
            cluster_path,
            &mirror.cluster,
            "must be an Envoy cluster name (no spaces or control characters)",
        ));
    }
    if !(1..=60_000).contains(&mirror.timeout_ms) {
        return Err(ConfigError::new(
            format!("{path}.timeout_ms"),
            mirror.timeout_ms,
            "must be 1..=60000",
        ));
    }
    Ok(CompiledMirror {
        threshold,
        methods,
        bodies: mirror.methods.is_some(),
        cluster: mirror.cluster.clone(),
        timeout_ms: mirror.timeout_ms,
    })
}

fn methods(path: &str, listed: &[String]) -> Result<Vec<Box<[u8]>>> {
    at_most(&format!("{path}.methods"), listed.len(), MAX_MIRROR_METHODS)?;
    if listed.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.methods"),
            "[]",
            "list at least one method, or omit it for GET, HEAD and OPTIONS",
        ));
    }
    let mut out: Vec<Box<[u8]>> = Vec::with_capacity(listed.len());
    for (i, method) in listed.iter().enumerate() {
        let field = format!("{path}.methods[{i}]");
        length_at_most(&field, method, MAX_METHOD_LEN)?;
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase() || b == b'-') {
            return Err(ConfigError::new(
                field,
                method,
                "must be an HTTP method as sent, in upper case (GET)",
            ));
        }
        if method == "CONNECT" {
            return Err(ConfigError::new(field, method, "a tunnel cannot be copied"));
        }
        if out.iter().any(|m| **m == *method.as_bytes()) {
            return Err(ConfigError::new(field, method, "listed twice"));
        }
        out.push(method.as_bytes().into());
    }
    Ok(out)
}

/// The class of an HTTP status (2 for 2xx...); 0 when the answer had none (reset, timeout, garbled):
/// a copy that got no answer differs from any primary that did.
pub fn status_class(status: Option<&[u8]>) -> u8 {
    status
        .and_then(|s| std::str::from_utf8(s).ok())
        .and_then(|s| s.trim().parse::<u16>().ok())
        .filter(|code| (100..600).contains(code))
        .map_or(0, |code| (code / 100) as u8)
}
