//! How a shard of the session table keeps its sessions and indexes: numbered slots, lists
//! and a heap that grow a chunk at a time, and the permutation that hides slot numbers in ids.
//!
//! The in-memory store names each session it creates after the place where it keeps it, so that
//! creating one writes the next free slot, beside the last one written, and finding one is an
//! index and a comparison. A map keyed by random ids wrote each new session at a random place
//! in a table of hundreds of thousands of entries (two cache misses), and grew by rehashing.
//! The account lists and the expiry heap grow by chunks, where `Vec`s doubled, copying every
//! entry into fresh memory. Together these took about a tenth off the reference server's CPU
//! per `POST /api/v1/sessions` (BENCHMARKS.md, "Tenth pass").

/// Entries per chunk. Chunks are never moved, so growing copies nothing.
const CHUNK: usize = 1024;

/// Values in numbered slots. A slot freed is reused by a later value (the last freed first).
pub(super) struct Slots<T> {
    chunks: Vec<Box<[Option<T>]>>,
    /// Freed slots below `end`.
    free: Vec<usize>,
    /// Slots ever handed out: those from here on have never been used.
    end: usize,
    len: usize,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots { chunks: Vec::new(), free: Vec::new(), end: 0, len: 0 }
    }
}

impl<T> Slots<T> {
    /// The slot the next [`Slots::insert`] fills.
    pub(super) fn next(&self) -> usize {
        self.free.last().copied().unwrap_or(self.end)
    }

    /// Puts `value` in the slot [`Slots::next`] named, and returns that slot.
    pub(super) fn insert(&mut self, value: T) -> usize {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.end += 1;
            self.end - 1
        });
        if slot / CHUNK == self.chunks.len() {
            self.chunks.push(std::iter::repeat_with(|| None).take(CHUNK).collect());
        }
        let place = &mut self.chunks[slot / CHUNK][slot % CHUNK];
        debug_assert!(place.is_none(), "slot {slot} handed out twice");
        *place = Some(value);
        self.len += 1;
        slot
    }

    pub(super) fn get(&self, slot: usize) -> Option<&T> {
        self.chunks.get(slot / CHUNK)?[slot % CHUNK].as_ref()
    }

    pub(super) fn get_mut(&mut self, slot: usize) -> Option<&mut T> {
        self.chunks.get_mut(slot / CHUNK)?[slot % CHUNK].as_mut()
    }

    /// Empties `slot`, for a later value to take.
    pub(super) fn remove(&mut self, slot: usize) -> Option<T> {
        let value = self.chunks.get_mut(slot / CHUNK)?[slot % CHUNK].take()?;
        self.free.push(slot);
        self.len -= 1;
        Some(value)
    }

    /// Values held.
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// Every value held, by slot.
    pub(super) fn values(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|chunk| chunk.iter().flatten())
    }
}

/// A list that grows a chunk at a time: pushing never copies what is already there. A `Vec`
/// doubles into new memory, copying every element, and a list of hundreds of thousands of
/// entries pays for that copy and the fresh pages under it.
pub(super) struct Chunked<T> {
    /// Every chunk but the last is full. The last may be empty: [`Chunked::pop`] keeps a chunk
    /// it emptied for the next push, so that a list going back and forth across a chunk's edge
    /// does not free and allocate that chunk each time.
    chunks: Vec<Vec<T>>,
}

impl<T> Default for Chunked<T> {
    fn default() -> Self {
        Chunked { chunks: Vec::new() }
    }
}

impl<T: Copy> Chunked<T> {
    pub(super) fn len(&self) -> usize {
        self.chunks.last().map_or(0, |last| (self.chunks.len() - 1) * CHUNK + last.len())
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(last) if last.len() < CHUNK => last.push(value),
            _ => {
                let mut chunk = Vec::with_capacity(CHUNK);
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
    }

    pub(super) fn pop(&mut self) -> Option<T> {
        if self.chunks.last().is_some_and(Vec::is_empty) {
            // The spare an earlier pop kept: one is enough.
            self.chunks.pop();
        }
        self.chunks.last_mut()?.pop()
    }

    fn get(&self, i: usize) -> T {
        self.chunks[i / CHUNK][i % CHUNK]
    }

    fn set(&mut self, i: usize, value: T) {
        self.chunks[i / CHUNK][i % CHUNK] = value;
    }

    /// The elements, oldest first.
    pub(super) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> {
        self.chunks.iter().flatten()
    }

    /// Keeps the elements `keep` is true of, in order.
    pub(super) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let mut kept = 0;
        for i in 0..self.len() {
            let value = self.get(i);
            if keep(&value) {
                self.set(kept, value);
                kept += 1;
            }
        }
        let chunks = kept.div_ceil(CHUNK);
        self.chunks.truncate(chunks);
        if let Some(last) = self.chunks.last_mut() {
            last.truncate(kept - (chunks - 1) * CHUNK);
        }
    }
}

/// A min-heap on a [`Chunked`] list: like `BinaryHeap<Reverse<T>>`, growing without copying.
pub(super) struct MinHeap<T>(Chunked<T>);

impl<T> Default for MinHeap<T> {
    fn default() -> Self {
        MinHeap(Chunked::default())
    }
}

impl<T: Copy + Ord> MinHeap<T> {
    /// The least element.
    pub(super) fn peek(&self) -> Option<T> {
        (!self.0.is_empty()).then(|| self.0.get(0))
    }

    pub(super) fn push(&mut self, value: T) {
        self.0.push(value);
        let mut i = self.0.len() - 1;
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.0.get(parent) <= value {
                break;
            }
            self.0.set(i, self.0.get(parent));
            i = parent;
        }
        self.0.set(i, value);
    }

    /// Takes the least element out.
    pub(super) fn pop(&mut self) -> Option<T> {
        let least = self.peek()?;
        let last = self.0.pop()?;
        let len = self.0.len();
        if len > 0 {
            let mut i = 0;
            loop {
                let child = 2 * i + 1;
                if child >= len {
                    break;
                }
                let child = if child + 1 < len && self.0.get(child + 1) < self.0.get(child) { child + 1 } else { child };
                if last <= self.0.get(child) {
                    break;
                }
                self.0.set(i, self.0.get(child));
                i = child;
            }
            self.0.set(i, last);
        }
        Some(least)
    }
}

/// A permutation of the 32-bit numbers, drawn at random for each table: a four-round Feistel
/// network on 16-bit halves. Session ids carry their place through it, so that the ids of
/// sessions made one after the other do not count up. It obscures, it does not encrypt: a
/// session id is not a secret (its token is), and a patient reader of many ids might still
/// learn roughly how busy the table is.
#[derive(Clone, Copy)]
pub(super) struct Scramble([u32; 4]);

impl Scramble {
    pub(super) fn random() -> Self {
        let bits = uuid::Uuid::new_v4().as_u128();
        Scramble(std::array::from_fn(|i| (bits >> (32 * i)) as u32))
    }

    /// The round function: a 16-bit half and a round key to 16 bits, well mixed.
    fn round(half: u32, key: u32) -> u32 {
        let x = (half ^ key).wrapping_mul(0x9E37_79B9);
        (x ^ (x >> 15)).wrapping_mul(0x85EB_CA6B) >> 16
    }

    pub(super) fn forward(self, n: u32) -> u32 {
        let (mut left, mut right) = (n >> 16, n & 0xFFFF);
        for key in self.0 {
            (left, right) = (right, left ^ Self::round(right, key));
        }
        left << 16 | right
    }

    /// The inverse of [`Scramble::forward`].
    pub(super) fn backward(self, n: u32) -> u32 {
        let (mut left, mut right) = (n >> 16, n & 0xFFFF);
        for key in self.0.into_iter().rev() {
            (left, right) = (right ^ Self::round(left, key), left);
        }
        left << 16 | right
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn slots_fill_in_order_and_reuse_the_last_freed_first() {
        let mut slots = Slots::default();
        let made: Vec<usize> = (0..CHUNK + 3).map(|n| slots.insert(n)).collect();
        assert_eq!(made, (0..CHUNK + 3).collect::<Vec<_>>());
        assert_eq!((slots.len(), slots.next()), (CHUNK + 3, CHUNK + 3));
        assert_eq!(slots.remove(5), Some(5));
        assert_eq!(slots.remove(CHUNK + 1), Some(CHUNK + 1));
        assert_eq!((slots.remove(5), slots.get(5), slots.get(CHUNK + 9)), (None, None, None));
        assert_eq!(slots.next(), CHUNK + 1);
        assert_eq!(slots.insert(100), CHUNK + 1);
        assert_eq!(slots.insert(200), 5);
        assert_eq!(slots.insert(300), CHUNK + 3);
        *slots.get_mut(5).unwrap() += 1;
        assert_eq!((slots.get(5), slots.get(CHUNK + 1)), (Some(&201), Some(&100)));
        assert_eq!(slots.values().count(), slots.len());
        assert_eq!(slots.values().take(6).copied().collect::<Vec<_>>(), [0, 1, 2, 3, 4, 201]);
    }

    #[test]
    fn retain_across_chunks_keeps_the_kept_in_order() {
        for (len, keep) in [(3 * CHUNK + 5, 2), (CHUNK, 1), (2 * CHUNK, 2), (CHUNK + 1, 7), (5, 9)] {
            let mut list = Chunked::default();
            (0..len).for_each(|n| list.push(n));
            list.retain(|&n| n % keep == 0);
            let expected: Vec<usize> = (0..len).filter(|n| n % keep == 0).collect();
            assert_eq!((list.len(), list.iter().copied().collect::<Vec<_>>()), (expected.len(), expected.clone()));
            list.push(usize::MAX);
            assert_eq!(list.iter().last(), Some(&usize::MAX), "pushing after a retain of {len} by {keep}");
        }
        let mut list = Chunked::default();
        (0..CHUNK + 1).for_each(|n| list.push(n));
        list.retain(|_| false);
        assert!(list.is_empty() && list.pop().is_none());
    }

    #[test]
    fn a_chunk_emptied_by_pop_is_kept_for_the_next_push() {
        let mut list = Chunked::default();
        (0..CHUNK + 1).for_each(|n| list.push(n));
        let second = list.chunks[1].as_ptr();
        for _ in 0..3 {
            assert_eq!(list.pop(), Some(CHUNK));
            assert_eq!((list.len(), list.chunks.len()), (CHUNK, 2), "the emptied chunk is kept");
            list.push(CHUNK);
            assert_eq!(list.chunks[1].as_ptr(), second, "and filled again, not allocated anew");
        }
        assert_eq!((list.pop(), list.pop()), (Some(CHUNK), Some(CHUNK - 1)));
        assert_eq!((list.len(), list.chunks.len()), (CHUNK - 1, 1), "one spare at most");
        assert!(list.iter().copied().eq(0..CHUNK - 1));
    }

    #[test]
    fn scrambled_neighbours_do_not_count_up() {
        let scramble = Scramble::random();
        let ids: Vec<u32> = (0..64).map(|n| scramble.forward(n)).collect();
        let rising = ids.windows(2).filter(|w| w[1] == w[0].wrapping_add(1)).count();
        assert!(rising < 4, "{ids:?}");
        assert!(ids.iter().filter(|&&id| id < 1 << 16).count() < 8, "{ids:?}");
    }

    proptest! {
        #[test]
        fn chunked_lists_and_heaps_match_vecs_and_binary_heaps(ops in proptest::collection::vec((0u8..4, 0u32..50), 0..3 * CHUNK)) {
            let (mut list, mut vec) = (Chunked::default(), Vec::new());
            let (mut heap, mut reference) = (MinHeap::default(), std::collections::BinaryHeap::new());
            for (op, value) in ops {
                match op {
                    0 | 1 => {
                        list.push(value);
                        vec.push(value);
                        heap.push(value);
                        reference.push(std::cmp::Reverse(value));
                    }
                    2 => {
                        prop_assert_eq!(list.pop(), vec.pop());
                        prop_assert_eq!(heap.pop(), reference.pop().map(|r| r.0));
                    }
                    _ => {
                        list.retain(|&v| v % 3 != value % 3);
                        vec.retain(|&v| v % 3 != value % 3);
                    }
                }
                prop_assert_eq!(list.len(), vec.len());
                prop_assert_eq!(list.is_empty(), vec.is_empty());
                prop_assert_eq!(heap.peek(), reference.peek().map(|r| r.0));
            }
            prop_assert_eq!(list.iter().copied().collect::<Vec<_>>(), vec.clone());
            prop_assert_eq!(list.iter().rev().copied().collect::<Vec<_>>(), vec.into_iter().rev().collect::<Vec<_>>());
        }

        #[test]
        fn scrambling_is_undone(keys in any::<[u32; 4]>(), n in any::<u32>()) {
            let scramble = Scramble(keys);
            prop_assert_eq!(scramble.backward(scramble.forward(n)), n);
            prop_assert_eq!(scramble.forward(scramble.backward(n)), n);
        }
    }
}
