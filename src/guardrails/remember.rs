//! `remember`: what a working session leaves for the next — a decision, an issue opened or
//! resolved, a sharp edge it ran into, a summary of the session and the checks it passed —
//! written in ONE transaction, so
//! a call saves all of its parts or none. An issue is resolved by its id, or else the open issue
//! that best matches the description (the project's search over its `issue` memories), and the
//! result says which.
//!
//! Each part is a memory of the project, filled as [`crate::domain::guardrail`] says: a
//! decision's title is its `what`; an issue's title is the first line of its description; a
//! session summary's title is its first line, its content `{"text", "validated"}`; a sharp
//! edge's title is its `summary`, its content the record, checked as `update_memory` checks it
//! ([`super::own`]).

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::index::parsed;
use crate::auth::Identity;
use crate::domain::guardrail::{Decision, Issue, IssueStatus, SharpEdge};
use crate::domain::{Actor, Memory, MemoryDraft, MemoryFilter, MemoryType, Role, WriteOutcome};
use crate::knowledge::search::{self, SearchMode};
use crate::knowledge::{
    KnowledgeBase, KnowledgeError, MAX_SHORT_TEXT_CHARS, MAX_TITLE_CHARS, optional_text, projects,
    required_text,
};

/// The longest session summary, in characters.
pub const MAX_SUMMARY_CHARS: usize = 16_000;
/// The most checks `validated` may list.
const MAX_VALIDATED: usize = 50;
/// How many issues the best-match search reads to find an open one.
const ISSUE_POOL: u32 = 50;

/// A decision as sent.
#[derive(Debug, Clone, Default)]
pub struct DecisionInput {
    pub what: String,
    pub why: String,
}

/// An issue as sent: a new one (`open`, no id), or one resolved (by id or best match) or
/// reopened (by id).
#[derive(Debug, Clone, Default)]
pub struct IssueInput {
    pub description: String,
    pub status: IssueStatus,
    pub id: Option<String>,
}

/// What a caller sends `remember`, before validation.
#[derive(Debug, Clone, Default)]
pub struct RememberRequest {
    pub decision: Option<DecisionInput>,
    pub issue: Option<IssueInput>,
    /// A `sharp_edge` record, as `update_memory` takes its `content`.
    pub sharp_edge: Option<serde_json::Value>,
    pub session_summary: Option<String>,
    pub validated: Vec<String>,
}

/// Which part of the call a saved memory is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Decision,
    Issue,
    SharpEdge,
    SessionSummary,
}

/// How a resolved or reopened issue was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FoundBy {
    /// The `id` sent.
    Id,
    /// The open issue that best matched the description.
    BestMatch,
}

/// One memory written (or found already written).
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Saved {
    pub part: Part,
    /// The memory's id (an unchanged part names the memory that already holds it).
    pub id: Uuid,
    pub title: String,
    pub outcome: WriteOutcome,
    /// For an issue resolved or reopened: how it was found.
    pub found_by: Option<FoundBy>,
    /// For an issue: its status now.
    pub status: Option<IssueStatus>,
}

/// What `remember` wrote, in the order of the parts.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Remembered {
    pub project_id: Uuid,
    pub saved: Vec<Saved>,
}

/// A part ready to write: its memory id, its draft, and what to report.
struct Planned {
    id: Uuid,
    draft: MemoryDraft,
    part: Part,
    found_by: Option<FoundBy>,
    status: Option<IssueStatus>,
}

fn draft(memory_type: MemoryType, title: String, content: serde_json::Value) -> MemoryDraft {
    MemoryDraft {
        memory_type,
        title,
        content,
        category: None,
        description: None,
        confidence: 1.0,
        tags: Vec::new(),
        source_role: None,
    }
}

/// The first line of a text, cut to a title's length.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    match line.char_indices().nth(MAX_TITLE_CHARS - 1) {
        Some((end, _)) => format!("{}…", &line[..end]),
        None => line.to_owned(),
    }
}

/// Writes every part of `request` in `project` in one transaction (write role).
pub async fn remember(
    knowledge: &KnowledgeBase,
    identity: &Identity,
    project: &str,
    request: RememberRequest,
) -> Result<Remembered, KnowledgeError> {
    if request.decision.is_none()
        && request.issue.is_none()
        && request.sharp_edge.is_none()
        && request.session_summary.is_none()
    {
        return Err(KnowledgeError::Invalid(
            "nothing to remember: send `decision`, `issue`, `sharp_edge` or `session_summary` (or several)"
                .into(),
        ));
    }
    let store = &knowledge.store;
    let project = projects::resolve(store, identity, project, Role::Write).await?;
    let mut planned = Vec::new();
    if let Some(decision) = &request.decision {
        let what = required_text("decision.what", &decision.what, MAX_TITLE_CHARS)?;
        let why = required_text("decision.why", &decision.why, MAX_SHORT_TEXT_CHARS)?;
        let record = serde_json::to_value(Decision {
            what: what.clone(),
            why,
        })
        .map_err(|e| KnowledgeError::Invalid(e.to_string()))?;
        planned.push(Planned {
            id: Uuid::new_v4(),
            draft: draft(MemoryType::Decision, what, record),
            part: Part::Decision,
            found_by: None,
            status: None,
        });
    }
    if let Some(issue) = &request.issue {
        planned.push(plan_issue(knowledge, project.id, issue).await?);
    }
    if let Some(edge) = request.sharp_edge {
        planned.push(plan_sharp_edge(edge)?);
    }
    let validated = validated(&request.validated)?;
    match optional_text(
        "session_summary",
        request.session_summary.as_deref(),
        MAX_SUMMARY_CHARS,
    )? {
        Some(summary) => planned.push(Planned {
            id: Uuid::new_v4(),
            draft: draft(
                MemoryType::SessionSummary,
                first_line(&summary),
                json!({ "text": summary, "validated": validated }),
            ),
            part: Part::SessionSummary,
            found_by: None,
            status: None,
        }),
        None if !validated.is_empty() => {
            return Err(KnowledgeError::Invalid(
                "`validated` lists the checks a session passed, so it goes with a `session_summary`: send one too".into(),
            ));
        }
        None => {}
    }
    let actor = Actor {
        label: identity.label(),
        tool: "remember".to_owned(),
    };
    let items: Vec<(Uuid, MemoryDraft)> = planned.iter().map(|p| (p.id, p.draft.clone())).collect();
    let written = store.put_memories(project.id, &actor, &items).await?;
    knowledge.embeddings.wake();
    let saved = planned
        .into_iter()
        .zip(written)
        .map(|(plan, (memory, outcome))| Saved {
            part: plan.part,
            id: memory.id,
            title: memory.title,
            outcome,
            found_by: plan.found_by,
            status: plan.status,
        })
        .collect();
    Ok(Remembered {
        project_id: project.id,
        saved,
    })
}

/// The sharp-edge part: the record checked (and its severity named) as `update_memory` would.
fn plan_sharp_edge(edge: serde_json::Value) -> Result<Planned, KnowledgeError> {
    if !edge.is_object() {
        return Err(KnowledgeError::Invalid(
            "`sharp_edge` must be an object: {\"id\", \"summary\", \"severity\", \"situation\", \"why\", \"solution\", \"symptoms\", \"detection_pattern\"}".into(),
        ));
    }
    let content = super::own::normalize(MemoryType::SharpEdge, edge)
        .map_err(|error| KnowledgeError::Invalid(error.replacen("`content.", "`sharp_edge.", 1)))?;
    let record: SharpEdge = serde_json::from_value(content.clone())
        .map_err(|error| KnowledgeError::Invalid(format!("`sharp_edge`: {error}")))?;
    if record.skill.is_some() {
        return Err(KnowledgeError::Invalid(
            "`sharp_edge.skill` names a library skill: a project's own sharp edge has none, leave it out".into(),
        ));
    }
    Ok(Planned {
        id: Uuid::new_v4(),
        draft: draft(MemoryType::SharpEdge, first_line(&record.summary), content),
        part: Part::SharpEdge,
        found_by: None,
        status: None,
    })
}

/// The checks a session passed, trimmed, without blanks.
fn validated(items: &[String]) -> Result<Vec<String>, KnowledgeError> {
    if items.len() > MAX_VALIDATED {
        return Err(KnowledgeError::Invalid(format!(
            "`validated` lists {} checks: send at most {MAX_VALIDATED}",
            items.len()
        )));
    }
    items
        .iter()
        .filter_map(|item| optional_text("validated", Some(item), MAX_TITLE_CHARS).transpose())
        .collect()
}

/// Plans the issue part: a new open issue, or the change to the issue named by id or best match.
async fn plan_issue(
    knowledge: &KnowledgeBase,
    project: Uuid,
    issue: &IssueInput,
) -> Result<Planned, KnowledgeError> {
    let description = required_text(
        "issue.description",
        &issue.description,
        MAX_SHORT_TEXT_CHARS,
    )?;
    let id = issue
        .id
        .as_deref()
        .map(str::trim)
        .filter(|id| !id.is_empty());
    let (memory, found_by) = match (id, issue.status) {
        (None, IssueStatus::Open) => {
            let record = Issue {
                description: description.clone(),
                status: IssueStatus::Open,
                resolution: None,
            };
            return Ok(Planned {
                id: Uuid::new_v4(),
                draft: draft(MemoryType::Issue, first_line(&description), json!(record)),
                part: Part::Issue,
                found_by: None,
                status: Some(IssueStatus::Open),
            });
        }
        (Some(id), _) => (issue_by_id(knowledge, project, id).await?, FoundBy::Id),
        (None, IssueStatus::Resolved) => (
            best_open_issue(knowledge, project, &description).await?,
            FoundBy::BestMatch,
        ),
    };
    let mut record: Issue = parsed(&memory).unwrap_or_default();
    if record.description.trim().is_empty() {
        record.description = memory.title.clone();
    }
    let mut next = MemoryDraft::from(&memory);
    match issue.status {
        IssueStatus::Resolved if record.status == IssueStatus::Resolved => {
            return Err(KnowledgeError::Conflict(format!(
                "issue {} (`{}`) is already resolved: send `status: open` with its `id` to reopen it",
                memory.id, memory.title
            )));
        }
        IssueStatus::Resolved => {
            record.status = IssueStatus::Resolved;
            record.resolution = Some(description);
        }
        IssueStatus::Open => {
            record.status = IssueStatus::Open;
            record.resolution = None;
            next.title = first_line(&description);
            record.description = description;
        }
    }
    next.content = json!(record);
    Ok(Planned {
        id: memory.id,
        draft: next,
        part: Part::Issue,
        found_by: Some(found_by),
        status: Some(record.status),
    })
}

/// The issue memory `id` of the project.
async fn issue_by_id(
    knowledge: &KnowledgeBase,
    project: Uuid,
    id: &str,
) -> Result<Memory, KnowledgeError> {
    let parsed_id = Uuid::parse_str(id).map_err(|_| {
        KnowledgeError::Invalid(format!(
            "`issue.id` is `{id}`: send the UUID of an issue, as load_context lists them under `open_issues`"
        ))
    })?;
    match knowledge.store.get_memory(project, parsed_id).await? {
        Some(memory) if memory.memory_type == MemoryType::Issue => Ok(memory),
        Some(memory) => Err(KnowledgeError::Invalid(format!(
            "memory {parsed_id} is a {}, not an issue: send the id of an issue",
            memory.memory_type
        ))),
        None => Err(KnowledgeError::NotFound(format!(
            "issue {parsed_id} is not in this project: load_context lists the open issues and their ids"
        ))),
    }
}

/// The open issue of the project that best matches `description`, by the project's search.
async fn best_open_issue(
    knowledge: &KnowledgeBase,
    project: Uuid,
    description: &str,
) -> Result<Memory, KnowledgeError> {
    let filter = MemoryFilter {
        memory_type: Some(MemoryType::Issue),
        limit: ISSUE_POOL,
        ..MemoryFilter::default()
    };
    let query: String = description
        .chars()
        .take(crate::knowledge::MAX_QUERY_CHARS)
        .collect();
    let found = search::search(
        &knowledge.store,
        &knowledge.embeddings,
        project,
        &filter,
        &query,
        SearchMode::Hybrid,
        0,
    )
    .await?;
    let mut hits = found.memories;
    if found.mode == SearchMode::Hybrid && hits.is_empty() {
        // Hybrid needs every word in the word half; fall back on any word.
        hits = search::search(
            &knowledge.store,
            &knowledge.embeddings,
            project,
            &filter,
            &query,
            SearchMode::Text,
            0,
        )
        .await?
        .memories;
    }
    hits.into_iter()
        .find(|memory| parsed::<Issue>(memory).is_some_and(|issue| issue.status == IssueStatus::Open))
        .ok_or_else(|| {
            KnowledgeError::NotFound(
                "no open issue of this project matches that description: send the issue's `id` (load_context lists the open issues), or `status: open` to record a new issue".into(),
            )
        })
}
