//! Playbook sessions. Every statement runs in a tenant transaction (Postgres: row-level
//! security; SQLite: `BEGIN IMMEDIATE` for writes), and a save checks the revision it was based
//! on, so a revision check and the write that follows cannot interleave.

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

use super::audit::audit;
use super::memories::insert_memory;
use super::{Access, Backend, Conn, Connection, Id, Json, Sql, Time};
use crate::store::sessions::set_collected;
use crate::store::{
    Actor, Memory, PlaybookSession, PlaybookSessionStore, SessionStatus, StepMemory, StepResults,
    StoreError, StoreResult, WriteOutcome, now,
};

const SESSION_COLUMNS: &str = "id, project_id, playbook_id, playbook_version, current_step, \
     collected_data, step_results, status, revision, last_step_id, last_input_digest, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Id,
    project_id: Id,
    playbook_id: String,
    playbook_version: Option<String>,
    current_step: i32,
    collected_data: Json,
    step_results: Json,
    status: String,
    revision: i64,
    last_step_id: Option<String>,
    last_input_digest: Option<String>,
    created_at: Time,
    updated_at: Time,
}

impl SessionRow {
    fn into_session(self) -> StoreResult<PlaybookSession> {
        Ok(PlaybookSession {
            id: self.id.0,
            project_id: self.project_id.0,
            playbook_id: self.playbook_id,
            playbook_version: self.playbook_version.unwrap_or_default(),
            current_step: self.current_step,
            collected_data: self.collected_data.0,
            step_results: serde_json::from_value(self.step_results.0).map_err(|error| {
                StoreError::Corrupt(format!("step results of session {}: {error}", self.id.0))
            })?,
            status: SessionStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("session status {}", self.status)))?,
            revision: self.revision,
            last_step_id: self.last_step_id,
            last_input_digest: self.last_input_digest,
            created_at: self.created_at.0,
            updated_at: self.updated_at.0,
        })
    }
}

/// Step results as the `step_results` column keeps them (a JSON object by step id).
fn results_json(results: &StepResults) -> StoreResult<Value> {
    serde_json::to_value(results)
        .map_err(|error| StoreError::Corrupt(format!("step results do not serialize: {error}")))
}

/// The session `id` of `project`, its row locked for a write where the database locks rows.
async fn session_in<B: Backend>(
    tx: &mut Connection<B>,
    project: Uuid,
    id: Uuid,
    lock: bool,
) -> StoreResult<Option<PlaybookSession>> {
    let lock = if lock { B::LOCK_ROWS } else { "" };
    let sql = Sql::new(format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE project_id = $1 AND id = $2{lock}"
    ))
    .arg(project)
    .arg(id);
    let row: Option<SessionRow> = tx.fetch_optional(sql).await?;
    row.map(SessionRow::into_session).transpose()
}

/// Binds what a session's run changes, in the order both writes list the columns: current
/// step, collected data, step results, status, revision, last step id, last input digest.
fn state_args(sql: Sql, session: &PlaybookSession) -> StoreResult<Sql> {
    Ok(sql
        .arg(session.current_step)
        .arg(&session.collected_data)
        .arg(results_json(&session.step_results)?)
        .arg(session.status.as_str())
        .arg(session.revision)
        .arg(&session.last_step_id)
        .arg(&session.last_input_digest))
}

/// Writes a session's state over the row at `expected` revision; false when the row moved on.
async fn write_session(
    tx: &mut impl Conn,
    session: &PlaybookSession,
    expected: i64,
) -> StoreResult<bool> {
    let sql = Sql::new(
        "UPDATE sessions SET current_step = $1, collected_data = $2, step_results = $3, \
         status = $4, revision = $5, last_step_id = $6, last_input_digest = $7, updated_at = $8 \
         WHERE project_id = $9 AND id = $10 AND revision = $11",
    );
    let sql = state_args(sql, session)?
        .arg(session.updated_at)
        .arg(session.project_id)
        .arg(session.id)
        .arg(expected);
    Ok(tx.execute(sql).await? == 1)
}

/// Hides the memory a step stored before, now that the step stored `by` in its place (the step
/// was answered again or ran again). It stays restorable with its audit trail.
async fn retire_memory(
    tx: &mut impl Conn,
    project: Uuid,
    actor: &Actor,
    id: Uuid,
    by: Uuid,
) -> StoreResult<()> {
    let sql = Sql::new(
        "UPDATE memories SET deleted_at = $1 \
         WHERE project_id = $2 AND id = $3 AND deleted_at IS NULL",
    )
    .arg(now())
    .arg(project)
    .arg(id);
    if tx.execute(sql).await? == 1 {
        let detail =
            serde_json::json!({ "replaced_by": by, "reason": "playbook step answered again" });
        audit(tx, project, actor, "memory.delete", &id.to_string(), detail).await?;
    }
    Ok(())
}

fn stale(id: Uuid) -> StoreError {
    StoreError::Conflict(format!(
        "playbook session {id} was changed by another call at the same time: call run_playbook with this session_id to see where it is now"
    ))
}

#[async_trait]
impl<B: Backend> PlaybookSessionStore for B {
    async fn create_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        session: &PlaybookSession,
    ) -> StoreResult<()> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let sql = Sql::new(format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .arg(session.id)
        .arg(project)
        .arg(&session.playbook_id)
        .arg(&session.playbook_version);
        let sql = state_args(sql, session)?
            .arg(session.created_at)
            .arg(session.updated_at);
        tx.execute(sql).await?;
        let detail = serde_json::json!({ "playbook_id": session.playbook_id, "version": session.playbook_version });
        let target = session.id.to_string();
        audit(&mut *tx, project, actor, "playbook.start", &target, detail).await?;
        B::commit(tx).await
    }

    async fn get_playbook_session(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<PlaybookSession>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        session_in::<B>(&mut tx, project, id, false).await
    }

    async fn list_playbook_sessions(
        &self,
        project: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<PlaybookSession>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE project_id = $1 \
             ORDER BY updated_at DESC, id LIMIT $2"
        ))
        .arg(project)
        .arg(i64::from(limit));
        let rows: Vec<SessionRow> = tx.fetch_all(sql).await?;
        rows.into_iter().map(SessionRow::into_session).collect()
    }

    async fn save_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        mut session: PlaybookSession,
        memories: &[StepMemory],
    ) -> StoreResult<(PlaybookSession, Vec<(Memory, WriteOutcome)>)> {
        if session.project_id != project {
            return Err(StoreError::NotFound(format!(
                "playbook session {}",
                session.id
            )));
        }
        let mut tx = self.tenant(project, Access::Write).await?;
        let mut written = Vec::with_capacity(memories.len());
        for memory in memories {
            let (stored, outcome) =
                insert_memory::<B>(&mut tx, project, actor, &memory.draft).await?;
            if let Some(replaced) = session.step_results.note_memory(&memory.step_id, stored.id) {
                retire_memory(&mut *tx, project, actor, replaced, stored.id).await?;
            }
            written.push((stored, outcome));
        }
        if !write_session(&mut *tx, &session, session.revision - 1).await? {
            return Err(stale(session.id));
        }
        let detail = serde_json::json!({
            "playbook_id": session.playbook_id,
            "current_step": session.current_step,
            "status": session.status.as_str(),
            "memories": written.iter().map(|(m, _)| m.id).collect::<Vec<_>>(),
        });
        let target = session.id.to_string();
        audit(
            &mut *tx,
            project,
            actor,
            "playbook.advance",
            &target,
            detail,
        )
        .await?;
        if session.status != SessionStatus::Active {
            // The session finished (completed or abandoned): an event of its own.
            let detail = serde_json::json!({
                "playbook_id": session.playbook_id,
                "status": session.status.as_str(),
            });
            audit(&mut *tx, project, actor, "playbook.finish", &target, detail).await?;
        }
        B::commit(tx).await?;
        Ok((session, written))
    }

    async fn record_session_data(
        &self,
        project: Uuid,
        actor: &Actor,
        id: Uuid,
        key: &str,
        value: &Value,
    ) -> StoreResult<PlaybookSession> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let mut session = session_in::<B>(&mut tx, project, id, true)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("playbook session {id}")))?;
        if session.status != SessionStatus::Active {
            return Err(StoreError::Conflict(format!(
                "playbook session {id} is {}: results can only be recorded in an active session",
                session.status.as_str()
            )));
        }
        let expected = session.revision;
        set_collected(&mut session, key, value.clone());
        session.revision += 1;
        session.updated_at = now();
        if !write_session(&mut *tx, &session, expected).await? {
            return Err(stale(id));
        }
        let detail = serde_json::json!({ "key": key });
        audit(
            &mut *tx,
            project,
            actor,
            "playbook.record",
            &id.to_string(),
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok(session)
    }
}
