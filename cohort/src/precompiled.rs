//! A compiled city table in a flat form that another VM of the same proxy loads instead of compiling.
//! Parsing and hashing a large `cities` map is nearly all of a config's compile time, and a worker
//! serves no request while it compiles; Envoy's main thread, which serves none, configures first and
//! publishes this form, so each worker hashes the document, parses it without its cities and copies
//! the table. The form is bound to the exact document bytes: a worker given any other document, or a
//! damaged form, compiles the document itself.

use crate::compile::{parse, CompiledConfig};
use crate::key_table::KeyTable;
use crate::schema::SluiceConfig;

/// Names the layout; a filter of another version finds a different one and compiles itself.
const MAGIC: &[u8; 8] = b"sluice\x01\x01";
/// Magic, the document's digest (16) and length (the [`FORM_PREFIX`]), then six little-endian u64:
/// the `cities` value's start and end, key count, slot count, records length, and the header's own
/// length as a check.
const HEADER: usize = 8 + 16 + 7 * 8;

/// How many bytes a form starts with that name its document (magic, digest, length): a VM can keep
/// them under a small key of their own and read the whole form only when they match its document.
pub const FORM_PREFIX: usize = 8 + 16 + 8;

/// A document with the prefix its form starts with, computed once (the digest reads every byte).
pub struct FormFor<'d> {
    document: &'d [u8],
    prefix: [u8; FORM_PREFIX],
}

impl<'d> FormFor<'d> {
    pub fn new(document: &'d [u8]) -> FormFor<'d> {
        let mut prefix = [0; FORM_PREFIX];
        let lanes = digest(document);
        let words = [lanes[0], lanes[1], document.len() as u64];
        prefix[..8].copy_from_slice(MAGIC);
        for (slot, word) in prefix[8..].chunks_exact_mut(8).zip(words) {
            slot.copy_from_slice(&word.to_le_bytes());
        }
        FormFor { document, prefix }
    }

    /// Whether `prefix`, the start of a shared form, names exactly this document.
    pub fn is_named_by(&self, prefix: &[u8]) -> bool {
        prefix == self.prefix
    }

    /// The form of `config`'s city table for this document, which it was compiled from (as `doc`).
    /// `None` when the document has no `cities` member, or when the document without it would not
    /// parse to `doc` without its cities (the span was not found the way a worker would cut it).
    pub fn form(&self, doc: &mut SluiceConfig, config: &CompiledConfig) -> Option<Vec<u8>> {
        let document = self.document;
        let span = cities_span(document)?;
        let cities = std::mem::take(&mut doc.cities);
        let same = parse(&without(document, &span)).is_ok_and(|rest| rest == *doc);
        doc.cities = cities;
        if !same {
            return None;
        }
        let (slots, records, len) = config.cities.parts();
        let mut form = Vec::with_capacity(HEADER + 8 * slots.len() + records.len());
        form.extend_from_slice(&self.prefix);
        let numbers = [
            span.start,
            span.end,
            len,
            slots.len(),
            records.len(),
            HEADER,
        ];
        for n in numbers {
            form.extend_from_slice(&(n as u64).to_le_bytes());
        }
        for slot in slots {
            form.extend_from_slice(&slot.to_le_bytes());
        }
        form.extend_from_slice(records);
        Some(form)
    }

    /// This document compiled with the city table of `form`, when `form` was made for exactly this
    /// document; `None` otherwise, and then the caller compiles the document itself. The form's
    /// records become the table's without a second copy.
    pub fn load(&self, mut form: Vec<u8>) -> Option<CompiledConfig> {
        let mut rest = form.strip_prefix(self.prefix.as_slice())?;
        let mut numbers = [0usize; 6];
        for n in &mut numbers {
            let (word, tail) = rest.split_first_chunk::<8>()?;
            *n = usize::try_from(u64::from_le_bytes(*word)).ok()?;
            rest = tail;
        }
        let [start, end, len, slot_count, records_len, header] = numbers;
        let slots_len = slot_count.checked_mul(8)?;
        if header != HEADER || rest.len() != slots_len.checked_add(records_len)? {
            return None;
        }
        let slots: Box<[u64]> = rest[..slots_len].chunks_exact(8).map(le_u64).collect();
        form.drain(..HEADER + slots_len);
        let table = KeyTable::from_parts(slots, form, len)?;
        let span = start..end;
        self.document.get(span.clone())?;
        let rest = parse(&without(self.document, &span)).ok()?;
        let mut config = CompiledConfig::compile(&rest).ok()?;
        config.cities = table;
        Some(config)
    }
}

/// The byte range of the top-level `cities` member's value, found by scanning only the top level.
/// `None` for a document that is not an object, has no such member, or writes its key with escapes.
fn cities_span(document: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut at = skip_space(document, 0);
    if document.get(at) != Some(&b'{') {
        return None;
    }
    at += 1;
    loop {
        at = skip_space(document, at);
        let key_start = at;
        at = skip_string(document, at)?;
        let key = document.get(key_start..at)?;
        at = skip_space(document, at);
        if document.get(at) != Some(&b':') {
            return None;
        }
        let value_start = skip_space(document, at + 1);
        at = skip_value(document, value_start)?;
        if key == b"\"cities\"" {
            return Some(value_start..at);
        }
        at = skip_space(document, at);
        match document.get(at) {
            Some(b',') => at += 1,
            _ => return None,
        }
    }
}

/// `document` with the value at `span` replaced by an empty object.
fn without(document: &[u8], span: &std::ops::Range<usize>) -> Vec<u8> {
    let mut rest = Vec::with_capacity(document.len() - span.len() + 2);
    rest.extend_from_slice(&document[..span.start]);
    rest.extend_from_slice(b"{}");
    rest.extend_from_slice(&document[span.end..]);
    rest
}

fn skip_space(document: &[u8], mut at: usize) -> usize {
    while matches!(document.get(at), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        at += 1;
    }
    at
}

/// Past the string starting at `at`, escapes included.
fn skip_string(document: &[u8], at: usize) -> Option<usize> {
    if document.get(at) != Some(&b'"') {
        return None;
    }
    let mut i = at + 1;
    loop {
        match document.get(i)? {
            b'"' => return Some(i + 1),
            b'\\' => i += 2,
            _ => i += 1,
        }
    }
}

/// Past the value starting at `at`: an object or array to its matching bracket (strings skipped whole,
/// so brackets inside them do not count), a string, or a number or literal.
fn skip_value(document: &[u8], at: usize) -> Option<usize> {
    match document.get(at)? {
        b'"' => skip_string(document, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match document.get(i)? {
                    b'"' => {
                        i = skip_string(document, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let scalar_end = document[at..]
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
                .map_or(document.len(), |n| at + n);
            (scalar_end > at).then_some(scalar_end)
        }
    }
}

/// 128 bits of the document, two independent lanes. The document comes from the proxy's own
/// config, not from clients, so a fast non-cryptographic digest is enough to tell documents apart.
fn digest(document: &[u8]) -> [u64; 2] {
    const K1: u64 = 0x9e37_79b9_7f4a_7c15;
    const K2: u64 = 0xc2b2_ae3d_27d4_eb4f;
    let (mut h1, mut h2) = (document.len() as u64, !(document.len() as u64));
    let mut chunks = document.chunks_exact(16);
    for chunk in &mut chunks {
        let (a, b) = chunk.split_at(8);
        h1 = (h1 ^ le_u64(a)).wrapping_mul(K1).rotate_left(29);
        h2 = (h2 ^ le_u64(b)).wrapping_mul(K2).rotate_left(31);
    }
    let mut tail = [0u8; 16];
    tail[..chunks.remainder().len()].copy_from_slice(chunks.remainder());
    let (a, b) = tail.split_at(8);
    h1 = fmix(h1 ^ le_u64(a));
    h2 = fmix(h2 ^ le_u64(b));
    [h1 ^ h2.rotate_left(17), h2 ^ h1.rotate_left(43)]
}

/// The little-endian word of an 8-byte chunk (0 for any other length, which no caller passes).
fn le_u64(chunk: &[u8]) -> u64 {
    chunk.try_into().map_or(0, u64::from_le_bytes)
}

/// MurmurHash3's 64-bit finalizer.
fn fmix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}
