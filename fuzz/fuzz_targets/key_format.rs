//! `cargo +nightly fuzz run key_format`: see astack_fuzz::key_format for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| astack_fuzz::key_format(data));
