//! Sessions: playbook sessions (where a run of a playbook is, what it has collected, and what the
//! last client call was, so a retried call is recognised) and MCP sessions kept across restarts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::{MemoryDraft, now};

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Active,
    Completed,
    Abandoned,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Active => "active",
            SessionStatus::Completed => "completed",
            SessionStatus::Abandoned => "abandoned",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "active" => Some(SessionStatus::Active),
            "completed" => Some(SessionStatus::Completed),
            "abandoned" => Some(SessionStatus::Abandoned),
            _ => None,
        }
    }
}

/// One run of a playbook in a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlaybookSession {
    pub id: Uuid,
    pub project_id: Uuid,
    pub playbook_id: String,
    pub playbook_version: String,
    /// The index of the step the session waits at; the number of steps once completed.
    pub current_step: i32,
    /// Everything collected so far, by key (a JSON object): what templates read.
    pub collected_data: Value,
    /// What happened at each step, by step id.
    pub step_results: StepResults,
    pub status: SessionStatus,
    /// Counts every saved change; a save names the revision it was based on.
    pub revision: i64,
    /// The step the last accepted client input answered, and that input's digest.
    pub last_step_id: Option<String>,
    pub last_input_digest: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// What a step's last run came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Done,
    Skipped,
    Failed,
    /// Had run, and must run again because a step it reads was answered again.
    Pending,
}

/// What happened at one step of a session. Stored as a JSON object whose absent keys are the
/// empty values here (a result the store made for a memory alone is `{"memory_id": …}`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepResult {
    // In the order serde_json writes an object's keys (by name), so this record prints as the
    // untyped JSON it replaced did, whichever way it is written.
    /// When the status was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<DateTime<Utc>>,
    /// Why the step failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The memory the step stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<Uuid>,
    /// What the step did, or why it was skipped or runs again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// What became of each part of the step (each URL of a pack), as the step reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Value>,
    /// Memories the step stored before and retired when it stored another.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replaced_memory_ids: Vec<Uuid>,
    /// How many times the step was answered again.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub revisions: u64,
    /// The step had run and runs again, because a step it reads was answered again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub runs_again: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<StepStatus>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// What happened at each step of a session, by step id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StepResults(BTreeMap<String, StepResult>);

impl StepResults {
    /// The result of `step_id`, if the step has one.
    pub fn get(&self, step_id: &str) -> Option<&StepResult> {
        self.0.get(step_id)
    }

    /// The status of `step_id`, if the step has one.
    pub fn status(&self, step_id: &str) -> Option<StepStatus> {
        self.get(step_id).and_then(|result| result.status)
    }

    /// The result of `step_id` to change, if the step has one.
    pub fn get_mut(&mut self, step_id: &str) -> Option<&mut StepResult> {
        self.0.get_mut(step_id)
    }

    /// Every step's result, by step id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &StepResult)> {
        self.0.iter()
    }

    /// Records a step's result (now), keeping what earlier runs of the step left that still
    /// holds: the memory it stored (a new one replaces it), the memories it replaced, how often
    /// it was revised. Returns the new result, for the caller to add to.
    pub fn mark(
        &mut self,
        step_id: &str,
        status: StepStatus,
        note: Option<&str>,
        error: Option<&str>,
    ) -> &mut StepResult {
        let previous = self.0.remove(step_id).unwrap_or_default();
        let result = StepResult {
            status: Some(status),
            at: Some(now()),
            note: note.map(str::to_owned),
            error: error.map(str::to_owned),
            memory_id: previous.memory_id,
            replaced_memory_ids: previous.replaced_memory_ids,
            revisions: previous.revisions,
            ..StepResult::default()
        };
        // Removed above, so the entry is vacant and takes `result`.
        self.0.entry(step_id.to_owned()).or_insert(result)
    }

    /// Sets `memory_id` in the result of `step_id`. When the step had stored another memory
    /// before (it was answered again, or ran again), that one is returned, to be retired: it is
    /// listed under `replaced_memory_ids`.
    pub fn note_memory(&mut self, step_id: &str, memory: Uuid) -> Option<Uuid> {
        let result = self.0.entry(step_id.to_owned()).or_default();
        let previous = result
            .memory_id
            .replace(memory)
            .filter(|id| *id != memory)?;
        result.replaced_memory_ids.push(previous);
        Some(previous)
    }
}

/// A memory a step produced, saved in the same transaction as the step.
#[derive(Debug, Clone)]
pub struct StepMemory {
    pub step_id: String,
    pub draft: MemoryDraft,
}

/// An MCP session over Streamable HTTP, kept so it survives a restart and stays with its key.
#[derive(Debug, Clone, Default)]
pub struct McpSessionRecord {
    pub owner: Option<String>,
    pub initialize_params: Option<Value>,
    pub active_project_id: Option<Uuid>,
}

/// Keeps `value` under `key` in the session's collected data.
pub(crate) fn set_collected(session: &mut PlaybookSession, key: &str, value: Value) {
    if !session.collected_data.is_object() {
        session.collected_data = Value::Object(Default::default());
    }
    if let Some(data) = session.collected_data.as_object_mut() {
        data.insert(key.to_owned(), value);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Step results as the runner stored them before they were typed: every key it wrote, in
    /// the order `serde_json` writes an object's keys.
    const STORED: &str = r#"{"description":{"at":"2026-05-01T10:20:30.123456Z","memory_id":"6f1c8e9a-3b2d-4c5e-8f7a-1b2c3d4e5f60","note":"prefilled with `x`","replaced_memory_ids":["0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"],"revisions":2,"status":"done"},"empty":{"at":"2026-05-01T10:20:31Z","note":"left empty","status":"skipped"},"pack":{"at":"2026-05-01T10:20:32.500Z","error":"no such repository","outcomes":[{"error":"404","status":"failed","url":"https://example.com/a"}],"status":"failed"},"stored_only":{"memory_id":"6f1c8e9a-3b2d-4c5e-8f7a-1b2c3d4e5f61"},"summary":{"at":"2026-05-01T10:20:33.000001Z","note":"runs again","runs_again":true,"status":"pending"}}"#;

    #[test]
    fn stored_step_results_read_back_and_write_out_byte_for_byte() {
        let results: StepResults = serde_json::from_str(STORED).expect("reads");
        let description = results.get("description").expect("description");
        assert_eq!(description.status, Some(StepStatus::Done));
        assert_eq!(description.revisions, 2);
        assert_eq!(description.replaced_memory_ids.len(), 1);
        assert_eq!(results.status("pack"), Some(StepStatus::Failed));
        assert!(results.get("summary").is_some_and(|r| r.runs_again));
        assert_eq!(results.status("stored_only"), None);
        // The store writes a `Value` (SQLite as its text, Postgres as jsonb).
        let written = serde_json::to_value(&results).expect("writes");
        assert_eq!(written.to_string(), STORED);
        assert_eq!(serde_json::to_string(&results).expect("writes"), STORED);
    }

    #[test]
    fn an_empty_object_is_no_step_results() {
        let results: StepResults = serde_json::from_value(json!({})).expect("reads");
        assert_eq!(results, StepResults::default());
        assert_eq!(serde_json::to_value(&results).expect("writes"), json!({}));
    }

    #[test]
    fn a_marked_step_is_written_as_the_untyped_runner_wrote_it() {
        let mut results = StepResults::default();
        let result = results.mark("s", StepStatus::Done, Some("a note"), None);
        let at = result.at.expect("marked now");
        let untyped = json!({ "s": { "status": "done", "at": at, "note": "a note" } });
        assert_eq!(serde_json::to_value(&results).expect("writes"), untyped);
    }

    #[test]
    fn marking_a_step_again_keeps_its_memory_and_revisions_but_not_its_note_or_outcomes() {
        let (first, second) = (Uuid::new_v4(), Uuid::new_v4());
        let mut results = StepResults::default();
        assert_eq!(results.note_memory("s", first), None);
        assert_eq!(
            results.note_memory("s", first),
            None,
            "the same memory again"
        );
        let result = results.mark("s", StepStatus::Failed, Some("note"), Some("why"));
        result.outcomes = Some(json!([]));
        result.revisions = 3;
        result.runs_again = true;
        assert_eq!(results.note_memory("s", second), Some(first));
        let result = results.mark("s", StepStatus::Done, None, None);
        assert_eq!(result.memory_id, Some(second));
        assert_eq!(result.replaced_memory_ids, [first]);
        assert_eq!(result.revisions, 3);
        assert_eq!((&result.note, &result.error), (&None, &None));
        assert_eq!((&result.outcomes, result.runs_again), (&None, false));
    }
}
