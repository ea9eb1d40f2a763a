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
        let i = match self.counts.iter().position(|(h, _)| *h == hash) {
            Some(i) => {
                self.counts[i].1 += 1;
                i
            }
            None => {
                // An exact-size copy per entry: reusing an evicted key's buffer kept every slot
                // at the longest key it ever held (+30 % peak memory on 10 M lines).
                let text = crate::parse::clip(key(), Self::MAX_KEY);
                if self.counts.len() < Self::CAP {
                    self.counts.push((hash, 1));
                    self.keys.push(text);
                    self.counts.len() - 1
                } else {
                    // Replace the least counted key; it inherits that count (space-saving).
                    let (i, _) = self
                        .counts
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (_, c))| *c)
                        .expect("CAP > 0");
                    self.counts[i] = (hash, self.counts[i].1 + 1);
                    self.keys[i] = text;
                    i
                }
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
