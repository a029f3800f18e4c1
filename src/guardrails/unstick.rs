//! `unstick`: for an agent going round in circles. It measures how alike its attempts are (by
//! embeddings when a model is ready, else by shingles), finds the known patterns its errors
//! match (sharp edges whose symptoms the errors show, and the project's learnings that speak of
//! them), says what it makes of it, and offers alternatives drawn from the matching skills'
//! patterns and handoffs. Three or more attempts that are circular mean: start again.

use std::collections::HashSet;

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::alternatives::{self, Alternative};
use super::edges::EdgeSource;
use super::index::LibraryCache;
use super::similarity::{self, Method};
use super::unstick_advice::{self, KnownPattern};
use crate::knowledge::{
    KnowledgeBase, KnowledgeError, MAX_CONTENT_BYTES, MAX_SHORT_TEXT_CHARS, required_text,
};

/// Circular attempts of at least this many mean the work should start again.
pub const RESET_AFTER: usize = 3;
/// The most attempts or errors one call reads.
const MAX_ITEMS: usize = 50;

/// What a caller sends `unstick`, before validation.
#[derive(Debug, Clone, Default)]
pub struct UnstickRequest {
    pub task_description: String,
    pub attempts: Vec<String>,
    pub errors: Vec<String>,
    pub current_code: Option<String>,
}

/// How alike the attempts are.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AttemptsAnalyzed {
    pub count: usize,
    /// From 0 to 1: on average, how alike each attempt is to the one most like it.
    pub similarity: f64,
    /// How it was measured.
    pub method: Method,
    /// `similarity` above `circular_above`.
    pub circular: bool,
    /// The threshold for `method`: 0.7 by embeddings, 0.6 by shingles.
    pub circular_above: f64,
}

/// What `unstick` makes of the situation.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Unstuck {
    pub attempts_analyzed: AttemptsAnalyzed,
    pub known_patterns: Vec<KnownPattern>,
    pub diagnosis: String,
    pub alternatives: Vec<Alternative>,
    /// Three or more attempts, and circular.
    pub should_reset: bool,
    pub reset_reason: Option<String>,
}

/// The request's fields, checked.
fn parse(request: UnstickRequest) -> Result<UnstickRequest, KnowledgeError> {
    let task_description = required_text(
        "task_description",
        &request.task_description,
        MAX_SHORT_TEXT_CHARS,
    )?;
    let list = |field: &str, items: Vec<String>| -> Result<Vec<String>, KnowledgeError> {
        if items.len() > MAX_ITEMS {
            return Err(KnowledgeError::Invalid(format!(
                "`{field}` has {} items: send at most {MAX_ITEMS} (the most recent)",
                items.len()
            )));
        }
        let items: Vec<String> = items
            .into_iter()
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect();
        if let Some(long) = items
            .iter()
            .find(|item| item.chars().count() > MAX_SHORT_TEXT_CHARS)
        {
            return Err(KnowledgeError::Invalid(format!(
                "an item of `{field}` is {} characters long: send at most {MAX_SHORT_TEXT_CHARS} each (the first lines of a long error are enough)",
                long.chars().count()
            )));
        }
        Ok(items)
    };
    let attempts = list("attempts", request.attempts)?;
    let errors = list("errors", request.errors)?;
    if attempts.is_empty() && errors.is_empty() {
        return Err(KnowledgeError::Invalid(
            "`attempts` and `errors` are both empty: send what you tried (one item per attempt) and the errors you got".into(),
        ));
    }
    let current_code = request.current_code.filter(|code| !code.trim().is_empty());
    if let Some(code) = &current_code
        && code.len() > MAX_CONTENT_BYTES
    {
        return Err(KnowledgeError::Invalid(format!(
            "`current_code` is {} bytes: send at most {MAX_CONTENT_BYTES} (the part that fails)",
            code.len()
        )));
    }
    Ok(UnstickRequest {
        task_description,
        attempts,
        errors,
        current_code,
    })
}

/// Analyses the situation against the library and, when there is one, `project` (already
/// resolved with the caller's right to read it).
pub async fn unstick(
    knowledge: &KnowledgeBase,
    library: &LibraryCache,
    project: Option<Uuid>,
    request: UnstickRequest,
) -> Result<Unstuck, KnowledgeError> {
    let request = parse(request)?;
    let store = &knowledge.store;
    let (similarity, method) =
        similarity::of_attempts(&knowledge.embeddings, &request.attempts).await;
    let circular_above = method.circular_above();
    let circular = request.attempts.len() >= 2 && similarity > circular_above;
    let analyzed = AttemptsAnalyzed {
        count: request.attempts.len(),
        similarity,
        method,
        circular,
        circular_above,
    };
    let index = library.current(store.as_ref()).await?;
    let mut known =
        unstick_advice::known_patterns(knowledge, &index, project, &request.errors).await?;
    if let Some(code) = &request.current_code {
        unstick_advice::mark_code(&index, &mut known, code);
    }
    let skills: Vec<String> = {
        let mut seen = HashSet::new();
        let from_edges = known.iter().filter_map(|k| k.skill.clone());
        let from_task = alternatives::skills_for_task(&index, &request.task_description);
        from_edges
            .chain(from_task)
            .filter(|skill| seen.insert(skill.clone()))
            .collect()
    };
    let should_reset = circular && request.attempts.len() >= RESET_AFTER;
    let mut offered = alternatives::alternatives(store, &known, &skills).await?;
    if should_reset {
        offered.insert(0, alternatives::reset_alternative());
    }
    offered.truncate(alternatives::MAX_ALTERNATIVES);
    let diagnosis = diagnosis(&analyzed, &known);
    let reset_reason = should_reset.then(|| {
        format!(
            "{} attempts, {:.0}% alike: each one patches the last, so the code now carries every failed idea. Go back to the last version that worked and take one different approach from the alternatives.",
            analyzed.count,
            analyzed.similarity * 100.0
        )
    });
    Ok(Unstuck {
        attempts_analyzed: analyzed,
        known_patterns: known,
        diagnosis,
        alternatives: offered,
        should_reset,
        reset_reason,
    })
}

/// What the analysis says, in two sentences at most.
fn diagnosis(analyzed: &AttemptsAnalyzed, known: &[KnownPattern]) -> String {
    let how = match analyzed.method {
        Method::Embeddings => "by meaning",
        Method::Shingles => "by wording",
    };
    let attempts = if analyzed.circular {
        format!(
            "The {} attempts are variations of one approach ({:.0}% alike {how}), so the cause is probably not where they look.",
            analyzed.count,
            analyzed.similarity * 100.0
        )
    } else if analyzed.count >= 2 {
        format!(
            "The {} attempts take different approaches ({:.0}% alike {how}).",
            analyzed.count,
            analyzed.similarity * 100.0
        )
    } else {
        String::new()
    };
    let cause = match known.first() {
        Some(first) => {
            let whose = match (&first.source, &first.skill) {
                (EdgeSource::Library, Some(skill)) => format!(" (skill `{skill}`)"),
                (EdgeSource::Project, _) => " (this project's own)".to_owned(),
                _ => String::new(),
            };
            format!(
                " The errors match a known {}: **{}**{whose}; start from its fix.",
                first.kind.noun(),
                first.title
            )
        }
        None => " The errors match no known sharp edge or learning; narrow the problem down before the next change.".to_owned(),
    };
    format!("{attempts}{cause}").trim().to_owned()
}
