//! `cargo +nightly fuzz run token_verify`: see astack_fuzz::token_verify for what it checks.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| astack_fuzz::token_verify(data));
