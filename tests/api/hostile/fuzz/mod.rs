//! Property tests that throw generated input at every parser a caller can reach: the SQL guard,
//! the playbook loader, the skills importer, the bearer-key parser, every MCP tool's arguments
//! (through the real server) and the legacy SSE message endpoint. Each target runs for
//! `CODIFIER_FUZZ_SECONDS` (3 s by default, 600 s for the long run in `scripts/fuzz.sh`) on
//! fresh random input, or, when `CODIFIER_FUZZ_CASES` is set (CI), that many cases from
//! proptest's fixed seed, so a CI run is the same on any machine; it prints its cases per
//! second, and fails on a panic or a case slower than [`SLOW_CASE`] (a hang), shrunk to a
//! minimal input. A case that kills the process instead (out of memory, an abort) is left in
//! `target/fuzz-cases/<target>.case` with the seed that replays it (`CODIFIER_FUZZ_SEED`,
//! `CODIFIER_FUZZ_SKIP`). Crashes it finds become the named regression tests in `targets.rs`.

use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

mod inputs;
mod messages;
mod targets;

/// A single case slower than this counts as a hang.
pub const SLOW_CASE: Duration = Duration::from_secs(10);

/// `CODIFIER_FUZZ_CASES`: a fixed number of cases from a fixed seed instead of a time budget.
fn fixed_cases() -> Option<u64> {
    std::env::var("CODIFIER_FUZZ_CASES")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
}

fn budget() -> Duration {
    let seconds = std::env::var("CODIFIER_FUZZ_SECONDS")
        .ok()
        .and_then(|text| text.parse::<u64>().ok())
        .unwrap_or(3);
    Duration::from_secs(seconds)
}

fn run_one<T>(check: &mut impl FnMut(&T) -> Result<(), String>, value: &T) -> Result<(), String> {
    let started = Instant::now();
    let outcome = match std::panic::catch_unwind(AssertUnwindSafe(|| check(value))) {
        Ok(outcome) => outcome,
        Err(panic) => Err(format!(
            "panicked: {}",
            panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)")
        )),
    };
    let took = started.elapsed();
    outcome.and_then(|()| {
        if took > SLOW_CASE {
            Err(format!("one case took {took:?}"))
        } else {
            Ok(())
        }
    })
}

/// `CODIFIER_FUZZ_SEED` (64 hex digits) replays a run, skipping its first
/// `CODIFIER_FUZZ_SKIP` cases without running them; otherwise a fresh random seed.
fn seed() -> [u8; 32] {
    if let Ok(hex) = std::env::var("CODIFIER_FUZZ_SEED") {
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .filter_map(|at| u8::from_str_radix(hex.get(at..at + 2)?, 16).ok())
            .collect();
        return bytes
            .try_into()
            .expect("CODIFIER_FUZZ_SEED must be 64 hex digits");
    }
    let state = std::collections::hash_map::RandomState::new();
    let mut seed = [0u8; 32];
    for (n, chunk) in seed.chunks_mut(8).enumerate() {
        let word = std::hash::BuildHasher::hash_one(&state, (n, Instant::now()));
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    seed
}

fn skip() -> u64 {
    std::env::var("CODIFIER_FUZZ_SKIP")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(0)
}

/// Where each target writes the case it is running (`<target>.case`) and the smallest failing
/// input it found (`<target>.failed`): a case that kills the process (out of memory, a stack
/// overflow, an abort) leaves its file behind, with the seed and number that replay it.
fn record_dir() -> std::path::PathBuf {
    std::env::var_os("CODIFIER_FUZZ_RECORD_DIR")
        .map(Into::into)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-cases"))
}

/// Writes straight to the process's stderr, past the test harness's capture, so the line
/// survives a process that dies.
fn say(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// Runs `check` on values of `strategy` until the time budget is spent; on a failure shrinks
/// the input and panics with the smallest one found.
pub fn fuzz<S>(target: &str, strategy: S, mut check: impl FnMut(&S::Value) -> Result<(), String>)
where
    S: Strategy,
    S::Value: Debug,
{
    use proptest::test_runner::{Config, RngAlgorithm, TestRng};
    let fixed = fixed_cases();
    let replay = std::env::var_os("CODIFIER_FUZZ_SEED").is_some();
    let (mut runner, seed_text) = match (fixed, replay) {
        (Some(_), false) => (
            TestRunner::deterministic(),
            "proptest's fixed seed".to_owned(),
        ),
        _ => {
            let seed = seed();
            let hex: String = seed.iter().map(|byte| format!("{byte:02x}")).collect();
            let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed);
            (TestRunner::new_with_rng(Config::default(), rng), hex)
        }
    };
    let file_name: String = target
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    let dir = record_dir();
    let _ = std::fs::create_dir_all(&dir);
    let case_file = dir.join(format!("{file_name}.case"));
    say(&format!(
        "fuzz {target}: seed {seed_text} (replay: CODIFIER_FUZZ_SEED=<seed> CODIFIER_FUZZ_SKIP=<case>); running case in {}",
        case_file.display()
    ));
    let skipped = skip();
    for _ in 0..skipped {
        strategy.new_tree(&mut runner).expect("a generated case");
    }
    let started = Instant::now();
    let deadline = started + budget();
    let mut cases = 0u64;
    let more = |cases: u64| match fixed {
        Some(limit) => cases < limit.max(1),
        None => cases == 0 || Instant::now() < deadline,
    };
    while more(cases) {
        let mut tree = strategy.new_tree(&mut runner).expect("a generated case");
        let _ = std::fs::write(
            &case_file,
            format!(
                "seed {seed_text} case {}\n{:?}\n",
                skipped + cases,
                tree.current()
            ),
        );
        cases += 1;
        let Err(mut why) = run_one(&mut check, &tree.current()) else {
            continue;
        };
        let mut steps = 0;
        let mut failing = tree.simplify();
        while failing && steps < 2_000 {
            steps += 1;
            failing = match run_one(&mut check, &tree.current()) {
                Err(reason) => {
                    why = reason;
                    tree.simplify()
                }
                Ok(()) => tree.complicate(),
            };
        }
        let smallest = format!("{:?}", tree.current());
        let _ = std::fs::write(
            dir.join(format!("{file_name}.failed")),
            format!("{why}\n{smallest}\n"),
        );
        let _ = std::fs::remove_file(&case_file);
        panic!("fuzz {target}: {why}\nsmallest input found: {smallest}");
    }
    let _ = std::fs::remove_file(&case_file);
    let elapsed = started.elapsed();
    println!(
        "fuzz {target}: {cases} cases in {elapsed:.1?} ({:.0} cases/s), no failure",
        cases as f64 / elapsed.as_secs_f64()
    );
}

/// The fixture files a mutated input starts from.
pub fn fixture(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}
