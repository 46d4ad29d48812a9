//! Arbitrary bytes as `.background-tasks.json` text (invalid UTF-8
//! replaced), through the whole loader: syntax, duplicate keys, merge,
//! raw mirror and validation.

#![no_main]

#[global_allocator]
static ALLOC: bgtask_fuzz::Capped = bgtask_fuzz::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bgtask::fuzzing::config(data));
