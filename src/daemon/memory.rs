//! Giving memory back while the daemon idles: freed heap to the system
//! (`malloc_trim`), and the pages of the daemon's own code and read-only
//! data that starting up, walking the tree or running a job touched
//! (`MADV_PAGEOUT`): they are clean copies of the executable, so dropping
//! them loses nothing, and what the next job needs comes back on first use
//! (from the page cache, or the disk). An idle daemon on a 100 000-file
//! tree is then a few MiB of heap and stacks, not the 11 MiB of executable
//! a start leaves mapped.

use crate::clock::Millis;

/// How long after the last job the heap is trimmed: by then the blocking
/// pool's threads have gone and the notifier is done with it, and a save
/// that comes sooner (someone typing) does not fault the heap back in.
const HEAP_RELEASE: Millis = 3_000;

/// How long after the last job an idle daemon gives back its code pages
/// too (someone editing saves more often than this, and a save that has
/// to fault the code back in starts its analyzer milliseconds later).
const CODE_RELEASE: Millis = 10_000;

/// When memory is given back once no job runs: the heap
/// [`HEAP_RELEASE`] after the last job, the code pages [`CODE_RELEASE`]
/// after it.
#[derive(Debug, Default)]
pub(super) struct Releases {
    heap_at: Option<Millis>,
    code_at: Option<Millis>,
}

impl Releases {
    pub(super) fn job_ended(&mut self, now: Millis) {
        self.heap_at = Some(now + HEAP_RELEASE);
        self.code_at = Some(now + CODE_RELEASE);
    }

    pub(super) fn deadlines(&self) -> [Option<Millis>; 2] {
        [self.heap_at, self.code_at]
    }

    /// Which are due at `now` (heap, code); each is then done.
    pub(super) fn take_due(&mut self, now: Millis) -> (bool, bool) {
        let heap = self.heap_at.take_if(|at| *at <= now).is_some();
        let code = self.code_at.take_if(|at| *at <= now).is_some();
        (heap, code)
    }
}

/// One malloc arena for the whole daemon: a parallel walk or a blocking
/// thread would otherwise leave an arena of its own behind, which trimming
/// gives back only in part. The daemon's threads hardly contend.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt is called before the daemon starts its threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands freed heap and the executable's clean pages back.
pub fn release() {
    trim_heap();
    page_out_executable();
}

/// Hands freed heap back (what a job left), keeping the code a next job
/// runs: faulting it back in cost a save several milliseconds.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// `MADV_PAGEOUT` (Linux 5.4) on the read-only mappings of our own
/// executable; older kernels say `EINVAL` and nothing happens.
fn page_out_executable() {
    #[cfg(target_os = "linux")]
    {
        const MADV_PAGEOUT: libc::c_int = 21;
        let Ok(exe) = std::fs::read_link("/proc/self/exe") else {
            return;
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return;
        };
        for (start, end) in read_only_ranges(&maps, &exe.to_string_lossy()) {
            // SAFETY: the range is one of our own mappings, read-only and
            // file-backed; MADV_PAGEOUT only drops (clean) pages, which
            // are faulted back in from the file on the next access.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, MADV_PAGEOUT);
            }
        }
    }
}

/// `(start, end)` of the read-only mappings of `path` in a maps listing.
fn read_only_ranges(maps: &str, path: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let file = fields.nth(3)?;
            if file != path || perms.contains('w') || !perms.starts_with('r') {
                return None;
            }
            let (a, b) = range.split_once('-')?;
            Some((
                usize::from_str_radix(a, 16).ok()?,
                usize::from_str_radix(b, 16).ok()?,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_read_only_mappings_of_the_executable() {
        let maps = "\
55d1efc6e000-55d1efeb9000 r--p 00000000 fe:00 326279 /usr/bin/bgtask
55d1efeb9000-55d1f09d9000 r-xp 0024b000 fe:00 326279 /usr/bin/bgtask
55d1f09d9000-55d1f0a41000 rw-p 00d6b000 fe:00 326279 /usr/bin/bgtask
7f7842c8a000-7f7842cb0000 r-xp 00000000 fe:00 325843 /usr/lib/libc.so.6
7ffd727a4000-7ffd727c5000 rw-p 00000000 00:00 0 [stack]
";
        assert_eq!(
            read_only_ranges(maps, "/usr/bin/bgtask"),
            [
                (0x55d1_efc6_e000, 0x55d1_efeb_9000),
                (0x55d1_efeb_9000, 0x55d1_f09d_9000)
            ]
        );
    }

    #[test]
    fn releasing_is_harmless() {
        release();
        // Still running code after the pages went.
        assert_eq!(read_only_ranges("", "x"), []);
    }
}
