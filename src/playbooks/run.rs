//! One call's work on one session: applying the client's input to the current step (or
//! recognising a retry) and saving each change on the revision it was read at. What an
//! accepted answer changes is in [`collect`], the steps the server runs alone in [`on_server`],
//! the view of the session the call returns in [`reply`]; answering an earlier step again is in
//! `revise.rs`.

mod collect;
mod on_server;
mod reply;

use serde_json::Value;

use super::runner::{Advance, Caller, Engine, digest};
use super::spec::{Action, Playbook, Step};
use super::steps::generate;
use super::steps::input;
use super::view::StoredMemory;
use crate::domain::{Actor, PlaybookSession, SessionStatus, StepMemory, StepStatus, now};
use crate::knowledge::KnowledgeError;

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
            next.step_results.mark(
                &step.id,
                StepStatus::Skipped,
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
}
