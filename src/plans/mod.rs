//! Plans and tasks, and a project's state: the services behind `plan_tasks`, `next_tasks`,
//! `update_task`, `plan_report` and `project_state`.
//!
//! - [`graph`]: a plan's dependency graph checked before anything is stored.
//! - [`tasks`]: a task's status flow, idempotent retries.
//! - [`gate`]: the "not done" gate of a task's checks, and the analysis of a third failure.
//! - [`report`]: what happened in a plan.
//! - [`state`]: a project's phase, checkpoint and the rest, revision by revision.
//! - [`sweep`]: the server's background failing of tasks past their timeout.

pub mod gate;
pub mod graph;
pub mod report;
pub mod state;
pub mod sweep;
pub mod tasks;

use schemars::JsonSchema;
use serde::Serialize;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::app::App;
use crate::auth::Identity;
use crate::domain::guardrail::LIBRARY_PROJECT;
use crate::domain::plan::{TaskChecks, TaskSpec};
use crate::knowledge::{KnowledgeError, MAX_SHORT_TEXT_CHARS, required_text};
use crate::store::{Actor, Plan, PlanDraft, PlanTask, TaskStatus};

/// The most tasks one plan holds.
pub const MAX_TASKS: usize = 200;
/// The longest task timeout, in seconds (one week).
pub const MAX_TIMEOUT_SECONDS: u32 = 7 * 24 * 3600;
/// The longest idempotency key, in characters.
pub const MAX_KEY_CHARS: usize = 200;

/// What `plan_tasks` answers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PlanCreated {
    pub plan_id: Uuid,
    pub title: String,
    /// False when the idempotency key had already made this plan (nothing was written).
    pub created: bool,
    pub tasks: Vec<PlanTask>,
}

/// What `next_tasks` answers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct NextTasks {
    pub plan_id: Uuid,
    /// Pending tasks whose every dependency is completed, highest priority first.
    pub ready: Vec<PlanTask>,
    /// How many tasks the plan has of each status.
    pub counts: std::collections::BTreeMap<String, usize>,
}

/// Who changed something, through which tool.
pub(crate) fn actor(identity: &Identity, tool: &str) -> Actor {
    Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    }
}

/// A digest of a request, to tell a retried call from another call with the same key.
pub(crate) fn digest(request: &impl Serialize) -> String {
    let text = serde_json::to_string(request).unwrap_or_default();
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Checks an idempotency key.
pub(crate) fn idempotency_key(key: Option<String>) -> Result<Option<String>, KnowledgeError> {
    key.map(|key| required_text("idempotency_key", &key, MAX_KEY_CHARS))
        .transpose()
}

/// Checks and stores a plan. Refused, with nothing stored, when a task id repeats, a
/// dependency names no task, the graph has a cycle, or a check names no validation.
pub async fn create(
    app: &App,
    identity: &Identity,
    project: Uuid,
    title: &str,
    tasks: Vec<TaskSpec>,
    idempotency_key: Option<String>,
) -> Result<PlanCreated, KnowledgeError> {
    let title = required_text("title", title, MAX_SHORT_TEXT_CHARS)?;
    let idempotency_key = self::idempotency_key(idempotency_key)?;
    if tasks.is_empty() || tasks.len() > MAX_TASKS {
        return Err(KnowledgeError::Invalid(format!(
            "`tasks` has {} items: send from 1 to {MAX_TASKS} tasks",
            tasks.len()
        )));
    }
    let mut checked = Vec::with_capacity(tasks.len());
    for task in tasks {
        checked.push(check_task(task)?);
    }
    let problems = graph::check(&checked);
    if !problems.is_empty() {
        return Err(KnowledgeError::Invalid(problems.message()));
    }
    check_validation_ids(app, project, &checked).await?;
    let request_digest = digest(&(&title, &checked));
    let draft = PlanDraft {
        title,
        tasks: checked,
        idempotency_key,
        request_digest,
    };
    let store = app.store();
    let (plan, created) = store
        .create_plan(project, &actor(identity, "plan_tasks"), &draft)
        .await?;
    Ok(PlanCreated {
        plan_id: plan.plan_id,
        title: plan.title,
        created,
        tasks: plan.tasks,
    })
}

fn check_task(mut task: TaskSpec) -> Result<TaskSpec, KnowledgeError> {
    task.id = required_text("tasks[].id", &task.id, MAX_SHORT_TEXT_CHARS)?;
    task.title = required_text(
        &format!("the title of task `{}`", task.id),
        &task.title,
        MAX_SHORT_TEXT_CHARS,
    )?;
    if let Some(TaskChecks::All(word)) = &task.checks
        && word != "guardrails"
    {
        return Err(KnowledgeError::Invalid(format!(
            "`checks` of task `{}` is `{word}`: send `guardrails` (every validation that applies to its output files) or a list of validation ids",
            task.id
        )));
    }
    if let Some(seconds) = task.timeout_seconds
        && !(1..=MAX_TIMEOUT_SECONDS).contains(&seconds)
    {
        return Err(KnowledgeError::Invalid(format!(
            "`timeout_seconds` of task `{}` is {seconds}: send from 1 to {MAX_TIMEOUT_SECONDS}",
            task.id
        )));
    }
    Ok(task)
}

/// Refuses checks that name no validation of the library or the project.
async fn check_validation_ids(
    app: &App,
    project: Uuid,
    tasks: &[TaskSpec],
) -> Result<(), KnowledgeError> {
    let named: Vec<(&str, &str)> = tasks
        .iter()
        .filter_map(|task| match &task.checks {
            Some(TaskChecks::Ids(ids)) => {
                Some(ids.iter().map(|id| (task.id.as_str(), id.as_str())))
            }
            _ => None,
        })
        .flatten()
        .collect();
    if named.is_empty() {
        return Ok(());
    }
    let store = app.store().as_ref();
    let library = app.validator.checks(store, LIBRARY_PROJECT).await?;
    let own = app.validator.checks(store, project).await?;
    let known = |id: &str| {
        [&library, &own]
            .iter()
            .any(|set| set.checks().iter().any(|check| check.validation.id == id))
    };
    let unknown: Vec<String> = named
        .iter()
        .filter(|(_, id)| !known(id))
        .map(|(task, id)| format!("`{id}` (task `{task}`)"))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    Err(KnowledgeError::Invalid(format!(
        "the plan was not stored: no validation has the id {}: name validations of the skills library or of the project (validate_code lists them in its reports), or send `checks: \"guardrails\"`",
        unknown.join(", ")
    )))
}

/// The plan `plan_id` of `project`.
pub async fn plan(app: &App, project: Uuid, plan_id: &str) -> Result<Plan, KnowledgeError> {
    let id = parse_id("plan_id", plan_id)?;
    app.store()
        .get_plan(project, id)
        .await?
        .ok_or_else(|| KnowledgeError::NotFound(format!(
            "no plan {id} in this project: use the `plan_id` plan_tasks returned (and the project it was made in)"
        )))
}

pub(crate) fn parse_id(field: &str, text: &str) -> Result<Uuid, KnowledgeError> {
    Uuid::parse_str(text.trim()).map_err(|_| {
        KnowledgeError::Invalid(format!(
            "`{field}` is `{text}`: send the id (a UUID) a plan tool returned"
        ))
    })
}

/// The tasks of a plan that can start now, highest priority first (then in plan order).
pub async fn next(app: &App, project: Uuid, plan_id: &str) -> Result<NextTasks, KnowledgeError> {
    let plan = plan(app, project, plan_id).await?;
    let mut ready: Vec<PlanTask> = plan
        .tasks
        .iter()
        .filter(|task| task.status == TaskStatus::Pending && blocking(&plan, task).is_empty())
        .cloned()
        .collect();
    ready.sort_by_key(|task| (std::cmp::Reverse(task.spec.priority), task.position));
    let counts = TaskStatus::ALL
        .into_iter()
        .map(|status| {
            let count = plan.tasks.iter().filter(|t| t.status == status).count();
            (status.as_str().to_owned(), count)
        })
        .collect();
    Ok(NextTasks {
        plan_id: plan.plan_id,
        ready,
        counts,
    })
}

/// The dependencies of `task` that are not completed.
pub(crate) fn blocking<'a>(plan: &'a Plan, task: &PlanTask) -> Vec<&'a PlanTask> {
    plan.tasks
        .iter()
        .filter(|other| {
            task.spec.depends_on.contains(&other.spec.id) && other.status != TaskStatus::Completed
        })
        .collect()
}
