//! The allowed path of `authorize` allocates nothing: a counting global allocator, armed per
//! thread, watches 1,000 calls after warm-up.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use astack::limits::KeyLimits;
use astack::Operation;
use common::*;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // `try_with`: the thread-locals may be gone while a thread shuts down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            let _ = COUNT.try_with(|count| count.set(count.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations(|| drop(std::hint::black_box(vec![1u8; 16])));
    assert_eq!(n, 1);
}

fn high_limits() -> KeyLimits {
    KeyLimits { requests_per_minute: Some(10_000_000), requests_per_hour: Some(100_000_000), concurrent_sessions: None }
}

#[test]
fn authorize_allowed_allocates_nothing() {
    let f = Fixture::new();
    let keys: Vec<_> = (0..8).map(|_| f.key_with_limits(Some("acme"), &["sessions:read"], high_limits())).collect();
    for key in &keys {
        f.auth(&key.key, Operation::SessionRead);
    }
    let mut allowed = 0;
    let n = allocations(|| {
        for i in 0..1_000 {
            if let Ok(authorization) = f.engine.authorize(&keys[i % keys.len()].key, Operation::SessionRead) {
                allowed += usize::from(std::hint::black_box(authorization).decision.allowed);
            }
        }
    });
    assert_eq!(allowed, 1_000);
    assert_eq!(n, 0, "authorize allocated {n} times in 1,000 allowed calls");
}

#[test]
fn authorize_with_a_pepper_and_legacy_flags_allocates_nothing() {
    let mut config = config();
    config.key_pepper = Some(astack::config::Secret("pepper-pepper-pepper".into()));
    let f = Fixture::with_config(config);
    let key = f.create(astack::keys::CreateKey {
        permissions: strings(&["session_manage"]),
        limits: high_limits(),
        ..Default::default()
    });
    f.auth(&key.key, Operation::SessionRead);
    let n = allocations(|| {
        for _ in 0..1_000 {
            assert!(f.engine.authorize(&key.key, Operation::SessionRead).is_ok());
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn malformed_keys_are_refused_without_allocating() {
    let f = Fixture::new();
    let n = allocations(|| {
        for candidate in ["", "ak_x", "ak_000000000000000000000000000000000000"] {
            assert!(f.engine.authorize(candidate, Operation::SessionRead).is_err());
        }
    });
    assert_eq!(n, 0);
}
