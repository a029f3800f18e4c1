//! Needles: short lists of literals one of which every match of a pattern contains, found with
//! `regex-syntax`'s literal extraction, so one Aho-Corasick pass over a file rules out the
//! patterns none of whose needles it contains before any of them is compiled or run.

use regex_syntax::hir::literal::{ExtractKind, Extractor};
use regex_syntax::hir::{Hir, HirKind};

/// Shortest needle worth looking for.
const MIN_NEEDLE: usize = 3;
/// Most needles one pattern may have (after folding ASCII case).
const MAX_NEEDLES: usize = 64;

/// Byte strings, lowercased in ASCII, one of which occurs (ignoring ASCII case) in any text
/// `screen` matches; `None` when no short list of useful ones is known.
pub fn needles(screen: &str) -> Option<Vec<Vec<u8>>> {
    let hir = regex_syntax::parse(screen).ok()?;
    best(&hir)
}

fn best(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut best = prefixes(hir);
    if let HirKind::Concat(parts) = hir.kind() {
        for part in parts {
            let found = match part.kind() {
                HirKind::Capture(capture) => best_of(&capture.sub),
                _ => best_of(part),
            };
            best = better(best, found);
        }
    }
    best
}

fn best_of(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    match hir.kind() {
        HirKind::Concat(_) => best(hir),
        _ => prefixes(hir),
    }
}

fn better(a: Option<Vec<Vec<u8>>>, b: Option<Vec<Vec<u8>>>) -> Option<Vec<Vec<u8>>> {
    let score = |n: &Option<Vec<Vec<u8>>>| {
        n.as_ref().map_or(0, |n| {
            n.iter().map(Vec::len).min().unwrap_or(0) * 64 / (n.len() + 63)
        })
    };
    if score(&b) > score(&a) { b } else { a }
}

fn prefixes(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let mut extractor = Extractor::new();
    extractor
        .kind(ExtractKind::Prefix)
        .limit_total(4 * MAX_NEEDLES);
    let seq = extractor.extract(hir);
    let literals = seq.literals()?;
    if literals.is_empty() || literals.iter().any(|l| l.as_bytes().len() < MIN_NEEDLE) {
        return None;
    }
    let mut needles: Vec<Vec<u8>> = literals
        .iter()
        .map(|l| l.as_bytes().to_ascii_lowercase())
        .collect();
    needles.sort_unstable();
    needles.dedup();
    (needles.len() <= MAX_NEEDLES).then_some(needles)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(screen: &str) -> Option<Vec<String>> {
        let needles = needles(screen)?;
        Some(
            needles
                .into_iter()
                .map(|n| String::from_utf8(n).unwrap())
                .collect(),
        )
    }

    #[test]
    fn a_literal_anywhere_in_a_pattern_is_a_needle() {
        assert_eq!(of(r"console\.log\("), Some(vec!["console.log(".into()]));
        let inner = of(r"[^\d.](?:86400|3600)").unwrap();
        assert_eq!(inner, ["3600", "86400"], "the literal after a class");
        let folded = of(r"(?i)select").unwrap();
        assert_eq!(
            folded,
            ["select", "ſelect"],
            "ASCII case folded, Unicode's kept"
        );
    }

    #[test]
    fn a_pattern_without_a_required_literal_has_no_needles() {
        assert_eq!(of(r"^\s*-\s*$"), None);
        assert_eq!(of(r"(?:ab|c)d*"), None, "a needle shorter than three bytes");
        assert_eq!(of(r"x*"), None, "may match empty text");
    }
}
