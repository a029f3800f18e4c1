//! Property tests that throw generated input at every parser a caller can reach: the SQL guard,
//! the playbook loader, the skills importer, the bearer-key parser and every MCP tool's
//! arguments (through the real server). Each target runs for `CODIFIER_FUZZ_SECONDS` (3 s by
//! default, 600 s for the long run in `scripts/fuzz.sh`) on fresh random input, or, when
//! `CODIFIER_FUZZ_CASES` is set (CI), that many cases from proptest's fixed seed, so a CI run
//! is the same on any machine; it prints its cases per second, and fails on a panic or a case
//! slower than [`SLOW_CASE`] (a hang), shrunk to a minimal input. Crashes it finds become the
//! named regression tests at the end.

use std::fmt::Debug;
use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

mod inputs;
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

/// Runs `check` on values of `strategy` until the time budget is spent; on a failure shrinks
/// the input and panics with the smallest one found.
pub fn fuzz<S>(target: &str, strategy: S, mut check: impl FnMut(&S::Value) -> Result<(), String>)
where
    S: Strategy,
    S::Value: Debug,
{
    let fixed = fixed_cases();
    let mut runner = match fixed {
        Some(_) => TestRunner::deterministic(),
        None => TestRunner::default(),
    };
    let started = Instant::now();
    let deadline = started + budget();
    let mut cases = 0u64;
    let more = |cases: u64| match fixed {
        Some(limit) => cases < limit.max(1),
        None => cases == 0 || Instant::now() < deadline,
    };
    while more(cases) {
        let mut tree = strategy.new_tree(&mut runner).expect("a generated case");
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
        panic!(
            "fuzz {target}: {why}\nsmallest input found: {:?}",
            tree.current()
        );
    }
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
