//! A table from case-insensitive keys (city keys) to a number and a few bytes, laid out for the
//! request path. A lookup reads one slot (whose tag rejects most wrong candidates) and one record
//! holding the key, number and bytes side by side: about two cache lines, where a map of boxed keys
//! and boxed values touched up to four. The request's value is lowercased word by word while hashing
//! and comparing ([`hash_lowered`], [`eq_lowered`], also used for authorities), so nothing is copied
//! and no memcmp is called.

use std::fmt;

/// City keys, regions and authorities longer than this cannot match.
pub const MAX_KEY_LEN: usize = 128;

/// What a key maps to: for a city, its population and lowercased region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'t> {
    pub(crate) number: u64,
    pub(crate) bytes: &'t [u8],
}

/// Bytes before a record's key: the number (8, little-endian), key length, bytes' length.
const HEADER: usize = 10;

pub(crate) struct KeyTable {
    /// Open addressing with linear probing, a power of two at most ~2/3 full so that every probe ends
    /// at an empty slot: `tag << 32 | (record offset + 1)`, 0 = empty.
    slots: Box<[u64]>,
    /// Records back to back: header, lowercased key, bytes.
    records: Vec<u8>,
    len: usize,
}

impl fmt::Debug for KeyTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyTable").field("keys", &self.len).finish()
    }
}

impl Default for KeyTable {
    fn default() -> KeyTable {
        KeyTable::with_capacity(0)
    }
}

impl KeyTable {
    /// An empty table with room for `capacity` keys.
    pub(crate) fn with_capacity(capacity: usize) -> KeyTable {
        let slots = (capacity + capacity / 2 + 1).next_power_of_two();
        KeyTable {
            slots: vec![0; slots].into_boxed_slice(),
            records: Vec::new(),
            len: 0,
        }
    }

    /// Adds a key; `key` is lowercased and at most [`MAX_KEY_LEN`] bytes, so is `bytes`. False (and
    /// nothing added) when the key is already present, too long, or past 4 GiB of records.
    pub(crate) fn insert(&mut self, key: &[u8], number: u64, bytes: &[u8]) -> bool {
        let (Ok(key_len), Ok(bytes_len), Ok(slot_offset)) = (
            u8::try_from(key.len()),
            u8::try_from(bytes.len()),
            u32::try_from(self.records.len() + 1),
        ) else {
            return false;
        };
        if key.len() > MAX_KEY_LEN || self.get(key).is_some() {
            return false;
        }
        if 3 * (self.len + 1) > 2 * self.slots.len() {
            self.grow();
        }
        place(&mut self.slots, hash_lowered(key), slot_offset);
        self.records.extend_from_slice(&number.to_le_bytes());
        self.records.extend_from_slice(&[key_len, bytes_len]);
        self.records.extend_from_slice(key);
        self.records.extend_from_slice(bytes);
        self.len += 1;
        true
    }

    /// The table's slots, records and key count, for [`KeyTable::from_parts`] in another VM.
    pub(crate) fn parts(&self) -> (&[u64], &[u8], usize) {
        (&self.slots, &self.records, self.len)
    }

    /// The table [`KeyTable::parts`] gave, or `None` when the parts could not have come from it: a
    /// lookup must always reach an empty slot and every slot must point into the records, so a
    /// damaged copy is refused rather than looping or misreading.
    pub(crate) fn from_parts(slots: Box<[u64]>, records: Vec<u8>, len: usize) -> Option<KeyTable> {
        let used = slots.iter().filter(|&&slot| slot != 0).count();
        let points_inside = slots
            .iter()
            .all(|&slot| slot == 0 || ((slot as u32) as usize) <= records.len());
        (slots.len().is_power_of_two()
            && used == len
            && 3 * used <= 2 * slots.len()
            && points_inside)
            .then_some(KeyTable {
                slots,
                records,
                len,
            })
    }

    /// Doubles the slots and places every record again.
    fn grow(&mut self) {
        let mut slots = vec![0; 2 * self.slots.len()].into_boxed_slice();
        let mut offset = 0;
        while let Some((key, entry)) = self.record(offset) {
            // Offsets were checked to fit in a slot when their record was inserted.
            place(&mut slots, hash_lowered(key), offset as u32 + 1);
            offset += HEADER + key.len() + entry.bytes.len();
        }
        self.slots = slots;
    }

    /// The entry of `key`, compared without regard to ASCII case.
    #[inline]
    pub(crate) fn get(&self, key: &[u8]) -> Option<Entry<'_>> {
        if key.len() > MAX_KEY_LEN {
            return None;
        }
        let hash = hash_lowered(key);
        let mask = self.slots.len() - 1;
        let mut i = hash as usize & mask;
        loop {
            let slot = *self.slots.get(i)?;
            if slot == 0 {
                return None;
            }
            if slot & TAG_MASK == hash & TAG_MASK {
                let (stored, entry) = self.record((slot as u32).wrapping_sub(1) as usize)?;
                if eq_lowered(key, stored) {
                    return Some(entry);
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// The record at `offset`: its key and entry.
    fn record(&self, offset: usize) -> Option<(&[u8], Entry<'_>)> {
        let (header, rest) = self.records.get(offset..)?.split_first_chunk::<HEADER>()?;
        let (number, lens) = header.split_first_chunk::<8>()?;
        let (key_len, bytes_len) = (usize::from(lens[0]), usize::from(lens[1]));
        let key = rest.get(..key_len)?;
        let bytes = rest.get(key_len..key_len + bytes_len)?;
        let number = u64::from_le_bytes(*number);
        Some((key, Entry { number, bytes }))
    }
}

/// Puts the record at `slot_offset` (its offset + 1) in the first free slot from its hash's. `slots`
/// has a free slot.
fn place(slots: &mut [u64], hash: u64, slot_offset: u32) {
    let mask = slots.len() - 1;
    let mut i = hash as usize & mask;
    while slots[i] != 0 {
        i = (i + 1) & mask;
    }
    slots[i] = (hash & TAG_MASK) | u64::from(slot_offset);
}

/// The high half of a hash, kept in the slot (the low half picks the slot).
const TAG_MASK: u64 = 0xffff_ffff_0000_0000;

/// ASCII-lowercases eight bytes at once; bytes outside `A..=Z` are unchanged.
#[inline]
fn lower_word(word: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let seven = word & LOW7;
    // Bit 7 of each byte: set when the byte is >= 'A', resp. > 'Z' (no carry crosses bytes).
    let at_least_a = seven + 0x3f3f_3f3f_3f3f_3f3f;
    let above_z = seven + 0x2525_2525_2525_2525;
    let upper = at_least_a & !above_z & !word & HIGH;
    word | (upper >> 2)
}

/// The 8 bytes of `bytes` from `start` (which is below its length) as a little-endian word,
/// zero-padded past the end. One load, even for the last word of a key of 8 bytes or more.
#[inline]
fn word(bytes: &[u8], start: usize) -> u64 {
    if let Some(w) = bytes.get(start..).and_then(<[u8]>::first_chunk::<8>) {
        return u64::from_le_bytes(*w);
    }
    match bytes.last_chunk::<8>() {
        // The 8 bytes ending where `bytes` ends, shifted down past those already read.
        Some(w) => u64::from_le_bytes(*w) >> (8 * (start + 8 - bytes.len())),
        None => bytes
            .iter()
            .rev()
            .fold(0u64, |word, &b| (word << 8) | u64::from(b)),
    }
}

/// A hash of `bytes` lowercased. Keys come from the config, not from clients, so a fixed function
/// is enough; requests only probe.
#[inline]
pub(crate) fn hash_lowered(bytes: &[u8]) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut h = (bytes.len() as u64).wrapping_mul(K);
    let mut start = 0;
    while start < bytes.len() {
        h = (h ^ lower_word(word(bytes, start))).wrapping_mul(K);
        h ^= h >> 29;
        start += 8;
    }
    // MurmurHash3's finalizer: every input bit reaches both the slot index and the tag.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// `value` lowercased equals `lowered` (which already is).
#[inline]
pub(crate) fn eq_lowered(value: &[u8], lowered: &[u8]) -> bool {
    if value.len() != lowered.len() {
        return false;
    }
    let mut start = 0;
    while start < value.len() {
        if lower_word(word(value, start)) != word(lowered, start) {
            return false;
        }
        start += 8;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_word_matches_to_ascii_lowercase_for_every_byte() {
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b, b'Z', b'@', b'[', 0xc1, b'a', b'A', b]);
            let mut expected = word.to_le_bytes();
            expected.make_ascii_lowercase();
            assert_eq!(lower_word(word).to_le_bytes(), expected, "byte {b:#x}");
        }
    }

    #[test]
    fn finds_every_key_whatever_its_case_and_nothing_else() {
        // Starts too small: the table grows as keys arrive.
        let mut table = KeyTable::with_capacity(1);
        for i in 0..1000u64 {
            let key = format!("city-{i}-{}", "x".repeat((i % 20) as usize));
            assert!(table.insert(key.as_bytes(), i, b"eu"));
        }
        assert!(!table.insert(b"city-0-", 5, b"us"), "duplicate");
        for i in 0..1000u64 {
            let key = format!("CITY-{i}-{}", "X".repeat((i % 20) as usize));
            let entry = table.get(key.as_bytes());
            assert_eq!(entry.map(|e| (e.number, e.bytes)), Some((i, &b"eu"[..])));
            assert_eq!(table.get(format!("city-{i}-!").as_bytes()), None);
        }
        assert_eq!(table.get(b""), None);
        assert_eq!(KeyTable::with_capacity(0).get(b"x"), None);
    }
}
