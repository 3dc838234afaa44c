//! The C ABI's hot path allocates nothing: `astack_authorize` (and its `_op` and `_bytes`
//! forms) on an allowed request, with the decision written into a caller-owned struct. Counted with a global allocator, in a test
//! binary of its own so that no other test allocates meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ffi::{c_char, CStr, CString};
use std::sync::atomic::{AtomicUsize, Ordering};

use astack::ffi::*;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
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

    let before = ALLOCATIONS.load(Ordering::SeqCst);
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
    let after = ALLOCATIONS.load(Ordering::SeqCst);
    let decision = unsafe { decision.assume_init() };
    assert_eq!(after - before, 0, "astack_authorize allocated on the allowed path");
    assert_eq!(decision.remaining, 100 - 91, "every request took its token");
    astack_engine_free(engine);
}
