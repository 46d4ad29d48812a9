//! Arbitrary bytes as a client's stream on the daemon socket: frames
//! read and decoded as the daemon does (length cap, JSON, version,
//! request), then as responses the CLI reads.

#![no_main]

#[global_allocator]
static ALLOC: bgtask_fuzz::Capped = bgtask_fuzz::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bgtask::fuzzing::ipc_frame(data));
