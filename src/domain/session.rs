//! Sessions: playbook sessions (where a run of a playbook is, what it has collected, and what the
//! last client call was, so a retried call is recognised) and MCP sessions kept across restarts.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::MemoryDraft;

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
    /// What happened at each step, by step id (a JSON object of `{status, memory_id, …}`).
    pub step_results: Value,
    pub status: SessionStatus,
    /// Counts every saved change; a save names the revision it was based on.
    pub revision: i64,
    /// The step the last accepted client input answered, and that input's digest.
    pub last_step_id: Option<String>,
    pub last_input_digest: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
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

/// Sets `memory_id` in the step result of `step_id`. When the step had stored another memory
/// before (it was answered again, or ran again), that one is returned, to be retired: it is
/// listed under `replaced_memory_ids`.
pub(crate) fn note_memory(
    session: &mut PlaybookSession,
    step_id: &str,
    memory: Uuid,
) -> Option<Uuid> {
    if !session.step_results.is_object() {
        session.step_results = Value::Object(Default::default());
    }
    let results = session.step_results.as_object_mut()?;
    let entry = results
        .entry(step_id.to_owned())
        .or_insert_with(|| Value::Object(Default::default()));
    let entry = entry.as_object_mut()?;
    let new = Value::String(memory.to_string());
    let previous = entry
        .insert("memory_id".into(), new.clone())
        .filter(|previous| *previous != new);
    let previous = previous?;
    let replaced = entry
        .entry("replaced_memory_ids")
        .or_insert_with(|| Value::Array(Vec::new()));
    if let Some(replaced) = replaced.as_array_mut() {
        replaced.push(previous.clone());
    }
    previous.as_str().and_then(|id| Uuid::parse_str(id).ok())
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
