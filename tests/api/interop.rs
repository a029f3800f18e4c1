//! What MCP clients other than ours check: standard JSON Schema only, described and bounded
//! inputs, tool titles, prompt arguments, typed `next_call` placeholders, how a Streamable HTTP
//! session closes, and the log lines an operator reads.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::clients::{self, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

/// The formats JSON Schema 2020-12 defines.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "idn-email",
    "hostname",
    "idn-hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "iri",
    "iri-reference",
    "uuid",
    "uri-template",
    "json-pointer",
    "relative-json-pointer",
    "regex",
];

/// Every `format` in a schema that JSON Schema does not define, with where it is.
fn unknown_formats(schema: &Value, at: &str, found: &mut Vec<String>) {
    match schema {
        Value::Object(object) => {
            if let Some(format) = object.get("format").and_then(Value::as_str)
                && !STANDARD_FORMATS.contains(&format)
            {
                found.push(format!("{at}: {format}"));
            }
            for (key, value) in object {
                unknown_formats(value, &format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                unknown_formats(item, &format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn every_tool_has_a_title_and_standard_schemas_whose_inputs_are_described_and_bounded() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let mut problems = Vec::new();
    for tool in &tools {
        let name = tool.name.as_ref();
        if tool.title.as_deref().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no top-level title"));
        }
        let input = Value::Object(tool.input_schema.as_ref().clone());
        unknown_formats(&input, &format!("{name} input"), &mut problems);
        if let Some(output) = &tool.output_schema {
            let output = Value::Object(output.as_ref().clone());
            unknown_formats(&output, &format!("{name} output"), &mut problems);
        }
        let properties = input["properties"].as_object().cloned().unwrap_or_default();
        for (field, schema) in properties {
            if schema["description"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}.{field}: no description"));
            }
            let bounded = ["limit", "max_rows", "confidence", "page_bytes"];
            // A number (`project_state`'s `confidence` is an object of its own).
            let numeric = |kind: &Value| matches!(kind.as_str(), Some("number" | "integer"));
            let is_number = numeric(&schema["type"])
                || schema["type"]
                    .as_array()
                    .is_some_and(|kinds| kinds.iter().any(numeric));
            if bounded.contains(&field.as_str())
                && is_number
                && (schema.get("minimum").is_none() || schema.get("maximum").is_none())
            {
                problems.push(format!("{name}.{field}: no minimum and maximum"));
            }
            // Every unsigned field has `minimum: 0`; these start at 1 (a project state's
            // revision starts at 0, before its first update).
            if ["page", "revision", "max_file_bytes"].contains(&field.as_str())
                && name != "project_state"
                && schema["minimum"]
                    .as_f64()
                    .is_none_or(|minimum| minimum < 1.0)
            {
                problems.push(format!("{name}.{field}: no minimum of 1"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    server.stop().await;
}

#[tokio::test]
async fn query_data_says_in_its_description_when_no_warehouse_is_configured() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let tools = client.list_all_tools().await.expect("tools/list");
    let query_data = tools.iter().find(|tool| tool.name == "query_data").unwrap();
    let description = query_data.description.as_deref().unwrap_or_default();
    assert!(
        description.contains("No data warehouse is configured"),
        "{description}"
    );
    server.stop().await;
}

#[tokio::test]
async fn prompt_arguments_say_what_they_are() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let prompts = client.list_all_prompts().await.expect("prompts/list");
    assert!(!prompts.is_empty());
    for prompt in &prompts {
        for argument in prompt.arguments.iter().flatten() {
            let description = argument.description.as_deref().unwrap_or_default();
            assert!(
                description.len() > 20
                    && !["Needed by this template", "Optional context"].contains(&description),
                "{}.{}: `{description}` does not say what it is",
                prompt.name,
                argument.name
            );
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn next_call_placeholders_have_the_json_type_the_step_takes() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let mut view = ok(&call(
            &client,
            "run_playbook",
            json!({"project_id": "p", "playbook_id": "initialize-project"}),
        )
        .await);
        // Answer the text steps with the placeholder's own type until the repositories step.
        let mut seen_list = false;
        for _ in 0..8 {
            let arguments = view["next_call"]["arguments"].clone();
            let step = view["current"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let input = arguments["input"].as_object().cloned().unwrap_or_default();
            let Some((key, placeholder)) = input.into_iter().next() else {
                break;
            };
            if step == "repositories" {
                assert!(placeholder.is_array(), "{backend:?}: {placeholder}");
                seen_list = true;
                break;
            }
            assert!(placeholder.is_string(), "{step}: {placeholder}");
            let mut answer = arguments.clone();
            answer["input"] = json!({ key: format!("An answer for {step}") });
            answer["project_id"] = json!("p");
            view = ok(&call(&client, "advance_step", answer).await);
        }
        assert!(
            seen_list,
            "{backend:?}: never reached the repositories step"
        );
    }
}

#[tokio::test]
async fn closing_a_streamable_http_session_answers_no_content() {
    let server = TestServer::start(crate::helpers::Backend::Sqlite).await;
    let http = reqwest::Client::new();
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}
    });
    let opened = http
        .post(server.url("/mcp"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("accept", "application/json, text/event-stream")
        .json(&initialize)
        .send()
        .await
        .unwrap();
    assert!(opened.status().is_success(), "{}", opened.status());
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    drop(opened);
    let closed = http
        .delete(server.url("/mcp"))
        .bearer_auth(OPERATOR_TOKEN)
        .header("mcp-session-id", &session)
        .send()
        .await
        .unwrap();
    // The Python SDK accepts 200 and 204 (else it logs "Session termination failed").
    assert_eq!(closed.status(), 204);
    server.stop().await;
}

#[tokio::test]
async fn tool_call_log_lines_name_the_project_used_and_the_error_without_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("c.db").display());
    let created = Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(["projects", "create", "--name", "logged"])
        .env("DATABASE_URL", &database)
        .env("CODIFIER_EMBEDDINGS", "none")
        .output()
        .unwrap();
    assert!(created.status.success());
    let project: Value = serde_json::from_slice(&created.stdout).unwrap();
    let project_id = project["id"].as_str().unwrap().to_owned();

    let addr_file = dir.path().join("addr");
    let child = Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &database)
        .env("CODIFIER_EMBEDDINGS", "none")
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("API_AUTH_TOKEN", OPERATOR_TOKEN)
        .env("CODIFIER_LOG_FORMAT", "text")
        .env("CODIFIER_LOG", "info")
        .env_remove("NO_COLOR")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut address = String::new();
    for _ in 0..200 {
        address = std::fs::read_to_string(&addr_file).unwrap_or_default();
        if !address.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = clients::streamable(&format!("http://{address}/mcp"), OPERATOR_TOKEN).await;
    ok(&call(
        &client,
        "manage_projects",
        json!({"operation": "switch", "project_id": "logged"}),
    )
    .await);
    ok(&call(&client, "fetch_context", json!({})).await);
    refused(&call(&client, "fetch_context", json!({"limit": 0})).await);
    client.cancel().await.unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(!logs.contains('\u{1b}'), "colour codes in:\n{logs}");
    let calls: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("tool call") && line.contains("fetch_context"))
        .collect();
    assert_eq!(calls.len(), 2, "{logs}");
    for line in &calls {
        let logged = line
            .split_once("project=")
            .map(|(_, rest)| rest.trim_start_matches('"'));
        assert!(
            logged.is_some_and(|rest| rest.starts_with(&project_id)),
            "{line}"
        );
    }
    assert!(
        calls[1].contains("error=") && calls[1].contains("`limit` is 0"),
        "{}",
        calls[1]
    );
    assert!(!calls[0].contains("error="), "{}", calls[0]);
}
