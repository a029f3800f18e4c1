//! `watch_out`: the sharp edges to keep in mind for what the caller is about to do — at most
//! five, from the project's own and the library's edges of the stack it names. Those whose
//! detection pattern matches the code sent come first; the rest are ranked by meaning and words
//! against the situation (the search halves `fetch_context` fuses), then by severity.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::edges::{self, Candidate, CodeCheck, EdgeView, Ranker};
use super::index::LibraryCache;
use super::stack;
use crate::knowledge::{
    KnowledgeBase, KnowledgeError, MAX_CONTENT_BYTES, MAX_NAME_CHARS, MAX_SHORT_TEXT_CHARS,
    optional_text, required_text,
};

/// The most edges one call returns.
pub const MAX_EDGES: usize = 5;

/// What a caller asks `watch_out` about, before validation.
#[derive(Debug, Clone, Default)]
pub struct WatchOutRequest {
    /// One stack name or several, separated by commas.
    pub stack: String,
    pub situation: Option<String>,
    pub code_context: Option<String>,
}

/// The edges found, best first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct WatchOut {
    /// The stack names looked in, as compared (lowercase letters and digits).
    pub stack: Vec<String>,
    pub edges: Vec<EdgeView>,
    /// How many edges of the stack there were to choose from.
    pub considered: usize,
    /// Whether meaning took part in the ranking (else words alone).
    pub by_meaning: bool,
    /// How detection patterns ran against `code_context`, when it was sent.
    pub code_check: Option<CodeCheck>,
}

/// A request, checked: the stack names, and the situation and code when sent.
struct Checked {
    names: Vec<String>,
    situation: Option<String>,
    code: Option<String>,
}

/// Reads the request, naming the first field that is wrong.
fn parse(request: WatchOutRequest) -> Result<Checked, KnowledgeError> {
    let stack_text = required_text("stack", &request.stack, MAX_NAME_CHARS)?;
    let names = stack::parse_names([stack_text.as_str()]);
    if names.is_empty() {
        return Err(KnowledgeError::Invalid(format!(
            "`stack` is `{stack_text}`, which names no stack: send a name such as `react` or `rust, axum`"
        )));
    }
    let situation = optional_text(
        "situation",
        request.situation.as_deref(),
        MAX_SHORT_TEXT_CHARS,
    )?;
    let code = request.code_context.filter(|code| !code.trim().is_empty());
    if let Some(code) = &code
        && code.len() > MAX_CONTENT_BYTES
    {
        return Err(KnowledgeError::Invalid(format!(
            "`code_context` is {} bytes: send at most {MAX_CONTENT_BYTES} bytes (the part you are changing)",
            code.len()
        )));
    }
    Ok(Checked {
        names,
        situation,
        code,
    })
}

/// Finds the edges for `request` in the library and, when there is one, `project` (already
/// resolved with the caller's right to read it).
pub async fn watch_out(
    knowledge: &KnowledgeBase,
    library: &LibraryCache,
    project: Option<Uuid>,
    request: WatchOutRequest,
) -> Result<WatchOut, KnowledgeError> {
    let Checked {
        names,
        situation,
        code,
    } = parse(request)?;
    let store = &knowledge.store;
    let index = library.current(store.as_ref()).await?;
    let mut candidates = edges::library_candidates(&index, &names);
    if let Some(project) = project {
        candidates.extend(edges::project_candidates(store, project, &names).await?);
    }
    let mut by_meaning = false;
    if let Some(situation) = &situation
        && !candidates.is_empty()
    {
        let ranker = Ranker::new(&knowledge.embeddings, situation).await;
        by_meaning = ranker.by_meaning();
        ranker.score_edges(store, project, &mut candidates).await?;
    }
    let mut code_check = None;
    if let Some(code) = code {
        let index = Arc::clone(&index);
        let (checked, check) = tokio::task::spawn_blocking(move || {
            let check = edges::match_code(&index, &mut candidates, &code);
            (candidates, check)
        })
        .await
        .map_err(|error| {
            KnowledgeError::Unavailable(format!("matching the code failed: {error}"))
        })?;
        candidates = checked;
        code_check = Some(check);
    }
    let considered = candidates.len();
    candidates.sort_by(order);
    candidates.truncate(MAX_EDGES);
    Ok(WatchOut {
        stack: names,
        edges: edges::views(store, candidates).await?,
        considered,
        by_meaning,
        code_check,
    })
}

/// Matching the code first, then relevance to the situation, then severity, then the tie-break.
fn order(a: &Candidate, b: &Candidate) -> std::cmp::Ordering {
    b.matches_current_code
        .cmp(&a.matches_current_code)
        .then_with(|| b.relevance.total_cmp(&a.relevance))
        .then_with(|| {
            edges::severity_rank(a.edge.severity).cmp(&edges::severity_rank(b.edge.severity))
        })
        .then_with(|| edges::tie_break(a, b))
}
