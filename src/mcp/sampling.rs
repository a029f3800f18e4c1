//! Generating through the client's own model (MCP sampling), for playbook `generate` steps: used
//! only when the client declared the capability, and given up on after a timeout, after which
//! the runner hands the client the generate request instead.
//!
//! Sampling is deprecated by a future protocol revision (SEP-2577) but is what today's clients
//! implement. A client at 2026-07-28 is asked for the same message through an input-required
//! result instead ([`super::input_required`]); the request and the reading of the answer are
//! shared.
#![expect(deprecated, reason = "MCP sampling is what clients implement today")]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use rmcp::RoleServer;
use rmcp::model::{CreateMessageRequestParams, CreateMessageResult, SamplingMessage};
use rmcp::service::Peer;

use crate::playbooks::steps::Sampler;

/// The most tokens a generated artifact may take.
const MAX_TOKENS: u32 = 8_000;

/// Samples the model of one connected client.
struct PeerSampler {
    peer: Peer<RoleServer>,
    timeout: Duration,
}

/// A sampler for `peer` when its client supports sampling (and `timeout` is set), else `None`.
pub fn for_peer(peer: &Peer<RoleServer>, timeout: Option<Duration>) -> Option<Arc<dyn Sampler>> {
    let timeout = timeout?;
    let info = peer.peer_info()?;
    info.capabilities.sampling.as_ref()?;
    Some(Arc::new(PeerSampler {
        peer: peer.clone(),
        timeout,
    }))
}

#[async_trait]
impl Sampler for PeerSampler {
    async fn generate(&self, system: &str, prompt: &str) -> Result<String, String> {
        let answer = tokio::time::timeout(
            self.timeout,
            self.peer.create_message(request(system, prompt)),
        )
        .await
        .map_err(|_| {
            format!(
                "the client's model did not answer within {} s",
                self.timeout.as_secs()
            )
        })?
        .map_err(|error| format!("the client refused or failed: {error}"))?;
        answer_text(&answer)
    }
}

/// The sampling request for a generate step: `prompt` as the user's message under `system`.
pub fn request(system: &str, prompt: &str) -> CreateMessageRequestParams {
    let mut request =
        CreateMessageRequestParams::new(vec![SamplingMessage::user_text(prompt)], MAX_TOKENS);
    request.system_prompt = Some(system.to_owned());
    request
}

/// The text of the client model's answer; an error when it has none.
pub fn answer_text(answer: &CreateMessageResult) -> Result<String, String> {
    let text: Vec<String> = answer
        .message
        .content
        .iter()
        .filter_map(|block| block.as_text().map(|text| text.text.clone()))
        .collect();
    let text = text.join("\n");
    if text.trim().is_empty() {
        return Err("the client's model answered with no text".into());
    }
    Ok(text)
}
