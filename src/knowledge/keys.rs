//! API key services for a project's admins (and the operator): list a project's keys, create
//! one (its text returned once), revoke one. Keys are checked against the caller's project, so
//! an admin of one project never sees or revokes another's.

use std::sync::Arc;

use uuid::Uuid;

use super::{KnowledgeError, MAX_NAME_CHARS, optional_text, projects};
use crate::auth::{Identity, keys};
use crate::domain::{Actor, ApiKey, NewApiKey, Project, Role};
use crate::store::Store;

/// A project's keys, newest first (admin role).
pub async fn list(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
) -> Result<(Project, Vec<ApiKey>), KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Admin).await?;
    let mut keys = store.list_api_keys(Some(project.id)).await?;
    keys.sort_by_key(|key| std::cmp::Reverse(key.created_at));
    Ok((project, keys))
}

/// Creates a key for `project` (admin role); returns it and its text, which is never shown again.
pub async fn create(
    store: &Arc<dyn Store>,
    identity: &Identity,
    tool: &str,
    project: &str,
    role: &str,
    label: Option<&str>,
) -> Result<(ApiKey, String), KnowledgeError> {
    let role = Role::parse(role.trim()).ok_or_else(|| {
        KnowledgeError::Invalid(format!(
            "`role` is `{role}`: send `read`, `write` or `admin`"
        ))
    })?;
    let label = optional_text("label", label, MAX_NAME_CHARS)?;
    let project = projects::resolve(store, identity, project, Role::Admin).await?;
    let generated = tokio::task::spawn_blocking(keys::generate)
        .await
        .map_err(|error| KnowledgeError::Unavailable(format!("making a key failed: {error}")))?
        .map_err(|error| KnowledgeError::Unavailable(format!("making a key failed: {error}")))?;
    let new = NewApiKey {
        project_id: project.id,
        prefix: generated.prefix,
        hash: generated.hash,
        role,
        label,
    };
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    let key = store.create_api_key(&actor, &new).await?;
    Ok((key, generated.key))
}

/// Revokes the key `id` of `project` (admin role); a key of another project is not found.
pub async fn revoke(
    store: &Arc<dyn Store>,
    identity: &Identity,
    tool: &str,
    project: &str,
    id: &str,
) -> Result<ApiKey, KnowledgeError> {
    let id = Uuid::parse_str(id.trim()).map_err(|_| {
        KnowledgeError::Invalid(format!(
            "`id` is `{id}`: send the id of a key from the list"
        ))
    })?;
    let project = projects::resolve(store, identity, project, Role::Admin).await?;
    let owned = store
        .list_api_keys(Some(project.id))
        .await?
        .into_iter()
        .any(|key| key.id == id);
    if !owned {
        return Err(KnowledgeError::NotFound(format!(
            "key {id} is not a key of project `{}`",
            project.name
        )));
    }
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    Ok(store.revoke_api_key(&actor, &id.to_string()).await?)
}
