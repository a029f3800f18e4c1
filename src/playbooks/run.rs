//! One call's work on one session: applying the client's input to the current step (or
//! recognising a retry), then running every step the server can do alone, each saved in its own
//! transaction on the revision it was read at; and the view of the session the call returns.

use serde_json::{Map, Value, json};

use super::runner::{Advance, Caller, Engine, digest};
use super::spec::{Action, Playbook, Step};
use super::steps::automatic::{self, Runtime};
use super::steps::generate::{self, GenerateRequest};
use super::steps::input::{self, Accepted};
use super::view::{self, CurrentStep, ExpectedInput, SessionView, StoredMemory};
use crate::domain::{
    Actor, PlaybookSession, SessionStatus, StepMemory, now, session::set_collected,
};
use crate::knowledge::KnowledgeError;
use crate::knowledge::memories::MemoryInput;

fn invalid(message: impl Into<String>) -> KnowledgeError {
    KnowledgeError::Invalid(message.into())
}

/// One call's work on one session.
pub(super) struct Run<'a> {
    pub(super) engine: &'a Engine,
    pub(super) caller: Caller<'a>,
    actor: Actor,
    pub(super) playbook: &'a Playbook,
    pub(super) session: PlaybookSession,
    stored: Vec<StoredMemory>,
    pub(super) notices: Vec<String>,
    replayed: bool,
    sampling_failed: bool,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        engine: &'a Engine,
        caller: Caller<'a>,
        playbook: &'a Playbook,
        session: PlaybookSession,
    ) -> Result<Self, KnowledgeError> {
        if session.playbook_version != playbook.version {
            return Err(KnowledgeError::Conflict(format!(
                "session `{}` was started with version {} of playbook `{}`, and this server has version {}: start a new session",
                session.id, session.playbook_version, playbook.id, playbook.version
            )));
        }
        let actor = Actor {
            label: caller.identity.label(),
            tool: caller.tool.to_owned(),
        };
        Ok(Self {
            engine,
            caller,
            actor,
            playbook,
            session,
            stored: Vec::new(),
            notices: Vec::new(),
            replayed: false,
            sampling_failed: false,
        })
    }

    fn current(&self) -> Option<&'a Step> {
        (self.session.status == SessionStatus::Active)
            .then(|| self.playbook.steps.get(self.session.current_step as usize))
            .flatten()
    }

    /// Applies one client call to the session.
    pub(super) async fn apply(&mut self, advance: Advance) -> Result<(), KnowledgeError> {
        let digest = digest(&advance.input, advance.skip, advance.revise);
        let answered = self.session.last_step_id.clone();
        let current_id = self.current().map(|step| step.id.clone());
        let same_call = self.session.last_input_digest.as_deref() == Some(digest.as_str())
            && answered.is_some()
            && answered != current_id
            && match &advance.step_id {
                Some(step) => Some(step) == answered.as_ref(),
                // Without a step id, an empty input is never taken for a retry: it may mean
                // "leave this optional step empty" for two steps in a row.
                None => !advance.input.is_empty() || advance.skip,
            };
        let abandoned_again = advance.abandon && self.session.status == SessionStatus::Abandoned;
        if same_call || abandoned_again {
            self.replayed = true;
            return Ok(());
        }
        let reopened = advance.revise && self.session.status == SessionStatus::Completed;
        if self.session.status != SessionStatus::Active && !reopened {
            return Err(invalid(format!(
                "this session is {}: start a new one with run_playbook{}",
                self.session.status.as_str(),
                if self.session.status == SessionStatus::Completed {
                    ", or answer one of its steps again with `step_id` and `revise: true`"
                } else {
                    ""
                }
            )));
        }
        if advance.abandon {
            if advance.revise {
                return Err(invalid(
                    "send either `abandon: true` or `revise: true`, not both",
                ));
            }
            let mut next = self.session.clone();
            next.status = SessionStatus::Abandoned;
            return self.commit(next, Vec::new()).await;
        }
        // `revise: true` for the current step is an ordinary answer.
        if advance.revise && (advance.step_id.is_none() || advance.step_id != current_id) {
            return self.revise(advance, digest).await;
        }
        let Some(step) = self.current() else {
            return Err(invalid("this session has no step left"));
        };
        if let Some(wanted) = &advance.step_id
            && wanted != &step.id
        {
            let known = self.playbook.step_index(wanted).is_some();
            return Err(invalid(format!(
                "this session is at step `{}` ({}){}: send `step_id` `{}` with that step's input{}",
                step.id,
                step.title,
                if known {
                    format!(", not at `{wanted}`")
                } else {
                    format!("; `{wanted}` is not a step of this playbook")
                },
                step.id,
                if known {
                    format!(", or add `revise: true` to answer `{wanted}` again")
                } else {
                    String::new()
                }
            )));
        }
        if advance.skip {
            if !advance.input.is_empty() {
                return Err(invalid("send either `input` or `skip: true`, not both"));
            }
            if let Action::Store { input, .. } = &step.action
                && input.required
            {
                return Err(invalid(format!(
                    "step `{}` needs an answer and cannot be skipped: {}",
                    step.id, step.title
                )));
            }
            let mut next = self.remember_call(&step.id, digest);
            mark(
                &mut next,
                &step.id,
                "skipped",
                Some("skipped on request"),
                None,
            );
            self.step_forward(&mut next);
            self.commit(next, Vec::new()).await?;
            return self.run_on(false).await;
        }
        if step.action.runs_alone() {
            input::accept(step, &advance.input).map_err(invalid)?;
            return self.run_on(true).await;
        }
        let accepted = input::accept(step, &advance.input).map_err(invalid)?;
        let index = self.session.current_step.max(0) as usize;
        super::revise::check_urls(self.engine, &self.caller, self.playbook, index, &accepted)
            .await?;
        let mut next = self.remember_call(&step.id, digest);
        let memories = self.keep(&mut next, step, accepted)?;
        self.commit(next, memories).await?;
        self.run_on(false).await
    }

    /// A copy of the session that records this call as the last accepted one.
    pub(super) fn remember_call(&self, step_id: &str, digest: String) -> PlaybookSession {
        let mut next = self.session.clone();
        next.last_step_id = Some(step_id.to_owned());
        next.last_input_digest = Some(digest);
        next
    }

    /// Keeps an accepted value under the step's key, marks the step and moves on; returns the
    /// memory to store with it.
    fn keep(
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
    pub(super) fn collect(
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
            mark(next, &step.id, "skipped", Some("left empty"), None);
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
        mark(next, &step.id, "done", note, None);
        Ok(drafts)
    }

    /// Moves to the next step that has not run, passing over steps that kept their results when
    /// an earlier step was answered again; completes the session after the last one.
    fn step_forward(&self, next: &mut PlaybookSession) {
        loop {
            next.current_step += 1;
            let Some(step) = self.playbook.steps.get(next.current_step as usize) else {
                next.status = SessionStatus::Completed;
                return;
            };
            if !matches!(
                view::step_result(next, &step.id)["status"].as_str(),
                Some("done" | "skipped")
            ) {
                return;
            }
        }
    }

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

    /// Saves `next` (one revision on) with the memories it produced.
    pub(super) async fn commit(
        &mut self,
        mut next: PlaybookSession,
        memories: Vec<StepMemory>,
    ) -> Result<(), KnowledgeError> {
        next.revision = self.session.revision + 1;
        next.updated_at = now();
        let (saved, written) = self
            .engine
            .store
            .save_playbook_session(self.caller.project.id, &self.actor, next, &memories)
            .await?;
        for (memory, (stored, outcome)) in memories.iter().zip(written) {
            self.stored.push(StoredMemory {
                step_id: memory.step_id.clone(),
                id: stored.id,
                memory_type: stored.memory_type,
                title: stored.title,
                outcome,
            });
        }
        if !memories.is_empty() {
            self.engine.embeddings.wake();
        }
        self.session = saved;
        Ok(())
    }

    fn context(&self, session: &PlaybookSession, memories: Vec<Value>) -> Value {
        generate::context(self.caller.project, self.playbook, session, memories)
    }

    async fn generate_request(&self, step: &Step) -> Result<GenerateRequest, KnowledgeError> {
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
    pub(super) async fn run_on(&mut self, mut retry_failed: bool) -> Result<(), KnowledgeError> {
        while let Some(step) = self.current() {
            if step.prefill.is_some() && self.prefill(step).await? {
                continue;
            }
            if let Some(key) = &step.skip_if_empty
                && self
                    .session
                    .collected_data
                    .get(key)
                    .is_none_or(input::is_empty)
            {
                let mut next = self.session.clone();
                let note = format!("skipped: nothing was given for `{key}`");
                mark(&mut next, &step.id, "skipped", Some(&note), None);
                self.step_forward(&mut next);
                self.notices.push(format!("{}: {note}", step.title));
                self.commit(next, Vec::new()).await?;
                continue;
            }
            if step.action.runs_alone() {
                let failed = view::step_result(&self.session, &step.id)["status"] == "failed";
                if failed && !std::mem::take(&mut retry_failed) {
                    return Ok(());
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
                    Action::SkillInvoke { .. } => super::revise::revise_hint(
                        self.playbook,
                        &self.engine.catalog.templates,
                        step,
                    ),
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
                        mark(&mut next, &step.id, "done", note.as_deref(), None);
                        set_outcomes(&mut next, &step.id, produced.outcomes);
                        self.step_forward(&mut next);
                        self.notices.push(match note {
                            Some(note) => format!("{}: done by the server; {note}", step.title),
                            None => format!("{}: done by the server", step.title),
                        });
                        self.commit(next, Vec::new()).await?;
                    }
                    Err(failure) => {
                        let error = with_hint(failure.error);
                        mark(&mut next, &step.id, "failed", None, Some(&error));
                        set_outcomes(&mut next, &step.id, failure.outcomes);
                        self.notices.push(format!("{} failed: {error}", step.title));
                        return self.commit(next, Vec::new()).await;
                    }
                }
                continue;
            }
            if !matches!(step.action, Action::Generate { .. }) || self.sampling_failed {
                return Ok(());
            }
            let Some(sampler) = self.caller.sampler.clone() else {
                return Ok(());
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
                    self.sampling_failed = true;
                    self.notices.push(format!(
                        "{}: the server could not generate it through MCP sampling ({error}); generate it with the request below and send it back",
                        step.title
                    ));
                }
            }
        }
        Ok(())
    }

    /// The state of the session for the client.
    pub(super) async fn view(&self) -> Result<SessionView, KnowledgeError> {
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
        let result = view::step_result(&self.session, &step.id);
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
            error: (result["status"] == "failed")
                .then(|| result["error"].as_str().map(str::to_owned))
                .flatten(),
            skippable: !matches!(&step.action, Action::Store { input, .. } if input.required),
        })
    }
}

/// Records a step's result, keeping what earlier runs of the step left that still holds: the
/// memory it stored (a new one replaces it), the memories it replaced, how often it was revised.
pub(super) fn mark(
    session: &mut PlaybookSession,
    step_id: &str,
    status: &str,
    note: Option<&str>,
    error: Option<&str>,
) {
    if !session.step_results.is_object() {
        session.step_results = json!({});
    }
    let mut result = json!({ "status": status, "at": now() });
    if let Some(note) = note {
        result["note"] = Value::from(note);
    }
    if let Some(error) = error {
        result["error"] = Value::from(error);
    }
    let previous = view::step_result(session, step_id);
    for kept in ["memory_id", "replaced_memory_ids", "revisions"] {
        if let Some(value) = previous.get(kept) {
            result[kept] = value.clone();
        }
    }
    if let Some(results) = session.step_results.as_object_mut() {
        results.insert(step_id.to_owned(), result);
    }
}

/// Records what became of each part of a step (each URL of a pack).
fn set_outcomes(session: &mut PlaybookSession, step_id: &str, outcomes: Option<Value>) {
    if let (Some(outcomes), Some(result)) = (outcomes, session.step_results.get_mut(step_id)) {
        result["outcomes"] = outcomes;
    }
}
