//! Event ids for records that carry none (text lines, `get-log-events` and `tail` output):
//! made from content, never from file names or positions, so re-ingesting a file, or the
//! same records under another name, stores nothing new.

use std::collections::{HashMap, VecDeque};

/// How many distinct (time, text) pairs are remembered to tell repeats apart: identical
/// records at the same millisecond are two events only while the first is among the last
/// this many distinct ones. Real repeats sit next to each other (one `print` looped); the
/// bound keeps a 5 GB file in constant memory (about 10 MB here).
pub const REMEMBERED: usize = 1 << 18;

/// Event ids from content: `<time>-<hash>`, and `#n` for the n-th repeat of the same text at
/// the same time.
#[derive(Debug, Default)]
pub struct ContentIds {
    seen: HashMap<(i64, u64), u32>,
    order: VecDeque<(i64, u64)>,
}

impl ContentIds {
    pub fn id(&mut self, time_ms: i64, text: &str) -> String {
        // A collision only makes one of two records look like a re-ingest.
        let key = (time_ms, crate::hash::fnv1a(text));
        let n = match self.seen.get_mut(&key) {
            Some(n) => {
                *n += 1;
                *n - 1
            }
            None => {
                if self.order.len() == REMEMBERED {
                    if let Some(oldest) = self.order.pop_front() {
                        self.seen.remove(&oldest);
                    }
                }
                self.seen.insert(key, 1);
                self.order.push_back(key);
                0
            }
        };
        let (time_ms, hash) = key;
        if n == 0 { format!("{time_ms}-{hash:016x}") } else { format!("{time_ms}-{hash:016x}#{n}") }
    }

    /// Distinct (time, text) pairs held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_numbered_and_memory_is_bounded() {
        let mut ids = ContentIds::default();
        let a = ids.id(5, "same");
        let b = ids.id(5, "same");
        let c = ids.id(6, "same");
        assert_ne!(a, b);
        assert!(b.ends_with("#1"), "{b}");
        assert!(!c.contains('#'));
        // Another reader gives the same ids for the same records: keys follow content.
        let mut again = ContentIds::default();
        assert_eq!([again.id(5, "same"), again.id(5, "same"), again.id(6, "same")], [a, b, c]);
        for i in 0..(REMEMBERED as i64 + 10) {
            ids.id(1_000 + i, "line");
        }
        assert_eq!(ids.len(), REMEMBERED, "the oldest pairs are forgotten, not kept for ever");
    }
}
