//! Playbook sessions in Postgres. Every statement runs in a [`PgStore::scoped`] transaction, so
//! row-level security confines it to the project; the explicit `project_id` filters are a second guard.

use super::*;
use crate::store::sessions::note_memory;

const SESSION_COLUMNS: &str = "id, project_id, playbook_id, playbook_version, current_step, \
     collected_data, step_results, status, revision, last_step_id, last_input_digest, created_at, updated_at";

#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    project_id: Uuid,
    playbook_id: String,
    playbook_version: Option<String>,
    current_step: i32,
    collected_data: Value,
    step_results: Value,
    status: String,
    revision: i64,
    last_step_id: Option<String>,
    last_input_digest: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl SessionRow {
    fn into_session(self) -> StoreResult<PlaybookSession> {
        Ok(PlaybookSession {
            id: self.id,
            project_id: self.project_id,
            playbook_id: self.playbook_id,
            playbook_version: self.playbook_version.unwrap_or_default(),
            current_step: self.current_step,
            collected_data: self.collected_data,
            step_results: self.step_results,
            status: SessionStatus::parse(&self.status)
                .ok_or_else(|| StoreError::Corrupt(format!("session status {}", self.status)))?,
            revision: self.revision,
            last_step_id: self.last_step_id,
            last_input_digest: self.last_input_digest,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

async fn session_in(
    tx: &mut Transaction<'_, Postgres>,
    project: Uuid,
    id: Uuid,
    lock: bool,
) -> StoreResult<Option<PlaybookSession>> {
    let sql = format!(
        "SELECT {SESSION_COLUMNS} FROM sessions WHERE project_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as::<_, SessionRow>(&sql)
        .bind(project)
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?
        .map(SessionRow::into_session)
        .transpose()
}

/// Writes a session's state over the row at `expected` revision; false when the row moved on.
async fn write_session(
    tx: &mut Transaction<'_, Postgres>,
    session: &PlaybookSession,
    expected: i64,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE sessions SET current_step = $1, collected_data = $2, step_results = $3, \
         status = $4, revision = $5, last_step_id = $6, last_input_digest = $7, updated_at = $8 \
         WHERE project_id = $9 AND id = $10 AND revision = $11",
    )
    .bind(session.current_step)
    .bind(&session.collected_data)
    .bind(&session.step_results)
    .bind(session.status.as_str())
    .bind(session.revision)
    .bind(&session.last_step_id)
    .bind(&session.last_input_digest)
    .bind(session.updated_at)
    .bind(session.project_id)
    .bind(session.id)
    .bind(expected)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Hides the memory a step stored before, now that the step stored `by` in its place (the step
/// was answered again or ran again). It stays restorable with its audit trail.
async fn retire_memory(
    tx: &mut Transaction<'_, Postgres>,
    project: Uuid,
    actor: &Actor,
    id: Uuid,
    by: Uuid,
) -> StoreResult<()> {
    let done = sqlx::query(
        "UPDATE memories SET deleted_at = $1 WHERE project_id = $2 AND id = $3 AND deleted_at IS NULL",
    )
    .bind(now())
    .bind(project)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() == 1 {
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
impl PlaybookSessionStore for PgStore {
    async fn create_playbook_session(
        &self,
        project: Uuid,
        actor: &Actor,
        session: &PlaybookSession,
    ) -> StoreResult<()> {
        let mut tx = self.scoped(project).await?;
        sqlx::query(&format!(
            "INSERT INTO sessions ({SESSION_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(session.id)
        .bind(project)
        .bind(&session.playbook_id)
        .bind(&session.playbook_version)
        .bind(session.current_step)
        .bind(&session.collected_data)
        .bind(&session.step_results)
        .bind(session.status.as_str())
        .bind(session.revision)
        .bind(&session.last_step_id)
        .bind(&session.last_input_digest)
        .bind(session.created_at)
        .bind(session.updated_at)
        .execute(&mut *tx)
        .await?;
        let detail = serde_json::json!({ "playbook_id": session.playbook_id, "version": session.playbook_version });
        audit(
            &mut tx,
            project,
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
        let mut tx = self.scoped(project).await?;
        session_in(&mut tx, project, id, false).await
    }

    async fn list_playbook_sessions(
        &self,
        project: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<PlaybookSession>> {
        let mut tx = self.scoped(project).await?;
        let rows = sqlx::query_as::<_, SessionRow>(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE project_id = $1 \
             ORDER BY updated_at DESC, id LIMIT $2"
        ))
        .bind(project)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
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
        let mut tx = self.scoped(project).await?;
        if session.project_id != project {
            return Err(StoreError::NotFound(format!(
                "playbook session {}",
                session.id
            )));
        }
        let mut written = Vec::with_capacity(memories.len());
        for memory in memories {
            let (stored, outcome) = insert_memory(&mut tx, project, actor, &memory.draft).await?;
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
            project,
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
        let mut tx = self.scoped(project).await?;
        let mut session = session_in(&mut tx, project, id, true)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("playbook session {id}")))?;
        if session.status != SessionStatus::Active {
            return Err(StoreError::Conflict(format!(
                "playbook session {id} is {}: results can only be recorded in an active session",
                session.status.as_str()
            )));
        }
        let expected = session.revision;
        crate::store::sessions::set_collected(&mut session, key, value.clone());
        session.revision += 1;
        session.updated_at = now();
        if !write_session(&mut tx, &session, expected).await? {
            return Err(stale(id));
        }
        let detail = serde_json::json!({ "key": key });
        audit(
            &mut tx,
            project,
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
