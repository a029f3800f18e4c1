//! Plans, their tasks and a project's state: the records `plan_tasks`, `next_tasks`,
//! `update_task`, `plan_report` and `project_state` work on.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Where a task is in its flow: pending → in-progress → completed | blocked | failed;
/// blocked → in-progress; failed → in-progress (a new attempt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Completed,
    Blocked,
    Failed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 5] = [
        TaskStatus::Pending,
        TaskStatus::InProgress,
        TaskStatus::Completed,
        TaskStatus::Blocked,
        TaskStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in-progress",
            TaskStatus::Completed => "completed",
            TaskStatus::Blocked => "blocked",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the flow allows going from `self` to `to`.
    pub fn may_become(self, to: TaskStatus) -> bool {
        use TaskStatus::*;
        matches!(
            (self, to),
            (Pending, InProgress)
                | (InProgress, Completed | Blocked | Failed)
                | (Blocked, InProgress)
                | (Failed, InProgress)
        )
    }
}

/// Which validations must pass before a task is done: the word `guardrails` (every validation
/// that applies to its output files) or a list of validation ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TaskChecks {
    /// `"guardrails"`.
    All(String),
    Ids(Vec<String>),
}

impl TaskChecks {
    /// Whether a failed check counts for this task.
    pub fn selects(&self, check: &str) -> bool {
        match self {
            TaskChecks::All(_) => true,
            TaskChecks::Ids(ids) => ids.iter().any(|id| id == check),
        }
    }
}

/// A task as the plan describes it (what `plan_tasks` receives, once checked).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// The task's id inside its plan (e.g. `schema`).
    pub id: String,
    /// What the task does.
    pub title: String,
    /// More about it, for whoever takes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The skill it belongs to (names the checkpoint `{skill}:{task}:{status}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skill: Option<String>,
    /// Plan-local ids of the tasks that must be completed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Higher runs first (default 0).
    #[serde(default)]
    pub priority: i32,
    /// `guardrails`, or validation ids, that must pass on its output files before it is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checks: Option<TaskChecks>,
    /// After this long in progress the server marks it failed (reason `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u32>,
}

/// A plan to store: its title and tasks (already checked: unique ids, known dependencies, no
/// cycle), and the idempotency key it was sent with.
#[derive(Debug, Clone)]
pub struct PlanDraft {
    pub title: String,
    pub tasks: Vec<TaskSpec>,
    pub idempotency_key: Option<String>,
    /// A digest of the request, so a key sent again with another plan is refused.
    pub request_digest: String,
}

/// A file a task produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskOutput {
    pub path: String,
    /// The content's size in bytes, when the content was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// One attempt at a task: when it started and how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct TaskAttempt {
    pub attempt: i32,
    pub started_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    /// `completed`, `blocked` or `failed` once it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<TaskStatus>,
    /// Why it ended so (the caller's note, or `timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A stored task.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PlanTask {
    /// The server-wide id (`update_task` takes it).
    pub task_id: Uuid,
    pub plan_id: Uuid,
    #[serde(flatten)]
    pub spec: TaskSpec,
    pub status: TaskStatus,
    /// The attempt under way or last made (0 before the first start).
    pub attempt: i32,
    pub attempts: Vec<TaskAttempt>,
    pub outputs: Vec<TaskOutput>,
    pub blockers: Vec<String>,
    pub note: Option<String>,
    /// When an in-progress task with a timeout runs out of time.
    pub deadline_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    pub position: i32,
}

impl PlanTask {
    /// How many attempts ended `failed`.
    pub fn failures(&self) -> usize {
        let failed = |a: &&TaskAttempt| a.outcome == Some(TaskStatus::Failed);
        self.attempts.iter().filter(failed).count()
    }
}

/// A stored plan and its tasks, in the order they were given.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct Plan {
    pub plan_id: Uuid,
    pub project_id: Uuid,
    pub title: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub tasks: Vec<PlanTask>,
}

/// A plan as a project's list of plans shows it: its title and how far its tasks got.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct PlanSummary {
    pub plan_id: Uuid,
    pub title: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub tasks: i64,
    pub completed: i64,
    pub failed: i64,
}

/// An audit entry a store write adds in its transaction.
#[derive(Debug, Clone)]
pub struct AuditDraft {
    pub action: String,
    pub target: String,
    pub detail: Value,
}

/// A task's new state, written only if the task still has the status and attempt it was read
/// with; with the audit entries of the change, the project checkpoint it sets, and the reply
/// kept for its idempotency key.
#[derive(Debug, Clone)]
pub struct TaskWrite {
    pub task: PlanTask,
    pub expected: (TaskStatus, i32),
    pub audits: Vec<AuditDraft>,
    pub checkpoint: Option<String>,
    pub reply: Option<StoredReply>,
}

/// The answer of a call made with an idempotency key, kept to be returned again.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReply {
    pub key: String,
    pub request_digest: String,
    pub reply: Value,
}

/// The phase a project is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Discovery,
    Planning,
    Building,
    Review,
}

/// How ready the project is to move on, and what it still lacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Confidence {
    pub ready: bool,
    #[serde(default)]
    pub gaps: Vec<String>,
}

/// Something the work assumes, and whether it was confirmed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assumption {
    pub id: String,
    pub text: String,
    #[serde(default)]
    pub confirmed: bool,
}

/// The MCP servers the work needs, those available, and those missing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Mcps {
    #[serde(default)]
    pub required: Vec<String>,
    #[serde(default)]
    pub available: Vec<String>,
    #[serde(default)]
    pub missing: Vec<String>,
}

/// The fields of a project's state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StateFields {
    pub phase: Option<Phase>,
    pub current_skill: Option<String>,
    /// `{skill}:{task}:{status}` after each task completion, or what a caller set.
    pub checkpoint: Option<String>,
    pub confidence: Option<Confidence>,
    #[serde(default)]
    pub assumptions: Vec<Assumption>,
    pub mcps: Option<Mcps>,
}

/// A project's state at one revision (0: never set).
#[derive(Debug, Clone, Default, PartialEq, Serialize, JsonSchema)]
pub struct ProjectState {
    pub revision: i32,
    #[serde(flatten)]
    pub fields: StateFields,
    pub updated_by: Option<String>,
    pub updated_at: Option<DateTime<Utc>>,
}
