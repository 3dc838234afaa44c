//! `cargo +nightly fuzz run config`: see astack_fuzz::config for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| astack_fuzz::config(data));
