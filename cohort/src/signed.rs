//! Signed cookie values: `<id>.<signature>`, the signature being the unpadded base64url HMAC-SHA256
//! (RFC 2104) of `<id>`. Checked without allocating; a client without the key cannot make one.

use sha2::{Digest, Sha256};

const BLOCK: usize = 64;
/// Unpadded base64url of 32 bytes.
const SIGNATURE_LEN: usize = 43;

/// HMAC-SHA256 of `message` under a 32-byte key.
pub fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut inner_pad = [0x36u8; BLOCK];
    let mut outer_pad = [0x5cu8; BLOCK];
    for (i, k) in key.iter().enumerate() {
        inner_pad[i] ^= k;
        outer_pad[i] ^= k;
    }
    let inner = Sha256::new()
        .chain_update(inner_pad)
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(outer_pad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// The id of a signed value, when its signature is valid under `key`.
pub fn verified_id<'v>(value: &'v [u8], key: &[u8; 32]) -> Option<&'v [u8]> {
    let dot = value.iter().rposition(|&b| b == b'.')?;
    let (id, signature) = (&value[..dot], &value[dot + 1..]);
    if id.is_empty() || signature.len() != SIGNATURE_LEN {
        return None;
    }
    let given = decode_signature(signature)?;
    let expected = hmac_sha256(key, id);
    // Every byte is compared so timing does not reveal how much of a forged signature was right.
    let difference = given
        .iter()
        .zip(&expected)
        .fold(0u8, |d, (a, b)| d | (a ^ b));
    (difference == 0).then_some(id)
}

/// Decodes 43 unpadded base64url characters into 32 bytes.
fn decode_signature(text: &[u8]) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            *out.get_mut(n)? = (acc >> bits) as u8;
            n += 1;
        }
    }
    // 43 characters carry 258 bits: the 2 left over must be zero, or two texts would sign alike.
    (n == 32 && acc & ((1 << bits) - 1) == 0).then_some(out)
}

/// Unpadded base64url of a signature: what an application puts after the dot.
pub fn encode_signature(mac: &[u8; 32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(SIGNATURE_LEN);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in mac {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2_shape() {
        // RFC 4231 test case 2 uses a 4-byte key; padded to 32 bytes with zeros the HMAC is the same,
        // since HMAC zero-pads short keys to the block size.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signed_value_verifies_and_a_changed_one_does_not() {
        let key = [7u8; 32];
        let signed = format!("alice.{}", encode_signature(&hmac_sha256(&key, b"alice")));
        assert_eq!(verified_id(signed.as_bytes(), &key), Some(&b"alice"[..]));
        let forged = signed.replacen("alice", "alicf", 1);
        assert_eq!(verified_id(forged.as_bytes(), &key), None);
        assert_eq!(verified_id(signed.as_bytes(), &[8u8; 32]), None);
        assert_eq!(verified_id(b"alice", &key), None);
        assert_eq!(verified_id(b"alice.", &key), None);
        let mut bad_tail = signed.clone().into_bytes();
        *bad_tail.last_mut().unwrap() = b'!';
        assert_eq!(verified_id(&bad_tail, &key), None);
    }
}
