//! MurmurHash3 x86_32, fed in pieces so that `salt + ":" + user_id` is hashed without building the string.

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

/// Incremental murmur3_x86_32. Feeding "ab" then "c" gives the same hash as feeding "abc".
#[derive(Debug, Clone, Copy)]
pub struct Murmur3 {
    h: u32,
    tail: u32,
    tail_len: u32,
    total_len: u32,
}

impl Murmur3 {
    pub fn new(seed: u32) -> Self {
        Self {
            h: seed,
            tail: 0,
            tail_len: 0,
            total_len: 0,
        }
    }

    #[inline]
    fn mix_block(&mut self, k: u32) {
        let k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        self.h ^= k;
        self.h = self
            .h
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }

    pub fn write(&mut self, mut bytes: &[u8]) {
        self.total_len = self.total_len.wrapping_add(bytes.len() as u32);
        // Complete a partial block left over from the previous piece.
        while self.tail_len > 0 {
            let Some((&b, rest)) = bytes.split_first() else {
                return;
            };
            self.tail |= u32::from(b) << (8 * self.tail_len);
            self.tail_len += 1;
            bytes = rest;
            if self.tail_len == 4 {
                let k = self.tail;
                self.mix_block(k);
                self.tail = 0;
                self.tail_len = 0;
            }
        }
        let mut blocks = bytes.chunks_exact(4);
        for block in &mut blocks {
            self.mix_block(u32::from_le_bytes([block[0], block[1], block[2], block[3]]));
        }
        for &b in blocks.remainder() {
            self.tail |= u32::from(b) << (8 * self.tail_len);
            self.tail_len += 1;
        }
    }

    pub fn finish(self) -> u32 {
        let mut h = self.h;
        if self.tail_len > 0 {
            h ^= self.tail.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        }
        h ^= self.total_len;
        h ^= h >> 16;
        h = h.wrapping_mul(0x85eb_ca6b);
        h ^= h >> 13;
        h = h.wrapping_mul(0xc2b2_ae35);
        h ^ (h >> 16)
    }
}

/// murmur3_x86_32(bytes, seed).
pub fn murmur3_x86_32(bytes: &[u8], seed: u32) -> u32 {
    let mut m = Murmur3::new(seed);
    m.write(bytes);
    m.finish()
}

/// The sluice hash of a user: `murmur3_x86_32(utf8(salt + ":" + user_id), seed 0)`.
pub fn user_hash(salt: &[u8], user_id: &[u8]) -> u32 {
    salted_user_hash(salted(salt), user_id)
}

/// The hasher once it has read `salt + ":"`. A compiled rollout keeps it, so that each request
/// hashes only its user id.
pub fn salted(salt: &[u8]) -> Murmur3 {
    let mut m = Murmur3::new(0);
    m.write(salt);
    m.write(b":");
    m
}

/// [`user_hash`] continued from [`salted`]`(salt)`.
pub fn salted_user_hash(salted: Murmur3, user_id: &[u8]) -> u32 {
    let mut m = salted;
    m.write(user_id);
    m.finish()
}

/// Basis-point bucket in 0..10000: a user is in the canary iff `bucket < round(percent * 100)`.
pub fn bucket_basis_points(hash: u32) -> u16 {
    (hash % 10_000) as u16
}

/// Unleash-compatible bucket in 1..=100 (`normalizedHash`): canary iff `bucket <= percent`.
pub fn bucket_unleash(hash: u32) -> u8 {
    (hash % 100 + 1) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // Reference values of the canonical implementation (SMHasher).
        assert_eq!(murmur3_x86_32(b"", 0), 0);
        assert_eq!(murmur3_x86_32(b"", 1), 0x514e_28b7);
        assert_eq!(murmur3_x86_32(b"hello", 0), 0x248b_fa47);
        assert_eq!(
            murmur3_x86_32(b"The quick brown fox jumps over the lazy dog", 0),
            0x2e4f_f723
        );
    }

    #[test]
    fn pieces_hash_like_the_whole() {
        let whole = b"checkout-v2:user-12345678";
        for split_a in 0..whole.len() {
            for split_b in split_a..whole.len() {
                let mut m = Murmur3::new(0);
                m.write(&whole[..split_a]);
                m.write(&whole[split_a..split_b]);
                m.write(&whole[split_b..]);
                assert_eq!(
                    m.finish(),
                    murmur3_x86_32(whole, 0),
                    "split at {split_a},{split_b}"
                );
            }
        }
    }

    #[test]
    fn unleash_published_vectors() {
        assert_eq!(bucket_unleash(user_hash(b"gr1", b"123")), 73);
        assert_eq!(bucket_unleash(user_hash(b"groupX", b"999")), 25);
    }
}
