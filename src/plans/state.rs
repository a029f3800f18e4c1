//! `project_state`: a project's phase, current skill, checkpoint, confidence, assumptions and
//! MCPs. An update names the revision it read; a stale one is a conflict that shows the
//! current state. The project's `decision` memories are listed with it.

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::actor;
use crate::auth::Identity;
use crate::domain::plan::{Assumption, Confidence, Mcps, Phase};
use crate::domain::{MemoryFilter, MemoryType};
use crate::knowledge::{KnowledgeError, MAX_SHORT_TEXT_CHARS};
use crate::store::{ProjectState, StateFields, Store, StoreError};

/// The most decisions listed with the state.
pub const MAX_DECISIONS: u32 = 50;

/// The fields an update sets; a field left out keeps its value.
#[derive(Debug, Clone, Default)]
pub struct StateChange {
    pub phase: Option<Phase>,
    pub current_skill: Option<String>,
    pub checkpoint: Option<String>,
    pub confidence: Option<Confidence>,
    pub assumptions: Option<Vec<Assumption>>,
    pub mcps: Option<Mcps>,
}

impl StateChange {
    fn is_empty(&self) -> bool {
        self.phase.is_none()
            && self.current_skill.is_none()
            && self.checkpoint.is_none()
            && self.confidence.is_none()
            && self.assumptions.is_none()
            && self.mcps.is_none()
    }

    fn apply(self, fields: &mut StateFields) {
        let trimmed = |text: String| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        if let Some(phase) = self.phase {
            fields.phase = Some(phase);
        }
        if let Some(skill) = self.current_skill {
            fields.current_skill = trimmed(skill);
        }
        if let Some(checkpoint) = self.checkpoint {
            fields.checkpoint = trimmed(checkpoint);
        }
        if let Some(confidence) = self.confidence {
            fields.confidence = Some(confidence);
        }
        if let Some(assumptions) = self.assumptions {
            fields.assumptions = assumptions;
        }
        if let Some(mcps) = self.mcps {
            fields.mcps = Some(mcps);
        }
    }
}

/// A `decision` memory, as listed with the state.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct DecisionEntry {
    pub id: Uuid,
    pub title: String,
    pub content: serde_json::Value,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// What `project_state` answers.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct StateView {
    pub project_id: Uuid,
    pub state: ProjectState,
    /// The project's decisions (`decision` memories), newest first.
    pub decisions: Vec<DecisionEntry>,
}

/// The current state and the decisions.
pub async fn get(store: &dyn Store, project: Uuid) -> Result<StateView, KnowledgeError> {
    let state = store.project_state(project).await?;
    view(store, project, state).await
}

async fn view(
    store: &dyn Store,
    project: Uuid,
    state: ProjectState,
) -> Result<StateView, KnowledgeError> {
    let filter = MemoryFilter {
        memory_type: Some(MemoryType::Decision),
        limit: MAX_DECISIONS,
        ..MemoryFilter::default()
    };
    let decisions = store
        .fetch_memories(project, &filter)
        .await?
        .memories
        .into_iter()
        .map(|memory| DecisionEntry {
            id: memory.id,
            title: memory.title,
            content: memory.content,
            created_at: memory.created_at,
        })
        .collect();
    Ok(StateView {
        project_id: project,
        state,
        decisions,
    })
}

/// Applies `change` on top of revision `read`; a conflict when the state moved on since.
pub async fn update(
    store: &dyn Store,
    identity: &Identity,
    project: Uuid,
    read: Option<i32>,
    change: StateChange,
) -> Result<StateView, KnowledgeError> {
    let Some(read) = read else {
        return Err(KnowledgeError::Invalid(
            "`revision` is missing: send the revision you read with operation `get` (0 for a project whose state was never set)".into(),
        ));
    };
    if change.is_empty() {
        return Err(KnowledgeError::Invalid(
            "nothing to update: send at least one of `phase`, `current_skill`, `checkpoint`, `confidence`, `assumptions`, `mcps`".into(),
        ));
    }
    check_lengths(&change)?;
    let current = store.project_state(project).await?;
    if current.revision != read {
        return Err(stale(read, &current));
    }
    let mut fields = current.fields.clone();
    change.apply(&mut fields);
    let actor = actor(identity, "project_state");
    match store
        .update_project_state(project, &actor, read, &fields)
        .await
    {
        Ok(state) => view(store, project, state).await,
        Err(StoreError::Conflict(_)) => Err(stale(read, &store.project_state(project).await?)),
        Err(error) => Err(error.into()),
    }
}

/// The conflict of a stale revision, showing the current state.
fn stale(read: i32, current: &ProjectState) -> KnowledgeError {
    let shown = serde_json::to_string(current).unwrap_or_default();
    KnowledgeError::Conflict(format!(
        "the state changed since revision {read}: it is now at revision {}. Nothing was changed. The current state is {shown}. Merge your change into it and send `revision: {}`",
        current.revision, current.revision
    ))
}

fn check_lengths(change: &StateChange) -> Result<(), KnowledgeError> {
    let mut texts: Vec<&String> = Vec::new();
    texts.extend(&change.current_skill);
    texts.extend(&change.checkpoint);
    if let Some(confidence) = &change.confidence {
        texts.extend(&confidence.gaps);
    }
    for assumption in change.assumptions.iter().flatten() {
        texts.extend([&assumption.id, &assumption.text]);
    }
    if let Some(mcps) = &change.mcps {
        texts.extend(
            mcps.required
                .iter()
                .chain(&mcps.available)
                .chain(&mcps.missing),
        );
    }
    if texts
        .iter()
        .any(|t| t.chars().count() > MAX_SHORT_TEXT_CHARS)
    {
        return Err(KnowledgeError::Invalid(format!(
            "a text of the state is over {MAX_SHORT_TEXT_CHARS} characters: keep each field short (link a memory for the long form)"
        )));
    }
    Ok(())
}
