//! What every fuzz target shares: an allocator that turns any single
//! allocation over [`ALLOCATION_LIMIT`] into a crash libFuzzer records.
//!
//! libFuzzer's own `-malloc_limit_mb` needs a sanitizer's malloc hooks;
//! the targets are built without one (`-s none`: the code under test is
//! safe Rust, and a sanitizer would halve the executions), so the limit is
//! kept here. `-rss_limit_mb` still bounds the whole process.

use std::alloc::{GlobalAlloc, Layout, System};

/// No input may make the code under test ask for more than this at once.
pub const ALLOCATION_LIMIT: usize = 100 * 1024 * 1024;

/// The system allocator, aborting on a request over [`ALLOCATION_LIMIT`].
pub struct Capped;

impl Capped {
    fn check(size: usize) {
        if size > ALLOCATION_LIMIT {
            // No allocation here: print with a fixed buffer and abort, which
            // libFuzzer reports as a crash with the input saved.
            let mut buf = [0u8; 96];
            let msg = format_no_alloc(&mut buf, size);
            let _ = std::io::Write::write_all(&mut std::io::stderr(), msg);
            std::process::abort();
        }
    }
}

fn format_no_alloc(buf: &mut [u8; 96], size: usize) -> &[u8] {
    let prefix = b"==bgtask-fuzz== allocation over 100 MB: ";
    buf[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 20];
    let mut n = size;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let d = &digits[i..];
    let end = prefix.len() + d.len();
    buf[prefix.len()..end].copy_from_slice(d);
    buf[end..end + 7].copy_from_slice(b" bytes\n");
    &buf[..end + 7]
}

// SAFETY: every call is forwarded to `System` unchanged once the size
// check passed; the check itself allocates nothing.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Capped::check(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Capped::check(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Capped::check(new_size);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
