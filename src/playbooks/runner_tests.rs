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
use crate::domain::{Actor, Project};
use crate::embeddings::service::Embeddings;
use crate::store::{Store, sqlite::SqliteStore};

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
    /// Refuses what is not https, as the real packer refuses a local path over HTTP.
    async fn check_url(&self, _: &Identity, url: &str) -> Result<(), String> {
        if url.starts_with("https://") {
            Ok(())
        } else {
            Err("send an https:// URL".into())
        }
    }

    /// Packs every URL but those with `missing` in them, which fail as a clone would.
    async fn pack_repo(&self, request: PackRequest) -> Result<PackedRepository, String> {
        if request.url.contains("missing") {
            return Err("the repository was not found".into());
        }
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
            revise: false,
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
    assert_eq!(view.status, crate::domain::SessionStatus::Completed);
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
async fn query_data_results_are_recorded_in_the_session_capped_and_reach_the_synthesis() {
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
        .record(
            &f.project,
            &actor,
            view.session_id,
            "query_execute_query",
            big,
        )
        .await
        .unwrap();
    assert!(notice.unwrap().contains("100 KB"));
    let small = json!({"rows": [["SMALL-RESULT-MARKER"]]});
    let notice = f.engine.record(
        &f.project,
        &actor,
        view.session_id,
        "query_execute_query",
        small,
    );
    assert!(notice.await.unwrap().is_none());
    // Without a data source each query step fails and is skipped; the recorded results still
    // reach the synthesis.
    let skip = |view: &SessionView| Advance {
        session_id: view.session_id,
        step_id: view.current.as_ref().map(|c| c.id.clone()),
        input: Map::new(),
        skip: true,
        abandon: false,
        revise: false,
    };
    let view = f.engine.advance(f.caller(), skip(&view)).await.unwrap();
    assert_eq!(current(&view), "discover-schema");
    assert!(
        view.current
            .as_ref()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .contains("no Athena sidecar")
    );
    let view = f.engine.advance(f.caller(), skip(&view)).await.unwrap();
    let view = f.answer(&view, json!(["orders"])).await;
    assert!(
        view.current.as_ref().unwrap().error.is_some(),
        "describe failed"
    );
    let view = f.engine.advance(f.caller(), skip(&view)).await.unwrap();
    let view = f
        .answer(&view, json!("queries:\n  - id: Q1\n    sql: SELECT 1\n"))
        .await;
    let view = f.engine.advance(f.caller(), skip(&view)).await.unwrap();
    assert_eq!(current(&view), "synthesize");
    assert!(generate_prompt(&view).contains("SMALL-RESULT-MARKER"));
    let bad = f
        .engine
        .record(&f.project, &actor, view.session_id, "Bad Key", json!(1))
        .await;
    assert!(bad.is_err());
}

impl Fixture {
    async fn revise(&self, view: &SessionView, step: &str, input: Value) -> SessionView {
        let advance = Advance {
            session_id: view.session_id,
            step_id: Some(step.into()),
            input: input.as_object().unwrap().clone(),
            skip: false,
            abandon: false,
            revise: true,
        };
        self.engine.advance(self.caller(), advance).await.unwrap()
    }
}

#[tokio::test]
async fn one_repository_that_cannot_be_cloned_does_not_stop_the_others() {
    let packer = Arc::new(Packer::default());
    let f = fixture(packer.clone(), Arc::new(super::steps::NoDataSource)).await;
    let urls = json!({"repository_urls": ["https://example.com/missing.git", "https://example.com/b.git"]});
    let view = f.start("brownfield-onboard", urls).await;
    assert_eq!(current(&view), "extra-context");
    let pack = &view.outline[1];
    assert_eq!(pack.state, super::view::StepState::Done);
    let outcomes = pack.outcomes.as_ref().unwrap();
    assert_eq!(outcomes[0]["status"], "failed");
    assert!(outcomes[0]["error"].as_str().unwrap().contains("not found"));
    assert_eq!(outcomes[1]["status"], "packed");
    assert!(pack.note.as_ref().unwrap().contains("packed 1 of 2"));
    assert!(pack.note.as_ref().unwrap().contains("revise: true"));
}

#[tokio::test]
async fn answering_the_repositories_again_packs_again_and_regenerates_what_read_them() {
    let packer = Arc::new(Packer::default());
    let f = fixture(packer.clone(), Arc::new(super::steps::NoDataSource)).await;
    let view = f
        .start(
            "brownfield-onboard",
            json!({"repository_urls": ["https://example.com/missing.git"]}),
        )
        .await;
    assert_eq!(current(&view), "pack-repositories");
    assert!(
        view.current
            .as_ref()
            .unwrap()
            .error
            .as_ref()
            .unwrap()
            .contains("`repositories`")
    );
    let view = f
        .revise(
            &view,
            "repositories",
            json!({"repository_urls": ["https://example.com/a.git"]}),
        )
        .await;
    assert_eq!(current(&view), "extra-context");
    assert_eq!(view.outline[0].revisions, 1);
    let view = f.answer(&view, json!("notes")).await;
    let view = f.answer(&view, json!("RULES-1")).await;
    let view = f.answer(&view, json!("ARCH-1")).await;
    assert_eq!(view.status, crate::domain::SessionStatus::Completed);

    // A completed session reopens at the first step that reads the new answer; the user's own
    // answer in between (extra-context) is kept and not asked again.
    let view = f
        .revise(
            &view,
            "repositories",
            json!({"repository_urls": ["https://example.com/c.git"]}),
        )
        .await;
    assert_eq!(
        current(&view),
        "generate-rules",
        "packing ran again by itself"
    );
    assert_eq!(
        packer.packed.lock().unwrap().last().unwrap().0,
        "https://example.com/c.git"
    );
    let states: Vec<_> = view
        .outline
        .iter()
        .map(|s| (s.id.as_str(), s.state, s.runs_again))
        .collect();
    use super::view::StepState::*;
    assert_eq!(
        states,
        [
            ("repositories", Done, false),
            ("pack-repositories", Done, false),
            ("extra-context", Done, false),
            ("generate-rules", Current, true),
            ("generate-architecture", Pending, true),
        ]
    );
    assert!(generate_prompt(&view).contains("c.git"));
    let view = f.answer(&view, json!("RULES-2")).await;
    assert_eq!(current(&view), "generate-architecture");
    assert!(generate_prompt(&view).contains("RULES-2"));
    let view = f.answer(&view, json!("ARCH-2")).await;
    assert_eq!(view.status, crate::domain::SessionStatus::Completed);
}

#[tokio::test]
async fn a_repository_url_the_packer_would_refuse_is_refused_when_the_step_is_answered() {
    let f = fixture(
        Arc::new(Packer::default()),
        Arc::new(super::steps::NoDataSource),
    )
    .await;
    let start = Start {
        playbook_id: "brownfield-onboard".into(),
        session_id: None,
        input: Some(
            json!({"repository_urls": ["./here", "https://example.com/a.git"]})
                .as_object()
                .unwrap()
                .clone(),
        ),
    };
    let error = f
        .engine
        .start(f.caller(), start)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`./here`") && error.contains("send an https:// URL"),
        "{error}"
    );
    assert!(
        !error.contains("example.com"),
        "the good URL is not blamed: {error}"
    );
    let sessions = f.engine.sessions(&f.project, 10).await.unwrap();
    assert!(sessions.is_empty(), "nothing was created");
}

#[tokio::test]
async fn the_project_name_is_filled_in_from_the_project_and_can_be_changed() {
    let f = fixture(
        Arc::new(Packer::default()),
        Arc::new(super::steps::NoDataSource),
    )
    .await;
    let start = Start {
        playbook_id: "initialize-project".into(),
        session_id: None,
        input: None,
    };
    let view = f.engine.start(f.caller(), start).await.unwrap();
    assert_eq!(current(&view), "description");
    assert!(
        view.current
            .as_ref()
            .unwrap()
            .prompt
            .contains("Describe p ")
    );
    let view = f
        .revise(&view, "project-name", json!({"project_name": "Atlas"}))
        .await;
    assert_eq!(
        current(&view),
        "description",
        "no answered step reads the name yet"
    );
    assert!(
        view.current
            .as_ref()
            .unwrap()
            .prompt
            .contains("Describe Atlas ")
    );
}

#[test]
fn the_steps_that_read_a_key_are_found_through_the_keys_they_provide() {
    let catalog = Catalog::embedded().unwrap();
    let playbook = catalog.get("initialize-project").unwrap();
    let ids = |from: &str| -> Vec<&str> {
        super::revise::dependents(
            playbook,
            &catalog.templates,
            playbook.step_index(from).unwrap(),
        )
        .into_iter()
        .map(|(index, _)| playbook.steps[index].id.as_str())
        .collect()
    };
    // Requirements and the roadmap read the rules, which read the snapshots.
    assert_eq!(
        ids("repositories"),
        [
            "pack-repositories",
            "generate-rules",
            "generate-evals",
            "generate-requirements",
            "generate-roadmap"
        ]
    );
    assert!(ids("description").contains(&"generate-rules"));
    assert!(!ids("description").contains(&"pack-repositories"));
    assert!(
        !ids("description").contains(&"statement-of-work"),
        "answers never depend on answers"
    );
}

#[test]
fn a_call_without_revise_keeps_the_digest_sessions_already_stored() {
    let input = json!({"description": "Once."}).as_object().unwrap().clone();
    // sha256 of `{"input":{"description":"Once."},"skip":false}`, as before revisions existed.
    assert_eq!(
        super::runner::digest(&input, false, false),
        "a88be90207331e26cf8c92564661fa2d7ed90aa1ac6b79d11d0be5d646668dac"
    );
    assert_ne!(
        super::runner::digest(&input, false, true),
        super::runner::digest(&input, false, false),
        "answering a step again is not a retry of answering it"
    );
}
