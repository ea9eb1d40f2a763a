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
}

impl TopK {
    const CAP: usize = 24;
    const MAX_KEY: usize = 512;

    pub fn add<'k>(&mut self, hash: u64, key: impl FnOnce() -> &'k str) {
        if let Some((_, h)) = self.last {
            if h == hash {
                self.last_hits += 1;
                return;
            }
        }
        self.settle();
        // One pass finds the key or, failing that, the least counted slot.
        let mut found = None;
        let (mut min, mut min_count) = (0, u64::MAX);
        for (i, &(h, c)) in self.counts.iter().enumerate() {
            if h == hash {
                found = Some(i);
                break;
            }
            if c < min_count {
                (min, min_count) = (i, c);
            }
        }
        let i = match found {
            Some(i) => {
                self.counts[i].1 += 1;
                i
            }
            None if self.counts.len() < Self::CAP => {
                self.counts.push((hash, 1));
                self.keys.push(crate::parse::clip(key(), Self::MAX_KEY));
                self.counts.len() - 1
            }
            None => {
                // Replace the least counted key; it inherits that count (space-saving).
                self.counts[min] = (hash, self.counts[min].1 + 1);
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
