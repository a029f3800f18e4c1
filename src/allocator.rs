//! Giving memory back to the system when the server goes quiet.
//!
//! glibc's malloc returns a freed block to the system at once only when it had its own `mmap`
//! (blocks of 4 MiB and more, as `main` sets it) or when it sits at the top of its heap. Blocks
//! freed in the middle of a heap stay resident for reuse, in each of the arenas the server's
//! threads allocated from (up to eight per core). After a burst of requests most of what the
//! burst took is such free space, scattered between the few blocks still live, so resident
//! memory stayed near its peak long after the load was gone. [`trim_when_idle`] notices when
//! requests stop and then asks glibc to give back every whole free page of every arena
//! (`malloc_trim(0)`), a few times over the first minute of quiet: a few milliseconds of work
//! each, done only when no request is waiting for it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Blocks of this size and more get their own `mmap` from glibc and go back to the system when
/// freed (`main` sets it, unless `MALLOC_MMAP_THRESHOLD_` does). The local model sizes its forward
/// passes to stay under it ([`crate::embeddings::local`]).
pub const MMAP_THRESHOLD: usize = 4 << 20;

/// How many malloc arenas the server lets glibc make (`main` sets it, unless `MALLOC_ARENA_MAX`
/// does): one per core the process may run on, and at least 2, instead of glibc's 8 per core.
/// Free space in an arena is reused only by the threads attached to it; with an arena per
/// thread, each kept its own high-water mark and resident memory crept up over a long load.
pub fn arenas(cores: Option<std::num::NonZeroUsize>) -> libc::c_int {
    let cores = cores.map_or(1, std::num::NonZeroUsize::get);
    libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX)
}

/// Counts requests as they arrive, for [`trim_when_idle`] to tell a busy server from an idle one.
#[derive(Debug, Default)]
pub struct Activity {
    requests: AtomicU64,
}

impl Activity {
    /// Records that a request arrived.
    pub fn touch(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    fn count(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
}

/// How many times in a row a quiet server gives memory back: what the server drops a little
/// after going quiet (database connections closed when idle, sessions expired) is given back
/// too, and then the server leaves the allocator alone until requests come again.
const TRIMS_PER_LULL: u32 = 6;

/// Gives free memory back (via `trim`) once requests have stopped for `quiet` (between one and
/// two `quiet` periods after the last one), and again after each further `quiet` period without
/// requests, [`TRIMS_PER_LULL`] times in all. Runs until `shutdown`.
pub async fn trim_when_idle(
    activity: &Activity,
    quiet: Duration,
    shutdown: CancellationToken,
    mut trim: impl FnMut(),
) {
    let mut lull = Lull::new(activity.count());
    loop {
        tokio::select! {
            () = tokio::time::sleep(quiet) => {}
            () = shutdown.cancelled() => return,
        }
        if lull.tick(activity.count()) {
            trim();
        }
    }
}

/// What [`trim_when_idle`] knows between two ticks.
struct Lull {
    /// The request count at the last tick.
    seen: u64,
    /// Trims still due in the current quiet spell.
    trims_left: u32,
}

impl Lull {
    fn new(requests: u64) -> Self {
        Self {
            seen: requests,
            trims_left: 0,
        }
    }

    /// One `quiet` period later, `requests` have arrived in all: whether to trim now.
    fn tick(&mut self, requests: u64) -> bool {
        if requests != self.seen {
            self.seen = requests;
            self.trims_left = TRIMS_PER_LULL;
            return false;
        }
        let due = self.trims_left > 0;
        self.trims_left = self.trims_left.saturating_sub(1);
        due
    }
}

/// Asks the allocator to give every whole free page back to the system, and counts it.
pub fn trim() {
    crate::metrics::global().allocator_trimmed();
    trim_glibc();
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim_glibc() {
    // SAFETY: `malloc_trim` is thread-safe (it takes each arena's lock in turn) and only
    // releases pages no live block uses.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_glibc() {}

/// What the process's heap holds at one moment, in bytes, so resident memory can be told apart:
/// SQLite's own allocations (its page caches among them) and, on glibc, what `malloc` has handed
/// out against what it holds from the system (the difference is free space kept in its arenas).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapUsage {
    /// Everything SQLite has allocated and not freed, all connections together.
    pub sqlite: u64,
    /// Of which the connections' page caches, beyond each cache's first 20 pages (SQLite
    /// allocates those in one block and does not count them as page cache).
    pub sqlite_page_cache: u64,
    /// Blocks `malloc` has handed out and not had back (glibc only; 0 elsewhere).
    pub malloc_in_use: u64,
    /// What `malloc` holds from the system: its arenas and its own `mmap`s (glibc only).
    pub malloc_held: u64,
}

/// The heap's figures now ([`HeapUsage`]).
pub fn heap_usage() -> HeapUsage {
    let (sqlite, sqlite_page_cache) = sqlite_usage();
    let (malloc_in_use, malloc_held) = malloc_usage();
    HeapUsage {
        sqlite,
        sqlite_page_cache,
        malloc_in_use,
        malloc_held,
    }
}

#[allow(unsafe_code)]
fn sqlite_usage() -> (u64, u64) {
    use libsqlite3_sys::{SQLITE_STATUS_PAGECACHE_OVERFLOW, sqlite3_memory_used, sqlite3_status64};
    let (mut page_cache, mut highwater) = (0_i64, 0_i64);
    // SAFETY: both read SQLite's global counters under its own mutex (threadsafe build); the
    // pointers are to live locals. Page caches come from the heap (no SQLITE_CONFIG_PAGECACHE),
    // so the "overflow" counter is all of them.
    let used = unsafe {
        sqlite3_status64(
            SQLITE_STATUS_PAGECACHE_OVERFLOW,
            &mut page_cache,
            &mut highwater,
            0,
        );
        sqlite3_memory_used()
    };
    (
        u64::try_from(used).unwrap_or(0),
        u64::try_from(page_cache).unwrap_or(0),
    )
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn malloc_usage() -> (u64, u64) {
    // SAFETY: `mallinfo2` takes each arena's lock in turn and returns a plain struct.
    let info = unsafe { libc::mallinfo2() };
    (
        (info.uordblks + info.hblkhd) as u64,
        (info.arena + info.hblkhd) as u64,
    )
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn malloc_usage() -> (u64, u64) {
    (0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The trims over `ticks` periods in which `arrived(tick)` requests came.
    fn trims(lull: &mut Lull, count: &mut u64, ticks: u32, arrived: impl Fn(u32) -> u64) -> u32 {
        (0..ticks)
            .filter(|&tick| {
                *count += arrived(tick);
                lull.tick(*count)
            })
            .count() as u32
    }

    #[test]
    fn the_server_keeps_one_malloc_arena_per_core_and_never_fewer_than_two() {
        let cores = |n| std::num::NonZeroUsize::new(n);
        assert_eq!(arenas(cores(1)), 2);
        assert_eq!(arenas(cores(2)), 2);
        assert_eq!(arenas(cores(16)), 16);
        assert_eq!(arenas(None), 2, "unknown core count: the floor");
    }

    #[test]
    fn memory_is_given_back_after_requests_stop_a_few_times_and_never_while_they_go_on() {
        let mut count = 0;
        let mut lull = Lull::new(count);
        assert_eq!(trims(&mut lull, &mut count, 5, |_| 0), 0, "no request yet");
        assert_eq!(
            trims(&mut lull, &mut count, 50, |tick| 1 + u64::from(
                tick % 3 == 0
            ) * 4),
            0,
            "requests in every period: busy, no trim"
        );
        assert_eq!(
            trims(&mut lull, &mut count, 2, |_| 0),
            2,
            "the periods the requests stopped: given back at each"
        );
        assert_eq!(
            trims(&mut lull, &mut count, 30, |_| 0),
            TRIMS_PER_LULL - 2,
            "then for the rest of the lull, {TRIMS_PER_LULL} in all, then left alone"
        );
        assert_eq!(
            trims(&mut lull, &mut count, 10, |tick| u64::from(tick == 0)),
            TRIMS_PER_LULL,
            "one request and quiet again: a new lull"
        );
    }
}
