//! The `codifier` binary: parse the command line and hand over to the library.

use clap::Parser;
use codifier::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    give_big_blocks_back();
    share_arenas();
    let cli = match Cli::parse() {
        Cli {
            command: Command::Pack(args),
        } if args.project.is_none() => return finish(codifier::cli::pack::write_pack(*args)),
        cli => cli,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    finish(runtime.block_on(codifier::cli::run(cli)))
}

fn finish(outcome: anyhow::Result<()>) -> std::process::ExitCode {
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc serves a block of 128 KiB or more with its own `mmap`, returned to the system on
/// `free`, but its dynamic threshold rises to the size of each such block freed (up to 32 MiB):
/// after the first argon2 check (19 MiB of working memory) blocks that size came from the
/// arenas, where freed ones stayed resident, about 19 MB per check. Setting the threshold
/// explicitly turns the rise off (and the trim threshold's with it), so big blocks go back when
/// freed. It is 4 MiB rather than glibc's starting 128 KiB so that the local model's
/// activations of a few hundred KiB keep being reused from the arenas instead of costing an
/// `mmap` and fresh zeroed pages each. `MALLOC_MMAP_THRESHOLD_` in the environment, read by
/// glibc itself, still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn give_big_blocks_back() {
    const THRESHOLD: libc::c_int = codifier::allocator::MMAP_THRESHOLD as libc::c_int;
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_some() {
        return;
    }
    // SAFETY: `mallopt` only changes the allocator's settings, and runs before any other thread
    // exists. Failing (a zero result) leaves the default, which only keeps more memory.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, THRESHOLD) };
}

/// glibc gives threads arenas of their own, up to 8 per core, and a block freed goes back to
/// the arena it came from, where only threads attached to that arena reuse it. The server's
/// threads come and go (each SQLite connection runs on a thread of its own, reopened after
/// 20 s idle; tokio's blocking threads end after 10 s idle), so over a long load each of up to
/// 16 arenas (on 2 cores) reaches its own high-water mark at some moment and keeps it: in the
/// 30-minute SQLite soak, what malloc held from the system grew from 28 to 43 MB while
/// what it had handed out stayed at 17–22 MB (README, Reliability). One arena per core keeps
/// the free space where the next thread reuses it; the per-thread caches glibc puts in front of
/// the arenas (tcache) still serve most small blocks without taking an arena's lock.
/// `MALLOC_ARENA_MAX` in the environment, read by glibc itself, still wins.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn share_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let arenas = codifier::allocator::arenas(std::thread::available_parallelism().ok());
    // SAFETY: as above, `mallopt` only changes a setting, before any other thread exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn share_arenas() {}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_big_blocks_back() {}
