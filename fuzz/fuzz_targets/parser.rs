//! Arbitrary bytes as an analyzer's output, parsed and classified as the
//! engine does: the first byte picks the parser (`byte % 13`, in the order
//! of `bgtask::fuzzing::PARSERS`), the second is the exit code, the rest is
//! the report (or stdout) and stderr.
//!
//! One target for all thirteen parsers rather than one each: the JSON ones
//! share most of their code (serde), so thirteen runs would explore the
//! same paths thirteen times; one run lets libFuzzer spend the time where
//! new coverage still turns up, and builds and links one binary instead of
//! thirteen on a small machine. The corpus keeps each tool's real output
//! behind its selector byte, so every parser starts from real samples.

#![no_main]

#[global_allocator]
static ALLOC: bgtask_fuzz::Capped = bgtask_fuzz::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| bgtask::fuzzing::parser(data));
