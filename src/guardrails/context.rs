//! `load_context`: the start of a working session. It gives the project (with its stack), the
//! last session's summary, the open issues, recent decisions, the library skills that fit the
//! stack and the description, and the ten sharp edges that matter most for the stack (the
//! project's and the library's, by severity, then relevance to the description), with one
//! instruction on what to call next.
//!
//! A project's stack lives in its `metadata` (`stack`, a list of names): `stack_hints` sent by a
//! key that may write sets it (and a description the project lacks becomes its `description`);
//! a read key's hints count for that call only. The stack is read from the database at each
//! call, never from a process's project cache, so a stack another process set is seen at once.
//! With no project named, active or bound to the
//! key, a `project_description` finds the project it describes among those the caller sees.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::edges::{self, Candidate, EdgeView, Ranker};
use super::index::LibraryCache;
use super::skills_fit::{self, SkillView};
use super::stack;
use crate::auth::Identity;
use crate::domain::guardrail::LIBRARY_PROJECT;
use crate::domain::{Actor, Project, Role};
use crate::knowledge::search::terms;
use crate::knowledge::{
    KnowledgeBase, KnowledgeError, MAX_NAME_CHARS, MAX_SHORT_TEXT_CHARS, optional_text, projects,
};

pub use super::recent::{DecisionView, IssueView, SessionView};

/// The most sharp edges `load_context` gives.
pub const SHARP_EDGES: usize = 10;
/// The most stack hints one call sends.
const MAX_HINTS: usize = 20;

/// What a caller sends `load_context`, before validation.
#[derive(Debug, Clone, Default)]
pub struct ContextRequest {
    /// The project named, active or bound to the key; `None` to find it by description.
    pub project: Option<String>,
    pub project_description: Option<String>,
    pub stack_hints: Vec<String>,
}

/// How the project was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// Named by the call, active in the session, or the key's own.
    Named,
    /// The one project whose name and description share the most words with the description.
    Description,
}

/// The project of the session.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProjectContext {
    pub id: Uuid,
    pub name: String,
    pub org: Option<String>,
    /// The stack names the project works in (its `metadata.stack`).
    pub stack: Vec<String>,
    pub description: Option<String>,
    pub found_by: FoundBy,
}

/// A project a description might mean.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProjectMatch {
    pub id: Uuid,
    pub name: String,
    /// How many words of the description its name, description and stack share.
    pub shared_words: usize,
}

/// Everything a session starts with.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct LoadedContext {
    pub project: Option<ProjectContext>,
    /// When no single project fit the description: the ones that might.
    pub candidates: Vec<ProjectMatch>,
    /// The stack names this context was drawn for.
    pub stack: Vec<String>,
    /// Whether `stack_hints` were saved as the project's stack.
    pub stack_saved: bool,
    pub last_session: Option<SessionView>,
    pub open_issues: Vec<IssueView>,
    pub decisions: Vec<DecisionView>,
    pub skills: Vec<SkillView>,
    pub sharp_edges: Vec<EdgeView>,
    /// What to call next.
    pub instruction: String,
    /// Anything the caller should know about how this was put together.
    pub notices: Vec<String>,
}

/// Loads the context of a session (read role; a write key's stack hints are saved).
pub async fn load_context(
    knowledge: &KnowledgeBase,
    library: &LibraryCache,
    identity: &Identity,
    request: ContextRequest,
) -> Result<LoadedContext, KnowledgeError> {
    let store = &knowledge.store;
    let description = optional_text(
        "project_description",
        request.project_description.as_deref(),
        MAX_SHORT_TEXT_CHARS,
    )?;
    let hints = hints(&request.stack_hints)?;
    let mut notices = Vec::new();
    let (project, candidates, found_by) = match &request.project {
        Some(named) => (
            Some(projects::resolve(store, identity, named, Role::Read).await?),
            Vec::new(),
            FoundBy::Named,
        ),
        None => {
            let Some(description) = &description else {
                return Err(KnowledgeError::Invalid(
                    "no project is named, active or bound to this key: send `project_id`, or `project_description` to find the project it describes".into(),
                ));
            };
            let (found, candidates) = discover(knowledge, identity, description).await?;
            (found, candidates, FoundBy::Description)
        }
    };
    let Some(project) = project else {
        return without_project(knowledge, library, description, hints, candidates).await;
    };
    let mut project = as_stored(knowledge, project).await?;
    let mut stack_saved = false;
    if identity
        .authorize(project.id, &project.name, Role::Write)
        .is_ok()
    {
        let mut changes = Map::new();
        if !hints.is_empty() && hints != stack_of(&project) {
            changes.insert("stack".into(), json!(hints));
        }
        if let Some(description) = &description
            && project.metadata.get("description").is_none()
        {
            changes.insert("description".into(), json!(description));
        }
        if !changes.is_empty() {
            let actor = Actor {
                label: identity.label(),
                tool: "load_context".into(),
            };
            project = store
                .update_project_metadata(&actor, project.id, &changes)
                .await?;
            stack_saved = changes.contains_key("stack");
        }
    } else if !hints.is_empty() && hints != stack_of(&project) {
        notices.push(
            "`stack_hints` count for this call only: a read key cannot change the project's stack."
                .into(),
        );
    }
    let stack_names = if hints.is_empty() {
        stack_of(&project)
    } else {
        hints
    };
    let names = stack::parse_names(stack_names.iter().map(String::as_str));
    let about = description.clone().or_else(|| {
        project
            .metadata
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let recent = super::recent::read(store, project.id).await?;
    let index = library.current(store.as_ref()).await?;
    let ranker = match &about {
        Some(about) => Some(Ranker::new(&knowledge.embeddings, about).await),
        None => None,
    };
    let skills = skills_fit::fitting(store, &index, &names, ranker.as_ref()).await?;
    let mut candidates_edges = edges::library_candidates(&index, &names);
    candidates_edges.extend(edges::project_candidates(store, project.id, &names).await?);
    if let Some(ranker) = &ranker {
        ranker
            .score_edges(store, Some(project.id), &mut candidates_edges)
            .await?;
    }
    candidates_edges.sort_by(by_severity);
    candidates_edges.truncate(SHARP_EDGES);
    let sharp_edges = edges::views(store, candidates_edges).await?;
    if names.is_empty() {
        notices.push("The project has no stack yet, so no library sharp edges were chosen: send `stack_hints` (e.g. [\"rust\", \"axum\"]) with a write key to set it.".into());
    }
    let context = ProjectContext {
        id: project.id,
        name: project.name.clone(),
        org: project.org.clone(),
        stack: stack_of(&project),
        description: project
            .metadata
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned),
        found_by,
    };
    let instruction = instruction(&context, &names, recent.open_issues.len());
    Ok(LoadedContext {
        project: Some(context),
        candidates,
        stack: names,
        stack_saved,
        last_session: recent.last_session,
        open_issues: recent.open_issues,
        decisions: recent.decisions,
        skills,
        sharp_edges,
        instruction,
        notices,
    })
}

/// Severity first, then relevance to the description, then the tie-break.
fn by_severity(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    edges::severity_rank(a.edge.severity)
        .cmp(&edges::severity_rank(b.edge.severity))
        .then_with(|| b.relevance.total_cmp(&a.relevance))
        .then_with(|| edges::tie_break(a, b))
}

/// The stack hints, trimmed, without blanks or repeats (compared as stack names).
fn hints(hints: &[String]) -> Result<Vec<String>, KnowledgeError> {
    if hints.len() > MAX_HINTS {
        return Err(KnowledgeError::Invalid(format!(
            "`stack_hints` has {} names: send at most {MAX_HINTS}",
            hints.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for hint in hints.iter().flat_map(|h| h.split(',')) {
        let Some(hint) = optional_text("stack_hints", Some(hint), MAX_NAME_CHARS)? else {
            continue;
        };
        if !stack::normalize(&hint).is_empty() && seen.insert(stack::normalize(&hint)) {
            out.push(hint);
        }
    }
    Ok(out)
}

/// The project as the database holds it now. The store's project cache keeps what it read
/// once per process, and another process (a second server, `codifier` on the command line) may
/// have changed the project's metadata since — its stack above all. So the stack is read again
/// at each session start: one query over the projects table (no memories), uncached.
pub(crate) async fn as_stored(
    knowledge: &KnowledgeBase,
    project: Project,
) -> Result<Project, KnowledgeError> {
    let stored = knowledge.store.list_projects().await?;
    Ok(stored
        .into_iter()
        .find(|listed| listed.id == project.id)
        .unwrap_or(project))
}

/// A project's stack, as saved in its metadata.
pub(crate) fn stack_of(project: &Project) -> Vec<String> {
    project
        .metadata
        .get("stack")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// The project a description means among those the caller sees: the one sharing the most words
/// with it (name, description and stack), when exactly one does best; else the close ones.
async fn discover(
    knowledge: &KnowledgeBase,
    identity: &Identity,
    description: &str,
) -> Result<(Option<Project>, Vec<ProjectMatch>), KnowledgeError> {
    let wanted: HashSet<String> = terms(description).into_iter().collect();
    let mut scored: Vec<(usize, Project)> = projects::list(&knowledge.store, identity)
        .await?
        .into_iter()
        .filter(|project| project.id != LIBRARY_PROJECT)
        .map(|project| {
            let about = format!(
                "{} {} {}",
                project.name.replace(['-', '_'], " "),
                project
                    .metadata
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or(""),
                stack_of(&project).join(" ")
            );
            let shared = terms(&about).iter().filter(|w| wanted.contains(*w)).count();
            (shared, project)
        })
        .filter(|(shared, _)| *shared > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
    let single = match scored.as_slice() {
        [(_, _)] => true,
        [(best, _), (next, _), ..] => best > next,
        [] => false,
    };
    if single {
        return Ok((Some(scored.swap_remove(0).1), Vec::new()));
    }
    let candidates = scored
        .into_iter()
        .take(5)
        .map(|(shared_words, project)| ProjectMatch {
            id: project.id,
            name: project.name,
            shared_words,
        })
        .collect();
    Ok((None, candidates))
}

/// The context when no project fits: the library's skills and sharp edges for the stack hints,
/// and how to choose or create the project.
async fn without_project(
    knowledge: &KnowledgeBase,
    library: &LibraryCache,
    description: Option<String>,
    hints: Vec<String>,
    candidates: Vec<ProjectMatch>,
) -> Result<LoadedContext, KnowledgeError> {
    let store = &knowledge.store;
    let names = stack::parse_names(hints.iter().map(String::as_str));
    let index = library.current(store.as_ref()).await?;
    let ranker = match &description {
        Some(about) => Some(Ranker::new(&knowledge.embeddings, about).await),
        None => None,
    };
    let skills = skills_fit::fitting(store, &index, &names, ranker.as_ref()).await?;
    let mut found = edges::library_candidates(&index, &names);
    if let Some(ranker) = &ranker {
        ranker.score_edges(store, None, &mut found).await?;
    }
    found.sort_by(by_severity);
    found.truncate(SHARP_EDGES);
    let instruction = if candidates.is_empty() {
        "No project matches this description. Ask the operator to create one (manage_projects operation `create`, or `codifier projects create NAME`), then call load_context with its `project_id` and `stack_hints`.".to_owned()
    } else {
        let names: Vec<String> = candidates.iter().map(|c| format!("`{}`", c.name)).collect();
        format!(
            "Several projects could fit this description ({}): call load_context again with the right `project_id`.",
            names.join(", ")
        )
    };
    Ok(LoadedContext {
        project: None,
        candidates,
        stack: names,
        stack_saved: false,
        last_session: None,
        open_issues: Vec::new(),
        decisions: Vec::new(),
        skills,
        sharp_edges: edges::views(store, found).await?,
        instruction,
        notices: Vec::new(),
    })
}

/// One short instruction on what to call next.
fn instruction(project: &ProjectContext, names: &[String], open_issues: usize) -> String {
    let stack = if names.is_empty() {
        "`<your stack>`".to_owned()
    } else {
        format!("`{}`", names.join(", "))
    };
    let issues = match open_issues {
        0 => String::new(),
        n => format!(
            " {} open: when you fix one, remember it with `issue.status: resolved`.",
            crate::plural::count(n, "issue")
        ),
    };
    format!(
        "Work in `{}`: call watch_out (stack {stack}, your situation, the code you touch) before changing code, validate_code before calling a task done, unstick if attempts repeat, and remember (decisions, issues, session_summary) at the end.{issues}",
        project.name
    )
}
