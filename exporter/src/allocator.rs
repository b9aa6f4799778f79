//! Settings of the global allocator (mimalloc) for vigil's load: the
//! binary calls [`tune`] first thing, and the pipeline benchmark does too,
//! so it measures the allocator as the binary runs it.

/// mimalloc gives freed memory back to the kernel `purge_delay` ms after it
/// is freed (10 ms by default). Each export request (~1 MB, and tonic's
/// compression buffer) was then built in freshly faulted, zeroed pages:
/// `clear_page_erms` was ~12% of vigil's CPU during an open storm, gone with
/// 1 s, which keeps the memory across requests at any busy rate and still
/// returns it when vigil is idle. `MIMALLOC_PURGE_DELAY` in the environment
/// wins.
///
/// Transparent huge pages are turned off for vigil's own memory: mimalloc
/// asks for them on its arenas, and every fresh 2 MiB page is zeroed whole
/// at the first touch, however little of it is used before it is purged
/// again. In an exec storm (records arrive in small bursts) that zeroing
/// was ~40% of vigil's CPU; without THP vigil used ~30% less CPU per exec
/// (docs/performance.md). `MIMALLOC_ALLOW_THP=1` in the environment keeps
/// them.
pub fn tune() {
    // mimalloc.h (v2 and v3): mi_option_purge_delay; libmimalloc-sys's
    // bindings do not name it.
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: mimalloc's option setter takes two integers; the option
        // exists in the linked mimalloc (the `mimalloc` dependency, which
        // the binary and the benchmark install as global allocator).
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    }
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // SAFETY: prctl with PR_SET_THP_DISABLE takes integer arguments
        // only; it sets a flag on this process's memory (checked at each
        // fault, so it also covers mimalloc's existing arenas).
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            // Harmless (a kernel without THP support): vigil runs as before.
            tracing::debug!("PR_SET_THP_DISABLE: {}", std::io::Error::last_os_error());
        }
    }
}
