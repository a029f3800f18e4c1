//! What the last sessions of a project left: its last session summary, its open issues and its
//! recent decisions, as `load_context` shows them.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::index::parsed;
use crate::domain::guardrail::{Decision, Issue, IssueStatus};
use crate::domain::{Memory, MemoryFilter, MemoryType};
use crate::store::{Store, StoreResult, content_text};

/// How many decisions and open issues a context shows, and how many issues it reads to find
/// the open ones.
const DECISIONS: u32 = 5;
const OPEN_ISSUES: usize = 10;
const ISSUES_READ: u32 = 200;

/// The last session's summary.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub summary: String,
    /// The checks the session passed.
    pub validated: Vec<String>,
    pub at: DateTime<Utc>,
}

/// An open issue.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct IssueView {
    /// Send it as `issue.id` to `remember` to resolve this issue.
    pub id: Uuid,
    pub description: String,
    pub opened_at: DateTime<Utc>,
}

/// A recent decision.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DecisionView {
    pub id: Uuid,
    pub what: String,
    pub why: String,
    pub at: DateTime<Utc>,
}

/// The three, newest first.
pub struct Recent {
    pub last_session: Option<SessionView>,
    pub open_issues: Vec<IssueView>,
    pub decisions: Vec<DecisionView>,
}

async fn newest(
    store: &Arc<dyn Store>,
    project: Uuid,
    kind: MemoryType,
    limit: u32,
) -> StoreResult<Vec<Memory>> {
    let filter = MemoryFilter {
        memory_type: Some(kind),
        limit,
        ..MemoryFilter::default()
    };
    Ok(store.fetch_memories(project, &filter).await?.memories)
}

/// How much of each a read gives.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub decisions: u32,
    pub open_issues: usize,
    /// How many issues (open or not, newest first) are read to find the open ones.
    pub issues_read: u32,
}

/// What `load_context` shows.
pub const CONTEXT: Limits = Limits {
    decisions: DECISIONS,
    open_issues: OPEN_ISSUES,
    issues_read: ISSUES_READ,
};

/// Reads the project's last session summary, open issues and recent decisions.
pub async fn read(store: &Arc<dyn Store>, project: Uuid) -> StoreResult<Recent> {
    read_up_to(store, project, CONTEXT).await
}

/// [`read`] with other limits (the console's Guardrails page shows more than a context).
pub async fn read_up_to(
    store: &Arc<dyn Store>,
    project: Uuid,
    limits: Limits,
) -> StoreResult<Recent> {
    let (sessions, issues, decisions) = tokio::try_join!(
        newest(store, project, MemoryType::SessionSummary, 1),
        newest(store, project, MemoryType::Issue, limits.issues_read),
        newest(store, project, MemoryType::Decision, limits.decisions),
    )?;
    let last_session = sessions.into_iter().next().map(|memory| SessionView {
        id: memory.id,
        summary: memory
            .content
            .get("text")
            .and_then(Value::as_str)
            .map_or_else(|| content_text(&memory.content), str::to_owned),
        validated: memory
            .content
            .get("validated")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
        at: memory.created_at,
    });
    let open_issues = issues
        .iter()
        .filter_map(|memory| {
            let issue: Issue = parsed(memory)?;
            (issue.status == IssueStatus::Open).then(|| IssueView {
                id: memory.id,
                description: if issue.description.trim().is_empty() {
                    memory.title.clone()
                } else {
                    issue.description
                },
                opened_at: memory.created_at,
            })
        })
        .take(limits.open_issues)
        .collect();
    let decisions = decisions
        .iter()
        .map(|memory| {
            let decision: Decision = parsed(memory).unwrap_or_default();
            DecisionView {
                id: memory.id,
                what: if decision.what.trim().is_empty() {
                    memory.title.clone()
                } else {
                    decision.what
                },
                why: decision.why,
                at: memory.created_at,
            }
        })
        .collect();
    Ok(Recent {
        last_session,
        open_issues,
        decisions,
    })
}
