//! What a call returns: the session's outline, its current step rendered for the client, what
//! was stored and what the server did on its own.

use super::{Run, invalid};
use crate::domain::StepStatus;
use crate::knowledge::KnowledgeError;
use crate::playbooks::spec::{Action, Step};
use crate::playbooks::steps::input;
use crate::playbooks::view::{self, CurrentStep, ExpectedInput, SessionView};

impl Run<'_> {
    /// The state of the session for the client.
    pub(in crate::playbooks) async fn view(&self) -> Result<SessionView, KnowledgeError> {
        let session = &self.session;
        let current = match self.current() {
            Some(step) => Some(self.current_step(step).await?),
            None => None,
        };
        let collected_keys = session
            .collected_data
            .as_object()
            .map(|data| data.keys().cloned().collect())
            .unwrap_or_default();
        Ok(SessionView {
            session_id: session.id,
            project_id: session.project_id,
            playbook_id: self.playbook.id.clone(),
            playbook_name: self.playbook.name.clone(),
            playbook_version: self.playbook.version.clone(),
            status: session.status,
            outline: view::outline(self.playbook, session),
            next_call: current
                .as_ref()
                .map(|current| view::next_call(session.id, current)),
            current,
            stored: self.stored.clone(),
            notices: self.notices.clone(),
            replayed: self.replayed,
            collected_keys,
        })
    }

    async fn current_step(&self, step: &Step) -> Result<CurrentStep, KnowledgeError> {
        let context = self.context(&self.session, Vec::new());
        let prompt = self
            .engine
            .catalog
            .templates
            .render_str(&step.prompt, &context)
            .map_err(|error| invalid(format!("step `{}` does not render: {error}", step.id)))?;
        let generate = match &step.action {
            Action::Generate { .. } => Some(self.generate_request(step).await?),
            _ => None,
        };
        let result = self.session.step_results.get(&step.id);
        Ok(CurrentStep {
            id: step.id.clone(),
            title: step.title.clone(),
            action: step.action.name().to_owned(),
            prompt: prompt.trim().to_owned(),
            input: input::expected(step).map(|(key, spec)| ExpectedInput {
                key: key.to_owned(),
                spec,
            }),
            generate,
            error: result
                .filter(|result| result.status == Some(StepStatus::Failed))
                .and_then(|result| result.error.clone()),
            skippable: !matches!(&step.action, Action::Store { input, .. } if input.required),
        })
    }
}
