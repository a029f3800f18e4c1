//! `update_task`: a task's status flow (pending → in-progress → completed | blocked | failed;
//! blocked → in-progress; failed → in-progress as a new attempt), the "not done" gate (a task
//! with `checks` is completed only when its output files pass them, or with an override that is
//! recorded), the `unstick` analysis on a third failure, and idempotent retries.

use chrono::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use uuid::Uuid;

use super::gate::{GuardrailFinding, NotDone, options, run_checks, unstick_analysis};
use super::{actor, blocking, digest, parse_id};
use crate::app::App;
use crate::auth::Identity;
use crate::domain::GuardrailEventKind;
use crate::domain::plan::{TaskAttempt, TaskOutput};
use crate::guardrails::telemetry;
use crate::knowledge::{KnowledgeError, MAX_SHORT_TEXT_CHARS};
use crate::store::{AuditDraft, PlanTask, StoredReply, TaskStatus, TaskWrite, now};

/// The failed attempt from which `update_task` adds the `unstick` analysis.
pub const UNSTICK_AT_FAILURE: usize = 3;
/// The most output files one call sends.
pub const MAX_OUTPUTS: usize = 50;

/// A file a task produced, as `update_task` receives it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputFile {
    /// The path relative to the repository root: it decides which validations apply.
    pub path: String,
    /// The file's text; needed to run the task's checks.
    pub content: Option<String>,
}

/// A change to a task, as `update_task` receives it.
#[derive(Debug, Clone, Serialize)]
pub struct TaskChange {
    pub task_id: String,
    pub status: TaskStatus,
    pub outputs: Vec<OutputFile>,
    pub blockers: Vec<String>,
    pub note: Option<String>,
    /// The reason for completing despite failed checks.
    pub override_reason: Option<String>,
    pub idempotency_key: Option<String>,
}

/// What came of an `update_task` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The task moved to the status asked for.
    Updated,
    /// It was not started: dependencies are not completed (see `blocked_by`).
    Blocked,
    /// It was not completed: its checks failed (see `not_done`); it stays in progress.
    NotDone,
}

/// A task another one waits for.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Blocker {
    /// Its plan-local id.
    pub id: String,
    pub title: String,
    pub status: TaskStatus,
}

/// What `update_task` answers.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TaskUpdated {
    pub task_id: Uuid,
    pub plan_id: Uuid,
    /// The task's plan-local id.
    pub id: String,
    pub title: String,
    pub outcome: Outcome,
    /// The task's status now.
    pub status: TaskStatus,
    pub attempt: i32,
    /// The dependencies not completed yet, when `outcome` is `blocked`.
    pub blocked_by: Vec<Blocker>,
    /// When `outcome` is `not_done`.
    pub not_done: Option<NotDone>,
    /// The failed checks an override let through (recorded as `guardrail_override`).
    pub overridden: Vec<GuardrailFinding>,
    /// The project checkpoint this completion set (`{skill}:{task}:{status}`).
    pub checkpoint: Option<String>,
    /// The `unstick` analysis, from the third failed attempt on.
    pub unstick: Option<Value>,
    /// True when this is the stored answer of an earlier call with the same idempotency key.
    #[serde(default)]
    pub replayed: bool,
}

impl TaskUpdated {
    fn of(task: &PlanTask, outcome: Outcome) -> Self {
        TaskUpdated {
            task_id: task.task_id,
            plan_id: task.plan_id,
            id: task.spec.id.clone(),
            title: task.spec.title.clone(),
            outcome,
            status: task.status,
            attempt: task.attempt,
            blocked_by: Vec::new(),
            not_done: None,
            overridden: Vec::new(),
            checkpoint: None,
            unstick: None,
            replayed: false,
        }
    }
}

/// The audit entry of a task's move.
fn moved(task: &PlanTask, from: TaskStatus, reason: Option<&str>) -> AuditDraft {
    let mut detail = json!({
        "plan_id": task.plan_id, "id": task.spec.id, "from": from.as_str(),
        "to": task.status.as_str(), "attempt": task.attempt,
    });
    if let Some(reason) = reason {
        detail["reason"] = json!(reason.chars().take(200).collect::<String>());
    }
    AuditDraft {
        action: "task.update".into(),
        target: task.task_id.to_string(),
        detail,
    }
}

/// Applies a change to a task of `project`.
pub async fn update(
    app: &App,
    identity: &Identity,
    project: Uuid,
    change: TaskChange,
) -> Result<TaskUpdated, KnowledgeError> {
    let id = parse_id("task_id", &change.task_id)?;
    let key = super::idempotency_key(change.idempotency_key.clone())?;
    check_change(&change)?;
    let request_digest = digest(&change);
    let store = app.store();
    if let Some(key) = &key
        && let Some(stored) = store.task_reply(project, key).await?
    {
        return replay(stored, &request_digest);
    }
    let plan_id = store.task_plan(project, id).await?.ok_or_else(|| {
        KnowledgeError::NotFound(format!(
            "no task {id} in this project: use a `task_id` that plan_tasks or next_tasks returned"
        ))
    })?;
    let plan = super::plan(app, project, &plan_id.to_string()).await?;
    let task = plan
        .tasks
        .iter()
        .find(|task| task.task_id == id)
        .ok_or_else(|| KnowledgeError::NotFound(format!("task {id}")))?;
    let (from, to) = (task.status, change.status);
    if !from.may_become(to) {
        return Err(KnowledgeError::Invalid(format!(
            "task `{}` is {}: it cannot become {} (the flow is pending → in-progress → completed | blocked | failed; blocked → in-progress; failed → in-progress for a new attempt)",
            task.spec.id,
            from.as_str(),
            to.as_str()
        )));
    }
    let at = now();
    let mut next = task.clone();
    next.status = to;
    let mut answer_outcome = Outcome::Updated;
    let mut audits = Vec::new();
    let mut events = Vec::new();
    let mut not_done = None;
    let mut overridden = Vec::new();
    let mut checkpoint = None;
    match to {
        TaskStatus::InProgress => {
            let waiting = blocking(&plan, task);
            if !waiting.is_empty() {
                let mut answer = TaskUpdated::of(task, Outcome::Blocked);
                answer.blocked_by = waiting
                    .iter()
                    .map(|t| Blocker {
                        id: t.spec.id.clone(),
                        title: t.spec.title.clone(),
                        status: t.status,
                    })
                    .collect();
                return Ok(answer);
            }
            if from != TaskStatus::Blocked {
                next.attempt += 1;
            }
            next.attempts.push(TaskAttempt {
                attempt: next.attempt,
                started_at: at,
                ended_at: None,
                outcome: None,
                reason: None,
            });
            next.deadline_at = task
                .spec
                .timeout_seconds
                .map(|seconds| at + Duration::seconds(i64::from(seconds)));
            next.blockers = change.blockers.clone();
        }
        TaskStatus::Blocked | TaskStatus::Failed => {
            end_attempt(&mut next, at, to, change.note.clone());
            next.blockers = change.blockers.clone();
        }
        TaskStatus::Completed => {
            let findings = match &task.spec.checks {
                Some(checks) => run_checks(app, project, task, checks, &change.outputs).await?,
                None => Vec::new(),
            };
            next.outputs = change
                .outputs
                .iter()
                .map(|output| TaskOutput {
                    path: output.path.clone(),
                    bytes: output.content.as_ref().map(|c| c.len() as u64),
                })
                .collect();
            let kind;
            if !findings.is_empty() && change.override_reason.is_none() {
                // Not done: the task stays as it was, in progress; the block is recorded.
                next = task.clone();
                answer_outcome = Outcome::NotDone;
                kind = GuardrailEventKind::GuardrailBlock;
                let checks: Vec<Value> = findings
                    .iter()
                    .map(|f| json!({"check": f.check, "severity": f.severity.as_str()}))
                    .collect();
                audits.push(AuditDraft {
                    action: "guardrail.block".into(),
                    target: task.task_id.to_string(),
                    detail: json!({"plan_id": task.plan_id, "id": task.spec.id, "checks": checks}),
                });
                not_done = Some(NotDone {
                    options: options(app, &findings).await?,
                    findings: findings.clone(),
                });
            } else {
                kind = GuardrailEventKind::GuardrailOverride;
                if let (false, Some(reason)) = (findings.is_empty(), &change.override_reason) {
                    audits.push(AuditDraft {
                        action: "guardrail.override".into(),
                        target: task.task_id.to_string(),
                        detail: json!({"plan_id": task.plan_id, "id": task.spec.id, "reason": reason}),
                    });
                    overridden = findings.clone();
                }
                end_attempt(&mut next, at, to, change.note.clone());
                let skill = task.spec.skill.as_deref().unwrap_or("none");
                checkpoint = Some(format!("{skill}:{}:{}", task.spec.id, to.as_str()));
            }
            let tool = "update_task";
            let reason = change.override_reason.clone();
            events = findings
                .iter()
                .map(|f| {
                    let detail = json!({"task_id": task.task_id, "file_path": f.file_path, "reason": reason});
                    telemetry::event(kind, tool, identity, &f.check, Some(f.severity), detail)
                })
                .collect();
        }
        TaskStatus::Pending => unreachable!("no status may become pending"),
    }
    if next.status != from || next.attempt != task.attempt {
        let reason = match to {
            TaskStatus::Completed if !overridden.is_empty() => Some("override"),
            TaskStatus::Blocked | TaskStatus::Failed => change.note.as_deref(),
            _ => None,
        };
        audits.insert(0, moved(&next, from, reason));
    }
    let mut answer = TaskUpdated::of(&next, answer_outcome);
    answer.not_done = not_done;
    answer.overridden = overridden;
    answer.checkpoint = checkpoint.clone();
    if to == TaskStatus::Failed && next.failures() >= UNSTICK_AT_FAILURE {
        answer.unstick = unstick_analysis(app, project, &next, &change).await;
    }
    let reply = match &key {
        Some(key) => Some(StoredReply {
            key: key.clone(),
            request_digest: request_digest.clone(),
            reply: serde_json::to_value(&answer)
                .map_err(|error| KnowledgeError::Unavailable(error.to_string()))?,
        }),
        None => None,
    };
    let write = TaskWrite {
        task: next.clone(),
        expected: (task.status, task.attempt),
        audits,
        checkpoint,
        reply,
    };
    if let Err(error) = store
        .write_task(project, &actor(identity, "update_task"), &write)
        .await
    {
        // The same key committed by a call running at the same time: answer as it did.
        if let Some(key) = &key
            && let Some(stored) = store.task_reply(project, key).await?
        {
            return replay(stored, &request_digest);
        }
        return Err(error.into());
    }
    if let Some(deadline) = next.deadline_at {
        app.task_deadlines.note(deadline);
    }
    telemetry::record(store.as_ref(), project, &events).await?;
    Ok(answer)
}

fn check_change(change: &TaskChange) -> Result<(), KnowledgeError> {
    if change.outputs.len() > MAX_OUTPUTS {
        return Err(KnowledgeError::Invalid(format!(
            "`outputs` has {} files: send at most {MAX_OUTPUTS}",
            change.outputs.len()
        )));
    }
    if change.outputs.iter().any(|o| o.path.trim().is_empty()) {
        return Err(KnowledgeError::Invalid(
            "an item of `outputs` has an empty `path`: send each file's path relative to the repository root".into(),
        ));
    }
    if let Some(reason) = &change.override_reason
        && reason.trim().is_empty()
    {
        return Err(KnowledgeError::Invalid(
            "`override.reason` is empty: say why the task is done although its checks fail".into(),
        ));
    }
    let long = change
        .note
        .iter()
        .chain(&change.blockers)
        .chain(&change.override_reason)
        .find(|text| text.chars().count() > MAX_SHORT_TEXT_CHARS);
    if long.is_some() {
        return Err(KnowledgeError::Invalid(format!(
            "`note`, `blockers` and `override.reason` take at most {MAX_SHORT_TEXT_CHARS} characters each"
        )));
    }
    Ok(())
}

fn replay(stored: StoredReply, request_digest: &str) -> Result<TaskUpdated, KnowledgeError> {
    if stored.request_digest != request_digest {
        return Err(KnowledgeError::Conflict(format!(
            "idempotency_key `{}` was already used for a different update_task call: send a new key for a new change",
            stored.key
        )));
    }
    let mut answer: TaskUpdated = serde_json::from_value(stored.reply).map_err(|error| {
        KnowledgeError::Unavailable(format!("the stored answer does not read: {error}"))
    })?;
    answer.replayed = true;
    Ok(answer)
}

/// Closes the task's open attempt.
fn end_attempt(
    task: &mut PlanTask,
    at: chrono::DateTime<chrono::Utc>,
    outcome: TaskStatus,
    reason: Option<String>,
) {
    task.deadline_at = None;
    if let Some(last) = task.attempts.last_mut().filter(|a| a.ended_at.is_none()) {
        last.ended_at = Some(at);
        last.outcome = Some(outcome);
        last.reason = reason;
    }
}
