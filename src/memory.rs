//! The daemon's own heap, kept small over months of operations. glibc's
//! malloc gives every thread that allocates an arena of its own (up to
//! 8 per core), and memory freed in one is kept there for reuse: after a
//! burst of parallel work (`restart all` of 60 apps spawns and reaps 120
//! processes across the runtime's threads) the freed pages stay resident
//! in whichever arenas held them. Measured on 60 idle apps, four rounds of
//! `restart all`: +6.1 MB with the default arenas, +3.8 MB with one arena;
//! `malloc_trim` hands back part of what is left (the bench's restart all
//! and reload all: +4.7 MB before, +2.1 to +2.7 MB with both). The daemon
//! allocates little and rarely, so one arena costs no contention that
//! matters. Other allocators (musl's, macOS's) return memory on their own
//! and need neither call.

/// Makes malloc use a single arena; called once at the daemon's start,
/// before any other thread exists.
pub fn one_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a malloc tunable; it is called before
    // the daemon starts a thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Hands the free pages of the heap back to the OS; called after an
/// operation on many apps, whose peak is past.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}
