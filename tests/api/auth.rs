//! Keys, roles, hosts, limits and sessions at the HTTP edge, and sessions across a restart.

use std::time::Duration;

use codifier::domain::Role;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use serde_json::{Value, json};

use crate::clients::{self, call, ok, refused};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends};

const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// Posts a raw JSON-RPC body to `/mcp`.
async fn post_mcp(
    server: &TestServer,
    key: Option<&str>,
    session: Option<&str>,
    body: &str,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_owned());
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(session) = session {
        request = request
            .header("mcp-session-id", session)
            .header("mcp-protocol-version", "2025-06-18");
    }
    request.send().await.expect("POST /mcp")
}

async fn assert_unauthorized(response: reqwest::Response, code: &str) {
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let body: Value = response.json().await.expect("a JSON body");
    assert_eq!(body["error"], code, "{body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn health_answers_without_a_key() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn requests_without_a_valid_key_get_401_saying_which_problem() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("p").await;
    let key = server.key(project.id, Role::Write).await;
    assert_unauthorized(
        post_mcp(&server, None, None, INITIALIZE).await,
        "missing_api_key",
    )
    .await;
    assert_unauthorized(
        post_mcp(&server, Some("not-a-key"), None, INITIALIZE).await,
        "invalid_api_key",
    )
    .await;
    let last = if key.ends_with('a') { 'b' } else { 'a' };
    let wrong_secret = format!("{}{last}", &key[..key.len() - 1]);
    assert_unauthorized(
        post_mcp(&server, Some(&wrong_secret), None, INITIALIZE).await,
        "invalid_api_key",
    )
    .await;
    let basic = reqwest::Client::new()
        .get(server.url("/sse"))
        .header("authorization", "Basic abc")
        .send()
        .await
        .unwrap();
    assert_unauthorized(basic, "malformed_authorization").await;
    assert_eq!(
        post_mcp(&server, Some(&key), None, INITIALIZE)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_within_the_cache_time_after_cheap_rechecks() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let key = server.key(project.id, Role::Write).await;
        for _ in 0..3 {
            // The first request proves the key with argon2; after each 1 s window the server
            // re-reads the key's row instead, and the key keeps working.
            let response = post_mcp(&server, Some(&key), None, INITIALIZE).await;
            assert_eq!(response.status(), 200, "{backend:?}");
            tokio::time::sleep(Duration::from_millis(1100)).await;
        }
        server.revoke(&key).await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_unauthorized(
            post_mcp(&server, Some(&key), None, INITIALIZE).await,
            "revoked_api_key",
        )
        .await;
    }
}

#[tokio::test]
async fn a_wrong_secret_under_a_proven_prefix_is_refused_and_the_key_keeps_working() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("p").await;
    let key = server.key(project.id, Role::Read).await;
    let last = if key.ends_with('a') { 'b' } else { 'a' };
    let wrong_secret = format!("{}{last}", &key[..key.len() - 1]);
    for wait in [0, 1100] {
        assert_eq!(
            post_mcp(&server, Some(&key), None, INITIALIZE)
                .await
                .status(),
            200
        );
        // Once within the cache window, once after it, when the server asks the store again.
        tokio::time::sleep(Duration::from_millis(wait)).await;
        assert_unauthorized(
            post_mcp(&server, Some(&wrong_secret), None, INITIALIZE).await,
            "invalid_api_key",
        )
        .await;
        assert_eq!(
            post_mcp(&server, Some(&key), None, INITIALIZE)
                .await
                .status(),
            200,
            "the wrong secret did not spoil the proven key"
        );
    }
}

#[tokio::test]
async fn many_concurrent_first_requests_with_one_key_all_succeed_and_argon2_is_counted() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("p").await;
    let key = server.key(project.id, Role::Write).await;
    let requests = (0..16).map(|_| post_mcp(&server, Some(&key), None, INITIALIZE));
    for response in futures::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }
    let metrics = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verifications = metrics
        .lines()
        .find_map(|line| line.strip_prefix("codifier_api_key_argon2_verifications_total "))
        .and_then(|value| value.trim().parse::<u64>().ok())
        .expect("the argon2 counter in /metrics");
    // The counter is per process and tests share it, so only "at least this one" is certain
    // here; that it is exactly one per key is checked on the verifier itself.
    assert!(verifications >= 1, "{metrics}");
}

#[tokio::test]
async fn a_short_soak_with_a_project_key_stays_within_its_memory_bound() {
    let database = crate::helpers::fresh_database(Backend::Sqlite).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args([
            "bench",
            "--memories",
            "300",
            "--clients",
            "4",
            "--soak-secs",
            "20",
            "--soak-every-secs",
            "5",
            "--soak-cooldown-secs",
            "5",
            "--soak-max-mb",
            "150",
        ])
        .env("DATABASE_URL", &database.url)
        .env("CODIFIER_EMBEDDINGS", "none")
        // A 1 s key cache: before argon2 ran once per key, 20 s of this kept several hundred MB.
        .env("CODIFIER_KEY_CACHE_SECONDS", "1")
        .env_remove("API_AUTH_TOKEN")
        .env_remove("PORT")
        .output()
        .await
        .expect("run codifier bench");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("errors: 0"), "{stdout}");
    assert!(stdout.contains("<= 150 MB: met"), "{stdout}");
}

#[tokio::test]
async fn a_read_key_can_read_but_cannot_write() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let key = server.key(project.id, Role::Read).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        let memory = json!({"memory_type": "rule", "title": "t", "content": {"text": "x"}});
        let message = refused(&call(&client, "update_memory", memory).await);
        assert!(message.contains("`read` role"), "{message}");
        let fetched = ok(&call(&client, "fetch_context", json!({})).await);
        assert_eq!(fetched["count"], 0, "{backend:?}: nothing was written");
    }
}

#[tokio::test]
async fn a_key_for_one_project_can_never_reach_another() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let alpha = server.project("alpha").await;
        let beta = server.project("beta").await;
        let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let secret = json!({"project_id": "beta", "memory_type": "rule", "title": "Beta only", "content": {"text": "s"}});
        let beta_memory =
            ok(&call(&operator, "update_memory", secret).await)["memory"]["id"].clone();

        let key = server.key(alpha.id, Role::Admin).await;
        let client = clients::streamable(&server.url("/mcp"), &key).await;
        for beta_ref in [beta.id.to_string(), "beta".to_owned()] {
            let read =
                refused(&call(&client, "fetch_context", json!({"project_id": beta_ref})).await);
            assert!(read.contains("another project"), "{read}");
            let write =
                json!({"project_id": beta_ref, "memory_type": "rule", "title": "x", "content": {}});
            refused(&call(&client, "update_memory", write).await);
            refused(
                &call(
                    &client,
                    "delete_memory",
                    json!({"project_id": beta_ref, "id": beta_memory}),
                )
                .await,
            );
            refused(
                &call(
                    &client,
                    "manage_projects",
                    json!({"operation": "switch", "project_id": beta_ref}),
                )
                .await,
            );
        }
        // Naming its own project but another project's memory id finds nothing.
        refused(
            &call(
                &client,
                "delete_memory",
                json!({"project_id": "alpha", "id": beta_memory}),
            )
            .await,
        );
        let listed = ok(&call(&client, "manage_projects", json!({"operation": "list"})).await);
        assert_eq!(
            listed["projects"].as_array().unwrap().len(),
            1,
            "a key lists only its project"
        );
        let create = refused(
            &call(
                &client,
                "manage_projects",
                json!({"operation": "create", "name": "x"}),
            )
            .await,
        );
        assert!(create.contains("cannot create projects"), "{create}");
        let still = ok(&call(&operator, "fetch_context", json!({"project_id": "beta"})).await);
        assert_eq!(still["count"], 1, "{backend:?}: beta's memory is untouched");
    }
}

#[tokio::test]
async fn a_session_opened_by_one_key_is_refused_to_another() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("p").await;
    let (first, second) = (
        server.key(project.id, Role::Write).await,
        server.key(project.id, Role::Write).await,
    );
    let opened = post_mcp(&server, Some(&first), None, INITIALIZE).await;
    let session = opened.headers()["mcp-session-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let list = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{}}"#;
    let stolen = post_mcp(&server, Some(&second), Some(&session), list).await;
    assert_eq!(stolen.status(), 403);
    let body: Value = stolen.json().await.unwrap();
    assert_eq!(body["error"], "session_belongs_to_another_key");
    // Once the owner has used it, the server remembers the owner instead of asking the database.
    let own = post_mcp(&server, Some(&first), Some(&session), list).await;
    assert_eq!(
        own.status(),
        200,
        "the key that opened the session may use it"
    );
    let stolen = post_mcp(&server, Some(&second), Some(&session), list).await;
    assert_eq!(stolen.status(), 403, "refused by the remembered owner too");
    let operator = post_mcp(&server, Some(OPERATOR_TOKEN), Some(&session), list).await;
    assert_eq!(
        operator.status(),
        403,
        "not even the operator token may take over a session"
    );
}

#[tokio::test]
async fn a_host_that_is_not_allowed_is_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = reqwest::Client::new()
        .post(server.url("/mcp"))
        .header("host", "attacker.example")
        .bearer_auth(OPERATOR_TOKEN)
        .body(INITIALIZE)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "host_not_allowed");
}

#[tokio::test]
async fn an_oversized_request_body_is_refused_with_413() {
    let server = TestServer::start(Backend::Sqlite).await;
    let huge = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"ping","params":{{"pad":"{}"}}}}"#,
        "x".repeat(600 * 1024)
    );
    let response = post_mcp(&server, Some(OPERATOR_TOKEN), None, &huge).await;
    assert_eq!(response.status(), 413);
}

#[tokio::test]
async fn a_client_keeps_working_across_a_server_restart() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let (address, database) = (server.address, server.database.clone());
        let mut config = StreamableHttpClientTransportConfig::with_uri(server.url("/mcp"))
            .auth_header(OPERATOR_TOKEN);
        // Without this the client would quietly open a new session; the point is that it need not.
        config.reinit_on_expired_session = false;
        let client = clients::streamable_with(config).await;
        ok(&call(
            &client,
            "manage_projects",
            json!({"operation": "switch", "project_id": "p"}),
        )
        .await);
        server.stop().await;

        let restarted = TestServer::start_on(database, address).await;
        let memory =
            json!({"memory_type": "rule", "title": "after restart", "content": {"text": "x"}});
        let written = ok(&call(&client, "update_memory", memory).await);
        assert_eq!(
            written["outcome"], "created",
            "{backend:?}: the same session, with its active project"
        );
        restarted.stop().await;
    }
}

#[tokio::test]
async fn health_is_503_when_the_database_does_not_answer() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    use sqlx::Connection;
    let server = TestServer::start(Backend::Postgres).await;
    let name = server.database.url.rsplit('/').next().unwrap().to_owned();
    let admin_url = std::env::var("TEST_DATABASE_URL").unwrap();
    let mut admin = sqlx::PgConnection::connect(&admin_url).await.unwrap();
    sqlx::query(&format!("DROP DATABASE {name} WITH (FORCE)"))
        .execute(&mut admin)
        .await
        .unwrap();
    let response = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
}
