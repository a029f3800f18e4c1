//! What a project's guardrails hold, for people to read (the console's Guardrails page): the
//! project's stack, its open issues and recent decisions (what `remember` wrote, read by
//! [`super::recent`]), and the sharp edges that apply to its stack — its own and those of the
//! library's skills for that stack ([`super::edges`]), severest first. It only reads: the read
//! role is enough, and nothing here changes the project.

use uuid::Uuid;

use super::context::{as_stored, stack_of};
use super::edges::{self, EdgeView};
use super::index::LibraryCache;
use super::recent::{self, DecisionView, IssueView, Limits, SessionView};
use super::stack;
use crate::auth::Identity;
use crate::domain::{Project, Role};
use crate::knowledge::{KnowledgeBase, KnowledgeError, projects};

/// How much the page shows: more than a session's context, still one screenful of each.
const LIMITS: Limits = Limits {
    decisions: 50,
    open_issues: 100,
    issues_read: 500,
};
/// The most sharp edges shown.
pub const SHARP_EDGES: usize = 100;

/// A project's guardrails, as the console shows them.
#[derive(Debug, Clone)]
pub struct Overview {
    pub project: Project,
    /// The stack names the edges were chosen for (the project's `metadata.stack`, normalized).
    pub stack: Vec<String>,
    pub last_session: Option<SessionView>,
    pub open_issues: Vec<IssueView>,
    pub decisions: Vec<DecisionView>,
    /// The sharp edges for the stack (all the project's own when it has no stack), severest
    /// first, at most [`SHARP_EDGES`].
    pub sharp_edges: Vec<EdgeView>,
    /// How many more applied than were shown.
    pub edges_left_off: usize,
}

/// Reads project `project`'s guardrails with the caller's read access.
pub async fn overview(
    knowledge: &KnowledgeBase,
    library: &LibraryCache,
    identity: &Identity,
    project: &str,
) -> Result<Overview, KnowledgeError> {
    let store = &knowledge.store;
    let found = projects::resolve(store, identity, project, Role::Read).await?;
    let project = as_stored(knowledge, found).await?;
    let saved = stack_of(&project);
    let names = stack::parse_names(saved.iter().map(String::as_str));
    let id: Uuid = project.id;
    let recent = recent::read_up_to(store, id, LIMITS).await?;
    let index = library.current(store.as_ref()).await?;
    let mut candidates = edges::library_candidates(&index, &names);
    candidates.extend(edges::project_candidates(store, id, &names).await?);
    candidates.sort_by(|a, b| {
        edges::severity_rank(a.edge.severity)
            .cmp(&edges::severity_rank(b.edge.severity))
            .then_with(|| edges::tie_break(a, b))
    });
    let edges_left_off = candidates.len().saturating_sub(SHARP_EDGES);
    candidates.truncate(SHARP_EDGES);
    let sharp_edges = edges::views(store, candidates).await?;
    Ok(Overview {
        project,
        stack: names,
        last_session: recent.last_session,
        open_issues: recent.open_issues,
        decisions: recent.decisions,
        sharp_edges,
        edges_left_off,
    })
}
