//! What every runner call returns: the whole outline (every step, which are done, which is
//! current), the current step's prompt and what to send for it, and the exact next call.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::spec::{InputKind, InputSpec, Playbook};
use super::steps::generate::GenerateRequest;
use crate::domain::{MemoryType, PlaybookSession, SessionStatus, StepStatus, WriteOutcome};

/// Where one step of the outline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Done,
    Skipped,
    Failed,
    Current,
    Pending,
}

/// One step of the outline.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OutlineStep {
    pub number: usize,
    pub id: String,
    pub title: String,
    /// `store`, `skill-invoke`, `generate` or `data-query`.
    pub action: String,
    pub state: StepState,
    /// Whether the server runs this step alone (no round trip).
    pub automatic: bool,
    /// The memory this step stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_id: Option<String>,
    /// Why it failed or was skipped, what it did, or why it runs again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How many times this step was answered again (`advance_step` with `revise: true`).
    #[serde(skip_serializing_if = "is_zero")]
    pub revisions: u64,
    /// True for a step that had run but must run again, because a step it reads was answered again.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub runs_again: bool,
    /// For a step that packs repositories: what became of each URL (`packed` with its snapshot,
    /// or `failed` with why).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Value>,
}

fn is_zero(value: &u64) -> bool {
    *value == 0
}

/// What to send for the current step.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExpectedInput {
    /// The key of `input` to send it under.
    pub key: String,
    #[serde(flatten)]
    pub spec: InputSpec,
}

/// The step the session waits at.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CurrentStep {
    pub id: String,
    pub title: String,
    pub action: String,
    /// The step's prompt, rendered with what the session has collected.
    pub prompt: String,
    /// What to send in `advance_step`'s `input`; absent for a step the server runs alone.
    pub input: Option<ExpectedInput>,
    /// For a generate step: what the client's model should produce.
    pub generate: Option<GenerateRequest>,
    /// Why the step failed, when it did (retry it, or send `skip: true`).
    pub error: Option<String>,
    /// Whether `skip: true` is accepted here.
    pub skippable: bool,
}

/// A memory stored during this call.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StoredMemory {
    pub step_id: String,
    pub id: Uuid,
    pub memory_type: MemoryType,
    pub title: String,
    /// `unchanged` when the same content was already stored.
    pub outcome: WriteOutcome,
}

/// The result of `run_playbook` and `advance_step`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionView {
    pub session_id: Uuid,
    pub project_id: Uuid,
    pub playbook_id: String,
    pub playbook_name: String,
    pub playbook_version: String,
    pub status: SessionStatus,
    pub outline: Vec<OutlineStep>,
    /// The step waiting for the user or the client's model; absent once the session ended.
    pub current: Option<CurrentStep>,
    /// The arguments of the next `advance_step` call, with the input left for you to fill in.
    pub next_call: Option<Value>,
    /// Memories stored during this call.
    pub stored: Vec<StoredMemory>,
    /// Steps the server ran or skipped on its own during this call, and other things to know.
    pub notices: Vec<String>,
    /// True when this call repeated the previous one: nothing was changed.
    pub replayed: bool,
    /// The keys the session has collected so far.
    pub collected_keys: Vec<String>,
}

/// Whether `step_id` has run to an end the session moves past (done or skipped).
pub fn is_settled(session: &PlaybookSession, step_id: &str) -> bool {
    matches!(
        session.step_results.status(step_id),
        Some(StepStatus::Done | StepStatus::Skipped)
    )
}

/// The outline of `playbook` as `session` stands.
pub fn outline(playbook: &Playbook, session: &PlaybookSession) -> Vec<OutlineStep> {
    playbook
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let result = session
                .step_results
                .get(&step.id)
                .cloned()
                .unwrap_or_default();
            let recorded = match result.status {
                Some(StepStatus::Done) => Some(StepState::Done),
                Some(StepStatus::Skipped) => Some(StepState::Skipped),
                Some(StepStatus::Failed) => Some(StepState::Failed),
                Some(StepStatus::Pending) | None => None,
            };
            let is_current =
                session.status == SessionStatus::Active && index == session.current_step as usize;
            // After a revision, steps past the current one may have kept their results.
            let state = match (is_current, recorded) {
                (true, Some(StepState::Failed)) => StepState::Failed,
                (true, _) => StepState::Current,
                (false, Some(state)) => state,
                (false, None) => StepState::Pending,
            };
            OutlineStep {
                number: index + 1,
                id: step.id.clone(),
                title: step.title.clone(),
                action: step.action.name().to_owned(),
                state,
                automatic: step.action.runs_alone(),
                memory_id: result.memory_id.map(|id| id.to_string()),
                note: result.error.or(result.note),
                revisions: result.revisions,
                runs_again: result.runs_again,
                outcomes: result.outcomes,
            }
        })
        .collect()
}

/// The arguments of the next `advance_step` call for `current`.
pub fn next_call(session_id: Uuid, current: &CurrentStep) -> Value {
    let input = match (&current.input, &current.generate) {
        (Some(expected), Some(generate)) => {
            json!({ expected.key.clone(): format!("<the generated {:?} artifact>", generate.format).to_lowercase() })
        }
        // Each placeholder has the JSON type the step takes, so a call built from it parses.
        (Some(expected), None) => {
            let placeholder = match expected.spec.kind {
                InputKind::Text => json!("<a string>"),
                InputKind::TextList => json!(["<a string>"]),
                InputKind::Object => json!({}),
            };
            json!({ expected.key.clone(): placeholder })
        }
        (None, _) => json!({}),
    };
    json!({
        "tool": "advance_step",
        "arguments": { "session_id": session_id, "step_id": current.id, "input": input },
    })
}

/// One line of a project's session list.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionSummary {
    pub session_id: Uuid,
    pub playbook_id: String,
    pub playbook_name: Option<String>,
    pub playbook_version: String,
    pub status: SessionStatus,
    /// The step it waits at, while active.
    pub current_step: Option<String>,
    pub steps_done: usize,
    pub steps_total: Option<usize>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

/// Summarises a session; `playbook` is `None` when this server no longer has its playbook.
pub fn summary(playbook: Option<&Playbook>, session: &PlaybookSession) -> SessionSummary {
    let current_step = playbook
        .filter(|_| session.status == SessionStatus::Active)
        .and_then(|playbook| playbook.steps.get(session.current_step as usize))
        .map(|step| step.id.clone());
    SessionSummary {
        session_id: session.id,
        playbook_id: session.playbook_id.clone(),
        playbook_name: playbook.map(|playbook| playbook.name.clone()),
        playbook_version: session.playbook_version.clone(),
        status: session.status,
        current_step,
        steps_done: match playbook {
            Some(playbook) => playbook
                .steps
                .iter()
                .filter(|step| is_settled(session, &step.id))
                .count(),
            None => session.current_step.max(0) as usize,
        },
        steps_total: playbook.map(|playbook| playbook.steps.len()),
        created_at: session.created_at,
        updated_at: session.updated_at,
    }
}

/// A session as people read it (the console's session page): its summary, its outline (empty
/// when this server no longer has its playbook) and everything it has collected so far.
#[derive(Debug, Clone)]
pub struct SessionDetail {
    pub summary: SessionSummary,
    pub outline: Vec<OutlineStep>,
    /// The collected data, by key (a JSON object).
    pub collected: Value,
}

/// Describes `session` whole; `playbook` is `None` when this server no longer has it.
pub fn detail(playbook: Option<&Playbook>, session: &PlaybookSession) -> SessionDetail {
    SessionDetail {
        summary: summary(playbook, session),
        outline: playbook.map_or_else(Vec::new, |playbook| outline(playbook, session)),
        collected: session.collected_data.clone(),
    }
}
