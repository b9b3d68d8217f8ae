//! A fixed string-keyed table for the static vocabularies of this stage (SQL words,
//! attribute keys): open addressing at most half full, so a lookup is one cheap hash of
//! the key and usually one comparison. A binary search over the same words costs several
//! mispredicted comparisons per lookup, which adds up at one lookup per SQL word or span
//! attribute.

const EMPTY: u16 = u16::MAX;

/// Maps each key to the entries stored under it (a key may appear more than once).
#[derive(Debug)]
pub(crate) struct StrTable<V: 'static> {
    entries: Vec<Entry<V>>,
    slots: Box<[u16]>,
    mask: usize,
}

/// A key's length and first and last 8 bytes: for keys of up to 16 bytes these decide
/// equality without a `memcmp` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Digest {
    len: usize,
    head: u64,
    tail: u64,
}

impl Digest {
    #[inline]
    fn of(key: &[u8]) -> Self {
        let tail = key.get(key.len().saturating_sub(8)..).unwrap_or(&[]);
        Digest {
            len: key.len(),
            head: prefix_word(key),
            tail: prefix_word(tail),
        }
    }

    /// A cheap in-process hash (never stored).
    #[inline]
    fn slot(&self) -> usize {
        let h = (self.head ^ self.tail.rotate_left(29) ^ self.len as u64)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15);
        (h >> 32) as usize
    }
}

#[derive(Debug)]
struct Entry<V: 'static> {
    digest: Digest,
    item: (&'static str, V),
}

impl<V: Copy> StrTable<V> {
    /// Builds the table; `entries` must hold fewer than 32k items.
    pub fn new(entries: Vec<(&'static str, V)>) -> Self {
        let size = (entries.len() * 2).next_power_of_two().max(8);
        let mut slots = vec![EMPTY; size].into_boxed_slice();
        let mask = size - 1;
        let entries: Vec<Entry<V>> = entries
            .into_iter()
            .map(|item| Entry {
                digest: Digest::of(item.0.as_bytes()),
                item,
            })
            .collect();
        for (n, e) in entries.iter().enumerate() {
            let mut i = e.digest.slot() & mask;
            while slots[i] != EMPTY {
                i = (i + 1) & mask;
            }
            slots[i] = u16::try_from(n).unwrap_or(EMPTY);
        }
        StrTable {
            entries,
            slots,
            mask,
        }
    }

    /// Every entry stored under `key`, in no particular order.
    pub fn get_all<'t, 'k>(&'t self, key: &'k [u8]) -> Matches<'t, 'k, V> {
        let digest = Digest::of(key);
        Matches {
            table: self,
            key,
            digest,
            slot: digest.slot() & self.mask,
        }
    }

    /// The first entry stored under `key`.
    #[inline]
    pub fn get(&self, key: &[u8]) -> Option<&(&'static str, V)> {
        self.get_all(key).next()
    }
}

/// Up to the first 8 bytes as a little-endian word, zero-padded.
#[inline]
fn prefix_word(bytes: &[u8]) -> u64 {
    if let Some(w) = bytes.first_chunk::<8>() {
        return u64::from_le_bytes(*w);
    }
    bytes
        .iter()
        .enumerate()
        .fold(0, |w, (i, &b)| w | u64::from(b) << (8 * i))
}

/// The entries under one key, following its probe sequence.
pub(crate) struct Matches<'t, 'k, V: 'static> {
    table: &'t StrTable<V>,
    key: &'k [u8],
    digest: Digest,
    slot: usize,
}

impl<'t, V> Iterator for Matches<'t, '_, V> {
    type Item = &'t (&'static str, V);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let n = self.table.slots[self.slot];
            if n == EMPTY {
                return None;
            }
            self.slot = (self.slot + 1) & self.table.mask;
            let entry = &self.table.entries[usize::from(n)];
            if entry.digest == self.digest
                && (self.digest.len <= 16 || entry.item.0.as_bytes() == self.key)
            {
                return Some(&entry.item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_and_nothing_else() {
        let words: Vec<String> = (0..300).map(|i| format!("w{i}")).collect();
        let leaked: Vec<&'static str> = words
            .into_iter()
            .map(|w| &*Box::leak(w.into_boxed_str()))
            .collect();
        let t = StrTable::new(leaked.iter().enumerate().map(|(i, w)| (*w, i)).collect());
        for (i, w) in leaked.iter().enumerate() {
            assert_eq!(t.get(w.as_bytes()).map(|e| e.1), Some(i));
        }
        assert!(t.get(b"w300").is_none());
        assert!(t.get(b"").is_none());
    }

    #[test]
    fn a_repeated_key_yields_all_its_entries() {
        let t = StrTable::new(vec![("a", 1), ("b", 2), ("a", 3)]);
        let mut got: Vec<i32> = t.get_all(b"a").map(|e| e.1).collect();
        got.sort();
        assert_eq!(got, [1, 3]);
    }
}
