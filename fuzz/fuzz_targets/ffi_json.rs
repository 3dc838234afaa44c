//! `cargo +nightly fuzz run ffi_json`: see astack_fuzz::ffi_json for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| astack_fuzz::ffi_json(data));
