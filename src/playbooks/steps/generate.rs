//! `generate` steps: the context a template renders with (the project, its relevant memories
//! and everything the session has collected), and the request handed to the client's model.

use std::collections::BTreeSet;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::knowledge::KnowledgeError;

use crate::domain::{MemoryFilter, MemoryType, PlaybookSession, Project};
use crate::playbooks::spec::{Action, ArtifactFormat, Playbook, Step};
use crate::playbooks::templates::Templates;
use crate::store::{Store, content_text};

/// How many of the project's memories a generator sees, and how much of each.
const CONTEXT_MEMORIES: usize = 20;
const CONTEXT_MEMORY_CHARS: usize = 2_000;

/// What the system prompt tells the model when the server samples it directly.
pub const SYSTEM_PROMPT: &str = "You write project artifacts for a software team's shared knowledge base. \
Follow the requested structure exactly and answer with the artifact alone, without preamble.";

/// What the client's model is asked to produce, and how to send it back.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GenerateRequest {
    /// The fully rendered prompt for the model.
    pub prompt: String,
    /// What the artifact should look like.
    pub expects: String,
    /// `markdown` or `yaml`.
    pub format: ArtifactFormat,
    /// The key to send the artifact back under: `advance_step` with `input: {<key>: "…"}`.
    pub send_back_under: String,
    /// The memory the artifact becomes.
    pub memory_type: MemoryType,
    pub memory_title: String,
}

/// The variables every template and step prompt renders with: the built-ins (`project`,
/// `playbook`, `collected`, `memories`) and each collected key at the top level.
pub fn context(
    project: &Project,
    playbook: &Playbook,
    session: &PlaybookSession,
    memories: Vec<Value>,
) -> Value {
    let collected = session
        .collected_data
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut context: Map<String, Value> = collected.clone();
    context.insert(
        "project".into(),
        json!({ "id": project.id, "name": project.name, "org": project.org }),
    );
    context.insert(
        "playbook".into(),
        json!({ "id": playbook.id, "name": playbook.name, "role": playbook.role }),
    );
    context.insert("collected".into(), Value::Object(collected));
    context.insert("memories".into(), Value::from(memories));
    Value::Object(context)
}

/// The ids of the memories this session stored itself (already in its collected data).
fn own_memories(session: &PlaybookSession) -> BTreeSet<String> {
    session
        .step_results
        .iter()
        .filter_map(|(_, result)| result.memory_id.map(|id| id.to_string()))
        .collect()
}

/// The project's newest memories of the step's types that the session did not write itself,
/// each as `{type, title, text}` with its text cut to a readable length.
pub async fn relevant_memories(
    store: &Arc<dyn Store>,
    project: uuid::Uuid,
    session: &PlaybookSession,
    step: &Step,
) -> Result<Vec<Value>, KnowledgeError> {
    let Action::Generate { context_types, .. } = &step.action else {
        return Ok(Vec::new());
    };
    let own = own_memories(session);
    let filter = MemoryFilter {
        limit: 100,
        ..MemoryFilter::default()
    };
    let page = store.fetch_memories(project, &filter).await?;
    Ok(page
        .memories
        .into_iter()
        .filter(|memory| context_types.contains(&memory.memory_type))
        .filter(|memory| !own.contains(&memory.id.to_string()))
        .take(CONTEXT_MEMORIES)
        .map(|memory| {
            let text: String = content_text(&memory.content)
                .chars()
                .take(CONTEXT_MEMORY_CHARS)
                .collect();
            json!({ "type": memory.memory_type, "title": memory.title, "text": text })
        })
        .collect())
}

/// Renders a generate step's request with `context`.
pub fn request(
    templates: &Templates,
    step: &Step,
    context: &Value,
) -> Result<GenerateRequest, String> {
    let Action::Generate {
        template,
        output,
        expects,
        format,
        memory,
        ..
    } = &step.action
    else {
        return Err(format!("step `{}` is not a generate step", step.id));
    };
    Ok(GenerateRequest {
        prompt: templates.render(template, context)?,
        expects: expects.trim().to_owned(),
        format: *format,
        send_back_under: output.clone(),
        memory_type: memory.memory_type,
        memory_title: templates.render_str(&memory.title, context)?,
    })
}

/// The full text handed to a model: the rendered prompt and the expected shape.
pub fn sampling_prompt(request: &GenerateRequest) -> String {
    format!(
        "{}\n\n---\nAnswer with the artifact only. Expected output: {}",
        request.prompt, request.expects
    )
}
