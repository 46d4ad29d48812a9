//! Arbitrary bytes as the spool file the daemon drains at start: one
//! request (or bare submit) per line.

#![no_main]

#[global_allocator]
static ALLOC: bgtask_fuzz::Capped = bgtask_fuzz::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bgtask::fuzzing::spool(data));
