//! Playbook sessions in SQLite. Every query filters on the project; writes run in `BEGIN
//! IMMEDIATE` transactions, so a revision check and the write that follows cannot interleave.

use super::*;
use crate::store::sessions::{note_memory, set_collected};

const SESSION_COLUMNS: &str = "id, project_id, playbook_id, playbook_version, current_step, \
     collected_data, step_results, status, revision, last_step_id, last_input_digest, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: String,
    project_id: String,
    playbook_id: String,
    playbook_version: Option<String>,
    current_step: i32,
    collected_data: String,
    step_results: String,
    status: String,
    revision: i64,
    last_step_id: Option<String>,
    last_input_digest: Option<String>,
    created_at: String,
    updated_at: String,
}

impl SessionRow {
    fn into_session(self) -> StoreResult<PlaybookSession> {
        Ok(PlaybookSession {
            id: parse_uuid(&self.id)?,
            project_id: parse_uuid(&self.project_id)?,
            playbook_id: self.playbook_id,
            playbook_version: self.playbook_version.unwrap_or_default(),
            current_step: self.current_step,
            collected_data: parse_json(&self.collected_data)?,
            step_results: parse_json(&self.step_results)?,
            status: SessionStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("session status {}", self.status)))?,
            revision: self.revision,
            last_step_id: self.last_step_id,
            last_input_digest: self.last_input_digest,
            created_at: parse_ts(&self.created_at)?,
            updated_at: parse_ts(&self.updated_at)?,
        })
    }
}

async fn session_in(
    tx: &mut Transaction<'_, Sqlite>,
    project: Uuid,
    id: Uuid,
) -> StoreResult<Option<PlaybookSession>> {
    sqlx::query_as::<_, SessionRow>(&format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE project_id = ? AND id = ?"
    ))
    .bind(project.to_string())
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .map(SessionRow::into_session)
    .transpose()
}

/// Writes a session's state over the row at `expected` revision; false when the row moved on.
async fn write_session(
    tx: &mut Transaction<'_, Sqlite>,
    session: &PlaybookSession,
    expected: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET current_step = ?, collected_data = ?, step_results = ?, status = ?, \
         revision = ?, last_step_id = ?, last_input_digest = ?, updated_at = ? \
         WHERE project_id = ? AND id = ? AND revision = ?",
    )
    .bind(session.current_step)
    .bind(session.collected_data.to_string())
    .bind(session.step_results.to_string())
    .bind(session.status.as_str())
    .bind(session.revision)
    .bind(&session.last_step_id)
    .bind(&session.last_input_digest)
    .bind(ts(session.updated_at))
    .bind(session.project_id.to_string())
    .bind(session.id.to_string())
    .bind(expected)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Hides the memory a step stored before, now that the step stored `by` in its place (the step
/// was answered again or ran again). It stays restorable with its audit trail.
async fn retire_memory(
    tx: &mut Transaction<'_, Sqlite>,
    project: Uuid,
    actor: &Actor,
    id: Uuid,
    by: Uuid,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE memories SET deleted_at = ? WHERE project_id = ? AND id = ? AND deleted_at IS NULL",
    )
    .bind(ts(now()))
    .bind(project.to_string())
    .bind(id.to_string())
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
        let detail =
            serde_json::json!({ "replaced_by": by, "reason": "playbook step answered again" });
        audit(
            tx,
            Some(project),
            actor,
            "memory.delete",
            &id.to_string(),
            detail,
        )
        .await?;
    }
    Ok(())
}

fn stale(id: Uuid) -> StoreError {
    StoreError::Conflict(format!(
        "playbook session {id} was changed by another call at the same time: call run_playbook with this session_id to see where it is now"
    ))
}

#[async_trait]
impl PlaybookSessionStore for SqliteStore {
    async fn create_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        session: &PlaybookSession,
    ) -> StoreResult<()> {
        let mut tx = self.write_tx().await?;
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(session.id.to_string())
        .bind(project.to_string())
        .bind(&session.playbook_id)
        .bind(&session.playbook_version)
        .bind(session.current_step)
        .bind(session.collected_data.to_string())
        .bind(session.step_results.to_string())
        .bind(session.status.as_str())
        .bind(session.revision)
        .bind(&session.last_step_id)
        .bind(&session.last_input_digest)
        .bind(ts(session.created_at))
        .bind(ts(session.updated_at))
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({ "playbook_id": session.playbook_id, "version": session.playbook_version });
        audit(
            &mut tx,
            Some(project),
            actor,
            "playbook.start",
            &session.id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_playbook_session(
        &self,
        project: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<PlaybookSession>> {
        let mut tx = self.pool.begin().await?;
        session_in(&mut tx, project, id).await
    }

    async fn list_playbook_sessions(
        &self,
        project: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<PlaybookSession>> {
        let rows = sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE project_id = ? \
             ORDER BY updated_at DESC, id LIMIT ?"
        ))
        .bind(project.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
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
        let mut tx = self.write_tx().await?;
        let mut written = Vec::with_capacity(memories.len());
        for memory in memories {
            let (stored, outcome) =
                Self::insert_memory(&mut tx, project, actor, &memory.draft).await?;
            if let Some(replaced) = note_memory(&mut session, &memory.step_id, stored.id) {
                retire_memory(&mut tx, project, actor, replaced, stored.id).await?;
            }
            written.push((stored, outcome));
        }
        if !write_session(&mut tx, &session, session.revision - 1).await? {
            return Err(stale(session.id));
        }
        let detail = serde_json::json!({
            "playbook_id": session.playbook_id,
            "current_step": session.current_step,
            "status": session.status.as_str(),
            "memories": written.iter().map(|(m, _)| m.id).collect::<Vec<_>>(),
        });
        audit(
            &mut tx,
            Some(project),
            actor,
            "playbook.advance",
            &session.id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
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
        let mut tx = self.write_tx().await?;
        let mut session = session_in(&mut tx, project, id)
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
        if !write_session(&mut tx, &session, expected).await? {
            return Err(stale(id));
        }
        let detail = serde_json::json!({ "key": key });
        audit(
            &mut tx,
            Some(project),
            actor,
            "playbook.record",
            &id.to_string(),
            detail,
        )
        .await?;
        tx.commit().await?;
        Ok(session)
    }
}
