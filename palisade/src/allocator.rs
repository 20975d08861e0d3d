//! The process's memory allocator: mimalloc, keeping the memory it frees.
//!
//! Why mimalloc: malloc and free were 6.5% of a `separate` cluster's CPU samples under
//! the one-call-at-a-time latency workload, and on two shared cores latency falls with
//! CPU per call. Side by side against glibc's allocator (docs/PERFORMANCE.md) it gave
//! p50 0.92–0.97× on every latency operation and 1.06× small files; jemalloc gave nothing
//! measurable on latency.
//!
//! Why no purging: by default mimalloc returns freed pages to the system about a second
//! later (`purge_delay`), and a stream of 1 MiB WRITEs then keeps faulting in fresh zeroed
//! pages: sequential writes ran at 0.82–0.93× of glibc's allocator. With purging off
//! they ran at 1.02×. What the process holds is then its peak, which its bounded queues,
//! batches and caches bound.

use libmimalloc_sys::{mi_option_set, mi_option_t};

/// `mi_option_purge_delay` in mimalloc 3's `mimalloc.h` (between
/// `mi_option_deprecated_eager_commit_delay`, 14, and `mi_option_use_numa_nodes`, 16,
/// which `libmimalloc-sys` names); `libmimalloc-sys` 0.1.49 has no constant for it. The
/// test below checks that this index holds mimalloc 3's default purge delay.
const MI_OPTION_PURGE_DELAY: mi_option_t = 15;

/// Turns purging off (`-1`: "no purging at all", `mimalloc.h`). Call it first in `main`.
pub fn keep_freed_memory() {
    // SAFETY: mi_option_set only stores an option value (any value is valid for
    // purge_delay); it reads and writes no memory of ours.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libmimalloc_sys::mi_option_get;

    /// The purge delay in effect, in milliseconds (-1: never).
    fn purge_delay() -> std::ffi::c_long {
        // SAFETY: mi_option_get only reads an option value.
        unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
    }

    #[test]
    fn the_purge_delay_index_is_mimallocs_and_it_turns_off() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc 3's default for purge_delay; the options beside it default to 0
            // or 1, so a wrong index fails here.
            assert_eq!(purge_delay(), 1000);
        }
        keep_freed_memory();
        assert_eq!(purge_delay(), -1);
    }
}
