//! The skills library through a real MCP client on both stores: `codifier skills import` (the
//! binary, and the function it calls) with every skip reason, idempotence, updates in place
//! and removals; `find_skills`; every key reads the library, no one writes it over MCP, and it
//! is never a project to list, switch to or act on.

use std::path::{Path, PathBuf};
use std::process::Command;

use codifier::domain::guardrail::LIBRARY_PROJECT;
use codifier::domain::{Actor, Role};
use codifier::guardrails::import::{self, Options, Report};
use serde_json::{Value, json};

use crate::clients::{self, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

fn messy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/skills/messy")
}

async fn import_tree(server: &TestServer, dir: &Path) -> Report {
    let actor = Actor {
        label: "local".into(),
        tool: "cli:skills import".into(),
    };
    import::import(&server.store, &actor, dir, Options::default())
        .await
        .expect("import")
}

/// (usable, created, updated, unchanged, removed) of a tally in the JSON report.
fn counts(tally: &Value) -> [u64; 5] {
    ["usable", "created", "updated", "unchanged", "removed"].map(|k| tally[k].as_u64().unwrap())
}

/// Copies a fixture tree, so a test may change it.
fn copy_tree(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn the_import_binary_reports_every_skip_with_its_file_item_and_reason_and_a_second_run_changes_nothing()
 {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let run = || {
            let output = Command::new(env!("CARGO_BIN_EXE_codifier"))
                .args(["skills", "import", "--json"])
                .arg(messy())
                .env("DATABASE_URL", &server.database.url)
                .env_remove("API_AUTH_TOKEN")
                .output()
                .expect("run codifier");
            let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
            assert!(output.status.success(), "{backend:?}: {stderr}");
            serde_json::from_slice::<Value>(&output.stdout).expect("JSON report")
        };
        let first = run();
        assert_eq!(counts(&first["skills"]), [3, 3, 0, 0, 0], "{backend:?}");
        assert_eq!(
            counts(&first["sharp_edges"]),
            [4, 4, 0, 0, 0],
            "{backend:?}"
        );
        assert_eq!(
            counts(&first["validations"]),
            [5, 5, 0, 0, 0],
            "{backend:?}"
        );
        let skipped = |kind: &str| first[kind]["skipped"].clone();
        assert_eq!(
            skipped("skills"),
            json!({"duplicate_skill": 1, "empty_file": 1, "unreadable_file": 1}),
            "{backend:?}"
        );
        assert_eq!(
            skipped("sharp_edges"),
            json!({"duplicate_id": 1, "no_id": 1, "no_summary": 1, "unknown_severity": 1})
        );
        assert_eq!(
            skipped("validations"),
            json!({"bad_glob": 1, "conditional": 1, "does_not_compile": 1, "fails_test_case": 1,
                   "inverted": 1, "no_pattern": 1, "not_regex": 2})
        );
        assert_eq!(
            first["detection_dropped"],
            json!({"detection_does_not_compile": 1, "detection_not_regex": 1})
        );
        let skips: Vec<(String, String, String)> = first["skips"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let item = s["item"].as_str().unwrap_or("-").to_owned();
                let file = s["file"].as_str().unwrap().to_owned();
                (file, item, s["reason"].as_str().unwrap().to_owned())
            })
            .collect();
        for expected in [
            ("data/broken-yaml/skill.yaml", "-", "unreadable_file"),
            ("data/empty-skill/skill.yaml", "-", "empty_file"),
            ("data/plain-lists/sharp-edges.yaml", "-", "empty_file"),
            ("data/plain-lists/validations.yaml", "-", "unreadable_file"),
            (
                "web/forms-kit-copy/skill.yaml",
                "forms-kit",
                "duplicate_skill",
            ),
            ("web/forms-kit/sharp-edges.yaml", "#3", "no_id"),
            (
                "web/forms-kit/sharp-edges.yaml",
                "strange-severity",
                "unknown_severity",
            ),
            (
                "web/forms-kit/sharp-edges.yaml",
                "double-submit",
                "duplicate_id",
            ),
            (
                "web/forms-kit/sharp-edges.yaml",
                "nothing-to-say",
                "no_summary",
            ),
            (
                "web/forms-kit/sharp-edges.yaml",
                "lost-input",
                "detection_does_not_compile",
            ),
            (
                "web/forms-kit/sharp-edges.yaml",
                "prose-detection",
                "detection_not_regex",
            ),
            (
                "web/forms-kit/validations.yaml",
                "label-review",
                "not_regex",
            ),
            (
                "web/forms-kit/validations.yaml",
                "submit-checklist",
                "not_regex",
            ),
            (
                "web/forms-kit/validations.yaml",
                "broken-regex",
                "does_not_compile",
            ),
            (
                "web/forms-kit/validations.yaml",
                "fails-own-case",
                "fails_test_case",
            ),
            (
                "web/forms-kit/validations.yaml",
                "requires-csrf",
                "inverted",
            ),
            (
                "web/forms-kit/validations.yaml",
                "submit-without-schema",
                "conditional",
            ),
            (
                "web/forms-kit/validations.yaml",
                "nothing-to-run",
                "no_pattern",
            ),
            ("web/forms-kit/validations.yaml", "bad-glob", "bad_glob"),
        ] {
            let wanted = (
                expected.0.to_owned(),
                expected.1.to_owned(),
                expected.2.to_owned(),
            );
            assert!(
                skips.contains(&wanted),
                "{backend:?}: {expected:?} in {skips:?}"
            );
        }
        assert_eq!(
            skips.len(),
            19,
            "{backend:?}: nothing else skipped: {skips:?}"
        );

        let second = run();
        assert_eq!(
            counts(&second["skills"]),
            [3, 0, 0, 3, 0],
            "{backend:?}: again"
        );
        assert_eq!(
            counts(&second["sharp_edges"]),
            [4, 0, 0, 4, 0],
            "{backend:?}"
        );
        assert_eq!(
            counts(&second["validations"]),
            [5, 0, 0, 5, 0],
            "{backend:?}"
        );
        let audit = server.store.list_audit(LIBRARY_PROJECT, 100).await.unwrap();
        assert_eq!(
            audit.len(),
            12,
            "{backend:?}: one entry per item, none for the rerun"
        );
    }
}

#[tokio::test]
async fn a_changed_tree_updates_in_place_removes_what_left_and_keeps_what_it_could_not_read() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let dir = tempfile::tempdir().unwrap();
        copy_tree(&messy(), dir.path());
        import_tree(&server, dir.path()).await;
        let edges = dir.path().join("web/forms-kit/sharp-edges.yaml");
        let text = std::fs::read_to_string(&edges).unwrap();
        std::fs::write(
            &edges,
            text.replace("until the response arrives", "while sending"),
        )
        .unwrap();
        std::fs::remove_file(dir.path().join("data/map-style/validations.yaml")).unwrap();
        let checks = dir.path().join("web/forms-kit/validations.yaml");
        std::fs::write(&checks, "validations: [unclosed\n").unwrap();

        let dry = import::import(
            &server.store,
            &Actor {
                label: "local".into(),
                tool: "test".into(),
            },
            dir.path(),
            Options { dry_run: true },
        )
        .await
        .unwrap();
        assert_eq!(
            (dry.sharp_edges.updated, dry.validations.removed),
            (1, 1),
            "{backend:?}"
        );
        let changed = import_tree(&server, dir.path()).await;
        assert_eq!(changed.sharp_edges.updated, 1, "{backend:?}: in place");
        assert_eq!(changed.validations.removed, 1, "{backend:?}: left the tree");
        assert_eq!(changed.validations.usable, 0, "{backend:?}: none read");

        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let skill = ok(&call(&client, "find_skills", json!({"id": "forms-kit"})).await);
        let detail = &skill["skill"];
        assert_eq!(
            detail["validations"].as_array().unwrap().len(),
            4,
            "{backend:?}: kept"
        );
        let solution = &detail["sharp_edges"][0]["solution"];
        assert_eq!(solution, "Disable the button while sending.", "{backend:?}");
        let migrations = ok(&call(&client, "find_skills", json!({"id": "sql-migrations"})).await);
        assert_eq!(
            migrations["skill"]["validations"],
            json!([]),
            "{backend:?}: removed"
        );

        let back = import_tree(&server, &messy()).await;
        assert_eq!(back.sharp_edges.updated, 1, "{backend:?}");
        assert_eq!(
            (back.validations.created, back.validations.unchanged),
            (1, 4),
            "{backend:?}"
        );
        let id = codifier::domain::guardrail::library_item_id(
            codifier::domain::guardrail::LibraryItem::SharpEdge,
            "forms-kit",
            "double-submit",
        );
        let history = server
            .store
            .memory_history(LIBRARY_PROJECT, id)
            .await
            .unwrap();
        assert_eq!(history.len(), 2, "{backend:?}: a revision per change");
    }
}

#[tokio::test]
async fn find_skills_ranks_by_words_filters_by_stack_and_returns_a_whole_skill() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        import_tree(&server, &messy()).await;
        let mine = server.project("mine").await;
        let key = server.key(mine.id, Role::Read).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        let ids = |found: &Value| -> Vec<String> {
            found["skills"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let by_stack = ok(&call(&client, "find_skills", json!({"stack": "POSTGRES"})).await);
        assert_eq!(
            ids(&by_stack),
            ["sql-migrations", "plain-lists"],
            "{backend:?}: stack, then tags"
        );
        let by_trigger = ok(&call(&client, "find_skills", json!({"stack": "schema change"})).await);
        assert_eq!(
            ids(&by_trigger),
            ["sql-migrations"],
            "{backend:?}: triggers"
        );
        let words = json!({"query": "accessible web forms submit"});
        let by_words = ok(&call(&client, "find_skills", words).await);
        assert_eq!(ids(&by_words)[0], "forms-kit", "{backend:?}");
        let narrowed = json!({"query": "accessible web forms", "stack": "postgres"});
        let none = ok(&call(&client, "find_skills", narrowed).await);
        assert_eq!(
            ids(&none),
            Vec::<String>::new(),
            "{backend:?}: not that stack"
        );
        let result = call(&client, "find_skills", json!({"id": "forms-kit"})).await;
        let skill = ok(&result)["skill"].clone();
        assert_eq!(skill["name"], "Forms Kit", "{backend:?}");
        assert_eq!(skill["patterns"][0]["name"], "Controlled inputs");
        assert_eq!(skill["handoffs"][0]["to"], "file-uploads");
        let edges: Vec<&str> = skill["sharp_edges"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            edges,
            ["double-submit", "lost-input", "prose-detection"],
            "{backend:?}"
        );
        assert_eq!(
            skill["sharp_edges"][1]["symptoms"],
            json!(["people retype everything"])
        );
        assert_eq!(
            skill["sharp_edges"][1]["detection_pattern"],
            "window\\.location\\s*="
        );
        let checks: Vec<&str> = skill["validations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            checks,
            [
                "no-password-in-state",
                "no-inline-onclick-submit",
                "fetch-needs-timeout",
                "no-alert-errors"
            ],
            "{backend:?}: most severe first"
        );
        assert_eq!(
            skill["validations"][0]["patterns"],
            json!(["(?i)password\\s*:"])
        );
        assert_eq!(
            skill["validations"][0]["applies_to"],
            json!(["**/store/*.ts"])
        );
        let text = crate::clients::text(&result);
        assert!(
            text.contains("### Sharp edges (3)") && text.contains("A slow submit"),
            "{text}"
        );
        let missing = refused(&call(&client, "find_skills", json!({"id": "nope"})).await);
        assert!(missing.contains("no skill `nope`"), "{missing}");
    }
}

#[tokio::test]
async fn a_key_reads_the_library_but_never_writes_it_nor_sees_another_project_through_it() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        import_tree(&server, &messy()).await;
        let (mine, other) = (server.project("mine").await, server.project("other").await);
        let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let own_edge = json!({"project_id": "other", "memory_type": "sharp_edge",
            "title": "Our forms double submit", "tags": ["react", "skill:forms-kit"],
            "content": {"id": "ours", "summary": "Our forms double submit", "severity": "error"}});
        ok(&call(&operator, "update_memory", own_edge).await);
        let key = server.key(mine.id, Role::Admin).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        let skill = ok(&call(&client, "find_skills", json!({"id": "forms-kit"})).await);
        assert_eq!(
            skill["skill"]["sharp_edges"].as_array().unwrap().len(),
            3,
            "{backend:?}: library only"
        );
        let react = ok(&call(&client, "find_skills", json!({"stack": "react"})).await);
        assert_eq!(react["skills"].as_array().unwrap().len(), 1, "{backend:?}");
        let edge_id = codifier::domain::guardrail::library_item_id(
            codifier::domain::guardrail::LibraryItem::SharpEdge,
            "forms-kit",
            "double-submit",
        )
        .to_string();
        for project in [LIBRARY_PROJECT.to_string(), "(skills library)".to_owned()] {
            let write = json!({"project_id": project, "id": edge_id, "title": "hijacked"});
            refused(&call(&client, "update_memory", write).await);
            let delete = json!({"project_id": project, "id": edge_id});
            refused(&call(&client, "delete_memory", delete).await);
        }
        let through_mine = json!({"project_id": "mine", "id": edge_id, "title": "hijacked"});
        let not_here = refused(&call(&client, "update_memory", through_mine).await);
        assert!(
            not_here.contains("not in this project"),
            "{backend:?}: {not_here}"
        );
        let reread = ok(&call(&client, "find_skills", json!({"id": "forms-kit"})).await);
        assert_eq!(
            reread["skill"]["sharp_edges"][0]["summary"],
            "A slow submit gets clicked twice"
        );
        let theirs = json!({"project_id": other.id.to_string()});
        refused(&call(&client, "fetch_context", theirs).await);
        let own = ok(&call(&client, "fetch_context", json!({"project_id": "mine"})).await);
        assert_eq!(
            own["memories"],
            json!([]),
            "{backend:?}: no library item in a project"
        );
    }
}

#[tokio::test]
async fn a_projects_own_sharp_edges_and_validations_are_checked_and_skills_are_refused() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("mine").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let write = |kind: &str, content: Value| json!({"project_id": "mine", "memory_type": kind, "title": "t", "content": content});
        let skill =
            refused(&call(&client, "update_memory", write("skill", json!({"id": "s"}))).await);
        assert!(
            skill.contains("codifier skills import"),
            "{backend:?}: {skill}"
        );
        let edge = json!({"id": "e", "summary": "s", "detection_pattern": "fetch((?!x)"});
        let broken = refused(&call(&client, "update_memory", write("sharp_edge", edge)).await);
        assert!(
            broken.contains("content.detection_pattern"),
            "{backend:?}: {broken}"
        );
        let check = json!({"id": "v", "name": "n", "message": "m", "severity": "high",
            "patterns": ["console\\.log"]});
        let severity = refused(&call(&client, "update_memory", write("validation", check)).await);
        assert!(
            severity.contains("content.severity"),
            "{backend:?}: {severity}"
        );
        let check = json!({"id": "v", "name": "n", "message": "m", "severity": "warning",
            "patterns": ["console\\.log(?!\\(\\))"], "applies_to": ["src/**/*.ts"]});
        let stored = ok(&call(&client, "update_memory", write("validation", check)).await);
        assert_eq!(stored["outcome"], "created", "{backend:?}");
    }
}

#[tokio::test]
async fn the_library_is_never_listed_switched_to_or_written_over_mcp() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let mine = server.project("mine").await;
        let key = server.key(mine.id, Role::Admin).await;
        let library = LIBRARY_PROJECT.to_string();
        for secret in [key.as_str(), OPERATOR_TOKEN] {
            let client = clients::streamable(&server.url("/mcp"), secret).await;
            let listed = ok(&call(&client, "manage_projects", json!({"operation": "list"})).await);
            let ids: Vec<_> = listed["projects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids, [mine.id.to_string()], "{backend:?}: only `mine`");
            let switch = json!({"operation": "switch", "project_id": library});
            refused(&call(&client, "manage_projects", switch).await);
            let write = json!({"project_id": library, "memory_type": "rule", "title": "t",
                "content": {"text": "x"}});
            refused(&call(&client, "update_memory", write).await);
            let read = json!({"project_id": library});
            refused(&call(&client, "fetch_context", read).await);
        }
    }
}
