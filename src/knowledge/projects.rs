//! Project services: create and list (the operator's), and resolving the project a call names,
//! checking the caller may act there.

use std::sync::Arc;

use super::{KnowledgeError, MAX_NAME_CHARS, optional_text, required_text};
use crate::auth::Identity;
use crate::domain::guardrail::LIBRARY_PROJECT;
use crate::domain::{Actor, Project, ProjectCounts, Role};
use crate::store::Store;

/// Creates a project. Only the operator (or the local user) may.
pub async fn create(
    store: &Arc<dyn Store>,
    identity: &Identity,
    tool: &str,
    name: &str,
    org: Option<&str>,
) -> Result<Project, KnowledgeError> {
    if !identity.is_operator() {
        return Err(KnowledgeError::Forbidden(
            "an API key is bound to one project and cannot create projects: use the operator token or `codifier projects create`".into(),
        ));
    }
    let name = required_text("name", name, MAX_NAME_CHARS)?;
    let org = optional_text("org", org, MAX_NAME_CHARS)?;
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    Ok(store.create_project(&actor, &name, org.as_deref()).await?)
}

/// The projects the caller can see: all for the operator, its own for a key; never the skills
/// library, which is no project of anyone's.
pub async fn list(
    store: &Arc<dyn Store>,
    identity: &Identity,
) -> Result<Vec<Project>, KnowledgeError> {
    let mut projects = store.list_projects().await?;
    if let Some(bound) = identity.bound_project() {
        projects.retain(|project| project.id == bound);
    }
    Ok(projects)
}

/// Finds the project a call names (by id or name) and checks the caller may act there with `needed`.
/// The skills library is never found this way (it is read through the guardrail tools), so no
/// call acts on it or switches to it.
///
/// A key bound to one project gets the same answer for any other project, whether it exists or
/// not, so a key cannot learn which project names are in use.
pub async fn resolve(
    store: &Arc<dyn Store>,
    identity: &Identity,
    id_or_name: &str,
    needed: Role,
) -> Result<Project, KnowledgeError> {
    let wanted = required_text("project_id", id_or_name, MAX_NAME_CHARS)?;
    let found = store
        .find_project(&wanted)
        .await?
        .filter(|project| project.id != LIBRARY_PROJECT);
    if let Some(bound) = identity.bound_project()
        && found.as_ref().is_none_or(|project| project.id != bound)
    {
        return Err(KnowledgeError::Forbidden(format!(
            "this API key cannot act on project `{wanted}`: it is bound to another project. Leave `project_id` out to use the key's own project"
        )));
    }
    let Some(project) = found else {
        return Err(KnowledgeError::NotFound(format!(
            "no project has the id or name `{wanted}`: call manage_projects with operation `list` to see them"
        )));
    };
    identity.authorize(project.id, &project.name, needed)?;
    Ok(project)
}

/// How much project `project` holds, for a caller who may read it.
pub async fn counts(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
) -> Result<(Project, ProjectCounts), KnowledgeError> {
    let found = resolve(store, identity, project, Role::Read).await?;
    let counts = store.project_counts(found.id).await?;
    Ok((found, counts))
}
