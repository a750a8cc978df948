//! Field checks shared by the compile steps, and the documented limits on what one config may hold: every
//! check is linear in the document, and past a limit the config is refused, so no config stalls a worker.

use crate::error::{ConfigError, Result};
use crate::schema::{Bucketing, SLUICE_HEADER_PREFIX};

/// Bytes of the whole JSON document.
pub const MAX_CONFIG_BYTES: usize = 32 * 1024 * 1024;
pub const MAX_CITIES: usize = 200_000;
pub const MAX_ROLLOUTS: usize = 1_000;
pub const MAX_REGIONS_PER_STAGE: usize = 256;
pub const MAX_IDENTITY_SOURCES: usize = 8;
pub const MAX_OVERRIDE_TOKENS: usize = 64;
pub const MAX_SALT_LEN: usize = 256;
pub const MAX_HEADER_NAME_LEN: usize = 128;
pub const MAX_PATH_PREFIX_LEN: usize = 1024;
/// `namespace/name` of a Kubernetes object: 253 + 1 + 253.
pub const MAX_OWNER_LEN: usize = 507;

/// Refuses a list longer than `max`, naming the list.
pub(crate) fn at_most(path: &str, len: usize, max: usize) -> Result<()> {
    if len > max {
        return Err(ConfigError::new(
            path,
            len,
            format!("too many entries (the limit is {max})"),
        ));
    }
    Ok(())
}

/// Refuses a string longer than `max` bytes, naming the field.
pub(crate) fn length_at_most(path: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(ConfigError::new(
            path,
            value,
            format!("longer than {max} bytes"),
        ));
    }
    Ok(())
}

/// Checks an HTTP header name and returns it lowercased (Envoy stores header names lowercased).
pub(crate) fn check_header(path: &str, name: &str) -> Result<String> {
    length_at_most(path, name, MAX_HEADER_NAME_LEN)?;
    if name.is_empty() || !name.bytes().all(is_token_byte) {
        return Err(ConfigError::new(
            path,
            name,
            "must be an HTTP header name (letters, digits, - and _)",
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// A header sluice sets or honours: it must start with `x-sluice-`, so that stripping every inbound
/// `x-sluice-*` header also strips it after a rename.
pub(crate) fn check_sluice_header(path: &str, name: &str) -> Result<String> {
    let lowered = check_header(path, name)?;
    if !lowered.starts_with(SLUICE_HEADER_PREFIX) || lowered.len() == SLUICE_HEADER_PREFIX.len() {
        return Err(ConfigError::new(
            path,
            name,
            format!(
                "must start with {SLUICE_HEADER_PREFIX:?} (every such inbound header is stripped)"
            ),
        ));
    }
    Ok(lowered)
}

pub(crate) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn lower(s: &str) -> Box<[u8]> {
    s.to_ascii_lowercase().into_bytes().into_boxed_slice()
}

/// 64 hex digits as 32 bytes. A value that is not one is refused without being shown: it may be the
/// secret itself, pasted where its digest belongs.
pub(crate) fn sha256_field(path: &str, hex: &str) -> Result<[u8; 32]> {
    parse_sha256_hex(hex).ok_or_else(|| {
        ConfigError::redacted(
            path,
            "must be 64 hex digits (a SHA-256 digest, not a secret; the value is not shown)",
        )
    })
}

fn parse_sha256_hex(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (slot, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        let digit = |c: u8| (c as char).to_digit(16);
        *slot = (digit(pair[0])? * 16 + digit(pair[1])?) as u8;
    }
    Some(out)
}

pub(crate) fn percent_threshold(path: &str, percent: f64, bucketing: Bucketing) -> Result<u16> {
    if !percent.is_finite() || !(0.0..=100.0).contains(&percent) {
        return Err(ConfigError::new(path, percent, "must be between 0 and 100"));
    }
    let basis_points = (percent * 100.0).round();
    if (percent * 100.0 - basis_points).abs() > 1e-6 {
        return Err(ConfigError::new(
            path,
            percent,
            "finer than the 0.01 resolution",
        ));
    }
    let basis_points = basis_points as u16;
    match bucketing {
        Bucketing::BasisPoints => Ok(basis_points),
        Bucketing::Unleash if basis_points % 100 == 0 => Ok(basis_points / 100),
        Bucketing::Unleash => Err(ConfigError::new(
            path,
            percent,
            "unleash bucketing takes whole percents",
        )),
    }
}
