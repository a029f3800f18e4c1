//! A project's state: the current revision in `project_state` (its row locked by every
//! change, so changes take turns) and every revision in `project_state_revisions`. Each change
//! is audited as `state.update`.

use async_trait::async_trait;
use serde_json::json;
use uuid::Uuid;

use super::audit::audit;
use super::{Access, Backend, Conn, Connection, Json, Sql, Time};
use crate::store::{
    Actor, ProjectState, ProjectStateStore, StateFields, StoreError, StoreResult, now,
};

#[derive(sqlx::FromRow)]
struct StateRow {
    revision: i32,
    state: Json,
    updated_by: String,
    updated_at: Time,
}

impl StateRow {
    fn into_state(self) -> StoreResult<ProjectState> {
        let fields = serde_json::from_value(self.state.0).map_err(|error| {
            StoreError::Corrupt(format!("project state revision {}: {error}", self.revision))
        })?;
        Ok(ProjectState {
            revision: self.revision,
            fields,
            updated_by: Some(self.updated_by),
            updated_at: Some(self.updated_at.0),
        })
    }
}

/// The project's current state, its row locked for the rest of the transaction where the
/// database locks rows (a project with no state yet gets a row at revision 0 first, so there is
/// a row to lock).
async fn locked<B: Backend>(tx: &mut Connection<B>, project: Uuid) -> StoreResult<ProjectState> {
    let sql = Sql::new(
        "INSERT INTO project_state (project_id, revision, state, updated_by, updated_at) \
         VALUES ($1, 0, $2, '', $3) ON CONFLICT (project_id) DO NOTHING",
    )
    .arg(project)
    .arg(json!({}))
    .arg(now());
    tx.execute(sql).await?;
    let sql = Sql::new(format!(
        "SELECT revision, state, updated_by, updated_at FROM project_state WHERE project_id = $1{}",
        B::LOCK_ROWS
    ))
    .arg(project);
    tx.fetch_one::<StateRow>(sql).await?.into_state()
}

/// Writes `fields` as the revision after `current`, with its `state.update` audit entry.
async fn write<B: Backend>(
    tx: &mut Connection<B>,
    project: Uuid,
    actor: &Actor,
    current: i32,
    fields: &StateFields,
) -> StoreResult<ProjectState> {
    let (revision, at) = (current + 1, now());
    let state =
        serde_json::to_value(fields).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    let sql = Sql::new(
        "UPDATE project_state SET revision = $2, state = $3, updated_by = $4, updated_at = $5 \
         WHERE project_id = $1",
    )
    .arg(project)
    .arg(revision)
    .arg(&state)
    .arg(&actor.label)
    .arg(at);
    tx.execute(sql).await?;
    let sql = Sql::new(
        "INSERT INTO project_state_revisions (project_id, revision, state, updated_by, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .arg(project)
    .arg(revision)
    .arg(&state)
    .arg(&actor.label)
    .arg(at);
    tx.execute(sql).await?;
    let detail = json!({
        "revision": revision, "phase": fields.phase, "checkpoint": fields.checkpoint,
    });
    audit(
        tx,
        project,
        actor,
        "state.update",
        &project.to_string(),
        detail,
    )
    .await?;
    Ok(ProjectState {
        revision,
        fields: fields.clone(),
        updated_by: Some(actor.label.clone()),
        updated_at: Some(at),
    })
}

/// Sets the project's checkpoint inside an open transaction (a task completion), as a new
/// revision whatever the revision was.
pub(crate) async fn set_checkpoint<B: Backend>(
    tx: &mut Connection<B>,
    project: Uuid,
    actor: &Actor,
    checkpoint: &str,
) -> StoreResult<()> {
    let current = locked::<B>(tx, project).await?;
    let mut fields = current.fields;
    fields.checkpoint = Some(checkpoint.to_owned());
    write::<B>(tx, project, actor, current.revision, &fields).await?;
    Ok(())
}

#[async_trait]
impl<B: Backend> ProjectStateStore for B {
    async fn project_state(&self, project: Uuid) -> StoreResult<ProjectState> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT revision, state, updated_by, updated_at FROM project_state WHERE project_id = $1",
        )
        .arg(project);
        match tx.fetch_optional::<StateRow>(sql).await? {
            Some(row) if row.revision > 0 => row.into_state(),
            _ => Ok(ProjectState::default()),
        }
    }

    async fn update_project_state(
        &self,
        project: Uuid,
        actor: &Actor,
        read: i32,
        fields: &StateFields,
    ) -> StoreResult<ProjectState> {
        let mut tx = self.tenant(project, Access::Write).await?;
        let current = locked::<B>(&mut tx, project).await?;
        if current.revision != read {
            return Err(StoreError::Conflict(format!(
                "the state is at revision {}, not {read}",
                current.revision
            )));
        }
        let state = write::<B>(&mut tx, project, actor, read, fields).await?;
        B::commit(tx).await?;
        Ok(state)
    }

    async fn project_state_history(
        &self,
        project: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<ProjectState>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT revision, state, updated_by, updated_at FROM project_state_revisions \
             WHERE project_id = $1 ORDER BY revision DESC LIMIT $2",
        )
        .arg(project)
        .arg(i64::from(limit));
        let rows: Vec<StateRow> = tx.fetch_all(sql).await?;
        rows.into_iter().map(StateRow::into_state).collect()
    }
}
