//! `/metrics` and request ids: what an operator watching a deployed server sees.

use std::process::{Command, Stdio};
use std::time::Duration;

use codifier::domain::Role;
use serde_json::json;

use crate::clients::{self, call, ok, refused};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends};

async fn scrape(server: &TestServer, key: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

/// The value of one sample line, e.g. `codifier_tool_calls_total{tool="x",outcome="ok"}`.
fn sample(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test]
async fn metrics_count_tool_calls_by_outcome_sessions_and_store_operations() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("metrics").await;
        let key = server.key(project.id, Role::Write).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        let series = |outcome: &str| {
            format!("codifier_tool_calls_total{{tool=\"fetch_context\",outcome=\"{outcome}\"}}")
        };
        let before = scrape(&server, OPERATOR_TOKEN).await.text().await.unwrap();
        let ok_before = sample(&before, &series("ok")).unwrap_or(0.0);
        let errors_before = sample(&before, &series("tool_error")).unwrap_or(0.0);

        ok(&call(
            &client,
            "fetch_context",
            json!({ "project_id": project.id }),
        )
        .await);
        refused(
            &call(
                &client,
                "fetch_context",
                json!({ "project_id": project.id, "limit": 0 }),
            )
            .await,
        );

        let response = scrape(&server, OPERATOR_TOKEN).await;
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let after = response.text().await.unwrap();
        assert!(
            sample(&after, &series("ok")).unwrap() >= ok_before + 1.0,
            "{after}"
        );
        assert!(sample(&after, &series("tool_error")).unwrap() >= errors_before + 1.0);
        assert!(after.contains(
            "codifier_tool_call_duration_seconds_bucket{tool=\"fetch_context\",outcome=\"ok\",le=\"+Inf\"}"
        ));
        assert!(
            sample(
                &after,
                "codifier_active_sessions{transport=\"streamable_http\"}"
            )
            .unwrap()
                >= 1.0,
            "the open client is counted"
        );
        assert!(after.contains(
            "codifier_store_operation_duration_seconds_count{operation=\"fetch_memories\"}"
        ));
        assert!(after.contains("codifier_embedding_backlog "));
        assert!(after.contains("codifier_sidecar_restarts_total "));
        client.cancel().await.unwrap();
        server.stop().await;
    }
}

#[tokio::test]
async fn metrics_give_sqlites_heap_and_what_malloc_hands_out_against_what_it_holds() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("heap").await;
    let key = server.key(project.id, Role::Write).await;
    let client = clients::streamable(&server.url("/mcp"), &key).await;
    ok(&call(
        &client,
        "fetch_context",
        json!({ "project_id": project.id }),
    )
    .await);
    let exposition = scrape(&server, OPERATOR_TOKEN).await.text().await.unwrap();
    let bytes = |name: &str| {
        sample(&exposition, &format!("{name} "))
            .unwrap_or_else(|| panic!("{name} missing from {exposition}"))
    };
    let (sqlite, page_cache) = (
        bytes("codifier_sqlite_heap_bytes"),
        bytes("codifier_sqlite_page_cache_bytes"),
    );
    assert!(sqlite > 0.0, "an open SQLite store has allocated: {sqlite}");
    assert!(
        page_cache <= sqlite,
        "page caches are part of SQLite's heap"
    );
    let (in_use, held) = (
        bytes("codifier_malloc_in_use_bytes"),
        bytes("codifier_malloc_held_bytes"),
    );
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(in_use > 0.0, "glibc malloc has handed blocks out");
        assert!(
            held >= in_use,
            "malloc holds at least what it handed out: {held} < {in_use}"
        );
    }
    client.cancel().await.unwrap();
    server.stop().await;
}

#[tokio::test]
async fn metrics_are_refused_to_project_keys() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("p").await;
    let key = server.key(project.id, Role::Admin).await;
    let response = scrape(&server, &key).await;
    assert_eq!(response.status(), 403);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"], "operator_only");
    let anonymous = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    server.stop().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_sane_one_sent_is_kept() {
    let server = TestServer::start(Backend::Sqlite).await;
    let http = reqwest::Client::new();
    let generated = http.get(server.url("/health")).send().await.unwrap();
    let id = generated.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 32, "a fresh id: {id}");
    let kept = http
        .get(server.url("/health"))
        .header("x-request-id", "trace-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(kept.headers()["x-request-id"], "trace-42.a_b");
    let replaced = http
        .get(server.url("/health"))
        .header("x-request-id", "has spaces and {braces}")
        .send()
        .await
        .unwrap();
    assert_ne!(
        replaced.headers()["x-request-id"],
        "has spaces and {braces}"
    );
    server.stop().await;
}

/// A free local port (bound, read and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn json_logs_name_the_tool_project_key_prefix_and_request_but_never_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("c.db").display());
    let run = |args: &[&str]| crate::helpers::codifier_json(&database, args);
    let project = run(&["projects", "create", "--name", "logs"]);
    let created = run(&["keys", "create", "--project", "logs", "--role", "write"]);
    let key = created["key"].as_str().unwrap().to_owned();
    let prefix = created["prefix"].as_str().unwrap().to_owned();

    let addr_file = dir.path().join("addr");
    let metrics_port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &database)
        .env("CODIFIER_EMBEDDINGS", "none")
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("CODIFIER_LOG_FORMAT", "json")
        .env("CODIFIER_LOG", "info")
        .env(
            "CODIFIER_METRICS_LISTEN",
            format!("127.0.0.1:{metrics_port}"),
        )
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
    let client = clients::streamable(&format!("http://{address}/mcp"), &key).await;
    ok(&call(&client, "fetch_context", json!({ "project_id": "logs" })).await);
    client.cancel().await.unwrap();

    // The separate metrics address answers without a key.
    let metrics = reqwest::get(format!("http://127.0.0.1:{metrics_port}/metrics"))
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("codifier_tool_calls_total{tool=\"fetch_context\"")
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    let call_line = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["message"] == "tool call")
        .unwrap_or_else(|| panic!("no tool call line in:\n{logs}"));
    assert_eq!(call_line["tool"], "fetch_context");
    assert_eq!(call_line["project"], "logs");
    assert_eq!(call_line["caller"], format!("key:{prefix}"));
    assert_eq!(call_line["outcome"], "ok");
    assert!(call_line["duration_ms"].as_f64().is_some());
    assert_eq!(call_line["request_id"].as_str().unwrap().len(), 32);
    assert!(!logs.contains(&key), "the key never reaches the logs");
    assert!(project["id"].is_string());
}
