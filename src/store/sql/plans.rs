//! Plans and their tasks. A plan and its tasks are written in one transaction with its
//! `plan.create` audit entry; a task changes only through [`PlanStore::write_task`], which
//! checks the status and attempt it was read with under a row lock, so two calls can never both
//! move a task on. Timed-out tasks are failed here for the sweeper, one project at a time.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::audit;
use super::{Access, Backend, Conn, Connection, Id, Json, Sql, Time, is_unique};
use crate::domain::plan::{TaskAttempt, TaskSpec};
use crate::store::{
    Actor, AuditEntry, Plan, PlanDraft, PlanStore, PlanSummary, PlanTask, StoreError, StoreResult,
    StoredReply, TaskStatus, TaskWrite, now,
};

const TASK_COLUMNS: &str = "id, plan_id, local_id, position, spec, status, attempt, attempts, \
     outputs, blockers, note, deadline_at, updated_at";

#[derive(sqlx::FromRow)]
struct PlanRow {
    id: Id,
    project_id: Id,
    title: String,
    request_digest: String,
    created_by: String,
    created_at: Time,
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    id: Id,
    title: String,
    created_by: String,
    created_at: Time,
    tasks: i64,
    completed: i64,
    failed: i64,
}

#[derive(sqlx::FromRow)]
struct AuditRow {
    id: i64,
    project_id: Option<Id>,
    actor: String,
    tool: Option<String>,
    action: String,
    target_id: Option<String>,
    detail: Json,
    created_at: Time,
}

impl AuditRow {
    fn into_entry(self) -> AuditEntry {
        AuditEntry {
            id: self.id,
            project_id: self.project_id.map(|id| id.0),
            actor: self.actor,
            tool: self.tool,
            action: self.action,
            target_id: self.target_id,
            detail: self.detail.0,
            created_at: self.created_at.0,
        }
    }
}

#[derive(sqlx::FromRow)]
struct TaskRow {
    id: Id,
    plan_id: Id,
    local_id: String,
    position: i32,
    spec: Json,
    status: String,
    attempt: i32,
    attempts: Json,
    outputs: Json,
    blockers: Json,
    note: Option<String>,
    deadline_at: Option<Time>,
    updated_at: Time,
}

fn decode<T: DeserializeOwned>(what: &str, task: Uuid, value: Value) -> StoreResult<T> {
    serde_json::from_value(value)
        .map_err(|error| StoreError::Corrupt(format!("{what} of task {task}: {error}")))
}

fn encode(value: &impl serde::Serialize) -> StoreResult<Value> {
    serde_json::to_value(value).map_err(|error| StoreError::Corrupt(error.to_string()))
}

impl TaskRow {
    fn into_task(self) -> StoreResult<PlanTask> {
        let id = self.id.0;
        let mut spec: TaskSpec = decode("spec", id, self.spec.0)?;
        spec.id = self.local_id;
        Ok(PlanTask {
            task_id: id,
            plan_id: self.plan_id.0,
            spec,
            status: TaskStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("task status {}", self.status)))?,
            attempt: self.attempt,
            attempts: decode::<Vec<TaskAttempt>>("attempts", id, self.attempts.0)?,
            outputs: decode("outputs", id, self.outputs.0)?,
            blockers: decode("blockers", id, self.blockers.0)?,
            note: self.note,
            deadline_at: self.deadline_at.map(|t| t.0),
            updated_at: self.updated_at.0,
            position: self.position,
        })
    }
}

async fn plan_in<B: Backend>(
    tx: &mut Connection<B>,
    project: Uuid,
    condition: &str,
    value: impl Into<super::Arg>,
) -> StoreResult<Option<(Plan, String)>> {
    let sql = Sql::new(format!(
        "SELECT id, project_id, title, request_digest, created_by, created_at FROM plans \
         WHERE project_id = $1 AND {condition} = $2"
    ))
    .arg(project)
    .arg(value);
    let Some(row) = tx.fetch_optional::<PlanRow>(sql).await? else {
        return Ok(None);
    };
    let sql = Sql::new(format!(
        "SELECT {TASK_COLUMNS} FROM plan_tasks WHERE project_id = $1 AND plan_id = $2 ORDER BY position"
    ))
    .arg(project)
    .arg(row.id.0);
    let tasks: Vec<TaskRow> = tx.fetch_all(sql).await?;
    let plan = Plan {
        plan_id: row.id.0,
        project_id: row.project_id.0,
        title: row.title,
        created_by: row.created_by,
        created_at: row.created_at.0,
        tasks: tasks
            .into_iter()
            .map(TaskRow::into_task)
            .collect::<StoreResult<_>>()?,
    };
    Ok(Some((plan, row.request_digest)))
}

/// The plan an idempotency key made, or `Conflict` when it was made from another request.
fn replayed(found: (Plan, String), draft: &PlanDraft, key: &str) -> StoreResult<(Plan, bool)> {
    let (plan, digest) = found;
    if digest != draft.request_digest {
        return Err(StoreError::Conflict(format!(
            "idempotency_key `{key}` already made plan {} from a different request: send a new key for a new plan",
            plan.plan_id
        )));
    }
    Ok((plan, false))
}

#[async_trait]
impl<B: Backend> PlanStore for B {
    async fn create_plan(
        &self,
        project: Uuid,
        actor: &Actor,
        draft: &PlanDraft,
    ) -> StoreResult<(Plan, bool)> {
        let key = draft.idempotency_key.as_deref();
        let mut tx = self.tenant(project, Access::Write).await?;
        if let Some(key) = key
            && let Some(found) = plan_in::<B>(&mut tx, project, "idempotency_key", key).await?
        {
            return replayed(found, draft, key);
        }
        let (plan_id, at) = (Uuid::new_v4(), now());
        let sql = Sql::new(
            "INSERT INTO plans (id, project_id, title, idempotency_key, request_digest, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .arg(plan_id)
        .arg(project)
        .arg(&draft.title)
        .arg(key)
        .arg(&draft.request_digest)
        .arg(&actor.label)
        .arg(at);
        match tx.execute(sql).await {
            Ok(_) => {}
            // Another call with the same key committed first: answer with its plan.
            Err(error) if is_unique(&error) && key.is_some() => {
                drop(tx);
                let mut tx = self.tenant(project, Access::Read).await?;
                let key = key.unwrap_or_default();
                let found = plan_in::<B>(&mut tx, project, "idempotency_key", key).await?;
                return replayed(found.ok_or(error)?, draft, key);
            }
            Err(error) => return Err(error),
        }
        for (position, spec) in draft.tasks.iter().enumerate() {
            let sql = Sql::new(
                "INSERT INTO plan_tasks (id, project_id, plan_id, local_id, position, spec, status, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .arg(Uuid::new_v4())
            .arg(project)
            .arg(plan_id)
            .arg(&spec.id)
            .arg(i32::try_from(position).unwrap_or(i32::MAX))
            .arg(encode(spec)?)
            .arg(TaskStatus::Pending.as_str())
            .arg(at);
            tx.execute(sql).await?;
        }
        let detail = json!({"title": draft.title, "tasks": draft.tasks.len()});
        audit(
            &mut *tx,
            project,
            actor,
            "plan.create",
            &plan_id.to_string(),
            detail,
        )
        .await?;
        let (plan, _) = plan_in::<B>(&mut tx, project, "id", plan_id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("plan {plan_id}")))?;
        B::commit(tx).await?;
        Ok((plan, true))
    }

    async fn get_plan(&self, project: Uuid, plan: Uuid) -> StoreResult<Option<Plan>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        Ok(plan_in::<B>(&mut tx, project, "id", plan)
            .await?
            .map(|(plan, _)| plan))
    }

    async fn list_plans(&self, project: Uuid, limit: u32) -> StoreResult<Vec<PlanSummary>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT p.id, p.title, p.created_by, p.created_at, COUNT(t.id) AS tasks, \
             COALESCE(SUM(CASE WHEN t.status = 'completed' THEN 1 ELSE 0 END), 0) AS completed, \
             COALESCE(SUM(CASE WHEN t.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed \
             FROM plans p LEFT JOIN plan_tasks t ON t.project_id = p.project_id AND t.plan_id = p.id \
             WHERE p.project_id = $1 \
             GROUP BY p.id, p.title, p.created_by, p.created_at \
             ORDER BY p.created_at DESC, p.id LIMIT $2",
        )
        .arg(project)
        .arg(i64::from(limit));
        let rows: Vec<SummaryRow> = tx.fetch_all(sql).await?;
        Ok(rows
            .into_iter()
            .map(|row| PlanSummary {
                plan_id: row.id.0,
                title: row.title,
                created_by: row.created_by,
                created_at: row.created_at.0,
                tasks: row.tasks,
                completed: row.completed,
                failed: row.failed,
            })
            .collect())
    }

    async fn task_plan(&self, project: Uuid, task: Uuid) -> StoreResult<Option<Uuid>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new("SELECT plan_id FROM plan_tasks WHERE project_id = $1 AND id = $2")
            .arg(project)
            .arg(task);
        let row: Option<(Id,)> = tx.fetch_optional(sql).await?;
        Ok(row.map(|(id,)| id.0))
    }

    async fn write_task(&self, project: Uuid, actor: &Actor, write: &TaskWrite) -> StoreResult<()> {
        let task = &write.task;
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "SELECT status, attempt FROM plan_tasks WHERE project_id = $1 AND id = $2{}",
            B::LOCK_ROWS
        ))
        .arg(project)
        .arg(task.task_id);
        let current: Option<(String, i32)> = tx.fetch_optional(sql).await?;
        let Some((status, attempt)) = current else {
            return Err(StoreError::NotFound(format!("task {}", task.task_id)));
        };
        let (expected_status, expected_attempt) = write.expected;
        if status != expected_status.as_str() || attempt != expected_attempt {
            return Err(StoreError::Conflict(format!(
                "task `{}` changed while this call ran (it is now {status}, attempt {attempt}): read it again with plan_report and retry",
                task.spec.id
            )));
        }
        let sql = Sql::new(
            "UPDATE plan_tasks SET status = $3, attempt = $4, attempts = $5, outputs = $6, \
             blockers = $7, note = $8, deadline_at = $9, updated_at = $10 \
             WHERE project_id = $1 AND id = $2",
        )
        .arg(project)
        .arg(task.task_id)
        .arg(task.status.as_str())
        .arg(task.attempt)
        .arg(encode(&task.attempts)?)
        .arg(encode(&task.outputs)?)
        .arg(encode(&task.blockers)?)
        .arg(&task.note)
        .arg(task.deadline_at)
        .arg(now());
        tx.execute(sql).await?;
        for entry in &write.audits {
            let detail = entry.detail.clone();
            audit(
                &mut *tx,
                project,
                actor,
                &entry.action,
                &entry.target,
                detail,
            )
            .await?;
        }
        if let Some(checkpoint) = &write.checkpoint {
            super::state::set_checkpoint::<B>(&mut tx, project, actor, checkpoint).await?;
        }
        if let Some(reply) = &write.reply {
            let sql = Sql::new(
                "INSERT INTO task_replies (project_id, idempotency_key, request_digest, reply, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .arg(project)
            .arg(&reply.key)
            .arg(&reply.request_digest)
            .arg(&reply.reply)
            .arg(now());
            tx.execute(sql).await?;
        }
        B::commit(tx).await
    }

    async fn task_reply(&self, project: Uuid, key: &str) -> StoreResult<Option<StoredReply>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT request_digest, reply FROM task_replies WHERE project_id = $1 AND idempotency_key = $2",
        )
        .arg(project)
        .arg(key);
        let row: Option<(String, Json)> = tx.fetch_optional(sql).await?;
        Ok(row.map(|(request_digest, reply)| StoredReply {
            key: key.to_owned(),
            request_digest,
            reply: reply.0,
        }))
    }

    async fn fail_overdue_tasks(
        &self,
        project: Uuid,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<PlanTask>> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "SELECT {TASK_COLUMNS} FROM plan_tasks WHERE project_id = $1 AND status = 'in-progress' \
             AND deadline_at IS NOT NULL AND deadline_at <= $2 ORDER BY deadline_at{}",
            B::LOCK_ROWS
        ))
        .arg(project)
        .arg(now);
        let rows: Vec<TaskRow> = tx.fetch_all(sql).await?;
        let mut failed = Vec::with_capacity(rows.len());
        for row in rows {
            let mut task = row.into_task()?;
            let attempt = task.attempt;
            task.status = TaskStatus::Failed;
            task.deadline_at = None;
            if let Some(last) = task.attempts.last_mut() {
                last.ended_at = Some(now);
                last.outcome = Some(TaskStatus::Failed);
                last.reason = Some("timeout".into());
            }
            let sql = Sql::new(
                "UPDATE plan_tasks SET status = 'failed', attempts = $3, deadline_at = NULL, updated_at = $4 \
                 WHERE project_id = $1 AND id = $2",
            )
            .arg(project)
            .arg(task.task_id)
            .arg(encode(&task.attempts)?)
            .arg(now);
            tx.execute(sql).await?;
            let detail = json!({
                "plan_id": task.plan_id, "id": task.spec.id, "from": "in-progress",
                "to": "failed", "attempt": attempt, "reason": "timeout",
            });
            let target = task.task_id.to_string();
            audit(&mut *tx, project, actor, "task.update", &target, detail).await?;
            failed.push(task);
        }
        if failed.is_empty() {
            return Ok(failed);
        }
        B::commit(tx).await?;
        Ok(failed)
    }

    async fn plan_audit(&self, project: Uuid, plan: Uuid) -> StoreResult<Vec<AuditEntry>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new("SELECT id FROM plan_tasks WHERE project_id = $1 AND plan_id = $2")
            .arg(project)
            .arg(plan);
        let tasks: Vec<(Id,)> = tx.fetch_all(sql).await?;
        let mut sql = Sql::new(
            "SELECT id, project_id, actor, tool, action, target_id, detail, created_at \
             FROM audit_log WHERE project_id = $1 AND target_id IN (",
        )
        .arg(project);
        sql.push_arg(plan.to_string());
        for (task,) in tasks {
            sql.push(", ").push_arg(task.0.to_string());
        }
        sql.push(") ORDER BY id");
        let rows: Vec<AuditRow> = tx.fetch_all(sql).await?;
        Ok(rows.into_iter().map(AuditRow::into_entry).collect())
    }
}
