//! A set of validations ready to run ([`CheckSet`]) and running it on one file.
//!
//! Built from the validation records of a project (or of the library) and kept while they do
//! not change. Each pattern is read when the set is built but compiled only when a file first
//! needs it, so a library of thousands costs memory only for the patterns files meet. A run
//! goes in steps, each ruling out most of what is left before anything slower runs:
//! 1. the file's path against one `GlobSet` of every check's `applies_to`, so the file meets
//!    only the checks for its kind of file;
//! 2. one Aho-Corasick pass over the file for the needles of those checks' patterns (see
//!    [`super::needles`]): a pattern none of whose needles occurs cannot match (the automaton
//!    is built once per combination of applicable checks and kept);
//! 3. the patterns left, compiled on first use, run for their lines (a backtracking one only
//!    where its screen matches: see [`Pattern::find_all`]).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use aho_corasick::AhoCorasick;
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

use super::pattern::{OverBudget, Pattern, Sketch};
use crate::domain::guardrail::{Severity, Validation};

/// Lines reported per failed check.
pub const MAX_LINES_PER_CHECK: usize = 20;
/// Plans kept per check set (one per combination of applicable checks met so far).
const MAX_PLANS: usize = 64;

/// A check ready to run.
#[derive(Debug, Clone)]
pub struct Check {
    pub validation: Validation,
    pub severity: Severity,
    /// Lowercased words a `check_types` filter matches: the memory's tags.
    pub tags: Vec<String>,
}

/// A check that cannot run, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    pub check: String,
    pub reason: String,
}

/// A check whose patterns matched, with the 1-based lines they matched on.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub check: usize,
    pub lines: Vec<usize>,
}

/// What running the applicable checks on one file found.
#[derive(Debug, Default)]
pub struct Findings {
    /// How many checks applied to the file.
    pub ran: usize,
    pub failures: Vec<Failure>,
    /// Checks that ran out of budget before they knew.
    pub unfinished: Vec<usize>,
}

/// One pattern of a check, compiled on first use (`None` when it does not compile).
struct Entry {
    check: usize,
    sketch: Sketch,
    compiled: OnceLock<Option<Pattern>>,
}

impl Entry {
    fn pattern(&self) -> Option<&Pattern> {
        self.compiled
            .get_or_init(|| self.sketch.compile().ok())
            .as_ref()
    }
}

/// The checks of one project (or of the library).
pub struct CheckSet {
    checks: Vec<Check>,
    entries: Vec<Entry>,
    /// The entries of each check.
    by_check: Vec<Range<usize>>,
    globs: GlobSet,
    /// The check each glob of `globs` belongs to.
    glob_check: Vec<usize>,
    /// Checks with no `applies_to`: every file meets them.
    everywhere: Vec<usize>,
    skipped: Vec<Skipped>,
    plans: Mutex<HashMap<u64, Arc<Plan>>>,
}

/// How to find the candidate patterns of one combination of checks.
struct Plan {
    /// The needles of the patterns that have them, and the entries each needle stands for.
    finder: Option<AhoCorasick>,
    owners: Vec<Vec<usize>>,
    /// Entries with no needles: always candidates.
    always: Vec<usize>,
}

impl CheckSet {
    /// Reads `checks`; those that cannot run are left out and listed in
    /// [`skipped`](Self::skipped), after the `skipped` the caller already found. With
    /// `compile_now`, every pattern is compiled at once, so one that parses but does not
    /// compile is listed too (for a project's own few checks; the library's compile lazily).
    pub fn build(checks: Vec<Check>, skipped: Vec<Skipped>, compile_now: bool) -> Self {
        let mut set = CheckSet {
            checks: Vec::new(),
            entries: Vec::new(),
            by_check: Vec::new(),
            globs: GlobSet::empty(),
            glob_check: Vec::new(),
            everywhere: Vec::new(),
            skipped,
            plans: Mutex::default(),
        };
        let mut globs = GlobSetBuilder::new();
        for check in checks {
            let id = check.validation.id.clone();
            let mut patterns = Vec::new();
            for source in &check.validation.patterns {
                let sketch = Sketch::parse(source);
                let compiled = match &sketch {
                    Ok(sketch) if compile_now => sketch.compile().map(Some),
                    Ok(_) => Ok(None),
                    Err(error) => Err(error.clone()),
                };
                match (sketch, compiled) {
                    (Ok(sketch), Ok(compiled)) => patterns.push((sketch, compiled)),
                    (_, Err(error)) | (Err(error), _) => set.skipped.push(Skipped {
                        check: id.clone(),
                        reason: format!("{error} ({source})"),
                    }),
                }
            }
            let mut check_globs = Vec::new();
            for glob in &check.validation.applies_to {
                match GlobBuilder::new(glob.trim()).build() {
                    Ok(glob) => check_globs.push(glob),
                    Err(error) => set.skipped.push(Skipped {
                        check: id.clone(),
                        reason: format!("applies_to `{glob}` is not a glob: {error}"),
                    }),
                }
            }
            let no_globs = !check.validation.applies_to.is_empty() && check_globs.is_empty();
            if patterns.is_empty() || no_globs {
                continue;
            }
            let index = set.checks.len();
            if check.validation.applies_to.is_empty() {
                set.everywhere.push(index);
            }
            for glob in check_globs {
                globs.add(glob);
                set.glob_check.push(index);
            }
            let first = set.entries.len();
            set.entries
                .extend(patterns.into_iter().map(|(sketch, compiled)| Entry {
                    check: index,
                    sketch,
                    compiled: compiled.map_or_else(OnceLock::new, |p| Some(p).into()),
                }));
            set.by_check.push(first..set.entries.len());
            set.checks.push(check);
        }
        // Every glob compiled on its own, so the set compiles too.
        set.globs = globs.build().unwrap_or_else(|_| GlobSet::empty());
        set
    }

    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    pub fn skipped(&self) -> &[Skipped] {
        &self.skipped
    }

    /// The checks that apply to `path` and pass `keep`, in order.
    pub fn applicable(&self, path: &str, keep: impl Fn(&Check) -> bool) -> Vec<usize> {
        let path = path.trim().trim_start_matches("./");
        let mut found: Vec<usize> = self.everywhere.clone();
        let matched = self.globs.matches(path);
        found.extend(matched.into_iter().map(|glob| self.glob_check[glob]));
        found.sort_unstable();
        found.dedup();
        found.retain(|&check| keep(&self.checks[check]));
        found
    }

    /// Runs `checks` (from [`applicable`](Self::applicable)) on `text`.
    pub fn run(&self, checks: &[usize], text: &str) -> Findings {
        let plan = self.plan(checks);
        let mut candidates = plan.always.clone();
        if let Some(finder) = &plan.finder {
            let mut seen = vec![false; plan.owners.len()];
            for found in finder.find_overlapping_iter(text) {
                seen[found.pattern().as_usize()] = true;
            }
            for (needle, _) in seen.iter().enumerate().filter(|(_, seen)| **seen) {
                candidates.extend(&plan.owners[needle]);
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let starts = line_starts(text);
        let mut findings = Findings {
            ran: checks.len(),
            ..Findings::default()
        };
        let mut current: Option<(usize, Vec<usize>, bool)> = None;
        for entry in candidates {
            let entry = &self.entries[entry];
            if current
                .as_ref()
                .is_some_and(|(check, _, _)| *check != entry.check)
            {
                findings.push(current.take());
            }
            let (_, lines, unfinished) = current.get_or_insert((entry.check, Vec::new(), false));
            let Some(pattern) = entry.pattern() else {
                continue;
            };
            match pattern.find_all(text, MAX_LINES_PER_CHECK) {
                Ok(found) => lines.extend(found.iter().map(|m| line_of(&starts, m))),
                Err(OverBudget) => *unfinished = true,
            }
        }
        findings.push(current);
        findings
    }

    /// The plan for `checks`, made on first use.
    fn plan(&self, checks: &[usize]) -> Arc<Plan> {
        let mut hasher = DefaultHasher::new();
        checks.hash(&mut hasher);
        let key = hasher.finish();
        let plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = plans.get(&key) {
            return found.clone();
        }
        drop(plans);
        let mut always = Vec::new();
        let mut ids: HashMap<&[u8], usize> = HashMap::new();
        let mut owners: Vec<Vec<usize>> = Vec::new();
        for &check in checks {
            for entry in self.by_check[check].clone() {
                let Some(needles) = self.entries[entry].sketch.needles() else {
                    always.push(entry);
                    continue;
                };
                for needle in needles {
                    let next = ids.len();
                    let id = *ids.entry(needle.as_slice()).or_insert(next);
                    if id == owners.len() {
                        owners.push(Vec::new());
                    }
                    owners[id].push(entry);
                }
            }
        }
        let mut needles: Vec<&[u8]> = vec![&[]; ids.len()];
        for (needle, id) in ids {
            needles[id] = needle;
        }
        let finder = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .build(&needles);
        let plan = match finder {
            Ok(finder) => Plan {
                finder: Some(finder),
                owners,
                always,
            },
            // Too many needles for one automaton: every pattern is a candidate.
            Err(_) => Plan {
                finder: None,
                owners: Vec::new(),
                always: checks
                    .iter()
                    .flat_map(|&check| self.by_check[check].clone())
                    .collect(),
            },
        };
        let plan = Arc::new(plan);
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if plans.len() >= MAX_PLANS {
            plans.clear();
        }
        plans.insert(key, plan.clone());
        plan
    }
}

impl Findings {
    fn push(&mut self, done: Option<(usize, Vec<usize>, bool)>) {
        let Some((check, mut lines, unfinished)) = done else {
            return;
        };
        lines.sort_unstable();
        lines.dedup();
        lines.truncate(MAX_LINES_PER_CHECK);
        if !lines.is_empty() {
            self.failures.push(Failure { check, lines });
        } else if unfinished {
            self.unfinished.push(check);
        }
    }
}

/// The byte offset where each line starts.
fn line_starts(text: &str) -> Vec<usize> {
    let newlines = text.match_indices('\n').map(|(i, _)| i + 1);
    std::iter::once(0).chain(newlines).collect()
}

/// The 1-based line a match starts on.
fn line_of(starts: &[usize], found: &Range<usize>) -> usize {
    starts.partition_point(|&start| start <= found.start)
}
