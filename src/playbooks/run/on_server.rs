//! The steps the server runs without the client: `store` steps answered by their `prefill`,
//! steps skipped because what they read is empty, skills and data queries, and `generate` steps
//! sampled through the client's model when it offers sampling.

use serde_json::{Map, Value};

use super::{Run, invalid};
use crate::domain::{StepStatus, session::set_collected};
use crate::knowledge::KnowledgeError;
use crate::playbooks::revise;
use crate::playbooks::spec::{Action, Step};
use crate::playbooks::steps::automatic::{self, Runtime};
use crate::playbooks::steps::generate::{self, GenerateRequest};
use crate::playbooks::steps::input;

impl<'a> Run<'a> {
    /// Answers a `store` step with its `prefill` (e.g. the project's name) when that renders to
    /// something; returns whether it did.
    async fn prefill(&mut self, step: &Step) -> Result<bool, KnowledgeError> {
        let (Some(prefill), Some((key, _))) = (&step.prefill, input::expected(step)) else {
            return Ok(false);
        };
        let context = self.context(&self.session, Vec::new());
        let Ok(value) = self.engine.catalog.templates.render_str(prefill, &context) else {
            return Ok(false);
        };
        let value = value.trim().to_owned();
        let mut input = Map::new();
        input.insert(key.to_owned(), Value::String(value.clone()));
        let Some(accepted) = input::accept(step, &input)
            .ok()
            .filter(|accepted| accepted.value.is_some())
        else {
            return Ok(false);
        };
        let note = format!(
            "prefilled with `{value}`; to change it, call advance_step with `step_id` `{}`, `revise: true` and `input.{key}`",
            step.id
        );
        let mut next = self.session.clone();
        let memories = self.collect(&mut next, step, accepted, Some(&note))?;
        self.step_forward(&mut next);
        self.notices.push(format!("{}: {note}", step.title));
        self.commit(next, memories).await?;
        Ok(true)
    }

    pub(super) async fn generate_request(
        &self,
        step: &Step,
    ) -> Result<GenerateRequest, KnowledgeError> {
        let memories = generate::relevant_memories(
            &self.engine.store,
            self.caller.project.id,
            &self.session,
            step,
        )
        .await?;
        let context = self.context(&self.session, memories);
        generate::request(&self.engine.catalog.templates, step, &context)
            .map_err(|error| invalid(format!("step `{}` does not render: {error}", step.id)))
    }

    /// Runs every step the server can do alone, from the current one, until one needs the user
    /// or the client's model. A failed step stops the run (`retry_failed`: run it once again).
    pub(in crate::playbooks) async fn run_on(
        &mut self,
        mut retry_failed: bool,
    ) -> Result<(), KnowledgeError> {
        while let Some(step) = self.current() {
            if step.prefill.is_some() && self.prefill(step).await? {
                continue;
            }
            if self.skip_if_empty(step).await? {
                continue;
            }
            let went_on = if step.action.runs_alone() {
                self.run_alone(step, &mut retry_failed).await?
            } else {
                self.sample(step).await?
            };
            if !went_on {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Skips a step whose `skip_if_empty` key was given nothing; returns whether it did.
    async fn skip_if_empty(&mut self, step: &Step) -> Result<bool, KnowledgeError> {
        let Some(key) = &step.skip_if_empty else {
            return Ok(false);
        };
        if !self
            .session
            .collected_data
            .get(key)
            .is_none_or(input::is_empty)
        {
            return Ok(false);
        }
        let mut next = self.session.clone();
        let note = format!("skipped: nothing was given for `{key}`");
        next.step_results
            .mark(&step.id, StepStatus::Skipped, Some(&note), None);
        self.step_forward(&mut next);
        self.notices.push(format!("{}: {note}", step.title));
        self.commit(next, Vec::new()).await?;
        Ok(true)
    }

    /// Runs a skill or data query step; returns whether the run goes on (false when the step
    /// failed now, or had failed before and `retry_failed` was already used).
    async fn run_alone(
        &mut self,
        step: &Step,
        retry_failed: &mut bool,
    ) -> Result<bool, KnowledgeError> {
        let failed = self.session.step_results.status(&step.id) == Some(StepStatus::Failed);
        if failed && !std::mem::take(retry_failed) {
            return Ok(false);
        }
        let runtime = Runtime {
            project_id: self.caller.project.id,
            identity: self.caller.identity,
            skills: self.engine.skills.as_ref(),
            data: self.engine.data.as_ref(),
        };
        let produced = automatic::run(step, &self.session.collected_data, &runtime).await;
        // A skill works on what the user gave (e.g. repository URLs): say how to change it.
        let hint = match step.action {
            Action::SkillInvoke { .. } => {
                revise::revise_hint(self.playbook, &self.engine.catalog.templates, step)
            }
            _ => String::new(),
        };
        let with_hint = |text: String| {
            if hint.is_empty() {
                text
            } else {
                format!("{}.{hint}", text.trim_end_matches('.'))
            }
        };
        let mut next = self.session.clone();
        match produced {
            Ok(produced) => {
                set_collected(&mut next, step.action.provides(), produced.value);
                let note = produced.notice.map(with_hint);
                next.step_results
                    .mark(&step.id, StepStatus::Done, note.as_deref(), None)
                    .outcomes = produced.outcomes;
                self.step_forward(&mut next);
                self.notices.push(match note {
                    Some(note) => format!("{}: done by the server; {note}", step.title),
                    None => format!("{}: done by the server", step.title),
                });
                self.commit(next, Vec::new()).await?;
                Ok(true)
            }
            Err(failure) => {
                let error = with_hint(failure.error);
                next.step_results
                    .mark(&step.id, StepStatus::Failed, None, Some(&error))
                    .outcomes = failure.outcomes;
                self.notices.push(format!("{} failed: {error}", step.title));
                self.commit(next, Vec::new()).await?;
                Ok(false)
            }
        }
    }

    /// Generates a `generate` step through the client's model (MCP sampling), when the client
    /// offers it and it has not failed in this call; returns whether the run goes on.
    async fn sample(&mut self, step: &Step) -> Result<bool, KnowledgeError> {
        if !matches!(step.action, Action::Generate { .. }) || self.sampling_failed {
            return Ok(false);
        }
        let Some(sampler) = self.caller.sampler.clone() else {
            return Ok(false);
        };
        let request = self.generate_request(step).await?;
        let prompt = generate::sampling_prompt(&request);
        let artifact = sampler.generate(generate::SYSTEM_PROMPT, &prompt).await;
        let key = request.send_back_under.clone();
        let accepted = artifact.and_then(|text| {
            let mut input = Map::new();
            input.insert(key, Value::String(text));
            input::accept(step, &input)
        });
        match accepted {
            Ok(accepted) => {
                let mut next = self.session.clone();
                let memories = self.keep(&mut next, step, accepted)?;
                self.notices.push(format!(
                    "{}: generated by your client's model through MCP sampling",
                    step.title
                ));
                self.commit(next, memories).await?;
            }
            Err(error) => {
                // The step stays current; the next turn of the loop stops at it.
                self.sampling_failed = true;
                self.notices.push(format!(
                    "{}: the server could not generate it through MCP sampling ({error}); generate it with the request below and send it back",
                    step.title
                ));
            }
        }
        Ok(true)
    }
}
