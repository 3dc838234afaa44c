//! Key entries stored side by side, and the counted handles that reach them.
//!
//! A store that keeps many keys puts their entries in a [`Slab`]: in their order of creation,
//! side by side, never moved. Entries made one by one among other allocations (an audit record,
//! JSON, strings for each key) would be scattered over several times the memory, and
//! `authorize` would pay more cache and TLB misses to reach them; side by side they take 192
//! bytes each (three whole cache lines), with no allocator header, and a position (`u32`) is
//! enough to find one.
//!
//! Large chunks are aligned to huge pages, and each 2 MiB of them is folded into one huge page once
//! filled: one TLB entry then covers ~10,900 entries instead of ~21.
//!
//! A [`KeyRef`] is to an entry what an `Arc` is to its value: it keeps the entry alive, even
//! after the store is gone, and counts itself in the entry's own slot — so handles to different
//! keys never write the same cache line. When an entry's last reference goes, the entry is
//! dropped in place; when every entry of a chunk is gone, the chunk's memory is freed.

use std::alloc::{self, Layout};
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{self, AtomicPtr, AtomicU32, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::KeyEntry;

/// An entry, the number of references to it (the slab's own included) and its position (in the
/// 4 bytes `refs` would leave as padding).
///
/// `repr(C)`, so that the count and position come first: with the entry's digest and buckets they
/// fill the slot's first cache line, which `authorize` reads and writes anyway (left to Rust,
/// they went last, on a third line: one more cache miss per call over keys out of the cache).
///
/// Aligned to whole cache lines, so that no two slots share one: threads working on neighbouring
/// keys (made one after the other) would otherwise write the line where one slot ends and the
/// next begins (two threads stepping through neighbouring keys scaled 1.7x instead of 1.9x,
/// BENCHMARKS.md).
#[repr(C, align(64))]
struct Slot {
    refs: AtomicU32,
    position: u32,
    entry: KeyEntry,
}

/// The position of an entry outside any slab.
const NO_POSITION: u32 = u32::MAX;

/// What a chunk's slots need to be freed: how many hold a live entry, and where they are.
struct Header {
    /// Slots whose entry is still referenced.
    live: AtomicUsize,
    slots: NonNull<Slot>,
    capacity: usize,
}

/// A huge page's size. Chunks this large or larger are aligned to it, and each whole huge page of
/// them is folded into one huge page as soon as it is filled (see [`fold_filled_huge_page`]).
const HUGE_PAGE: usize = 2 << 20;

/// The layout of a chunk of `capacity` slots.
fn chunk_layout(capacity: usize) -> Layout {
    let layout = Layout::array::<Slot>(capacity).expect("chunk size");
    if layout.size() >= HUGE_PAGE {
        layout.align_to(HUGE_PAGE).expect("chunk alignment")
    } else {
        layout
    }
}

/// Once the slot `index` of `chunk` has been written, folds the huge page it completes, if any,
/// into one huge page (`MADV_COLLAPSE`, Linux 6.1 and later, with glibc; elsewhere, or if it
/// fails, the memory stays in small pages, as it was).
///
/// Over keys out of the cache, each `authorize` otherwise also misses the TLB for its entry: a
/// page walk, under a hypervisor's nested paging, of a few more cache misses (BENCHMARKS.md).
/// Only filled huge pages are folded, so the slab keeps no more memory than with small pages: a
/// region given huge pages ahead of use would hold up to 2 MiB that no entry uses yet.
fn fold_filled_huge_page(chunk: &Header, index: usize) {
    let slot = std::mem::size_of::<Slot>();
    let (start, end) = (index * slot / HUGE_PAGE, (index + 1) * slot / HUGE_PAGE);
    if chunk_layout(chunk.capacity).align() != HUGE_PAGE || end == start {
        return;
    }
    // SAFETY: the huge page `start` lies inside the chunk (its end is at most slot `index`'s
    // end), and folding changes only how that memory is backed, not what it holds.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    unsafe {
        let page = chunk.slots.as_ptr().cast::<u8>().add(start * HUGE_PAGE);
        libc::madvise(page.cast(), HUGE_PAGE, libc::MADV_COLLAPSE);
    }
}

impl Header {
    /// A chunk of `capacity` empty slots; owned by nobody until an entry is written to it.
    fn allocate(capacity: usize) -> NonNull<Header> {
        let layout = chunk_layout(capacity);
        // SAFETY: `capacity` is at least 1 and `Slot` is not zero-sized, so the size is not 0.
        let slots = NonNull::new(unsafe { alloc::alloc(layout) }.cast::<Slot>())
            .unwrap_or_else(|| alloc::handle_alloc_error(layout));
        let header = Box::new(Header { live: AtomicUsize::new(0), slots, capacity });
        NonNull::from(Box::leak(header))
    }

    /// The slot `index`.
    ///
    /// # Safety
    /// `index < capacity`.
    unsafe fn slot(&self, index: usize) -> NonNull<Slot> {
        NonNull::new_unchecked(self.slots.as_ptr().add(index))
    }

    /// Writes `entry` (at `position` in its slab) to the empty slot `index`, with one reference
    /// (the caller's).
    ///
    /// # Safety
    /// `header` is a live chunk, `index < capacity`, the slot has never been written, and no
    /// other thread writes to this chunk at the same time.
    unsafe fn fill(header: NonNull<Header>, index: usize, position: u32, entry: KeyEntry) -> KeyRef {
        let chunk = header.as_ref();
        debug_assert!(index < chunk.capacity);
        let slot = chunk.slot(index);
        slot.as_ptr().write(Slot { refs: AtomicU32::new(1), position, entry });
        chunk.live.fetch_add(1, Ordering::Relaxed);
        KeyRef { slot, chunk: header }
    }
}

/// A counted reference to a key entry: cloning it counts one more use of the entry, dropping it
/// one fewer; the entry lives as long as the last one.
pub struct KeyRef {
    slot: NonNull<Slot>,
    chunk: NonNull<Header>,
}

// SAFETY: a `KeyRef` gives shared access to a `KeyEntry` (which is `Send + Sync`) and its
// counts are atomic, as with `Arc<KeyEntry>`.
unsafe impl Send for KeyRef {}
unsafe impl Sync for KeyRef {}

impl KeyRef {
    /// An entry of its own, outside any slab (for stores that keep few entries or cache them).
    pub fn new(entry: KeyEntry) -> KeyRef {
        // SAFETY: a fresh chunk of one slot, written once, by this thread only.
        unsafe { Header::fill(Header::allocate(1), 0, NO_POSITION, entry) }
    }

    /// The entry's position in its slab, which no other entry of that slab ever has; `None`
    /// for an entry of its own ([`KeyRef::new`]). Lets a host cache what never changes about a
    /// key (its ids) by position.
    pub fn position(&self) -> Option<u32> {
        Some(self.slot().position).filter(|&p| p != NO_POSITION)
    }

    fn slot(&self) -> &Slot {
        // SAFETY: this reference counts in `refs`, so the slot's entry is alive.
        unsafe { self.slot.as_ref() }
    }
}

impl Deref for KeyRef {
    type Target = KeyEntry;

    fn deref(&self) -> &KeyEntry {
        &self.slot().entry
    }
}

impl Clone for KeyRef {
    fn clone(&self) -> Self {
        // Relaxed, as `Arc::clone`: a new reference is made from an existing one.
        if self.slot().refs.fetch_add(1, Ordering::Relaxed) > u32::MAX / 2 {
            // As `Arc`: so many leaked references that the count could wrap.
            std::process::abort();
        }
        KeyRef { slot: self.slot, chunk: self.chunk }
    }
}

impl Drop for KeyRef {
    fn drop(&mut self) {
        if self.slot().refs.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        atomic::fence(Ordering::Acquire);
        // SAFETY: that was the entry's last reference; nothing reaches the slot any more.
        unsafe { std::ptr::drop_in_place(std::ptr::addr_of_mut!((*self.slot.as_ptr()).entry)) };
        // SAFETY: the chunk lives while one of its entries does, and this one did until now.
        let chunk = unsafe { self.chunk.as_ref() };
        if chunk.live.fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        atomic::fence(Ordering::Acquire);
        let layout = chunk_layout(chunk.capacity);
        // SAFETY: no slot of the chunk holds an entry: the slots and the header were allocated
        // by `Header::allocate` with this layout and are freed once.
        unsafe {
            alloc::dealloc(chunk.slots.as_ptr().cast(), layout);
            drop(Box::from_raw(self.chunk.as_ptr()));
        }
    }
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        KeyEntry::fmt(self, f)
    }
}

/// Entries side by side, by position (their order of creation): appended, never moved or
/// removed, read without a lock. Bucket `b` holds `FIRST << b` entries, so a few dozen buckets
/// cover every `u32` position and a position finds its bucket with one `leading_zeros`; a
/// bucket's memory is touched (and resident) only as entries fill it. The slab holds one
/// reference to each of its entries, given up when it is dropped.
pub struct Slab {
    buckets: [AtomicPtr<Header>; BUCKETS],
    /// Entries written; a position below it is readable.
    len: AtomicU32,
    /// Serializes `push`.
    writer: Mutex<()>,
}

/// Entries in the first bucket.
const FIRST: u32 = 256;
/// Enough buckets for every `u32` position: `FIRST * (2^BUCKETS - 1) > u32::MAX`.
const BUCKETS: usize = 25;

/// The bucket of `position` and its index there.
fn locate(position: u32) -> (usize, usize) {
    let run = u64::from(position / FIRST) + 1;
    let bucket = 63 - run.leading_zeros() as usize;
    let start = u64::from(FIRST) * ((1 << bucket) - 1);
    (bucket, (u64::from(position) - start) as usize)
}

impl Default for Slab {
    fn default() -> Self {
        Slab { buckets: Default::default(), len: AtomicU32::new(0), writer: Mutex::new(()) }
    }
}

impl Slab {
    /// Appends `entry`; returns its position.
    pub fn push(&self, entry: KeyEntry) -> u32 {
        let _writer = self.writer.lock();
        let position = self.len.load(Ordering::Relaxed);
        assert!(position < NO_POSITION, "2^32 - 1 keys in one store");
        let (bucket, index) = locate(position);
        let mut chunk = self.buckets[bucket].load(Ordering::Relaxed);
        if chunk.is_null() {
            chunk = Header::allocate((FIRST as usize) << bucket).as_ptr();
            self.buckets[bucket].store(chunk, Ordering::Release);
        }
        let chunk = NonNull::new(chunk).expect("allocated");
        // SAFETY: the slot after the last written one (`len`), written under `writer`; no
        // reader reaches it before `len` is raised past it.
        let slab_ref = unsafe { Header::fill(chunk, index, position, entry) };
        // The slab's reference, given up in `Drop` (see `own_ref`).
        std::mem::forget(slab_ref);
        // SAFETY: the chunk is alive (it holds the entry just written).
        fold_filled_huge_page(unsafe { chunk.as_ref() }, index);
        self.len.store(position + 1, Ordering::Release);
        position
    }

    /// The slab's own reference to the entry at `position`, as a `KeyRef`: dropping it gives
    /// that reference up, so only `Drop` may; everything else wraps it in `ManuallyDrop`.
    fn own_ref(&self, position: u32) -> KeyRef {
        let len = self.len.load(Ordering::Acquire);
        assert!(position < len, "slab position {position} out of {len}");
        let (bucket, index) = locate(position);
        // Published before `len` (Release above, Acquire here).
        let chunk = NonNull::new(self.buckets[bucket].load(Ordering::Acquire)).expect("allocated");
        // SAFETY: the chunk is alive (the slab holds a reference to each of its entries) and
        // `index` is a written slot of it.
        let slot = unsafe { chunk.as_ref().slot(index) };
        KeyRef { slot, chunk }
    }

    /// The entry at `position` (one `push` returned).
    pub fn get(&self, position: u32) -> &KeyEntry {
        let slot = ManuallyDrop::new(self.own_ref(position)).slot;
        // SAFETY: the slab's own reference keeps the entry alive as long as `self`.
        unsafe { &slot.as_ref().entry }
    }

    /// A counted reference to the entry at `position` (one `push` returned).
    pub fn handle(&self, position: u32) -> KeyRef {
        KeyRef::clone(&ManuallyDrop::new(self.own_ref(position)))
    }

    /// Positions of all entries, newest first.
    pub fn newest_first(&self) -> impl ExactSizeIterator<Item = u32> {
        (0..self.len.load(Ordering::Acquire)).rev()
    }
}

impl Drop for Slab {
    fn drop(&mut self) {
        for position in 0..*self.len.get_mut() {
            drop(self.own_ref(position));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::entry::empty_record;
    use super::*;
    use crate::keys::KeyRecord;
    use std::sync::Arc;

    fn record(id: &str) -> KeyRecord {
        KeyRecord { id: id.into(), account_id: "acme".into(), prefix: "ak_Ab9z".into(), ..empty_record() }
    }

    fn entry(n: u8) -> KeyEntry {
        KeyEntry::new([n; 32], record(&format!("key_{n:032x}")), Arc::default())
    }

    #[test]
    fn slots_are_whole_cache_lines_and_entries_never_share_one() {
        assert_eq!(std::mem::size_of::<Slot>(), 192);
        let slab = Slab::default();
        // Across the first chunk's end into the second.
        let refs: Vec<KeyRef> = (0..FIRST + 3).map(|n| slab.handle(slab.push(entry(n as u8)))).collect();
        let line = |r: &KeyRef| r.slot.as_ptr() as usize / 64;
        for pair in refs.windows(2) {
            assert_eq!(pair[0].slot.as_ptr() as usize % 64, 0);
            let end = (pair[0].slot.as_ptr() as usize + std::mem::size_of::<Slot>() - 1) / 64;
            assert!(end < line(&pair[1]) || line(&pair[1]) < line(&pair[0]), "slots share a cache line");
        }
    }

    #[test]
    fn the_count_digest_and_buckets_share_the_first_line() {
        let slab = Slab::default();
        let handle = slab.handle(slab.push(entry(1)));
        let start = handle.slot.as_ptr() as usize;
        let line = |field: usize, size: usize| ((field - start) / 64, (field - start + size - 1) / 64);
        assert_eq!(line(&handle.slot().refs as *const _ as usize, 4), (0, 0));
        assert_eq!(line(handle.digest.as_ptr() as usize, 32), (0, 0));
        assert_eq!(line(&handle.buckets as *const _ as usize, std::mem::size_of::<crate::limits::Buckets>()), (0, 0));
    }

    #[test]
    fn filled_huge_pages_are_folded_and_keep_their_entries() {
        let bucket = (0..BUCKETS).find(|&b| chunk_layout((FIRST as usize) << b).align() == HUGE_PAGE).expect("a large chunk");
        let chunk_start = FIRST * ((1 << bucket) - 1);
        // Into the second huge page of the first chunk that has them: the first is filled and
        // folded (the second, partly filled, stays in small pages).
        let count = chunk_start + (HUGE_PAGE / std::mem::size_of::<Slot>()) as u32 + 1;
        let slab = Slab::default();
        for n in 0..count {
            slab.push(entry((n % 251) as u8));
        }
        for n in 0..count {
            assert_eq!(slab.get(n).digest, [(n % 251) as u8; 32], "entry {n}");
        }
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
            if !thp.is_empty() && !thp.contains("[never]") {
                let at = slab.get(chunk_start) as *const KeyEntry as usize;
                let kib = huge_kib_of_mapping_at(at);
                assert_eq!(kib, HUGE_PAGE / 1024, "the chunk's first huge page, and only it, is folded ({at:#x})");
            }
        }
    }

    /// `AnonHugePages` of this process's mapping that contains `address`, in KiB.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn huge_kib_of_mapping_at(address: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").expect("smaps");
        let mut inside = false;
        for line in smaps.lines() {
            let range = line.split_whitespace().next().and_then(|r| r.split_once('-'));
            let bounds = range.and_then(|(a, b)| Some((usize::from_str_radix(a, 16).ok()?, usize::from_str_radix(b, 16).ok()?)));
            if let Some((start, end)) = bounds {
                inside = (start..end).contains(&address);
            } else if let Some(kib) = line.strip_prefix("AnonHugePages:").filter(|_| inside) {
                return kib.trim().trim_end_matches("kB").trim().parse().expect("a size");
            }
        }
        0
    }

    #[test]
    fn positions_fill_the_buckets_in_order() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(FIRST - 1), (0, FIRST as usize - 1));
        assert_eq!(locate(FIRST), (1, 0));
        assert_eq!(locate(3 * FIRST - 1), (1, 2 * FIRST as usize - 1));
        assert_eq!(locate(3 * FIRST), (2, 0));
        assert_eq!(locate(u32::MAX).0, BUCKETS - 1);
        assert_eq!(locate(u32::MAX - FIRST).0, BUCKETS - 2);
    }

    #[test]
    fn entries_outlive_the_slab_through_their_handles() {
        let slab = Slab::default();
        let count = 3 * FIRST + 5;
        for n in 0..count {
            assert_eq!(slab.push(entry(n as u8)), n);
        }
        assert!(slab.newest_first().eq((0..count).rev()));
        let kept: Vec<KeyRef> = [0, FIRST, count - 1].iter().map(|&p| slab.handle(p)).collect();
        let copy = kept[1].clone();
        assert_eq!(kept.iter().map(KeyRef::position).collect::<Vec<_>>(), [Some(0), Some(FIRST), Some(count - 1)]);
        assert_eq!(copy.position(), Some(FIRST));
        drop(slab);
        assert_eq!(kept[0].digest, [0; 32]);
        assert_eq!(kept[1].digest, [FIRST as u8; 32]);
        assert_eq!(copy.record.id(), kept[1].record.id());
        assert_eq!(kept[2].digest, [(count - 1) as u8; 32]);
    }

    #[test]
    fn a_lone_entry_is_dropped_with_its_last_handle() {
        let meter = Arc::new(super::super::AccountMeter::default());
        let first = KeyRef::new(KeyEntry::new([1; 32], record("key_lone"), meter.clone()));
        let second = first.clone();
        assert_eq!(second.position(), None);
        assert_eq!(Arc::strong_count(&meter), 2);
        drop(first);
        assert_eq!(second.record.id(), "key_lone");
        drop(second);
        assert_eq!(Arc::strong_count(&meter), 1, "the entry (and its meter) was dropped");
    }

    #[test]
    #[should_panic(expected = "out of")]
    fn unwritten_positions_are_refused() {
        let slab = Slab::default();
        slab.push(entry(1));
        slab.get(1);
    }
}
