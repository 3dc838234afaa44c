//! The C ABI's hot path allocates nothing: `astack_authorize` (and its `_op` and `_bytes`
//! forms) on an allowed request, with the decision written into a caller-owned struct. Counted
//! with a global allocator, per thread: the harness's own thread may still be allocating as the
//! test starts (it did once, on a loaded machine), and only the calling thread's count matters.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ffi::{c_char, CStr, CString};

use astack::ffi::*;

struct Counting;

thread_local! {
    /// Allocations and reallocations made by this thread (a constant initializer: reading it
    /// allocates nothing).
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down may still free and allocate.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn key_of(json: *mut c_char) -> CString {
    let text = unsafe { CStr::from_ptr(json) }.to_str().unwrap().to_owned();
    astack_string_free(json);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    CString::new(value["key"].as_str().unwrap()).unwrap()
}

#[test]
fn authorize_allocates_nothing_when_allowed() {
    let mut engine = std::ptr::null_mut();
    assert_eq!(astack_engine_new_with_manual_clock(std::ptr::null(), 1_700_000_000_000, &mut engine), astack_result::ASTACK_OK);
    let mut json = std::ptr::null_mut();
    assert_eq!(astack_bootstrap_admin_key(engine, std::ptr::null(), &mut json), astack_result::ASTACK_OK);
    let key = key_of(json);
    let operation = CString::new("session.read").unwrap();
    let mut decision = std::mem::MaybeUninit::<astack_decision>::uninit();
    // Warm up: the first request may create the account's counters.
    assert_eq!(astack_authorize(engine, key.as_ptr(), operation.as_ptr(), decision.as_mut_ptr()), astack_result::ASTACK_OK);

    let before = allocations();
    for _ in 0..30 {
        let result = astack_authorize(engine, key.as_ptr(), operation.as_ptr(), decision.as_mut_ptr());
        assert_eq!(result, astack_result::ASTACK_OK);
        let result = astack_authorize_op(engine, key.as_ptr(), astack_operation::ASTACK_OP_ADMIN as u32, decision.as_mut_ptr());
        assert_eq!(result, astack_result::ASTACK_OK);
        let bytes = key.as_bytes();
        let op = astack_operation::ASTACK_OP_ADMIN as u32;
        let result = astack_authorize_bytes(engine, bytes.as_ptr().cast(), bytes.len(), op, decision.as_mut_ptr());
        assert_eq!(result, astack_result::ASTACK_OK);
    }
    let after = allocations();
    let decision = unsafe { decision.assume_init() };
    assert_eq!(after - before, 0, "astack_authorize allocated on the allowed path");
    assert_eq!(decision.remaining, 100 - 91, "every request took its token");
    astack_engine_free(engine);
}
