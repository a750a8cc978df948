//! Where the user id comes from: the identity sources, compiled, and the lookup over a request's headers.
//! A header or plain cookie can be set by any client; a signed cookie only by who holds the key.

use crate::checks::{at_most, check_header, is_token_byte, sha256_field, MAX_IDENTITY_SOURCES};
use crate::error::{ConfigError, Result};
use crate::schema::IdentitySource;
use crate::signed::verified_id;
use std::fmt;

/// An HMAC key; its Debug form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacKey(pub(crate) [u8; 32]);

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("HmacKey(<redacted>)")
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentityLookup {
    /// A lowercased header name.
    Header(String),
    Cookie(String),
    SignedCookie {
        name: String,
        key: HmacKey,
    },
}

pub(crate) fn compile_sources(sources: &[IdentitySource]) -> Result<Vec<IdentityLookup>> {
    if sources.is_empty() {
        return Err(ConfigError::new(
            "identity.sources",
            "[]",
            "at least one identity source is needed",
        ));
    }
    at_most("identity.sources", sources.len(), MAX_IDENTITY_SOURCES)?;
    let mut out = Vec::with_capacity(sources.len());
    for (i, source) in sources.iter().enumerate() {
        let path = format!("identity.sources[{i}]");
        out.push(match source {
            IdentitySource::Header(name) => {
                IdentityLookup::Header(check_header(&format!("{path}.header"), name)?)
            }
            IdentitySource::Cookie(name) => {
                IdentityLookup::Cookie(cookie_name(&format!("{path}.cookie"), name)?)
            }
            IdentitySource::SignedCookie(signed) => IdentityLookup::SignedCookie {
                name: cookie_name(&format!("{path}.signed_cookie.name"), &signed.name)?,
                key: HmacKey(sha256_field(
                    &format!("{path}.signed_cookie.key_sha256"),
                    &signed.key_sha256,
                )?),
            },
        });
    }
    Ok(out)
}

fn cookie_name(path: &str, name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 128 || !name.bytes().all(is_token_byte) {
        return Err(ConfigError::new(
            path,
            name,
            "must be a cookie name of 1..=128 token characters",
        ));
    }
    Ok(name.to_string())
}

/// The user id: the first source present and non-empty, in the configured order. `headers` are
/// (lowercase name, value) pairs as the proxy hands them over; every `cookie` header is read, since
/// HTTP/1 clients may send several.
pub fn user_id<'h>(
    sources: &[IdentityLookup],
    headers: &'h [(String, Vec<u8>)],
) -> Option<&'h [u8]> {
    let cookies = || {
        headers
            .iter()
            .filter(|(n, _)| n == "cookie")
            .map(|(_, v)| v.as_slice())
    };
    sources.iter().find_map(|source| match source {
        IdentityLookup::Header(name) => headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
            .filter(|v| !v.trim_ascii().is_empty()),
        IdentityLookup::Cookie(name) => {
            cookies().find_map(|header| cookie_value(header, name.as_bytes()))
        }
        IdentityLookup::SignedCookie { name, key } => cookies()
            .find_map(|header| cookie_value(header, name.as_bytes()))
            .and_then(|value| verified_id(value, &key.0)),
    })
}

/// The value of cookie `name` in a `Cookie` header (`a=1; uid=42`), without allocating.
pub fn cookie_value<'h>(header: &'h [u8], name: &[u8]) -> Option<&'h [u8]> {
    header.split(|&b| b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let eq = pair.iter().position(|&b| b == b'=')?;
        let (key, value) = (&pair[..eq], &pair[eq + 1..]);
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        (key.trim_ascii() == name && !value.is_empty()).then_some(value)
    })
}
