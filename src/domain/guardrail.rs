//! Guardrails: the records of the shared skills library (skills, their sharp edges and
//! validations) and of a project's own guardrail memories (sharp edges, validations, decisions,
//! issues), and where each lives.
//!
//! Everything here is stored as a memory, so it is searched, embedded, versioned and audited like
//! any other: the record is the memory's `content` (serialized as below), and the memory's other
//! fields are filled as below.
//! - The library lives in one reserved project, [`LIBRARY_PROJECT`], that the operator writes
//!   with `codifier skills import` and every key may read; it never appears as a project of its
//!   own. Its items have stable ids ([`library_item_id`]), so importing the same tree again finds
//!   each item in place.
//! - A project's own sharp edges, validations, decisions and issues live in that project, under
//!   its row-level security like every memory.
//!
//! Where each record puts itself in a memory's other fields, so every writer fills them the same
//! way and every reader can filter on them:
//! - `title`: a skill's name, a sharp edge's summary, a validation's name, a decision's `what`,
//!   the first line of an issue's description;
//! - `category`: the skill id of a library item (`None` for a project's own);
//! - `tags`: for a library item, its skill's `stack`, `tags` and `triggers`, each lowercased
//!   (a library sharp edge or validation carries its skill's), the tag `skill:<id>` of its
//!   skill, and the severity's name where there is one; for a project's own sharp edge or
//!   validation, the stack names it applies to and its severity's name (none: the whole
//!   project);
//! - `description`: a skill's description, a sharp edge's situation, a validation's message.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The reserved project that holds the shared skills library.
pub const LIBRARY_PROJECT: Uuid = Uuid::from_u128(0x0000_0000_0000_4000_8000_6c69_6272_6172);

/// The namespace of [`library_item_id`].
const LIBRARY_NAMESPACE: Uuid = Uuid::from_u128(0x5c1d_0b1e_7a0d_4f0e_9a55_c0d1_f1e5_0001);

/// The kind of a library item, as it appears in its stable id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LibraryItem {
    Skill,
    SharpEdge,
    Validation,
}

/// The stable memory id of a library item: the same skill id (and item id within the skill)
/// always gives the same memory, so an import updates in place. `item` is empty for a skill.
pub fn library_item_id(kind: LibraryItem, skill: &str, item: &str) -> Uuid {
    let kind = match kind {
        LibraryItem::Skill => "skill",
        LibraryItem::SharpEdge => "sharp_edge",
        LibraryItem::Validation => "validation",
    };
    let name = format!("{kind}\u{1f}{skill}\u{1f}{item}");
    Uuid::new_v5(&LIBRARY_NAMESPACE, name.as_bytes())
}

/// How serious a sharp edge or a failed validation is. Packs write it in many ways: see
/// [`Severity::parse`].
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Critical,
    Error,
    Warning,
    Info,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::Critical,
        Severity::Error,
        Severity::Warning,
        Severity::Info,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    /// Reads a severity in either vocabulary and any case: critical, error, warning, info, or
    /// high (an error), medium (a warning), low (info). `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "error" | "high" => Some(Severity::Error),
            "warning" | "medium" => Some(Severity::Warning),
            "info" | "low" => Some(Severity::Info),
            _ => None,
        }
    }

    /// Whether a failed check of this severity means the code does not pass.
    pub fn blocks(self) -> bool {
        matches!(self, Severity::Critical | Severity::Error)
    }
}

/// A skill of the library (the `content` of a `skill` memory): what it owns, the stack it
/// belongs to, when it applies, and how to work within it. Lists the pack leaves out are empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Skill {
    pub id: String,
    pub name: String,
    pub version: Option<String>,
    pub layer: Option<String>,
    pub description: String,
    pub owns: Vec<String>,
    pub stack: Vec<String>,
    pub pairs_with: Vec<String>,
    pub requires: Vec<String>,
    pub tags: Vec<String>,
    pub triggers: Vec<String>,
    /// The pack's `identity` block, as written (text or a map).
    pub identity: serde_json::Value,
    /// The pack's `patterns`, `anti_patterns` and `handoffs`, as written (each item text or a
    /// map with fields such as id, name, description, when, to).
    pub patterns: Vec<serde_json::Value>,
    pub anti_patterns: Vec<serde_json::Value>,
    pub handoffs: Vec<serde_json::Value>,
    /// The pack's `collaboration.yaml`, as written, when the skill has one.
    pub collaboration: serde_json::Value,
}

/// A gotcha (the `content` of a `sharp_edge` memory): the situation it bites in, why, how to
/// avoid it, what it looks like when it has bitten, and a pattern that spots it in code. The
/// agent tools show it as it is stored (flattened into their views), so its schema is theirs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SharpEdge {
    /// The skill it comes from; `None` for a project's own.
    pub skill: Option<String>,
    /// Its id within the skill (or the project).
    pub id: String,
    /// The gotcha in one line.
    pub summary: String,
    pub severity: Option<Severity>,
    /// When it bites.
    pub situation: String,
    /// Why it bites.
    pub why: String,
    /// What to do instead.
    pub solution: String,
    /// What it looks like once it has bitten (error messages, behaviour).
    pub symptoms: Vec<String>,
    /// A regular expression that finds code where the edge may bite.
    pub detection_pattern: Option<String>,
}

/// A check run on code (the `content` of a `validation` memory). Only `regex` checks run; the
/// others (checklists, conceptual checks) are kept for people to read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Validation {
    /// The skill it comes from; `None` for a project's own.
    pub skill: Option<String>,
    pub id: String,
    pub name: String,
    pub severity: Option<Severity>,
    /// `regex` for a check that runs; anything else is kept but not run.
    pub kind: String,
    /// Any one matching is a failure.
    pub patterns: Vec<String>,
    pub message: String,
    pub fix_action: Option<String>,
    /// Globs of the paths the check applies to; empty means every path.
    pub applies_to: Vec<String>,
}

/// A decision an agent or a person recorded (the `content` of a `decision` memory).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Decision {
    pub what: String,
    pub why: String,
}

/// Whether an issue still needs work.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum IssueStatus {
    #[default]
    Open,
    Resolved,
}

/// A problem found while working (the `content` of an `issue` memory).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Issue {
    pub description: String,
    pub status: IssueStatus,
    /// How it was resolved, once it is.
    pub resolution: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_read_in_either_vocabulary_and_any_case() {
        assert_eq!(Severity::parse("CRITICAL"), Some(Severity::Critical));
        assert_eq!(Severity::parse("High"), Some(Severity::Error));
        assert_eq!(Severity::parse(" medium "), Some(Severity::Warning));
        assert_eq!(Severity::parse("low"), Some(Severity::Info));
        assert_eq!(Severity::parse("Warning"), Some(Severity::Warning));
        assert_eq!(Severity::parse("severe"), None);
        assert!(Severity::Error.blocks() && !Severity::Warning.blocks());
    }

    #[test]
    fn a_library_item_keeps_its_id_and_items_of_other_kinds_or_skills_do_not_share_it() {
        let edge = library_item_id(LibraryItem::SharpEdge, "react", "stale-closure");
        assert_eq!(
            edge,
            library_item_id(LibraryItem::SharpEdge, "react", "stale-closure")
        );
        assert_ne!(
            edge,
            library_item_id(LibraryItem::Validation, "react", "stale-closure")
        );
        assert_ne!(
            edge,
            library_item_id(LibraryItem::SharpEdge, "vue", "stale-closure")
        );
        assert_ne!(edge, LIBRARY_PROJECT);
    }
}
