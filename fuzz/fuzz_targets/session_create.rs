//! `cargo +nightly fuzz run session_create`: see astack_fuzz::session_create for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| astack_fuzz::session_create(data));
