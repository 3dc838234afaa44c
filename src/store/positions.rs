//! An index from a 32-bit tag of a key to the key's position in a [`super::slab::Slab`],
//! read without a lock.
//!
//! Open addressing with linear probing over one array of 8-byte slots (the tag, and the
//! position + 1; 0 is an empty slot), at most three quarters full: a lookup usually reads one
//! cache line, where a general-purpose map reads its control bytes and its slot, two lines
//! apart. Tags are uniform already (digest bytes, or an id's hash). Two keys may share a tag:
//! both are kept, and the caller's `is_key` tells them apart.
//!
//! Readers take no lock (so threads looking up keys write no shared cache line): slots are
//! atomics, filled once and never emptied; a table that grows is copied into one twice its
//! size, published with one pointer swap, and the old one kept until the index is dropped, in
//! case a reader is still probing it (all the old tables together are smaller than the
//! current one). Writers are serialized by [`Positions::write`].

use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use parking_lot::{Mutex, MutexGuard};

/// Positions by tag.
pub struct Positions {
    /// The current table: never null, freed only with `self`.
    table: AtomicPtr<Table>,
    writer: Mutex<Writer>,
}

/// A power-of-two number of slots.
struct Table {
    slots: Box<[AtomicU64]>,
}

/// What only the writer touches: the number of positions and the tables grown out of.
#[derive(Default)]
struct Writer {
    len: usize,
    /// Boxed: readers may hold the address of the table itself, which must not move.
    #[allow(clippy::vec_box)]
    retired: Vec<Box<Table>>,
}

/// Fibonacci hashing's multiplier (2^64 / φ): spreads tags over the high bits.
const SPREAD: u64 = 0x9E37_79B9_7F4A_7C15;

impl Table {
    fn new(slots: usize) -> Box<Table> {
        Box::new(Table { slots: (0..slots).map(|_| AtomicU64::new(0)).collect() })
    }

    /// The slot where probing for `tag` starts.
    fn home(&self, tag: u32) -> usize {
        let bits = self.slots.len().trailing_zeros();
        (u64::from(tag).wrapping_mul(SPREAD) >> (64 - bits)) as usize
    }

    /// Writes `slot` (a tag and a position + 1) into the first empty slot of its probe.
    fn place(&self, slot: u64) {
        let mask = self.slots.len() - 1;
        let mut i = self.home((slot >> 32) as u32);
        while self.slots[i].load(Ordering::Relaxed) != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i].store(slot, Ordering::Release);
    }
}

impl Default for Positions {
    fn default() -> Self {
        Positions { table: AtomicPtr::new(Box::into_raw(Table::new(16))), writer: Mutex::default() }
    }
}

impl Drop for Positions {
    fn drop(&mut self) {
        // SAFETY: made by `Box::into_raw`, replaced only after being retired, freed once here.
        drop(unsafe { Box::from_raw(*self.table.get_mut()) });
    }
}

impl Positions {
    fn table(&self) -> &Table {
        // SAFETY: never null, and every table lives as long as `self` (current or retired).
        unsafe { &*self.table.load(Ordering::Acquire) }
    }

    /// The first position filed under `tag` that `is_key` accepts.
    pub fn get(&self, tag: u32, is_key: impl Fn(u32) -> bool) -> Option<u32> {
        let table = self.table();
        let mask = table.slots.len() - 1;
        let mut i = table.home(tag);
        loop {
            let slot = table.slots[i].load(Ordering::Acquire);
            if slot == 0 {
                return None;
            }
            if (slot >> 32) as u32 == tag && is_key(slot as u32 - 1) {
                return Some(slot as u32 - 1);
            }
            i = (i + 1) & mask;
        }
    }

    /// The right to insert, held until dropped (lookups go on meanwhile).
    pub fn write(&self) -> PositionsWriter<'_> {
        PositionsWriter { positions: self, writer: self.writer.lock() }
    }
}

/// Inserts into a [`Positions`]; one at a time.
pub struct PositionsWriter<'a> {
    positions: &'a Positions,
    writer: MutexGuard<'a, Writer>,
}

impl PositionsWriter<'_> {
    /// Files `position` (below `u32::MAX`) under `tag`.
    pub fn insert(&mut self, tag: u32, position: u32) {
        assert!(position < u32::MAX, "position {position} out of range");
        let mut table = self.positions.table();
        if (self.writer.len + 1) * 4 > table.slots.len() * 3 {
            let grown = Table::new(table.slots.len() * 2);
            for slot in table.slots.iter().map(|s| s.load(Ordering::Relaxed)).filter(|&s| s != 0) {
                grown.place(slot);
            }
            let old = self.positions.table.swap(Box::into_raw(grown), Ordering::AcqRel);
            // SAFETY: the table just replaced, made by `Box::into_raw`; kept (not freed) for
            // readers that may still hold it.
            self.writer.retired.push(unsafe { Box::from_raw(old) });
            table = self.positions.table();
        }
        table.place(u64::from(tag) << 32 | u64::from(position + 1));
        self.writer.len += 1;
    }
}

impl std::ops::Deref for PositionsWriter<'_> {
    type Target = Positions;

    fn deref(&self) -> &Positions {
        self.positions
    }
}

#[cfg(test)]
mod tests {
    use super::Positions;

    #[test]
    fn finds_what_was_filed_through_growth() {
        // Fewer under Miri, which interprets every access.
        let count = if cfg!(miri) { 300 } else { 10_000 };
        let index = Positions::default();
        assert_eq!(index.get(7, |_| true), None);
        let tag = |p: u32| p.wrapping_mul(0x0101_0101) ^ 0xABCD;
        for p in 0..count {
            index.write().insert(tag(p), p);
        }
        for p in 0..count {
            assert_eq!(index.get(tag(p), |q| q == p), Some(p));
        }
        assert_eq!(index.get(tag(count), |_| true), None);
        assert!(index.table().slots.len() * 3 >= 4 * count as usize, "at most three quarters full");
    }

    #[test]
    fn keys_sharing_a_tag_are_told_apart_by_the_caller() {
        let index = Positions::default();
        let mut writer = index.write();
        for p in [3, 9, 27] {
            writer.insert(42, p);
        }
        writer.insert(43, 5);
        drop(writer);
        assert_eq!(index.get(42, |p| p == 27), Some(27));
        assert_eq!(index.get(42, |p| p == 9), Some(9));
        assert_eq!(index.get(42, |p| p == 5), None, "5 is filed under another tag");
        assert_eq!(index.get(42, |_| false), None);
        assert_eq!(index.get(43, |_| true), Some(5));
    }

    #[test]
    fn lookups_go_on_while_the_table_grows() {
        use std::sync::atomic::{AtomicU32, Ordering};
        let count = if cfg!(miri) { 200 } else { 20_000 };
        let index = Positions::default();
        let written = AtomicU32::new(0);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                for p in 0..count {
                    index.write().insert(p ^ 0x5555, p);
                    written.store(p + 1, Ordering::Release);
                }
            });
            for _ in 0..2 {
                scope.spawn(|| loop {
                    let n = written.load(Ordering::Acquire);
                    for p in (0..n).rev().take(50) {
                        assert_eq!(index.get(p ^ 0x5555, |q| q == p), Some(p));
                    }
                    if n == count {
                        break;
                    }
                });
            }
        });
    }
}
