//! The document a round's rollouts are checked against and merged into, indexed by entry name and by
//! match: each rollout's checks then cost the same however many entries the document holds, and the
//! merged document is built and sorted once for all of them (merging entry by entry cloned and sorted
//! the whole document, city table included, for each rollout).
//!
//! It answers as [`merge`](super::merge) would, one entry after another: an entry replaced keeps its
//! place, a new one goes after the others, and `shadowing` sees the entries merged so far.

use super::order::{match_key, specificity};
use cohort::{Rollout, SluiceConfig};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::HashMap;

type MatchKey = (Option<String>, Option<String>);

pub struct Working<'a> {
    current: &'a SluiceConfig,
    /// One per entry name: the first of that name in the document (the one `merge` replaces), then
    /// the entries added, in the order added.
    slots: Vec<Slot<'a>>,
    by_name: HashMap<Cow<'a, str>, usize>,
    /// The slots of each match, in `seq` order.
    by_match: HashMap<MatchKey, Vec<usize>>,
}

struct Slot<'a> {
    entry: Cow<'a, Rollout>,
    /// Its place before the document is sorted (its index in the document read, or after them):
    /// entries that match the same requests keep this order.
    seq: usize,
    key: MatchKey,
}

impl<'a> Working<'a> {
    pub fn new(current: &'a SluiceConfig) -> Self {
        let mut working = Working {
            current,
            slots: Vec::with_capacity(current.rollouts.len()),
            by_name: HashMap::with_capacity(current.rollouts.len()),
            by_match: HashMap::with_capacity(current.rollouts.len()),
        };
        for (seq, entry) in current.rollouts.iter().enumerate() {
            if !working.by_name.contains_key(entry.name.as_str()) {
                working.add(Cow::Borrowed(entry), seq);
            }
        }
        working
    }

    fn add(&mut self, entry: Cow<'a, Rollout>, seq: usize) {
        let slot = self.slots.len();
        let key = match_key(&entry);
        self.by_match.entry(key.clone()).or_default().push(slot);
        let name = match &entry {
            Cow::Borrowed(r) => Cow::Borrowed(r.name.as_str()),
            Cow::Owned(r) => Cow::Owned(r.name.clone()),
        };
        self.by_name.insert(name, slot);
        self.slots.push(Slot { entry, seq, key });
    }

    /// The document as read.
    pub fn current(&self) -> &'a SluiceConfig {
        self.current
    }

    /// The entry `name` (the first of that name), as merged so far.
    pub fn get(&self, name: &str) -> Option<&Rollout> {
        let slot = *self.by_name.get(name)?;
        Some(&self.slots[slot].entry)
    }

    /// The entry that, once `entry` is merged, comes before it and matches exactly its requests (so
    /// `entry` would never see one): the first such in the merged document.
    pub fn shadowing(&self, entry: &Rollout) -> Option<&Rollout> {
        let own = self.by_name.get(entry.name.as_str());
        let seq = own.map_or(usize::MAX, |&slot| self.slots[slot].seq);
        self.by_match
            .get(&match_key(entry))?
            .iter()
            .filter(|&&slot| Some(&slot) != own && self.slots[slot].seq < seq)
            .min_by_key(|&&slot| self.slots[slot].seq)
            .map(|&slot| &*self.slots[slot].entry)
    }

    /// Merges `entry` in place of the entry of its name (added after the others if new); false when
    /// the document already carried it as it is.
    pub fn merge(&mut self, entry: Rollout) -> bool {
        let Some(&slot) = self.by_name.get(entry.name.as_str()) else {
            let seq = self.current.rollouts.len() + self.slots.len();
            self.add(Cow::Owned(entry), seq);
            return true;
        };
        if *self.slots[slot].entry == entry {
            return false;
        }
        let key = match_key(&entry);
        if key != self.slots[slot].key {
            let old = std::mem::replace(&mut self.slots[slot].key, key.clone());
            if let Some(group) = self.by_match.get_mut(&old) {
                group.retain(|&s| s != slot);
            }
            let group = self.by_match.entry(key).or_default();
            group.push(slot);
            let slots = &self.slots;
            group.sort_by_key(|&s| slots[s].seq);
        }
        self.slots[slot].entry = Cow::Owned(entry);
        true
    }

    /// The entries of the merged document, most specific first (see [`merge`](super::merge)).
    pub fn entries(&self) -> Vec<Rollout> {
        let mut entries: Vec<Rollout> = Vec::with_capacity(self.slots.len());
        for (seq, entry) in self.current.rollouts.iter().enumerate() {
            match self.by_name.get(entry.name.as_str()) {
                Some(&slot) if self.slots[slot].seq == seq => {
                    entries.push(self.slots[slot].entry.clone().into_owned());
                }
                // A second entry of a name already seen: kept as it is.
                _ => entries.push(entry.clone()),
            }
        }
        let added = self
            .slots
            .iter()
            .filter(|s| s.seq >= self.current.rollouts.len());
        entries.extend(added.map(|s| s.entry.clone().into_owned()));
        // Stable: equally specific entries keep their order.
        entries.sort_by_key(|r| Reverse(specificity(r)));
        entries
    }
}

/// Whether the document's entries are already in the order `merge` keeps (a person may have written
/// them otherwise: then any merge reorders them).
pub fn in_order(doc: &SluiceConfig) -> bool {
    doc.rollouts
        .windows(2)
        .all(|pair| specificity(&pair[0]) >= specificity(&pair[1]))
}
