//! Guardrail telemetry: what happened in a project's working sessions (a session started, a
//! check blocked code, a sharp edge was surfaced, an agent looped…), one event per row, kept per
//! project under its row-level security, and counted over a time window.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::guardrail::Severity;

/// What kind of thing happened.
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
pub enum GuardrailEventKind {
    /// A session loaded its context.
    SessionStart,
    /// A failed check of severity critical or error (one event per failed check).
    GuardrailBlock,
    /// Code was accepted although a check failed.
    GuardrailOverride,
    /// A sharp edge was shown to an agent.
    SharpEdgeSurfaced,
    /// An agent was found going in circles.
    EscapeHatchTrigger,
    /// A session saved its summary.
    SessionEnd,
}

impl GuardrailEventKind {
    pub const ALL: [GuardrailEventKind; 6] = [
        GuardrailEventKind::SessionStart,
        GuardrailEventKind::GuardrailBlock,
        GuardrailEventKind::GuardrailOverride,
        GuardrailEventKind::SharpEdgeSurfaced,
        GuardrailEventKind::EscapeHatchTrigger,
        GuardrailEventKind::SessionEnd,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            GuardrailEventKind::SessionStart => "session_start",
            GuardrailEventKind::GuardrailBlock => "guardrail_block",
            GuardrailEventKind::GuardrailOverride => "guardrail_override",
            GuardrailEventKind::SharpEdgeSurfaced => "sharp_edge_surfaced",
            GuardrailEventKind::EscapeHatchTrigger => "escape_hatch_trigger",
            GuardrailEventKind::SessionEnd => "session_end",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == text)
    }
}

/// An event to record. `subject` is what it is about, the key its counts group by: the check
/// id of a block or override, the pattern of an escape hatch, the sharp edge's id; empty when
/// nothing in particular.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGuardrailEvent {
    pub kind: GuardrailEventKind,
    /// The MCP tool (or CLI command) that recorded it.
    pub tool: String,
    /// The API key that called; `None` for the operator and the local user.
    pub key_id: Option<Uuid>,
    pub subject: String,
    pub severity: Option<Severity>,
    /// Anything else worth keeping (the skill, the file path, a message), as JSON.
    pub detail: Value,
}

/// How many events of one kind, subject and severity a project had since a time, and the last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct GuardrailEventCount {
    pub kind: GuardrailEventKind,
    pub subject: String,
    pub severity: Option<Severity>,
    pub count: u64,
    pub last_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_reads_back_from_its_name() {
        for kind in GuardrailEventKind::ALL {
            assert_eq!(GuardrailEventKind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, kind.as_str());
        }
        assert_eq!(GuardrailEventKind::parse("guardrail_blocked"), None);
    }
}
