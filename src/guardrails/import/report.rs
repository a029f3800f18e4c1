//! What an import did: counts of skills, sharp edges and validations written, unchanged, or
//! skipped by reason, every skip with its file, item and reason, and the Markdown-free text
//! the command prints.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use serde::Serialize;

/// One thing the import left out (or, for a note, kept in part), and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skip {
    pub file: PathBuf,
    /// The item's id (or `#n`, its position, when it has none); `None` for a whole file.
    pub item: Option<String>,
    /// A short key to count by (`not_regex`, `does_not_compile`, …).
    pub reason: String,
    pub detail: String,
}

/// How the items of one kind fared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    /// Usable items (created + updated + unchanged).
    pub usable: usize,
    pub created: usize,
    pub updated: usize,
    pub unchanged: usize,
    /// Items of the library that left the tree (or became unusable), deleted.
    pub removed: usize,
    pub skipped: BTreeMap<String, usize>,
}

impl Tally {
    pub fn skipped_total(&self) -> usize {
        self.skipped.values().sum()
    }
}

/// The whole report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub skills: Tally,
    pub sharp_edges: Tally,
    pub validations: Tally,
    /// Sharp edges kept without (part of) their detection pattern, by reason.
    pub detection_dropped: BTreeMap<String, usize>,
    /// Every skip and note, in the order met.
    pub skips: Vec<Skip>,
}

impl Report {
    /// The report as the command prints it: every skip, one per line, then the counts.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for skip in &self.skips {
            let item = skip
                .item
                .as_deref()
                .map(|i| format!(" [{i}]"))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "skip {}{item}: {} ({})",
                skip.file.display(),
                skip.detail,
                skip.reason
            );
        }
        let verb = if self.dry_run {
            "would import (dry run, nothing written)"
        } else {
            "imported"
        };
        let _ = writeln!(out, "{verb}:");
        for (name, tally) in [
            ("skills", &self.skills),
            ("sharp edges", &self.sharp_edges),
            ("validations", &self.validations),
        ] {
            let _ = write!(
                out,
                "  {name}: {} usable ({} new, {} updated, {} unchanged), {} removed, {} skipped",
                tally.usable,
                tally.created,
                tally.updated,
                tally.unchanged,
                tally.removed,
                tally.skipped_total()
            );
            if !tally.skipped.is_empty() {
                let reasons: Vec<String> = tally
                    .skipped
                    .iter()
                    .map(|(r, n)| format!("{r} {n}"))
                    .collect();
                let _ = write!(out, " ({})", reasons.join(", "));
            }
            out.push('\n');
        }
        if !self.detection_dropped.is_empty() {
            let reasons: Vec<String> = self
                .detection_dropped
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "  sharp edges kept without their detection pattern: {}",
                reasons.join(", ")
            );
        }
        out
    }
}
