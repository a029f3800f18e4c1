//! `find_skills` by meaning, with the real local model: the library is embedded in the
//! background like any project's memories, and a query that names no word of a skill finds it.

use std::time::Duration;

use codifier::config::EmbeddingsConfig;
use codifier::domain::guardrail::LIBRARY_PROJECT;
use codifier::domain::{Actor, EmbeddingModel, Role};
use codifier::guardrails::import::{self, Options};
use serde_json::{Value, json};

use crate::clients::{self, call, ok};
use crate::helpers::{TestServer, backends};
use crate::quality::model_dir;

fn ids(found: &Value) -> Vec<String> {
    found["skills"]
        .as_array()
        .expect("skills")
        .iter()
        .map(|skill| skill["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn find_skills_finds_by_meaning_a_skill_that_no_word_of_the_query_names() {
    let Some(dir) = model_dir() else { return };
    for backend in backends() {
        let embeddings = EmbeddingsConfig::Local {
            model_dir: dir.clone(),
            fetch: None,
        };
        let server = TestServer::start_with(backend, move |c| c.embeddings = embeddings).await;
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/skills/messy");
        let actor = Actor {
            label: "local".into(),
            tool: "skills import".into(),
        };
        import::import(&server.store, &actor, &root, Options::default())
            .await
            .expect("the pack imports");
        let model = EmbeddingModel {
            name: "all-MiniLM-L6-v2".into(),
            dimensions: 384,
        };
        let mut progress = (0, 1);
        for _ in 0..600 {
            progress = server
                .store
                .embedding_progress(LIBRARY_PROJECT, &model)
                .await
                .unwrap();
            if progress.1 > 0 && progress.0 == progress.1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            progress.1 > 0 && progress.0 == progress.1,
            "{backend:?}: the library was embedded in the background: {progress:?}"
        );

        let mine = server.project("mine").await;
        let key = server.key(mine.id, Role::Read).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        // The skill says "Changing a database schema without downtime"; its name, triggers,
        // stack and patterns share no word with this query.
        let query = "altering tables in production while users stay online";
        let words = json!({"query": query, "limit": 5});
        let found = ok(&call(&client, "find_skills", words).await);
        assert_eq!(
            ids(&found).first().map(String::as_str),
            Some("sql-migrations"),
            "{backend:?}: {found}"
        );
        let whole = ok(&call(&client, "find_skills", json!({"id": "sql-migrations"})).await);
        let text = whole["skill"].to_string().to_lowercase();
        let named: Vec<&str> = [
            "altering",
            "tables",
            "production",
            "users",
            "stay",
            "online",
        ]
        .into_iter()
        .filter(|word| text.contains(word))
        .collect();
        assert_eq!(
            named,
            Vec::<&str>::new(),
            "no word of the query is in the skill"
        );
        server.stop().await;
    }
}
