//! `plan_report`: what happened in a plan — tasks by status, success rate, outputs, guardrail
//! blocks and overrides, attempts and durations, and the plan's audit entries (its events).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use crate::app::App;
use crate::domain::AuditEntry;
use crate::domain::plan::TaskOutput;
use crate::knowledge::KnowledgeError;
use crate::store::{Plan, PlanTask, TaskStatus};

/// One task in the report.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct TaskLine {
    pub id: String,
    pub task_id: Uuid,
    pub title: String,
    pub status: TaskStatus,
    /// Attempts started (a blocked task resumed stays in its attempt).
    pub attempts: i32,
    pub failures: usize,
    /// Seconds spent in progress, over every attempt (an open one counted up to now).
    pub seconds_in_progress: f64,
    /// The last attempt's end reason (`timeout`, or the caller's note).
    pub last_reason: Option<String>,
    pub outputs: Vec<TaskOutput>,
}

/// A guardrail block or override of a task.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GuardrailLine {
    /// The task's plan-local id.
    pub id: String,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub detail: serde_json::Value,
}

/// What `plan_report` answers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanReport {
    pub plan_id: Uuid,
    pub title: String,
    /// The plan-local ids of the tasks of each status.
    pub by_status: BTreeMap<String, Vec<String>>,
    /// Completed tasks over tasks that ended (completed or failed); `None` before any ended.
    pub success_rate: Option<f64>,
    pub tasks: Vec<TaskLine>,
    pub guardrail_blocks: Vec<GuardrailLine>,
    pub guardrail_overrides: Vec<GuardrailLine>,
    /// The audit entries of the plan and its tasks, oldest first.
    pub events: Vec<AuditEntry>,
}

/// The report of plan `plan_id` of `project`.
pub async fn report(app: &App, project: Uuid, plan_id: &str) -> Result<PlanReport, KnowledgeError> {
    let plan = super::plan(app, project, plan_id).await?;
    let events = app.store().plan_audit(project, plan.plan_id).await?;
    Ok(build(&plan, events))
}

fn build(plan: &Plan, events: Vec<AuditEntry>) -> PlanReport {
    let mut by_status: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for task in &plan.tasks {
        let ids = by_status
            .entry(task.status.as_str().to_owned())
            .or_default();
        ids.push(task.spec.id.clone());
    }
    let count = |status| plan.tasks.iter().filter(|t| t.status == status).count();
    let (completed, failed) = (count(TaskStatus::Completed), count(TaskStatus::Failed));
    let success_rate =
        (completed + failed > 0).then(|| completed as f64 / (completed + failed) as f64);
    let local_id = |target: &Option<String>| {
        plan.tasks
            .iter()
            .find(|t| Some(t.task_id.to_string()) == *target)
            .map(|t| t.spec.id.clone())
            .unwrap_or_default()
    };
    let lines = |action: &str| -> Vec<GuardrailLine> {
        events
            .iter()
            .filter(|e| e.action == action)
            .map(|e| GuardrailLine {
                id: local_id(&e.target_id),
                at: e.created_at,
                actor: e.actor.clone(),
                detail: e.detail.clone(),
            })
            .collect()
    };
    PlanReport {
        plan_id: plan.plan_id,
        title: plan.title.clone(),
        by_status,
        success_rate,
        tasks: plan.tasks.iter().map(line).collect(),
        guardrail_blocks: lines("guardrail.block"),
        guardrail_overrides: lines("guardrail.override"),
        events,
    }
}

fn line(task: &PlanTask) -> TaskLine {
    let now = crate::store::now();
    let seconds = task
        .attempts
        .iter()
        .map(|a| (a.ended_at.unwrap_or(now) - a.started_at).num_milliseconds() as f64 / 1000.0)
        .sum();
    TaskLine {
        id: task.spec.id.clone(),
        task_id: task.task_id,
        title: task.spec.title.clone(),
        status: task.status,
        attempts: task.attempt,
        failures: task.failures(),
        seconds_in_progress: seconds,
        last_reason: task.attempts.last().and_then(|a| a.reason.clone()),
        outputs: task.outputs.clone(),
    }
}
