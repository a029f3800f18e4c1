//! What the working-session tests share: a server with a small skills pack (the public layout:
//! `<group>/<skill>/skill.yaml` and `sharp-edges.yaml`) in its library, written as the
//! library's memories are filled (`codifier::domain::guardrail`) through the store's
//! one-transaction write, and small readers of results and telemetry.

use std::path::Path;

use codifier::domain::guardrail::{
    LIBRARY_PROJECT, LibraryItem, Severity, SharpEdge, Skill, library_item_id,
};
use codifier::domain::{Actor, GuardrailEventKind, MemoryDraft, MemoryType};
use serde_json::Value;

use crate::clients::{Client, call, ok};
use crate::helpers::TestServer;

fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn text(value: &Value, key: &str) -> String {
    value[key].as_str().unwrap_or_default().trim().to_owned()
}

fn draft(
    kind: MemoryType,
    title: String,
    content: Value,
    skill: &str,
    tags: Vec<String>,
    about: String,
) -> MemoryDraft {
    MemoryDraft {
        memory_type: kind,
        title,
        content,
        category: Some(skill.to_owned()),
        description: Some(about),
        confidence: 1.0,
        tags,
        source_role: None,
    }
}

/// Writes every skill and sharp edge of the pack at `dir` (relative to the crate) to the library.
pub async fn import_pack(server: &TestServer, dir: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut items = Vec::new();
    for group in std::fs::read_dir(&root).expect("the pack").flatten() {
        for folder in std::fs::read_dir(group.path()).expect("a group").flatten() {
            let skill = yaml(&folder.path().join("skill.yaml"));
            let record = Skill {
                id: text(&skill, "id"),
                name: text(&skill, "name"),
                description: text(&skill, "description"),
                stack: strings(&skill["stack"]),
                tags: strings(&skill["tags"]),
                triggers: strings(&skill["triggers"]),
                patterns: skill["patterns"].as_array().cloned().unwrap_or_default(),
                handoffs: skill["handoffs"].as_array().cloned().unwrap_or_default(),
                ..Skill::default()
            };
            let tags: Vec<String> = record
                .stack
                .iter()
                .chain(&record.tags)
                .map(|t| t.to_lowercase())
                .collect();
            let id = record.id.clone();
            items.push((
                library_item_id(LibraryItem::Skill, &id, ""),
                draft(
                    MemoryType::Skill,
                    record.name.clone(),
                    serde_json::to_value(&record).unwrap(),
                    &id,
                    tags.clone(),
                    record.description.clone(),
                ),
            ));
            let edges = folder.path().join("sharp-edges.yaml");
            for edge in yaml(&edges)["sharp_edges"].as_array().into_iter().flatten() {
                let record = SharpEdge {
                    skill: Some(id.clone()),
                    id: text(edge, "id"),
                    summary: text(edge, "summary"),
                    severity: Severity::parse(&text(edge, "severity")),
                    situation: text(edge, "situation"),
                    why: text(edge, "why"),
                    solution: text(edge, "solution"),
                    symptoms: strings(&edge["symptoms"]),
                    detection_pattern: edge["detection_pattern"].as_str().map(str::to_owned),
                };
                let mut edge_tags = tags.clone();
                edge_tags.extend(record.severity.map(|s| s.as_str().to_owned()));
                items.push((
                    library_item_id(LibraryItem::SharpEdge, &id, &record.id),
                    draft(
                        MemoryType::SharpEdge,
                        record.summary.clone(),
                        serde_json::to_value(&record).unwrap(),
                        &id,
                        edge_tags,
                        record.situation.clone(),
                    ),
                ));
            }
        }
    }
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    server
        .store
        .put_memories(LIBRARY_PROJECT, &actor, &items)
        .await
        .expect("the pack is written");
}

pub(super) const PACK: &str = "tests/fixtures/skills/agent";

/// A server with the fixture pack imported and a project `p` (its id returned).
pub(super) async fn server_with_library(backend: crate::helpers::Backend) -> (TestServer, String) {
    let server = TestServer::start(backend).await;
    import_pack(&server, PACK).await;
    let project = server.project("p").await;
    (server, project.id.to_string())
}

pub(super) fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) async fn events(server: &TestServer, project: &str, kind: GuardrailEventKind) -> u64 {
    let project = project.parse().expect("a project id");
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let counts = server
        .store
        .guardrail_event_counts(project, since)
        .await
        .expect("event counts");
    counts
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.count)
        .sum()
}

pub(super) async fn remember(client: &Client, arguments: Value) -> Value {
    ok(&call(client, "remember", arguments).await)
}
