//! An index from a 32-bit tag of a key to the key's position in a [`super::slab::Slab`].
//!
//! Open addressing with linear probing over one array of 8-byte slots (the tag, and the
//! position + 1; 0 is an empty slot), at most three quarters full: a lookup usually reads one
//! cache line, where a general-purpose map reads its control bytes and its slot, two lines
//! apart. Tags are uniform already (digest bytes, or an id's hash). Two keys may share a tag:
//! both are kept, and the caller's `is_key` tells them apart.

/// Positions by tag.
#[derive(Default)]
pub struct Positions {
    /// A power of two long, or empty.
    slots: Box<[u64]>,
    len: usize,
}

/// Fibonacci hashing's multiplier (2^64 / φ): spreads tags over the high bits.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

impl Positions {
    /// The slot where probing for `tag` starts.
    fn home(&self, tag: u32) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (u64::from(tag).wrapping_mul(SPREAD) >> (64 - bits)) as usize
    }

    /// The first position filed under `tag` that `is_key` accepts.
    pub fn get(&self, tag: u32, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(tag);
        loop {
            let slot = self.slots[i];
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == tag && is_key(slot as u32 - 1) {
                return Some(slot as u32 - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// Files `position` (below `u32::MAX`) under `tag`.
    pub fn insert(&mut self, tag: u32, position: u32) {
        assert!(position < u32::MAX, "position {position} out of range");
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            let slots = vec![0; (self.slots.len() * 2).max(16)].into_boxed_slice();
            for slot in std::mem::replace(&mut self.slots, slots).iter().filter(|&&s| s != 0) {
                self.place(*slot);
            }
        }
        self.place(u64::from(tag) << 32 | u64::from(position + 1));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut i = self.home((slot >> 32) as u32);
        while self.slots[i] != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }
}

#[cfg(test)]
mod tests {
    use super::Positions;

    #[test]
    fn finds_what_was_filed_through_growth() {
        let mut index = Positions::default();
        assert_eq!(index.get(7, |_| true), None);
        let tag = |p: u32| p.wrapping_mul(0x0101_0101) ^ 0xABCD;
        for p in 0..10_000 {
            index.insert(tag(p), p);
        }
        for p in 0..10_000 {
            assert_eq!(index.get(tag(p), |q| q == p), Some(p));
        }
        assert_eq!(index.get(tag(10_000), |_| true), None);
        assert!(index.slots.len() * 3 >= 4 * 10_000, "at most three quarters full");
    }

    #[test]
    fn keys_sharing_a_tag_are_told_apart_by_the_caller() {
        let mut index = Positions::default();
        for p in [3, 9, 27] {
            index.insert(42, p);
        }
        index.insert(43, 5);
        assert_eq!(index.get(42, |p| p == 27), Some(27));
        assert_eq!(index.get(42, |p| p == 9), Some(9));
        assert_eq!(index.get(42, |p| p == 5), None, "5 is filed under another tag");
        assert_eq!(index.get(42, |_| false), None);
        assert_eq!(index.get(43, |_| true), Some(5));
    }
}
