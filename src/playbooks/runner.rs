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
use super::run::Run;
use super::spec::Playbook;
use super::steps::input;
use super::steps::{DataQuery, Sampler, Skills, cap_result};
use super::view::{self, SessionView};
use crate::auth::Identity;
use crate::domain::{Actor, PlaybookSession, Project, SessionStatus, StepResults, now};
use crate::embeddings::service::Embeddings;
use crate::knowledge::KnowledgeError;
use crate::store::Store;

/// The playbook engine: the catalog, the store, and the capabilities steps call.
pub struct Engine {
    pub catalog: Arc<Catalog>,
    pub(super) store: Arc<dyn Store>,
    pub(super) skills: Arc<dyn Skills>,
    pub(super) data: Arc<dyn DataQuery>,
    pub(super) embeddings: Arc<Embeddings>,
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
    /// Answer `step_id`, an earlier step, again: the steps after it that read what it changed
    /// run again.
    pub revise: bool,
}

fn invalid(message: impl Into<String>) -> KnowledgeError {
    KnowledgeError::Invalid(message.into())
}

/// The JSON text of a value with object keys sorted at every level.
pub(crate) fn canonical(value: &Value) -> String {
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
pub(super) fn digest(input: &Map<String, Value>, skip: bool, revise: bool) -> String {
    let mut call = json!({ "input": input, "skip": skip });
    // Only when set, so the digests of calls stored before revisions existed still match.
    if revise {
        call["revise"] = Value::Bool(true);
    }
    let text = canonical(&call);
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
            let accepted = input::accept(&playbook.steps[0], input).map_err(invalid)?;
            super::revise::check_urls(self, &caller, playbook, 0, &accepted).await?;
        }
        let at = now();
        let session = PlaybookSession {
            id: Uuid::new_v4(),
            project_id: caller.project.id,
            playbook_id: playbook.id.clone(),
            playbook_version: playbook.version.clone(),
            current_step: 0,
            collected_data: json!({}),
            step_results: StepResults::default(),
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
                    revise: false,
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

    /// One session of `project`, whole, to read: nothing runs and nothing changes.
    pub async fn session(
        &self,
        project: &Project,
        id: Uuid,
    ) -> Result<view::SessionDetail, KnowledgeError> {
        let session = self.load(project, id).await?;
        Ok(view::detail(
            self.catalog.get(&session.playbook_id),
            &session,
        ))
    }

    /// Keeps a result (e.g. of `query_data`) under `key` in an active session's collected data,
    /// capped at 100 KB with a notice (returned when the value was cut). Later generate steps
    /// read it as `collected.<key>`; `research-synthesis` reads `collected.query_execute_query`.
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
