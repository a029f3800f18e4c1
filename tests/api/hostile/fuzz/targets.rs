//! One test per fuzz target, and the regression tests for what they found.

use std::time::Duration;

use codifier::athena::sql_guard::SelectQuery;
use codifier::auth::keys::{KeyVerifier, prefix_of};
use codifier::domain::Role;
use codifier::playbooks::templates::Templates;
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::Value;

use super::inputs;
use super::{fixture, fuzz};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, fresh_store};

pub(super) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

#[test]
fn the_sql_guard_never_panics_and_what_it_accepts_it_accepts_again() {
    fuzz("sql guard", inputs::sql(), |sql| {
        if let Ok(query) = SelectQuery::parse(sql) {
            SelectQuery::parse(query.as_sql()).map_err(|error| {
                format!(
                    "accepted, but its rendering `{}` was not: {error}",
                    query.as_sql()
                )
            })?;
        }
        Ok(())
    });
}

fn playbooks() -> Vec<String> {
    [
        "initialize-project",
        "brownfield-onboard",
        "research-and-analyze",
    ]
    .iter()
    .map(|name| fixture(&format!("playbooks/{name}.yaml")))
    .collect()
}

#[test]
fn the_playbook_loader_never_panics_on_mangled_yaml() {
    let templates = Templates::load(None).expect("the shipped templates");
    let bases = playbooks();
    fuzz("playbook loader", inputs::yaml(bases.clone()), |value| {
        let text = inputs::yaml_text(&bases, value);
        let _ = codifier::playbooks::loader::parse("fuzz.yaml", &text, &templates);
        Ok(())
    });
}

fn skill_files() -> Vec<String> {
    let base = "tests/fixtures/skills/agent/backend/token-auth";
    ["skill.yaml", "sharp-edges.yaml", "validations.yaml"]
        .iter()
        .map(|file| fixture(&format!("{base}/{file}")))
        .collect()
}

#[test]
fn the_skills_importer_never_panics_on_mangled_packs() {
    let runtime = runtime();
    let (store, _database) = runtime.block_on(fresh_store(Backend::Sqlite));
    let bases = skill_files();
    let actor = codifier::domain::Actor {
        label: "local".into(),
        tool: "fuzz".into(),
    };
    let files = [
        "skill.yaml",
        "sharp-edges.yaml",
        "validations.yaml",
        "collaboration.yaml",
    ];
    let strategy = proptest::collection::vec(inputs::yaml(bases.clone()), 4);
    fuzz("skills importer", strategy, |texts| {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let folder = dir.path().join("fuzz").join("a-skill");
        std::fs::create_dir_all(&folder).map_err(|e| e.to_string())?;
        for (file, value) in files.iter().zip(texts) {
            std::fs::write(folder.join(file), inputs::yaml_text(&bases, value))
                .map_err(|e| e.to_string())?;
        }
        let options = codifier::guardrails::import::Options { dry_run: true };
        runtime
            .block_on(codifier::guardrails::import::import(
                &store,
                &actor,
                dir.path(),
                options,
            ))
            .map(|_| ())
            .map_err(|error| format!("the import stopped instead of skipping: {error:#}"))
    });
}

#[test]
fn the_bearer_key_parser_lets_in_nothing_but_the_key_or_the_operator_token() {
    let runtime = runtime();
    let (store, _database) = runtime.block_on(fresh_store(Backend::Sqlite));
    let key = runtime.block_on(async {
        let actor = codifier::store::Actor {
            label: "local".into(),
            tool: "fuzz".into(),
        };
        let project = store.create_project(&actor, "p", None).await.unwrap();
        let generated = codifier::auth::keys::generate().unwrap();
        let new = codifier::store::NewApiKey {
            project_id: project.id,
            prefix: generated.prefix.clone(),
            hash: generated.hash,
            role: Role::Read,
            label: None,
        };
        store.create_api_key(&actor, &new).await.unwrap();
        generated.key
    });
    let verifier = KeyVerifier::new(store.clone(), Some(OPERATOR_TOKEN), Duration::from_secs(60));
    let strategy = prop_oneof![
        inputs::header(),
        (any::<Index>(), any::<char>()).prop_map({
            let key = key.clone();
            move |(at, c)| {
                let mut text: Vec<char> = format!("Bearer {key}").chars().collect();
                let at = at.index(text.len());
                text[at] = c;
                text.into_iter().collect()
            }
        }),
    ];
    fuzz("bearer key parser", strategy, |header| {
        let _ = prefix_of(header);
        // Only well-shaped keys reach argon2 here, so the verifier is throttled for the rest.
        let may_hash = header
            .split_whitespace()
            .last()
            .and_then(prefix_of)
            .is_some();
        let verified = runtime.block_on(verifier.verify_header_with(Some(header), None, may_hash));
        let token = header.split_once(' ').map(|(_, token)| token.trim());
        match verified {
            Ok(_) if token == Some(key.as_str()) || token == Some(OPERATOR_TOKEN) => Ok(()),
            Ok(identity) => Err(format!("`{header}` was let in as {identity:?}")),
            Err(_) => Ok(()),
        }
    });
}

/// Tool names and their argument names, from the server's own list.
async fn tool_shapes(client: &crate::clients::Client) -> Vec<(String, Vec<String>)> {
    let tools = client.list_all_tools().await.expect("tools/list");
    tools
        .into_iter()
        .map(|tool| {
            let properties = tool
                .input_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|properties| properties.keys().cloned().collect())
                .unwrap_or_default();
            (tool.name.to_string(), properties)
        })
        .collect()
}

#[test]
fn every_tool_answers_arbitrary_arguments_without_breaking_the_server() {
    let runtime = runtime();
    let (server, client, shapes) = runtime.block_on(async {
        let server = TestServer::start(Backend::Sqlite).await;
        let project = server.project("fuzz").await;
        let key = server.key(project.id, Role::Admin).await;
        let client = crate::clients::streamable(&server.url("/mcp"), &key).await;
        let shapes = tool_shapes(&client).await;
        (server, client, shapes)
    });
    assert!(shapes.len() > 5, "the server lists its tools");
    let arguments = (
        any::<Index>(),
        proptest::collection::vec((any::<Index>(), any::<bool>(), inputs::json()), 0..6),
    );
    fuzz("tool arguments", arguments, |(tool, fields)| {
        let (name, properties) = &shapes[tool.index(shapes.len())];
        let mut arguments = serde_json::Map::new();
        for (field, known, value) in fields {
            let field = match properties.is_empty() || !*known {
                true => format!("x{}", field.index(4)),
                false => properties[field.index(properties.len())].clone(),
            };
            arguments.insert(field, value.clone());
        }
        let call = rmcp::model::CallToolRequestParams::new(name.clone()).with_arguments(arguments);
        runtime.block_on(async {
            let answer = tokio::time::timeout(super::SLOW_CASE, client.call_tool(call)).await;
            match answer {
                Err(_) => Err(format!(
                    "{name} did not answer within {:?}",
                    super::SLOW_CASE
                )),
                Ok(Ok(_)) | Ok(Err(rmcp::ServiceError::McpError(_))) => Ok(()),
                Ok(Err(other)) => Err(format!("{name}: {other}")),
            }
        })
    });
    runtime.block_on(async {
        let health = reqwest::get(server.url("/health")).await.unwrap();
        assert_eq!(health.status(), 200);
        let _ = client.cancel().await;
        server.stop().await;
    });
}

#[test]
fn deeply_nested_input_is_refused_by_every_parser_without_a_stack_overflow() {
    let deep_sql = format!("SELECT {}1{}", "(".repeat(100_000), ")".repeat(100_000));
    assert!(SelectQuery::parse(&deep_sql).is_err());
    let deep_yaml = format!("{}1{}", "[".repeat(100_000), "]".repeat(100_000));
    let templates = Templates::load(None).unwrap();
    assert!(codifier::playbooks::loader::parse("deep.yaml", &deep_yaml, &templates).is_err());
    let deep_block = (0..20_000)
        .map(|n| format!("{}- a\n", " ".repeat(n)))
        .collect::<String>();
    assert!(codifier::playbooks::loader::parse("deep.yaml", &deep_block, &templates).is_err());
}

#[test]
fn a_yaml_alias_bomb_is_refused_quickly() {
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for n in 1..10 {
        let previous = (b'a' + n - 1) as char;
        let name = (b'a' + n) as char;
        bomb.push_str(&format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{previous}"); 9].join(",")
        ));
    }
    // And one within serde_norway's alias-jump limit that still expands to nine million values.
    let wide = format!(
        "id: x\nname: &a [{}]\nrole: [{}]\n",
        vec!["x"; 3000].join(","),
        vec!["*a"; 3000].join(",")
    );
    let templates = Templates::load(None).unwrap();
    for bomb in [bomb, wide] {
        let started = std::time::Instant::now();
        let error = codifier::playbooks::loader::parse("bomb.yaml", &bomb, &templates).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}: {error}",
            started.elapsed()
        );
    }
}

/// A random-seed run of the skills importer once took the test process to 24 GB: a mutated pack
/// file whose YAML aliases expand to hundreds of millions of values. Such a file is now a
/// skip saying so, read in bounded memory.
#[test]
fn a_skills_pack_file_whose_aliases_expand_without_bound_is_skipped_quickly() {
    let runtime = runtime();
    let (store, _database) = runtime.block_on(fresh_store(Backend::Sqlite));
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("pack").join("a-skill");
    std::fs::create_dir_all(&folder).unwrap();
    let bases = skill_files();
    std::fs::write(folder.join("skill.yaml"), &bases[0]).unwrap();
    // 15 KB: one anchored list of 3,000 items and 3,000 aliases to it, nine million values.
    let bomb = format!(
        "defaults: &a [{}]\nsharp_edges: [{}]\n",
        vec!["x"; 3000].join(","),
        vec!["*a"; 3000].join(",")
    );
    std::fs::write(folder.join("sharp-edges.yaml"), bomb).unwrap();
    let actor = codifier::domain::Actor {
        label: "local".into(),
        tool: "fuzz".into(),
    };
    let started = std::time::Instant::now();
    let report = runtime
        .block_on(codifier::guardrails::import::import(
            &store,
            &actor,
            dir.path(),
            codifier::guardrails::import::Options { dry_run: true },
        ))
        .expect("the import goes on");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let skip = report
        .skips
        .iter()
        .find(|skip| skip.file.ends_with("sharp-edges.yaml"))
        .expect("the file is reported");
    assert_eq!(skip.reason, "unreadable_file");
    assert!(
        skip.detail
            .contains("too large once its aliases are expanded"),
        "{}",
        skip.detail
    );
    assert_eq!(report.skills.usable, 1, "the skill itself is imported");
}
