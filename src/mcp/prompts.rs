//! MCP prompts: each playbook (a client can start it as a slash command) and each generator
//! template (rendered with the arguments given and the project's memories).

use rmcp::ErrorData;
use rmcp::model::{
    GetPromptResult, ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role,
};
use serde_json::{Map, Value, json};

use crate::auth::Identity;

use crate::domain::MemoryFilter;
use crate::domain::Role as KeyRole;
use crate::knowledge::projects;
use crate::playbooks::Catalog;
use crate::playbooks::spec::Playbook;
use crate::playbooks::steps::input;
use crate::store::{Store, content_text};

fn argument(name: &str, description: &str, required: bool) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(required)
}

/// The working-session prompt, every playbook and every template, as prompts.
pub fn list(catalog: &Catalog) -> ListPromptsResult {
    let mut prompts = vec![super::session_prompt::prompt()];
    for playbook in catalog.playbooks() {
        let mut arguments = vec![argument(
            "project_id",
            "The project's id or name (else the active project, or the key's own)",
            false,
        )];
        if let Some((key, _)) = input::expected(&playbook.steps[0]) {
            // Optional here: without it, the prompt asks the user first.
            arguments.push(argument(
                key,
                &format!("The answer to the first step: {}", playbook.steps[0].title),
                false,
            ));
        }
        prompts.push(
            Prompt::new(
                &playbook.id,
                Some(playbook.description.clone()),
                Some(arguments),
            )
            .with_title(&playbook.name)
            .with_icons(super::metadata::icons()),
        );
    }
    for name in catalog.templates.names() {
        let mut arguments = vec![argument(
            "project_id",
            "The project whose memories the prompt includes",
            false,
        )];
        let (required, optional) = catalog.templates.arguments(name);
        for key in required {
            arguments.push(argument(&key, &template_argument(&key), true));
        }
        for key in optional {
            arguments.push(argument(&key, &template_argument(&key), false));
        }
        prompts.push(
            Prompt::new(
                name,
                Some(format!(
                    "The `{name}` generator, rendered with your arguments"
                )),
                Some(arguments),
            )
            .with_title(format!("Generator: {name}"))
            .with_icons(super::metadata::icons()),
        );
    }
    ListPromptsResult::with_all_items(prompts)
}

/// What a generator template's argument is, for the client's prompt form.
fn template_argument(key: &str) -> String {
    let known = match key {
        "project_name" => "The project's name, as the generated text should call it",
        "description" => "What the project is, in a few sentences",
        "statement_of_work" => "The statement of work: what is to be built, for whom, by when",
        "extra_context" => "Anything else the team wants the generator to know (text)",
        "research_context" => "The research question and what is already known (text)",
        "objective" => "The objective the queries should answer (text)",
        "rules" => "The project's rules, as Markdown text",
        "requirements" => "The project's requirements, as Markdown text",
        "repository_urls" => "Repository URLs, as a JSON list of strings",
        "repository_snapshots" => "Packed repository snapshots, as a JSON list",
        "table_descriptions" => "Descriptions of the warehouse tables (text or JSON)",
        "query_results" | "query_execute_query" => "Results of earlier warehouse queries (JSON)",
        "queries" => "Warehouse queries run so far (text or JSON)",
        _ => "",
    };
    if known.is_empty() {
        format!(
            "The {} this template fills in (text)",
            key.replace('_', " ")
        )
    } else {
        known.to_owned()
    }
}

fn playbook_message(playbook: &Playbook, arguments: &Map<String, Value>) -> String {
    let project = arguments
        .get("project_id")
        .and_then(|p| p.as_str())
        .filter(|p| !p.trim().is_empty());
    let mut text = format!(
        "Guide me through the Codifier playbook **{}**: {}\n\nSteps:\n",
        playbook.name, playbook.description
    );
    for (index, step) in playbook.steps.iter().enumerate() {
        let who = if step.action.runs_alone() {
            "the server does this"
        } else if matches!(step.action, crate::playbooks::spec::Action::Generate { .. }) {
            "you generate this"
        } else {
            "ask me"
        };
        text.push_str(&format!("{}. {} ({who})\n", index + 1, step.title));
    }
    let mut call = json!({ "playbook_id": playbook.id });
    if let Some(project) = project {
        call["project_id"] = Value::from(project);
    }
    let first = &playbook.steps[0];
    if let Some((key, _)) = input::expected(first) {
        match arguments.get(key).filter(|value| !input::is_empty(value)) {
            Some(value) => call["input"] = json!({ key: value }),
            None => text.push_str(&format!(
                "\nFirst ask me: \"{}\" Then pass my answer as `input.{key}` in the run_playbook call.\n",
                first.prompt.trim()
            )),
        }
    }
    text.push_str(&format!(
        "\nStart with run_playbook {}. Each result shows the whole outline and the current step: \
         when it asks for input, ask me and send my answer with advance_step (with `step_id`); \
         when it gives a generate request, write the artifact yourself from that prompt and send \
         it back under the key it names. Steps the server can do alone run by themselves.\n",
        serde_json::to_string(&call).unwrap_or_default()
    ));
    text
}

/// Renders a prompt by name.
pub async fn get(
    catalog: &Catalog,
    store: &std::sync::Arc<dyn Store>,
    identity: &Identity,
    name: &str,
    arguments: Map<String, Value>,
) -> Result<GetPromptResult, ErrorData> {
    if name == super::session_prompt::NAME {
        return Ok(super::session_prompt::get(&arguments));
    }
    if let Some(playbook) = catalog.get(name) {
        let text = playbook_message(playbook, &arguments);
        return Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
                .with_description(playbook.description.clone()),
        );
    }
    if !catalog.templates.contains(name) {
        return Err(ErrorData::invalid_params(
            format!("no prompt named `{name}`: list them with prompts/list"),
            None,
        ));
    }
    let (required, _) = catalog.templates.arguments(name);
    if let Some(missing) = required.iter().find(|key| !arguments.contains_key(*key)) {
        return Err(ErrorData::invalid_params(
            format!("the `{name}` prompt needs the argument `{missing}`"),
            None,
        ));
    }
    let mut context = arguments.clone();
    context.insert("collected".into(), Value::Object(arguments.clone()));
    context.insert("memories".into(), Value::Array(Vec::new()));
    if let Some(project) = arguments.get("project_id").and_then(|p| p.as_str()) {
        let project = projects::resolve(store, identity, project, KeyRole::Read)
            .await
            .map_err(|error| ErrorData::invalid_params(error.to_string(), None))?;
        let filter = MemoryFilter {
            limit: 20,
            ..MemoryFilter::default()
        };
        let page = store
            .fetch_memories(project.id, &filter)
            .await
            .map_err(|_| ErrorData::internal_error("the database could not be read", None))?;
        let memories: Vec<Value> = page
            .memories
            .iter()
            .map(|m| json!({ "type": m.memory_type, "title": m.title, "text": content_text(&m.content) }))
            .collect();
        context.insert("memories".into(), Value::from(memories));
        context.insert(
            "project".into(),
            json!({ "id": project.id, "name": project.name, "org": project.org }),
        );
    }
    let text = catalog
        .templates
        .render(name, &Value::Object(context))
        .map_err(|error| ErrorData::invalid_params(error, None))?;
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description(format!("The `{name}` generator")),
    )
}
