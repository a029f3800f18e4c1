//! The runner: a linear state machine over sessions kept in the store.
//!
//! A call takes the client's input for the current step, then runs every following step the
//! server can do alone (skill-invoke, data-query, and generate when the client's model can be
//! sampled) until one needs the user or the client's model. Each step is saved in its own
//! transaction together with the memory it produced, on the revision it was based on, so two
//! calls can never both advance a session. The last accepted input is kept as a digest: the same
//! call again (a retry after a dropped connection) changes nothing and returns the same state.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use sha2::Digest;
use uuid::Uuid;

use super::catalog::Catalog;
use super::spec::{Action, Playbook, Step};
use super::steps::automatic::{self, Runtime};
use super::steps::generate::{self, GenerateRequest};
use super::steps::input::{self, Accepted};
use super::steps::{DataQuery, Sampler, Skills, cap_result};
use super::view::{self, CurrentStep, ExpectedInput, SessionView, StoredMemory};
use crate::auth::Identity;
use crate::embeddings::service::Embeddings;
use crate::knowledge::KnowledgeError;
use crate::knowledge::memories::MemoryInput;
use crate::store::sessions::set_collected;
use crate::store::{Actor, PlaybookSession, Project, SessionStatus, StepMemory, Store, now};

/// The playbook engine: the catalog, the store, and the capabilities steps call.
pub struct Engine {
    pub catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    skills: Arc<dyn Skills>,
    data: Arc<dyn DataQuery>,
    embeddings: Arc<Embeddings>,
    /// How long to wait for a client's model over MCP sampling; `None`: never sample.
    pub sampling_timeout: Option<std::time::Duration>,
}

/// Who is calling and from where.
pub struct Caller<'a> {
    pub project: &'a Project,
    pub identity: &'a Identity,
    /// The MCP tool, for the audit log.
    pub tool: &'a str,
    /// The client's model, when the client supports MCP sampling.
    pub sampler: Option<Arc<dyn Sampler>>,
}

/// `run_playbook`: start a session, or resume one.
pub struct Start {
    pub playbook_id: String,
    pub session_id: Option<Uuid>,
    /// Input for the first step, to save a round trip.
    pub input: Option<Map<String, Value>>,
}

/// `advance_step`: the input for the current step.
pub struct Advance {
    pub session_id: Uuid,
    /// The step this input answers; makes a retry exact.
    pub step_id: Option<String>,
    pub input: Map<String, Value>,
    pub skip: bool,
    pub abandon: bool,
}

fn invalid(message: impl Into<String>) -> KnowledgeError {
    KnowledgeError::Invalid(message.into())
}

/// The JSON text of a value with object keys sorted at every level.
fn canonical(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .into_iter()
                .map(|key| format!("{}:{}", Value::from(key.as_str()), canonical(&map[key])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// The digest of one client call's input, to recognise the same call again.
fn digest(input: &Map<String, Value>, skip: bool) -> String {
    let text = canonical(&json!({ "input": input, "skip": skip }));
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

impl Engine {
    pub fn new(
        catalog: Arc<Catalog>,
        store: Arc<dyn Store>,
        skills: Arc<dyn Skills>,
        data: Arc<dyn DataQuery>,
        embeddings: Arc<Embeddings>,
    ) -> Self {
        Self {
            catalog,
            store,
            skills,
            data,
            embeddings,
            sampling_timeout: None,
        }
    }

    /// Generate through the client's model (MCP sampling) when it can, waiting up to `timeout`.
    pub fn with_sampling(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.sampling_timeout = timeout;
        self
    }

    /// The shipped playbooks over `store`, with no packer, no data source and no sampling: what
    /// a build without those capabilities offers.
    pub fn unwired(
        store: Arc<dyn Store>,
        embeddings: Arc<Embeddings>,
    ) -> Result<Arc<Self>, super::PlaybookError> {
        Ok(Arc::new(Self::new(
            Arc::new(Catalog::embedded()?),
            store,
            Arc::new(super::steps::NoSkills),
            Arc::new(super::steps::NoDataSource),
            embeddings,
        )))
    }

    fn playbook(&self, id: &str) -> Result<&Playbook, KnowledgeError> {
        self.catalog.get(id.trim()).ok_or_else(|| {
            invalid(format!(
                "`playbook_id` is `{id}`: no such playbook; use one of {}",
                self.catalog.ids()
            ))
        })
    }

    async fn load(&self, project: &Project, id: Uuid) -> Result<PlaybookSession, KnowledgeError> {
        self.store
            .get_playbook_session(project.id, id)
            .await?
            .ok_or_else(|| {
                KnowledgeError::NotFound(format!(
                    "no playbook session `{id}` in project `{}`: list them with playbook_sessions",
                    project.name
                ))
            })
    }

    /// Starts a session (applying `input` to its first step when given), or resumes one.
    pub async fn start(
        &self,
        caller: Caller<'_>,
        start: Start,
    ) -> Result<SessionView, KnowledgeError> {
        let playbook = self.playbook(&start.playbook_id)?;
        if let Some(id) = start.session_id {
            if start.input.is_some() {
                return Err(invalid(
                    "`input` starts a new session; to answer a resumed session's step, call advance_step",
                ));
            }
            let session = self.load(caller.project, id).await?;
            if session.playbook_id != playbook.id {
                return Err(invalid(format!(
                    "session `{id}` runs playbook `{}`, not `{}`: send that `playbook_id`",
                    session.playbook_id, playbook.id
                )));
            }
            let mut run = Run::new(self, caller, playbook, session)?;
            run.run_on(false).await?;
            return run.view().await;
        }
        // Check the first step's input before anything is created.
        if let Some(input) = &start.input {
            input::accept(&playbook.steps[0], input).map_err(invalid)?;
        }
        let at = now();
        let session = PlaybookSession {
            id: Uuid::new_v4(),
            project_id: caller.project.id,
            playbook_id: playbook.id.clone(),
            playbook_version: playbook.version.clone(),
            current_step: 0,
            collected_data: json!({}),
            step_results: json!({}),
            status: SessionStatus::Active,
            revision: 0,
            last_step_id: None,
            last_input_digest: None,
            created_at: at,
            updated_at: at,
        };
        let actor = Actor {
            label: caller.identity.label(),
            tool: caller.tool.to_owned(),
        };
        self.store
            .create_playbook_session(caller.project.id, &actor, &session)
            .await?;
        let mut run = Run::new(self, caller, playbook, session)?;
        match start.input {
            Some(input) => {
                let advance = Advance {
                    session_id: run.session.id,
                    step_id: None,
                    input,
                    skip: false,
                    abandon: false,
                };
                run.apply(advance).await?;
            }
            None => run.run_on(false).await?,
        }
        run.view().await
    }

    /// Takes the input for a session's current step and runs on until someone must act.
    pub async fn advance(
        &self,
        caller: Caller<'_>,
        advance: Advance,
    ) -> Result<SessionView, KnowledgeError> {
        let session = self.load(caller.project, advance.session_id).await?;
        let playbook = self.playbook(&session.playbook_id)?;
        let mut run = Run::new(self, caller, playbook, session)?;
        run.apply(advance).await?;
        run.view().await
    }

    /// A project's sessions, most recently changed first.
    pub async fn sessions(
        &self,
        project: &Project,
        limit: u32,
    ) -> Result<Vec<view::SessionSummary>, KnowledgeError> {
        let sessions = self.store.list_playbook_sessions(project.id, limit).await?;
        Ok(sessions
            .iter()
            .map(|session| view::summary(self.catalog.get(&session.playbook_id), session))
            .collect())
    }

    /// Keeps a result (e.g. of `query_data`) under `key` in an active session's collected data,
    /// capped at 100 KB with a notice. Returns the notice when the value was cut.
    pub async fn record(
        &self,
        project: &Project,
        actor: &Actor,
        session_id: Uuid,
        key: &str,
        value: Value,
    ) -> Result<Option<String>, KnowledgeError> {
        let valid = !key.is_empty()
            && key.len() <= 100
            && key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !valid {
            return Err(invalid(format!(
                "the key `{key}` cannot name collected data: use lowercase letters, digits and underscores"
            )));
        }
        let (value, notice) = cap_result(value);
        self.store
            .record_session_data(project.id, actor, session_id, key, &value)
            .await?;
        Ok(notice)
    }
}

/// One call's work on one session.
struct Run<'a> {
    engine: &'a Engine,
    caller: Caller<'a>,
    actor: Actor,
    playbook: &'a Playbook,
    session: PlaybookSession,
    stored: Vec<StoredMemory>,
    notices: Vec<String>,
    replayed: bool,
    sampling_failed: bool,
}

impl<'a> Run<'a> {
    fn new(
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
    async fn apply(&mut self, advance: Advance) -> Result<(), KnowledgeError> {
        let digest = digest(&advance.input, advance.skip);
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
        if same_call {
            self.replayed = true;
            return Ok(());
        }
        if self.session.status != SessionStatus::Active {
            return Err(invalid(format!(
                "this session is {}: start a new one with run_playbook",
                self.session.status.as_str()
            )));
        }
        if advance.abandon {
            let mut next = self.session.clone();
            next.status = SessionStatus::Abandoned;
            return self.commit(next, Vec::new()).await;
        }
        let Some(step) = self.current() else {
            return Err(invalid("this session has no step left"));
        };
        if let Some(wanted) = &advance.step_id
            && wanted != &step.id
        {
            let known = self.playbook.step_index(wanted).is_some();
            return Err(invalid(format!(
                "this session is at step `{}` ({}){}: send `step_id` `{}` with that step's input",
                step.id,
                step.title,
                if known {
                    format!(", not at `{wanted}`")
                } else {
                    format!("; `{wanted}` is not a step of this playbook")
                },
                step.id
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
        let mut next = self.remember_call(&step.id, digest);
        let memories = self.keep(&mut next, step, accepted)?;
        self.commit(next, memories).await?;
        self.run_on(false).await
    }

    /// A copy of the session that records this call as the last accepted one.
    fn remember_call(&self, step_id: &str, digest: String) -> PlaybookSession {
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
        let Some(value) = accepted.value else {
            mark(next, &step.id, "skipped", Some("left empty"), None);
            self.step_forward(next);
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
        mark(next, &step.id, "done", None, None);
        self.step_forward(next);
        Ok(drafts)
    }

    fn step_forward(&self, next: &mut PlaybookSession) {
        next.current_step += 1;
        if next.current_step as usize >= self.playbook.steps.len() {
            next.status = SessionStatus::Completed;
        }
    }

    /// Saves `next` (one revision on) with the memories it produced.
    async fn commit(
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
    async fn run_on(&mut self, mut retry_failed: bool) -> Result<(), KnowledgeError> {
        while let Some(step) = self.current() {
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
                let mut next = self.session.clone();
                match produced {
                    Ok(produced) => {
                        set_collected(&mut next, step.action.provides(), produced.value);
                        mark(
                            &mut next,
                            &step.id,
                            "done",
                            produced.notice.as_deref(),
                            None,
                        );
                        self.step_forward(&mut next);
                        self.notices
                            .push(format!("{}: done by the server", step.title));
                        self.commit(next, Vec::new()).await?;
                    }
                    Err(error) => {
                        mark(&mut next, &step.id, "failed", None, Some(&error));
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
    async fn view(&self) -> Result<SessionView, KnowledgeError> {
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

/// Records a step's result.
fn mark(
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
    if let Some(results) = session.step_results.as_object_mut() {
        results.insert(step_id.to_owned(), result);
    }
}
