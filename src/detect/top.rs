//! Bounded per-client summaries for explanations: the most frequent paths and user agents, and
//! the status mix. Hash-keyed so the detection thread never compares text.

use super::Count;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Space-saving top-k counter: bounded memory, exact for anything that stays in the top.
///
/// Keys are identified by their 64-bit [`crate::parse::key_hash`] alone (computed on the parse
/// threads), so the hot path compares a few integers and never text: a false merge would need
/// two keys of one IP colliding in 64 bits. The text is kept only to show it. Repeats of the
/// last key (an IP's user agent, nearly always) are counted inline, without touching the list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TopK {
    /// (hash, count) per key, and the keys' text at the same index.
    counts: Vec<(u64, u64)>,
    keys: Vec<String>,
    /// Index and hash of the last key added, and its hits not yet in `counts`.
    last: Option<(usize, u64)>,
    last_hits: u64,
    /// Where each hash sits in `counts`, once the list is long enough for a scan to cost more
    /// than a lookup (a client of a few requests never pays for it). Derived: rebuilt after a
    /// load.
    #[serde(skip)]
    index: Option<Box<Index>>,
}

impl TopK {
    const CAP: usize = 24;
    const MAX_KEY: usize = 512;
    /// Lists this long or longer are looked up through `index`.
    const INDEXED: usize = 8;

    pub fn add<'k>(&mut self, hash: u64, key: impl FnOnce() -> &'k str) {
        if let Some((_, h)) = self.last {
            if h == hash {
                self.last_hits += 1;
                return;
            }
        }
        self.settle();
        let found = match &self.index {
            Some(index) => index.find(&self.counts, hash),
            None => self.counts.iter().position(|&(h, _)| h == hash),
        };
        let i = match found {
            Some(i) => {
                self.counts[i].1 += 1;
                i
            }
            None if self.counts.len() < Self::CAP => {
                self.counts.push((hash, 1));
                self.keys.push(crate::parse::clip(key(), Self::MAX_KEY));
                let i = self.counts.len() - 1;
                match &mut self.index {
                    Some(index) => index.insert(&self.counts, i),
                    None if self.counts.len() >= Self::INDEXED => {
                        self.index = Some(Box::new(Index::of(&self.counts)));
                        // A client this varied likely fills the list: one allocation to the
                        // cap instead of doubling past it.
                        self.counts.reserve_exact(Self::CAP - self.counts.len());
                        self.keys.reserve_exact(Self::CAP - self.keys.len());
                    }
                    None => {}
                }
                i
            }
            None => {
                // Replace the least counted key (the first of them); it inherits that count
                // (space-saving).
                let mut min = 0;
                for (i, &(_, c)) in self.counts.iter().enumerate() {
                    if c < self.counts[min].1 {
                        min = i;
                    }
                }
                let index = self
                    .index
                    .get_or_insert_with(|| Box::new(Index::of(&self.counts)));
                index.remove(&self.counts, min);
                self.counts[min] = (hash, self.counts[min].1 + 1);
                index.insert(&self.counts, min);
                replace_key(&mut self.keys[min], key(), Self::MAX_KEY);
                min
            }
        };
        self.last = Some((i, hash));
    }

    /// Move the inline hits of the last key into the list.
    fn settle(&mut self) {
        if let Some((i, _)) = self.last {
            self.counts[i].1 += std::mem::take(&mut self.last_hits);
        }
    }

    pub fn top(&self, n: usize) -> Vec<Count<String>> {
        let extra = |i: usize| match self.last {
            Some((l, _)) if l == i => self.last_hits,
            _ => 0,
        };
        let mut v: Vec<(&String, u64)> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (k, self.counts[i].1 + extra(i)))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
        v.into_iter()
            .take(n)
            .map(|(value, count)| Count {
                value: value.clone(),
                count,
            })
            .collect()
    }
}

/// An open-addressing table (linear probing) from a key's hash to its position in
/// [`TopK::counts`]: 64 one-byte cells for at most 24 keys, so a lookup reads one or two cells
/// instead of scanning the list on every request of a client that reads many pages.
#[derive(Debug, Clone)]
struct Index {
    /// Position + 1 in `counts`; 0: empty.
    cells: [u8; Index::CELLS],
}

impl Index {
    const CELLS: usize = 64;

    fn home(hash: u64) -> usize {
        // Multiplicative mixing: the top bits depend on every bit of the hash.
        (hash.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
    }

    fn of(counts: &[(u64, u64)]) -> Index {
        let mut index = Index {
            cells: [0; Self::CELLS],
        };
        for i in 0..counts.len() {
            index.insert(counts, i);
        }
        index
    }

    fn find(&self, counts: &[(u64, u64)], hash: u64) -> Option<usize> {
        let mut c = Self::home(hash);
        loop {
            match self.cells[c] {
                0 => return None,
                v if counts[usize::from(v) - 1].0 == hash => return Some(usize::from(v) - 1),
                _ => c = (c + 1) % Self::CELLS,
            }
        }
    }

    /// Index `counts[i]` (its hash not yet in the table).
    fn insert(&mut self, counts: &[(u64, u64)], i: usize) {
        let mut c = Self::home(counts[i].0);
        while self.cells[c] != 0 {
            c = (c + 1) % Self::CELLS;
        }
        self.cells[c] = u8::try_from(i + 1).expect("at most 24 keys");
    }

    /// Forget `counts[i]` (still holding its hash), shifting later cells of its probe run back
    /// so every remaining key stays reachable from its home cell.
    fn remove(&mut self, counts: &[(u64, u64)], i: usize) {
        let mut hole = Self::home(counts[i].0);
        while usize::from(self.cells[hole]) != i + 1 {
            hole = (hole + 1) % Self::CELLS;
        }
        let mut c = hole;
        loop {
            c = (c + 1) % Self::CELLS;
            let v = self.cells[c];
            if v == 0 {
                break;
            }
            let home = Self::home(counts[usize::from(v) - 1].0);
            // Move `v` into the hole unless its home lies cyclically in (hole, c].
            let stays = if hole <= c {
                hole < home && home <= c
            } else {
                hole < home || home <= c
            };
            if !stays {
                self.cells[hole] = v;
                hole = c;
            }
        }
        self.cells[hole] = 0;
    }
}

/// Put `key` (clipped) into an evicted slot. Its buffer is reused when it fits without being
/// more than twice the size needed: a fresh copy per eviction was an allocation and a free on
/// most requests of a client that reads many pages, while reusing any buffer kept every slot
/// at the longest key it ever held (+30 % peak memory on 10 M lines).
fn replace_key(slot: &mut String, key: &str, max: usize) {
    let head = crate::parse::cut(key, max);
    let need = head.len()
        + if head.len() < key.len() {
            '…'.len_utf8()
        } else {
            0
        };
    if slot.capacity() >= need && slot.capacity() <= 2 * need + 16 {
        slot.clear();
        slot.push_str(head);
        if head.len() < key.len() {
            slot.push('…');
        }
    } else {
        *slot = crate::parse::clip(key, max);
    }
}

/// Responses per status code of one IP: a handful of codes, the first few kept inline (no heap
/// access on the hot path), the rest in a list.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatusCounts {
    inline: [(u16, u32); 3],
    more: Vec<(u16, u64)>,
}

impl StatusCounts {
    pub fn add(&mut self, status: u16) {
        // Slots fill in order; an empty slot has count 0.
        for slot in &mut self.inline {
            if slot.1 == 0 {
                *slot = (status, 1);
                return;
            }
            if slot.0 == status && slot.1 < u32::MAX {
                slot.1 += 1;
                return;
            }
        }
        match self.more.iter_mut().find(|(s, _)| *s == status) {
            Some((_, n)) => *n += 1,
            None => self.more.push((status, 1)),
        }
    }

    pub fn to_map(&self) -> BTreeMap<u16, u64> {
        let mut m = BTreeMap::new();
        let inline = self.inline.iter().filter(|(_, n)| *n > 0);
        for (s, n) in inline
            .map(|(s, n)| (*s, *n as u64))
            .chain(self.more.iter().copied())
        {
            *m.entry(s).or_insert(0) += n;
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_evicted_slot_holds_exactly_the_clipped_key() {
        let long = "é".repeat(400);
        let mut slot = String::new();
        for key in ["/a", "/abc", "/ab", &long, "/x", &"y".repeat(600), "/"] {
            replace_key(&mut slot, key, 512);
            assert_eq!(slot, crate::parse::clip(key, 512));
            assert!(slot.capacity() <= 2 * slot.len() + 16 || slot.capacity() == slot.len());
        }
    }

    /// The indexed list decides exactly like a plain scan: same keys, same counts, same
    /// evictions (first least-counted slot), including after a serde round trip drops the index.
    #[test]
    fn indexed_lookup_matches_a_plain_scan() {
        let mut t = TopK::default();
        let mut model: Vec<(u64, u64)> = Vec::new();
        let mut x: u64 = 0x1234_5678;
        for step in 0..200_000u32 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // A few heavy keys, many rare ones, and hashes that share their home cell.
            let hash = match x % 10 {
                0..=3 => x % 6,
                4..=5 => (x % 40) << 58,
                _ => x % 5_000,
            };
            let key = hash.to_string();
            t.add(hash, || key.as_str());
            t.settle();
            t.last = None;
            match model.iter().position(|&(h, _)| h == hash) {
                Some(i) => model[i].1 += 1,
                None if model.len() < TopK::CAP => model.push((hash, 1)),
                None => {
                    let mut min = 0;
                    for (i, &(_, c)) in model.iter().enumerate() {
                        if c < model[min].1 {
                            min = i;
                        }
                    }
                    model[min] = (hash, model[min].1 + 1);
                }
            }
            assert_eq!(t.counts, model, "step {step}");
            if step % 50_000 == 0 {
                t = serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            }
        }
        for (i, (h, _)) in t.counts.iter().enumerate() {
            assert_eq!(t.keys[i], h.to_string());
        }
    }

    #[test]
    fn space_saving_keeps_the_frequent_keys_and_their_text() {
        let mut t = TopK::default();
        let key = |i: u64| format!("/page/{i}");
        for round in 0..50u64 {
            for i in 0..3 {
                let k = key(i);
                t.add(i, || k.as_str());
            }
            let k = key(1000 + round);
            t.add(1000 + round, || k.as_str()); // a stream of one-off keys
        }
        let top = t.top(3);
        let values: Vec<&str> = top.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(values, ["/page/0", "/page/1", "/page/2"]);
        assert!(top.iter().all(|c| c.count == 50));
    }
}
