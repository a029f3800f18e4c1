//! The patterns of validations and sharp edges: compiled once, matched within a budget.
//!
//! Packs write patterns for engines with lookaround and backreferences, which only a
//! backtracking engine runs, and a backtracking engine can take exponential time. So a pattern
//! compiles two ways:
//! - when it has none of those features, on the `regex` crate alone (linear time, literal
//!   prefilters, word boundaries in its automata);
//! - otherwise on `fancy-regex`, whose backtracking is cut off after [`BACKTRACK_LIMIT`] steps
//!   per search: a search that hits the limit is [`OverBudget`], reported as a check that did
//!   not finish, never as a pass or a crash.
//!
//! Either way a pattern has a [`screen`](Pattern::screen): a pattern in the `regex` crate's
//! syntax that matches wherever the pattern can (lookarounds dropped, backreferences read as any
//! text), so a caller can rule out many patterns in one linear pass (a `RegexSet`) before it
//! runs any of them.

use std::fmt::Write;
use std::ops::Range;

use fancy_regex::{Assertion, Expr, LookAround};

/// Backtracking steps one search of a fancy pattern may take (about 10–30 ms of work).
pub const BACKTRACK_LIMIT: usize = 1_000_000;

/// The largest compiled program a pattern may have (each engine), so one pattern cannot take
/// the server's memory.
const SIZE_LIMIT: usize = 2 << 20;

/// A search gave up before it knew the answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("check did not finish within its budget")]
pub struct OverBudget;

/// Why a pattern cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pattern does not compile: {0}")]
pub struct PatternError(pub String);

/// A pattern read but not compiled: what it is, its screen and its needles. Cheap, so a set of
/// thousands can be kept and each compiled only when a file first needs it.
#[derive(Debug, Clone)]
pub struct Sketch {
    source: String,
    /// Whether the screen is the pattern itself (no backtracking needed).
    exact: bool,
    screen: Option<String>,
    needles: Option<Vec<Vec<u8>>>,
}

impl Sketch {
    /// Reads `source`; fails when it is not a pattern at all.
    pub fn parse(source: &str) -> Result<Self, PatternError> {
        let tree = Expr::parse_tree_with_flags(source, fancy_regex::internal::FLAG_MULTI)
            .map_err(|error| PatternError(error.to_string()))?;
        let mut screen = String::new();
        let exact = write_screen(&tree.expr, &mut screen).is_ok_and(|exact| exact);
        let screen = (exact || !screen.is_empty()).then_some(screen);
        let needles = screen.as_deref().and_then(super::needles::needles);
        Ok(Self {
            source: source.to_owned(),
            exact,
            screen,
            needles,
        })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Byte strings (compared ignoring ASCII case) one of which occurs in every text the
    /// pattern matches; `None` when there is no short list of them.
    pub fn needles(&self) -> Option<&[Vec<u8>]> {
        self.needles.as_deref()
    }

    /// Compiles the pattern, and its screen when it backtracks.
    pub fn compile(&self) -> Result<Pattern, PatternError> {
        let plain = |source: &str| {
            regex::RegexBuilder::new(source)
                .size_limit(SIZE_LIMIT)
                .build()
                .map_err(|error| PatternError(error.to_string()))
        };
        let (engine, screen) = match (&self.screen, self.exact) {
            (Some(screen), true) => (Engine::Plain(plain(screen)?), None),
            (screen, _) => {
                let regex = fancy_regex::RegexBuilder::new(&self.source)
                    .multi_line(true)
                    .backtrack_limit(BACKTRACK_LIMIT)
                    .delegate_size_limit(SIZE_LIMIT)
                    .build()
                    .map_err(|error| PatternError(error.to_string()))?;
                // A screen too big to compile only costs speed: the pattern runs unscreened.
                (
                    Engine::Fancy(regex),
                    screen.as_deref().and_then(|s| plain(s).ok()),
                )
            }
        };
        Ok(Pattern {
            sketch: self.clone(),
            engine,
            screen,
        })
    }
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    sketch: Sketch,
    engine: Engine,
    /// The compiled screen of a pattern that backtracks.
    screen: Option<regex::Regex>,
}

#[derive(Debug, Clone)]
enum Engine {
    Plain(regex::Regex),
    Fancy(fancy_regex::Regex),
}

impl Pattern {
    /// Compiles `source` (`^` and `$` match at line ends, as checks on code expect).
    pub fn compile(source: &str) -> Result<Self, PatternError> {
        Sketch::parse(source)?.compile()
    }

    pub fn source(&self) -> &str {
        &self.sketch.source
    }

    /// Whether matching may backtrack (and so run out of budget).
    pub fn backtracks(&self) -> bool {
        matches!(self.engine, Engine::Fancy(_))
    }

    /// A pattern in the `regex` crate's syntax that matches wherever this one can (the pattern
    /// itself when it needs no backtracking); `None` when there is none short of matching
    /// everything.
    pub fn screen(&self) -> Option<&str> {
        self.sketch.screen.as_deref()
    }

    /// Whether the pattern matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> Result<bool, OverBudget> {
        Ok(!self.find_all(text, 1)?.is_empty())
    }

    /// Where the pattern matches in `text`, left to right, at most `limit` matches. A pattern
    /// that backtracks starts each search where its screen next matches, since no match can
    /// start before that.
    pub fn find_all(&self, text: &str, limit: usize) -> Result<Vec<Range<usize>>, OverBudget> {
        let regex = match &self.engine {
            Engine::Plain(regex) => {
                let found = regex.find_iter(text).take(limit);
                return Ok(found.map(|found| found.range()).collect());
            }
            Engine::Fancy(regex) => regex,
        };
        let mut found = Vec::new();
        let mut at = 0;
        while found.len() < limit && at <= text.len() {
            if let Some(screen) = &self.screen {
                match screen.find_at(text, at) {
                    Some(next) => at = next.start(),
                    None => break,
                }
            }
            let Some(next) = regex.find_from_pos(text, at).map_err(over_budget)? else {
                break;
            };
            let range = next.range();
            at = match range.is_empty() {
                true => next_char(text, range.end),
                false => range.end,
            };
            found.push(range);
        }
        Ok(found)
    }
}

/// The position of the character after `at` (past the end when there is none).
fn next_char(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map_or(at + 1, |c| at + c.len_utf8())
}

/// Every runtime error of fancy-regex is a search that ran out of room (backtracking steps or
/// stack): the answer is unknown either way.
fn over_budget(_: fancy_regex::Error) -> OverBudget {
    OverBudget
}

/// A part of a pattern no screen can stand for.
struct NoScreen;

/// Writes `expr` in the `regex` crate's syntax, widened where that syntax cannot follow it:
/// lookarounds and `\K`/`\G` become nothing, backreferences any text, atomic groups plain
/// groups, conditionals either branch. Returns whether what was written is exact.
fn write_screen(expr: &Expr, out: &mut String) -> Result<bool, NoScreen> {
    let exact = match expr {
        Expr::Empty => true,
        Expr::Any { newline: true } => push(out, "(?s:.)"),
        Expr::Any { newline: false } => push(out, "."),
        Expr::Assertion(assertion) => push(out, assertion_text(*assertion)),
        Expr::Literal { val, casei } => {
            let quoted = regex::escape(val);
            match casei {
                true => push(out, &format!("(?i:{quoted})")),
                false => push(out, &quoted),
            }
        }
        Expr::Delegate { inner, casei, .. } => match casei {
            true => push(out, &format!("(?i:{inner})")),
            false => push(out, &format!("(?:{inner})")),
        },
        Expr::Concat(children) => {
            out.push_str("(?:");
            let mut exact = true;
            for child in children {
                exact &= write_screen(child, out)?;
            }
            out.push(')');
            exact
        }
        Expr::Alt(children) => {
            out.push_str("(?:");
            let mut exact = true;
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    out.push('|');
                }
                exact &= write_screen(child, out)?;
            }
            out.push(')');
            exact
        }
        Expr::Group(child) => {
            out.push_str("(?:");
            let exact = write_screen(child, out)?;
            out.push(')');
            exact
        }
        Expr::AtomicGroup(child) => {
            out.push_str("(?:");
            write_screen(child, out)?;
            out.push(')');
            false
        }
        Expr::Repeat {
            child,
            lo,
            hi,
            greedy,
        } => {
            out.push_str("(?:");
            let exact = write_screen(child, out)?;
            out.push(')');
            match (*lo, *hi) {
                (lo, usize::MAX) => write!(out, "{{{lo},}}"),
                (lo, hi) => write!(out, "{{{lo},{hi}}}"),
            }
            .map_err(|_| NoScreen)?;
            if !greedy {
                out.push('?');
            }
            exact
        }
        Expr::LookAround(_, LookAround::LookAhead | LookAround::LookAheadNeg)
        | Expr::LookAround(_, LookAround::LookBehind | LookAround::LookBehindNeg)
        | Expr::KeepOut
        | Expr::ContinueFromPreviousMatchEnd
        | Expr::BackrefExistsCondition(_) => false,
        Expr::Backref { .. } | Expr::BackrefWithRelativeRecursionLevel { .. } => {
            out.push_str("(?s:.*?)");
            false
        }
        Expr::Conditional {
            condition,
            true_branch,
            false_branch,
        } => {
            out.push_str("(?:(?:");
            write_screen(condition, out)?;
            write_screen(true_branch, out)?;
            out.push_str(")|");
            write_screen(false_branch, out)?;
            out.push(')');
            false
        }
        Expr::SubroutineCall(_) | Expr::UnresolvedNamedSubroutineCall { .. } => {
            return Err(NoScreen);
        }
    };
    Ok(exact)
}

fn push(out: &mut String, text: &str) -> bool {
    out.push_str(text);
    true
}

fn assertion_text(assertion: Assertion) -> &'static str {
    match assertion {
        Assertion::StartText => r"\A",
        Assertion::EndText => r"\z",
        Assertion::StartLine { crlf: false } => "(?m:^)",
        Assertion::EndLine { crlf: false } => "(?m:$)",
        Assertion::StartLine { crlf: true } => "(?Rm:^)",
        Assertion::EndLine { crlf: true } => "(?Rm:$)",
        Assertion::LeftWordBoundary => r"\b{start}",
        Assertion::LeftWordHalfBoundary => r"\b{start-half}",
        Assertion::RightWordBoundary => r"\b{end}",
        Assertion::RightWordHalfBoundary => r"\b{end-half}",
        Assertion::WordBoundary => r"\b",
        Assertion::NotWordBoundary => r"\B",
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn lines(pattern: &Pattern, text: &str) -> Vec<usize> {
        let found = pattern.find_all(text, 100).expect("within budget");
        found
            .iter()
            .map(|range| text[..range.start].matches('\n').count() + 1)
            .collect()
    }

    #[test]
    fn a_plain_pattern_runs_without_backtracking_and_is_its_own_screen() {
        let pattern = Pattern::compile(r"\bconsole\.log\(").unwrap();
        assert!(!pattern.backtracks());
        assert_eq!(pattern.screen(), Some(r"(?:\bconsole\.log\()"));
        let text = "let a = 1;\nconsole.log(a);\nmyconsole.log(a);\n";
        assert_eq!(lines(&pattern, text), [2]);
    }

    #[test]
    fn lookaround_and_backreferences_match_on_the_backtracking_engine() {
        let ahead = Pattern::compile(r"fetch\((?![^)]*signal)").unwrap();
        assert!(ahead.backtracks());
        let text = "fetch(url)\nfetch(url, { signal })\n";
        assert_eq!(lines(&ahead, text), [1]);
        let behind = Pattern::compile(r"(?<!await )db\.query\(").unwrap();
        assert_eq!(lines(&behind, "await db.query(1)\ndb.query(2)\n"), [2]);
        let repeated = Pattern::compile(r"(\w+) \1").unwrap();
        assert_eq!(lines(&repeated, "a b\nthe the\n"), [2]);
    }

    #[test]
    fn a_screen_matches_wherever_its_pattern_does() {
        for (source, texts) in [
            (
                r"fetch\((?![^)]*signal)",
                ["fetch(url)", "fetch(u, {signal})"],
            ),
            (r"(?<!await )db\.query\(", ["db.query(", "await db.query("]),
            (r"(\w+) \1", ["the the", "a b"]),
            (r"(?>a+)b", ["aab", "b"]),
            (r"(?i)select \* from", ["SELECT * FROM t", "select a"]),
        ] {
            let pattern = Pattern::compile(source).unwrap();
            let screen = regex::Regex::new(pattern.screen().unwrap()).unwrap();
            for text in texts {
                if pattern.is_match(text).unwrap() {
                    assert!(screen.is_match(text), "{source} screens out {text}");
                }
            }
        }
    }

    #[test]
    fn line_anchors_match_at_every_line() {
        let pattern = Pattern::compile(r"^import .*;$").unwrap();
        assert_eq!(lines(&pattern, "x\nimport a;\nimport b;\n"), [2, 3]);
    }

    #[test]
    fn a_pattern_that_backtracks_forever_stops_within_its_budget() {
        // The screen (`^(a+)+b$`) matches, so the backtracking engine runs and fails at every
        // one of the 2^40 ways to split the a's.
        let pattern = Pattern::compile(r"^(a+)+(?=z)b$").unwrap();
        let text = format!("{}b", "a".repeat(40));
        let started = Instant::now();
        assert_eq!(pattern.is_match(&text), Err(OverBudget));
        assert_eq!(pattern.find_all(&text, 10), Err(OverBudget));
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "took {:?}",
            started.elapsed()
        );
        assert_eq!(
            OverBudget.to_string(),
            "check did not finish within its budget"
        );
    }

    #[test]
    fn a_pattern_no_engine_compiles_says_why() {
        let error = Pattern::compile(r"foo(bar").unwrap_err();
        assert!(
            error.to_string().starts_with("pattern does not compile"),
            "{error}"
        );
        let error = Pattern::compile(r"[z-a]").unwrap_err();
        assert!(
            error.to_string().starts_with("pattern does not compile"),
            "{error}"
        );
    }
}
