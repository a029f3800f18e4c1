//! What an accepted answer changes in a session: the value kept under the step's key, the
//! memory it stores, the step marked, and the move to the next step that has not run.

use serde_json::json;

use super::{Run, invalid};
use crate::domain::{
    PlaybookSession, SessionStatus, StepMemory, StepStatus, session::set_collected,
};
use crate::knowledge::KnowledgeError;
use crate::knowledge::memories::MemoryInput;
use crate::playbooks::spec::{Action, Step};
use crate::playbooks::steps::input::Accepted;
use crate::playbooks::view;

impl Run<'_> {
    /// Keeps an accepted value under the step's key, marks the step and moves on; returns the
    /// memory to store with it.
    pub(super) fn keep(
        &mut self,
        next: &mut PlaybookSession,
        step: &Step,
        accepted: Accepted,
    ) -> Result<Vec<StepMemory>, KnowledgeError> {
        let memories = self.collect(next, step, accepted, None)?;
        self.step_forward(next);
        Ok(memories)
    }

    /// Keeps an accepted value under the step's key (an empty one clears it) and marks the step
    /// done (with `note`) or left empty; returns the memory to store with it.
    pub(in crate::playbooks) fn collect(
        &mut self,
        next: &mut PlaybookSession,
        step: &Step,
        accepted: Accepted,
        note: Option<&str>,
    ) -> Result<Vec<StepMemory>, KnowledgeError> {
        let Some(value) = accepted.value else {
            if let Some(data) = next.collected_data.as_object_mut() {
                data.remove(step.action.provides());
            }
            next.step_results
                .mark(&step.id, StepStatus::Skipped, Some("left empty"), None);
            return Ok(Vec::new());
        };
        set_collected(next, step.action.provides(), value);
        let memory = match &step.action {
            Action::Store { memory, .. } => memory.clone(),
            Action::Generate { memory, .. } => Some(memory.clone()),
            _ => None,
        };
        let mut drafts = Vec::new();
        if let Some(memory) = memory {
            let context = self.context(next, Vec::new());
            let title = self
                .engine
                .catalog
                .templates
                .render_str(&memory.title, &context)
                .map_err(|error| invalid(format!("the memory title does not render: {error}")))?;
            let draft = MemoryInput {
                memory_type: memory.memory_type.as_str().to_owned(),
                title: title.trim().to_owned(),
                content: json!({ "text": accepted.text }),
                description: Some(format!("{} — playbook {}", step.title, self.playbook.name)),
                tags: vec![
                    format!("playbook:{}", self.playbook.id),
                    format!("step:{}", step.id),
                ],
                source_role: Some(format!("{:?}", self.playbook.role).to_lowercase()),
                ..MemoryInput::default()
            }
            .parse()?;
            drafts.push(StepMemory {
                step_id: step.id.clone(),
                draft,
            });
        }
        next.step_results
            .mark(&step.id, StepStatus::Done, note, None);
        Ok(drafts)
    }

    /// Moves to the next step that has not run, passing over steps that kept their results when
    /// an earlier step was answered again; completes the session after the last one.
    pub(super) fn step_forward(&self, next: &mut PlaybookSession) {
        loop {
            next.current_step += 1;
            let Some(step) = self.playbook.steps.get(next.current_step as usize) else {
                next.status = SessionStatus::Completed;
                return;
            };
            if !view::is_settled(next, &step.id) {
                return;
            }
        }
    }
}
