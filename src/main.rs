//! The `codifier` binary: parse the command line and hand over to the library.

use clap::Parser;
use codifier::cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    give_big_blocks_back();
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

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_big_blocks_back() {}
