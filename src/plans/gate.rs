//! The "not done" gate of `update_task`: a task's checks run on the files it produced (through
//! `validate_code`'s checks), and what a failure offers — fix, an alternative, or an override
//! with a reason — plus the `unstick` analysis of a task that failed three times.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use super::tasks::{OutputFile, TaskChange};
use crate::app::App;
use crate::domain::guardrail::Severity;
use crate::domain::plan::TaskChecks;
use crate::guardrails::unstick::{self, UnstickRequest};
use crate::guardrails::{alternatives, validate};
use crate::knowledge::{KnowledgeError, MAX_SHORT_TEXT_CHARS};
use crate::store::{PlanTask, TaskStatus};

/// A failed check on an output file.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GuardrailFinding {
    pub check: String,
    pub name: String,
    pub skill: Option<String>,
    pub severity: Severity,
    pub file_path: String,
    pub lines: Vec<usize>,
    pub message: String,
    pub fix: Option<String>,
}

/// A way out of a "not done" answer.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NotDoneOption {
    /// `fix`, `alternative` or `override`.
    pub option: String,
    pub detail: String,
}

/// Why a task is not done: which guardrails failed, what they found, and the options.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NotDone {
    pub findings: Vec<GuardrailFinding>,
    pub options: Vec<NotDoneOption>,
}

/// Runs a task's checks on its output files; the critical and error failures among them.
pub(crate) async fn run_checks(
    app: &App,
    project: Uuid,
    task: &PlanTask,
    checks: &TaskChecks,
    outputs: &[OutputFile],
) -> Result<Vec<GuardrailFinding>, KnowledgeError> {
    let files: Vec<(&str, &str)> = outputs
        .iter()
        .filter_map(|o| o.content.as_deref().map(|c| (o.path.as_str(), c)))
        .collect();
    if files.is_empty() {
        return Err(KnowledgeError::Invalid(format!(
            "task `{}` has checks: send the files it produced in `outputs`, each with its `content`, so they can be checked before it is done",
            task.spec.id
        )));
    }
    let mut findings = Vec::new();
    for (path, content) in files {
        let request = validate::Request {
            code: content.to_owned(),
            file_path: path.to_owned(),
            ..Default::default()
        };
        let report = validate::report(
            &app.validator,
            &app.library,
            app.store().as_ref(),
            project,
            request,
        )
        .await?;
        for failure in report.critical.iter().chain(&report.errors) {
            if checks.selects(&failure.check) {
                findings.push(GuardrailFinding {
                    check: failure.check.clone(),
                    name: failure.name.clone(),
                    skill: failure.skill.clone(),
                    severity: failure.severity,
                    file_path: path.to_owned(),
                    lines: failure.lines.clone(),
                    message: failure.message.clone(),
                    fix: failure.fix_suggestion.clone(),
                });
            }
        }
    }
    Ok(findings)
}

/// The ways out of a "not done" answer: fix, an alternative, or override with a reason.
pub(crate) async fn options(
    app: &App,
    findings: &[GuardrailFinding],
) -> Result<Vec<NotDoneOption>, KnowledgeError> {
    let fixes: Vec<String> = findings
        .iter()
        .map(|f| {
            let what = f.fix.as_deref().unwrap_or(&f.message);
            format!("{} line {:?}: {what}", f.file_path, f.lines)
        })
        .collect();
    let mut skills: Vec<String> = findings.iter().filter_map(|f| f.skill.clone()).collect();
    skills.dedup();
    let offered = alternatives::alternatives(app.store(), &[], &skills).await?;
    let alternative = match offered.first() {
        Some(alternative) => format!("{} ({})", alternative.approach, alternative.source),
        None => {
            let names: Vec<&str> = findings.iter().map(|f| f.name.as_str()).collect();
            format!(
                "take another approach that does not need what these checks catch: {}",
                names.join(", ")
            )
        }
    };
    Ok(vec![
        NotDoneOption {
            option: "fix".into(),
            detail: format!(
                "change the files and call update_task again with the new `outputs`: {}",
                fixes.join("; ")
            ),
        },
        NotDoneOption {
            option: "alternative".into(),
            detail: alternative,
        },
        NotDoneOption {
            option: "override".into(),
            detail: "call update_task again with `override: {\"reason\": \"…\"}`: the task is completed and the override is recorded (audit `guardrail.override`, telemetry `guardrail_override`)".into(),
        },
    ])
}

/// The `unstick` analysis of a task's failed attempts (none when it cannot be made).
pub(crate) async fn unstick_analysis(
    app: &App,
    project: Uuid,
    task: &PlanTask,
    change: &TaskChange,
) -> Option<Value> {
    let attempts: Vec<String> = task
        .attempts
        .iter()
        .filter(|a| a.outcome == Some(TaskStatus::Failed))
        .map(|a| match &a.reason {
            Some(reason) => format!("attempt {}: {reason}", a.attempt),
            None => format!("attempt {} failed", a.attempt),
        })
        .collect();
    let errors: Vec<String> = change
        .blockers
        .iter()
        .chain(&change.note)
        .cloned()
        .collect();
    let description = match &task.spec.description {
        Some(description) => format!("{}: {description}", task.spec.title),
        None => task.spec.title.clone(),
    };
    let request = UnstickRequest {
        task_description: description.chars().take(MAX_SHORT_TEXT_CHARS).collect(),
        attempts,
        errors,
        current_code: None,
    };
    match unstick::unstick(&app.knowledge, &app.library, Some(project), request).await {
        Ok(unstuck) => serde_json::to_value(unstuck).ok(),
        Err(error) => {
            tracing::warn!(%error, task = %task.task_id, "no unstick analysis for a failed task");
            None
        }
    }
}
