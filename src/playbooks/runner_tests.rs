//! The runner with stand-in capabilities (a packer and a warehouse that answer from memory):
//! what the server runs alone, what reaches later steps, and the 100 KB cap. The real MCP
//! interface is exercised in `tests/api/playbooks.rs`; these are the paths no build can reach yet.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::Catalog;
use super::runner::{Advance, Caller, Engine, Start};
use super::steps::{DataQuery, PackRequest, PackedRepository, Skills};
use super::view::SessionView;
use crate::auth::Identity;
use crate::embeddings::service::Embeddings;
use crate::store::{Actor, Project, Store, sqlite::SqliteStore};

#[derive(Default)]
struct Warehouse {
    queries: Mutex<Vec<String>>,
    huge: bool,
}

#[async_trait]
impl DataQuery for Warehouse {
    async fn list_tables(&self, _: Uuid, _: Option<&str>) -> Result<Value, String> {
        Ok(json!(["orders", "customers"]))
    }
    async fn describe_tables(
        &self,
        _: Uuid,
        tables: &[String],
        _: Option<&str>,
    ) -> Result<Value, String> {
        Ok(json!({ "described": tables, "orders": [{"name": "churned_at", "type": "timestamp"}] }))
    }
    async fn execute_query(&self, _: Uuid, sql: &str, _: Option<&str>) -> Result<Value, String> {
        self.queries.lock().unwrap().push(sql.to_owned());
        if self.huge {
            return Ok(json!({ "rows": vec!["row"; 40_000] }));
        }
        Ok(json!({ "rows": [["2026-03", 42]] }))
    }
}

#[derive(Default)]
struct Packer {
    packed: Mutex<Vec<(String, Identity)>>,
}

#[async_trait]
impl Skills for Packer {
    async fn pack_repo(&self, request: PackRequest) -> Result<PackedRepository, String> {
        self.packed
            .lock()
            .unwrap()
            .push((request.url.clone(), request.identity));
        Ok(PackedRepository {
            url: request.url,
            snapshot_id: Some(Uuid::new_v4()),
            version: Some(1),
            commit: Some("abc123".into()),
            file_count: 12,
            token_count: 3400,
            file_tree: "src/\n  billing/LEDGER-TREE-MARKER.rs".into(),
            summary: None,
        })
    }
}

struct Fixture {
    engine: Engine,
    project: Project,
    _dir: tempfile::TempDir,
}

async fn fixture(skills: Arc<dyn Skills>, data: Arc<dyn DataQuery>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::connect(&url).await.unwrap());
    store.migrate().await.unwrap();
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    let project = store.create_project(&actor, "p", None).await.unwrap();
    let catalog = Arc::new(Catalog::embedded().unwrap());
    let engine = Engine::new(catalog, store, skills, data, Embeddings::disabled());
    Fixture {
        engine,
        project,
        _dir: dir,
    }
}

impl Fixture {
    fn caller(&self) -> Caller<'_> {
        Caller {
            project: &self.project,
            identity: &Identity::Local,
            tool: "test",
            sampler: None,
        }
    }

    async fn start(&self, playbook: &str, input: Value) -> SessionView {
        let start = Start {
            playbook_id: playbook.into(),
            session_id: None,
            input: Some(input.as_object().unwrap().clone()),
        };
        self.engine.start(self.caller(), start).await.unwrap()
    }

    async fn answer(&self, view: &SessionView, value: Value) -> SessionView {
        let current = view.current.as_ref().expect("a current step");
        let key = current.input.as_ref().expect("an input").key.clone();
        let mut input = Map::new();
        input.insert(key, value);
        let advance = Advance {
            session_id: view.session_id,
            step_id: Some(current.id.clone()),
            input,
            skip: false,
            abandon: false,
        };
        self.engine.advance(self.caller(), advance).await.unwrap()
    }
}

fn current(view: &SessionView) -> &str {
    view.current.as_ref().map_or("<none>", |c| c.id.as_str())
}

fn generate_prompt(view: &SessionView) -> &str {
    &view
        .current
        .as_ref()
        .unwrap()
        .generate
        .as_ref()
        .unwrap()
        .prompt
}

#[tokio::test]
async fn research_runs_its_data_queries_alone_and_their_results_reach_the_synthesis() {
    let warehouse = Arc::new(Warehouse::default());
    let f = fixture(Arc::new(super::steps::NoSkills), warehouse.clone()).await;
    let view = f
        .start(
            "research-and-analyze",
            json!({"objective": "Why did churn rise?"}),
        )
        .await;
    let view = f.answer(&view, json!("March only")).await;
    // The schema was listed by the server: the next question shows the tables.
    assert_eq!(current(&view), "choose-tables");
    assert!(view.current.as_ref().unwrap().prompt.contains("customers"));
    let view = f.answer(&view, json!(["orders"])).await;
    assert_eq!(current(&view), "generate-queries");
    assert!(
        generate_prompt(&view).contains("churned_at"),
        "the description reaches the query plan"
    );
    let plan = "queries:\n  - id: Q1\n    sql: SELECT 1\n  - id: Q2\n    sql: SELECT 2\n";
    let view = f.answer(&view, json!(plan)).await;
    assert_eq!(current(&view), "synthesize");
    assert_eq!(*warehouse.queries.lock().unwrap(), ["SELECT 1", "SELECT 2"]);
    assert!(
        generate_prompt(&view).contains("2026-03"),
        "the results reach the synthesis"
    );
    let view = f.answer(&view, json!("# Findings")).await;
    assert_eq!(view.status, crate::store::SessionStatus::Completed);
}

#[tokio::test]
async fn packed_repositories_reach_the_rules_and_the_architecture_summary() {
    let packer = Arc::new(Packer::default());
    let f = fixture(packer.clone(), Arc::new(super::steps::NoDataSource)).await;
    let urls =
        json!({"repository_urls": ["https://example.com/a.git", "https://example.com/b.git"]});
    let view = f.start("brownfield-onboard", urls).await;
    assert_eq!(
        current(&view),
        "extra-context",
        "packing ran without a round trip"
    );
    assert_eq!(packer.packed.lock().unwrap().len(), 2);
    let view = f.answer(&view, json!("")).await;
    assert!(generate_prompt(&view).contains("LEDGER-TREE-MARKER"));
    let view = f.answer(&view, json!("RULES")).await;
    assert!(generate_prompt(&view).contains("LEDGER-TREE-MARKER"));
    assert!(generate_prompt(&view).contains("RULES"));
}

#[tokio::test]
async fn a_query_result_over_100_kb_is_kept_cut_with_a_notice() {
    let warehouse = Arc::new(Warehouse {
        huge: true,
        ..Warehouse::default()
    });
    let f = fixture(Arc::new(super::steps::NoSkills), warehouse).await;
    let view = f
        .start("research-and-analyze", json!({"objective": "Size?"}))
        .await;
    let view = f.answer(&view, json!("")).await;
    let view = f.answer(&view, json!(["orders"])).await;
    let view = f
        .answer(&view, json!("queries:\n  - id: Q1\n    sql: SELECT 1\n"))
        .await;
    let note = view
        .outline
        .iter()
        .find(|s| s.id == "run-queries")
        .unwrap()
        .note
        .clone();
    assert!(note.unwrap().contains("only its first 100 KB"));
}

#[tokio::test]
async fn a_query_data_result_is_recorded_in_the_session_capped() {
    let f = fixture(
        Arc::new(super::steps::NoSkills),
        Arc::new(super::steps::NoDataSource),
    )
    .await;
    let view = f
        .start("research-and-analyze", json!({"objective": "x"}))
        .await;
    let actor = Actor {
        label: "local".into(),
        tool: "query_data".into(),
    };
    let big = json!({"rows": vec!["r"; 60_000]});
    let notice = f
        .engine
        .record(&f.project, &actor, view.session_id, "adhoc_query", big)
        .await
        .unwrap();
    assert!(notice.unwrap().contains("100 KB"));
    let bad = f
        .engine
        .record(&f.project, &actor, view.session_id, "Bad Key", json!(1))
        .await;
    assert!(bad.is_err());
}
