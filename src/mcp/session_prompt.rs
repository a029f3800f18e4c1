//! The `start-session` prompt: walks a client through a working session with the guardrail
//! tools — load_context, then the work (watch_out before changes, unstick when stuck), then
//! validate_code, then remember.

use rmcp::model::{GetPromptResult, Prompt, PromptArgument, PromptMessage, Role};
use serde_json::{Map, Value, json};

/// The prompt's name.
pub const NAME: &str = "start-session";

fn argument(name: &str, description: &str) -> PromptArgument {
    PromptArgument::new(name)
        .with_description(description)
        .with_required(false)
}

/// The prompt as listed.
pub fn prompt() -> Prompt {
    Prompt::new(
        NAME,
        Some("Start a guarded working session: load the project's context, mind its sharp edges, validate the code, and remember what was done".to_owned()),
        Some(vec![
            argument("project_id", "The project's id or name (else the active project, or the key's own)"),
            argument("task", "What this session is to get done"),
            argument("stack", "The stack, e.g. `rust, axum` (else the project's saved stack)"),
        ]),
    )
    .with_title("Start a working session")
    .with_icons(super::metadata::icons())
}

/// The prompt rendered with its arguments.
pub fn get(arguments: &Map<String, Value>) -> GetPromptResult {
    let text_of = |key: &str| {
        arguments
            .get(key)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let mut load = json!({});
    if let Some(project) = text_of("project_id") {
        load["project_id"] = Value::from(project);
    }
    if let Some(task) = text_of("task") {
        load["project_description"] = Value::from(task);
    }
    let stack: Vec<String> = text_of("stack")
        .map(|stack| {
            stack
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    if !stack.is_empty() {
        load["stack_hints"] = json!(stack);
    }
    let task = text_of("task").map_or_else(
        || "the task I give you".to_owned(),
        |task| format!("this task: {task}"),
    );
    let stack_text = if stack.is_empty() {
        "the project's stack (from load_context)".to_owned()
    } else {
        format!("`{}`", stack.join(", "))
    };
    let text = format!(
        "Work on {task}, as a guarded Codifier session:\n\n\
         1. **Load the context.** Call load_context {load}. Read the last session's summary, the open issues, the recent decisions and the sharp edges; follow its `instruction`.\n\
         2. **Work.** Before changing a file, call watch_out with stack {stack_text}, a `situation` saying what you are about to do, and the code you will touch as `code_context`; mind the edges marked `matches_current_code` first. If two or three attempts fail the same way, call unstick with the task, your attempts and the errors, and follow its advice (start again when `should_reset` is true).\n\
         3. **Validate.** Before calling the task done, call validate_code on each file you changed (its `file_path` and `code`). Fix every `critical` and `error` result until `passed` is true.\n\
         4. **Remember.** End with one remember call: `session_summary` (what was done and what is left), `validated` (the checks that passed), a `decision` for each choice the next session must know (what, why), and `issue` to open a problem you leave or resolve one you fixed.\n",
        load = serde_json::to_string(&load).unwrap_or_default(),
    );
    GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(
        "A guarded working session: load_context → work → validate_code → remember",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_session_prompt_carries_its_arguments_into_the_load_context_call() {
        let arguments = json!({"project_id": "shop", "task": "add refunds", "stack": "rust, axum"});
        let result = get(arguments.as_object().unwrap());
        let text = format!("{:?}", result.messages[0]);
        assert!(text.contains("\\\"project_id\\\":\\\"shop\\\""), "{text}");
        assert!(
            text.contains("\\\"stack_hints\\\":[\\\"rust\\\",\\\"axum\\\"]"),
            "{text}"
        );
        for step in ["load_context", "watch_out", "validate_code", "remember"] {
            assert!(text.contains(step), "{step}: {text}");
        }
    }
}
