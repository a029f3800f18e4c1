//! Input-required results (protocol 2026-07-28): a client at that revision is never sent a
//! request of the server's own, so when a playbook stops at a `generate` step and the client
//! declared sampling, the tool call answers with the sampling request as an input request and a
//! sealed `requestState`. The client asks its model, then calls the same tool again with the
//! same arguments, the answer (`inputResponses`) and the state; the server opens the state,
//! keeps the answer as the step's artifact and runs on.
//!
//! Nothing is held in memory between the two calls. The state carries the session, project and
//! step, sealed by rmcp's [`RequestStateCodec`] (HMAC-SHA256) over the caller, the tool and the
//! arguments, with an expiry: a state that was changed, has expired, or was issued to another
//! key, tool or call is refused. The key comes from `CODIFIER_REQUEST_STATE_SECRET`, else from
//! the database (created by the first server that needs it), so every server on one database
//! opens the states of the others and a retry may reach any of them.
#![expect(deprecated, reason = "the input request is a sampling request")]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use rmcp::RoleServer;
use rmcp::model::{
    CreateMessageRequest, CreateMessageResult, InputRequest, InputRequiredResult, InputResponses,
    JsonObject, ProtocolVersion, RequestStateCodec, RequestStateError, SealOptions,
};
use rmcp::service::RequestContext;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Digest;
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::auth::Identity;
use crate::config::RequestStateConfig;
use crate::knowledge::KnowledgeError;
use crate::playbooks::steps::generate;
use crate::playbooks::view::SessionView;
use crate::store::Store;

/// The key of the one input request a generate step makes.
pub const GENERATE_INPUT: &str = "generate";

/// The name of the shared key among the store's server secrets.
const SECRET_NAME: &str = "mcp.request_state";

/// What a state carries: the generate step that waits for the client's model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingGenerate {
    pub session_id: Uuid,
    pub project_id: Uuid,
    pub step_id: String,
    /// The input key the artifact is kept under.
    pub send_back_under: String,
}

/// The call a state is bound to: who made it, to which tool, with which arguments.
pub struct Call<'a> {
    pub identity: &'a Identity,
    pub tool: &'a str,
    pub arguments: &'a JsonObject,
}

impl Call<'_> {
    /// What the seal covers besides the payload (never stored in the state itself).
    fn associated_data(&self) -> Vec<u8> {
        // A key by its id, not its prefix: a new key never inherits an old key's states.
        let caller = match self.identity {
            Identity::Key { id, .. } => format!("key:{id}"),
            other => other.label(),
        };
        let arguments = crate::playbooks::runner::canonical(&Value::Object(self.arguments.clone()));
        let arguments = hex::encode(sha2::Sha256::digest(arguments.as_bytes()));
        format!(
            "codifier/input-required/v1\n{caller}\n{}\n{arguments}",
            self.tool
        )
        .into_bytes()
    }
}

/// Whether the request came at 2026-07-28 or later, where the server sends no requests.
pub fn at_2026(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version()
        .is_some_and(|version| version.as_str() >= ProtocolVersion::V_2026_07_28.as_str())
}

/// Whether this call may be answered with an input-required result: the request came at
/// 2026-07-28 or later, its client declared sampling, and sampling is on (`sampling_on`).
pub fn wanted(ctx: &RequestContext<RoleServer>, sampling_on: bool) -> bool {
    sampling_on
        && at_2026(ctx)
        && ctx
            .client_capabilities()
            .is_some_and(|capabilities| capabilities.sampling.is_some())
}

/// Seals and opens states with the key every server on the database shares.
pub struct RequestStates {
    store: Arc<dyn Store>,
    configured: Option<String>,
    ttl: Duration,
    codec: OnceCell<RequestStateCodec>,
}

impl RequestStates {
    pub fn new(config: &RequestStateConfig, store: Arc<dyn Store>) -> Self {
        Self {
            store,
            configured: config.secret.clone(),
            ttl: config.ttl,
            codec: OnceCell::new(),
        }
    }

    /// The codec, its key read (or first created) on the first use.
    async fn codec(&self) -> Result<&RequestStateCodec, KnowledgeError> {
        self.codec
            .get_or_try_init(|| async {
                let secret = match &self.configured {
                    Some(secret) => secret.clone(),
                    None => {
                        let mut candidate = [0u8; 32];
                        rand::rngs::OsRng.fill_bytes(&mut candidate);
                        self.store
                            .server_secret(SECRET_NAME, &hex::encode(candidate))
                            .await?
                    }
                };
                RequestStateCodec::try_new(secret.into_bytes()).map_err(|error| {
                    KnowledgeError::Unavailable(format!(
                        "the server's request-state key is unusable ({error}): the operator sets CODIFIER_REQUEST_STATE_SECRET to 32 random bytes or more"
                    ))
                })
            })
            .await
    }

    /// The input-required result asking the client's model for the generate step `view` stops
    /// at; `None` when it stops at no generate step.
    pub async fn ask(
        &self,
        view: &SessionView,
        call: &Call<'_>,
    ) -> Result<Option<InputRequiredResult>, KnowledgeError> {
        let Some((current, request)) = view
            .current
            .as_ref()
            .and_then(|current| Some((current, current.generate.as_ref()?)))
        else {
            return Ok(None);
        };
        let pending = PendingGenerate {
            session_id: view.session_id,
            project_id: view.project_id,
            step_id: current.id.clone(),
            send_back_under: request.send_back_under.clone(),
        };
        let state = self.seal(&pending, call).await?;
        let prompt = generate::sampling_prompt(request);
        let sampling = super::sampling::request(generate::SYSTEM_PROMPT, &prompt);
        let input = InputRequest::CreateMessage(CreateMessageRequest::new(sampling));
        let requests = BTreeMap::from([(GENERATE_INPUT.to_owned(), input)]);
        Ok(Some(InputRequiredResult::new(Some(requests), Some(state))))
    }

    /// Seals `pending` for `call`, valid for the configured lifetime.
    pub async fn seal(
        &self,
        pending: &PendingGenerate,
        call: &Call<'_>,
    ) -> Result<String, KnowledgeError> {
        let codec = self.codec().await?;
        let bound = call.associated_data();
        let options = SealOptions::new().associated_data(&bound).ttl(self.ttl);
        codec.seal_json_with(pending, &options).map_err(|error| {
            tracing::error!(%error, "could not seal a request state");
            KnowledgeError::Unavailable(
                "the server could not prepare the request for your client's model; retry shortly"
                    .into(),
            )
        })
    }

    /// Opens a state the client sent back with `call`; refuses one that was changed, has
    /// expired, or belongs to another caller, tool or call.
    pub async fn open(
        &self,
        sealed: &str,
        call: &Call<'_>,
    ) -> Result<PendingGenerate, KnowledgeError> {
        let codec = self.codec().await?;
        codec
            .open_json_with(sealed, &call.associated_data())
            .map_err(|error| self.refusal(error))
    }

    fn refusal(&self, error: RequestStateError) -> KnowledgeError {
        const RESUME: &str = "the playbook session is kept: call the tool again without `requestState` and `inputResponses` (or resume the session with run_playbook and its `session_id`) to be asked again";
        match error {
            // Only a state that passed its integrity check is reported as expired.
            RequestStateError::Expired => KnowledgeError::Invalid(format!(
                "`requestState` has expired (a client has {} s to answer an input request); {RESUME}",
                self.ttl.as_secs()
            )),
            other => {
                tracing::warn!(error = %other, "refused a request state");
                KnowledgeError::Invalid(format!(
                    "`requestState` was not issued by this server for this call: it was changed, or it belongs to another key, tool or arguments. Send it back exactly as the input-required result gave it, with the same tool and arguments; {RESUME}"
                ))
            }
        }
    }
}

/// The client model's artifact among the `inputResponses` of a retry.
pub fn artifact(responses: Option<&InputResponses>) -> Result<String, KnowledgeError> {
    let answer = responses
        .and_then(|responses| responses.get(GENERATE_INPUT))
        .ok_or_else(|| {
            KnowledgeError::Invalid(format!(
                "this retry carries `requestState` but no `inputResponses.{GENERATE_INPUT}`: send the result of the `{GENERATE_INPUT}` input request (your model's sampling answer) with it"
            ))
        })?;
    let answer: CreateMessageResult = serde_json::from_value(answer.clone()).map_err(|error| {
        KnowledgeError::Invalid(format!(
            "`inputResponses.{GENERATE_INPUT}` is not a sampling result ({error}): send what your model answered to the `sampling/createMessage` input request"
        ))
    })?;
    super::sampling::answer_text(&answer).map_err(|error| {
        KnowledgeError::Invalid(format!("`inputResponses.{GENERATE_INPUT}`: {error}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Role;
    use crate::store::sqlite::SqliteStore;

    async fn store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
        store.migrate().await.unwrap();
        store
    }

    fn states(store: Arc<dyn Store>, secret: Option<&str>) -> RequestStates {
        let config = RequestStateConfig {
            secret: secret.map(str::to_owned),
            ttl: Duration::from_secs(60),
        };
        RequestStates::new(&config, store)
    }

    fn pending() -> PendingGenerate {
        PendingGenerate {
            session_id: Uuid::new_v4(),
            project_id: Uuid::new_v4(),
            step_id: "generate-rules".into(),
            send_back_under: "rules".into(),
        }
    }

    fn key() -> Identity {
        Identity::Key {
            id: Uuid::new_v4(),
            prefix: "cdf_abc".into(),
            project_id: Uuid::new_v4(),
            role: Role::Write,
        }
    }

    fn object(value: Value) -> JsonObject {
        serde_json::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn a_state_opens_only_for_the_key_tool_and_arguments_it_was_sealed_for() {
        let dir = tempfile::tempdir().unwrap();
        let states = states(store(&dir).await, None);
        let (owner, other) = (key(), key());
        let arguments = object(serde_json::json!({"session_id": "s", "input": {"a": 1, "b": 2}}));
        let reordered = object(serde_json::json!({"input": {"b": 2, "a": 1}, "session_id": "s"}));
        let changed = object(serde_json::json!({"session_id": "s", "input": {"a": 1, "b": 3}}));
        let call = |identity, tool, arguments| Call {
            identity,
            tool,
            arguments,
        };
        let sent = pending();
        let sealed = states
            .seal(&sent, &call(&owner, "advance_step", &arguments))
            .await
            .unwrap();

        let opened = states
            .open(&sealed, &call(&owner, "advance_step", &reordered))
            .await
            .unwrap();
        assert_eq!(opened, sent);
        for refused in [
            call(&other, "advance_step", &arguments),
            call(&owner, "run_playbook", &arguments),
            call(&owner, "advance_step", &changed),
        ] {
            let error = states.open(&sealed, &refused).await.unwrap_err();
            let message = error.to_string();
            assert!(
                message.contains("not issued by this server for this call"),
                "{message}"
            );
        }
    }

    #[tokio::test]
    async fn servers_on_one_database_share_the_key_and_a_configured_key_differs() {
        let dir = tempfile::tempdir().unwrap();
        let database = store(&dir).await;
        let (first, second) = (
            states(database.clone(), None),
            states(database.clone(), None),
        );
        let configured = states(database, Some("0123456789abcdef0123456789abcdef"));
        let owner = key();
        let arguments = object(serde_json::json!({"playbook_id": "initialize-project"}));
        let call = Call {
            identity: &owner,
            tool: "run_playbook",
            arguments: &arguments,
        };
        let sealed = first.seal(&pending(), &call).await.unwrap();
        assert!(second.open(&sealed, &call).await.is_ok());
        assert!(configured.open(&sealed, &call).await.is_err());
    }
}
