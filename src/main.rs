//! The `codifier` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    settle_candle_threads();
    let cli = codifier::cli::Cli::parse();
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
    match runtime.block_on(codifier::cli::run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// candle 0.11 asks for its thread count on every matrix product and, unless
/// `RAYON_NUM_THREADS` is set, counts the physical cores by parsing `/proc/cpuinfo` each time:
/// about a tenth of the CPU a query's embedding takes. Setting it once to what rayon would use
/// anyway (the available cores) drops the parsing and leaves rayon's pools as they were; candle
/// then splits a product over logical rather than physical cores, which differ only with SMT.
/// It runs first in `main`, before any other thread exists, as `set_var` requires.
#[allow(unsafe_code)]
fn settle_candle_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let threads = std::thread::available_parallelism().map_or(1, |threads| threads.get());
    // SAFETY: no other thread exists yet (the async runtime is built after this), so nothing
    // can read the environment while it changes.
    unsafe { std::env::set_var("RAYON_NUM_THREADS", threads.to_string()) };
}
