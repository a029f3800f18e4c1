//! The token endpoint's rules: codes are single use (a reused code revokes what it issued),
//! refresh tokens rotate (a reused one revokes the family), tokens outlive a restart, and a
//! revoked key refuses its tokens within the key-cache window.

use std::time::Duration;

use codifier::domain::Role;

use super::*;
use crate::helpers::{Backend, TestServer, backends};

/// Longer than the test servers' key-cache window (1 s).
const PAST_THE_WINDOW: Duration = Duration::from_millis(1200);

#[tokio::test]
async fn a_code_used_twice_revokes_the_tokens_it_issued_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("reuse").await;
        let key = server.key(project.id, Role::Read).await;
        let client_id = register(&server, REDIRECT).await;
        let (verifier, challenge) = pkce();
        let code = approve(&server, &request(&server, &client_id, &challenge), &key, "").await;

        let (wrong, body) = exchange(&server, &client_id, &code, &pkce().0).await;
        assert_eq!(
            (wrong, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{body}"
        );
        let (status, body) = exchange(&server, &client_id, &code, &verifier).await;
        assert_eq!(
            status, 200,
            "{backend:?}: a failed PKCE check does not burn the code: {body}"
        );
        let access = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(bearer_status(&server, &access, "reuse").await, 200);

        let (again, body) = exchange(&server, &client_id, &code, &verifier).await;
        assert_eq!(again, 400);
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{body}"
        );
        tokio::time::sleep(PAST_THE_WINDOW).await;
        assert_eq!(
            bearer_status(&server, &access, "reuse").await,
            401,
            "{backend:?}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_code_is_refused_for_another_client_redirect_or_resource() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("bound").await;
    let key = server.key(project.id, Role::Read).await;
    let client_id = register(&server, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let code = approve(&server, &request(&server, &client_id, &challenge), &key, "").await;
    let base = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let other_resource = "https://other.example/mcp".to_owned();
    let mcp = server.url("/mcp");
    for (extra, expected) in [
        (
            [
                ("client_id", "cdc_other"),
                ("redirect_uri", REDIRECT),
                ("resource", mcp.as_str()),
            ],
            "invalid_grant",
        ),
        (
            [
                ("client_id", client_id.as_str()),
                ("redirect_uri", "http://localhost:7777/other"),
                ("resource", mcp.as_str()),
            ],
            "invalid_grant",
        ),
        (
            [
                ("client_id", client_id.as_str()),
                ("redirect_uri", REDIRECT),
                ("resource", other_resource.as_str()),
            ],
            "invalid_target",
        ),
    ] {
        let form: Vec<(&str, &str)> = base.iter().copied().chain(extra).collect();
        let (status, body) = token_request(&server, &form).await;
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            (400, expected),
            "{body}"
        );
    }
    let (status, _) = exchange(&server, &client_id, &code, &verifier).await;
    assert_eq!(status, 200, "the refused attempts did not use the code up");
    server.stop().await;
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("rotate").await;
        let key = server.key(project.id, Role::Read).await;
        let (client_id, first_access, first_refresh) = tokens_for(&server, &key, "").await;
        let refresh = |token: String| {
            let (server, client_id) = (&server, client_id.clone());
            async move {
                token_request(
                    server,
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &token),
                        ("client_id", &client_id),
                    ],
                )
                .await
            }
        };
        let (status, body) = refresh(first_refresh.clone()).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        let second_access = body["access_token"].as_str().unwrap().to_owned();
        let second_refresh = body["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(second_refresh, first_refresh, "the refresh token rotates");
        assert_eq!(bearer_status(&server, &second_access, "rotate").await, 200);

        let (status, body) = refresh(first_refresh).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert!(
            body["error_description"]
                .as_str()
                .unwrap()
                .contains("revoked")
        );
        let (status, _) = refresh(second_refresh).await;
        assert_eq!(
            status, 400,
            "{backend:?}: the newest refresh token went with its family"
        );
        tokio::time::sleep(PAST_THE_WINDOW).await;
        for access in [first_access, second_access] {
            assert_eq!(
                bearer_status(&server, &access, "rotate").await,
                401,
                "{backend:?}"
            );
        }
        server.stop().await;
    }
}

#[tokio::test]
async fn revoking_the_key_refuses_its_tokens_within_the_key_cache_window_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("revoked").await;
        let key = server.key(project.id, Role::Write).await;
        let (client_id, access, refresh) = tokens_for(&server, &key, "").await;
        assert_eq!(bearer_status(&server, &access, "revoked").await, 200);
        server.revoke(&key).await;
        tokio::time::sleep(PAST_THE_WINDOW).await;
        let refused = http()
            .post(server.url("/mcp"))
            .bearer_auth(&access)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 401, "{backend:?}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(body["error"], "revoked_api_key", "{body}");
        let (status, body) = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "{backend:?}: {body}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn tokens_and_registrations_survive_a_restart() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("restart").await;
        let key = server.key(project.id, Role::Read).await;
        let (client_id, access, refresh) = tokens_for(&server, &key, "").await;
        let (address, database) = (server.address, server.database.clone());
        server.stop().await;
        let server = TestServer::start_on(database, address).await;
        assert_eq!(
            bearer_status(&server, &access, "restart").await,
            200,
            "{backend:?}"
        );
        let (status, body) = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &refresh),
                ("client_id", &client_id),
            ],
        )
        .await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_revoked_token_is_refused_and_an_expired_one_too() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.oauth.access_token = Duration::from_secs(1);
    })
    .await;
    let project = server.project("expiry").await;
    let key = server.key(project.id, Role::Read).await;
    let (_, short, _) = tokens_for(&server, &key, "").await;
    assert_eq!(bearer_status(&server, &short, "expiry").await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        bearer_status(&server, &short, "expiry").await,
        401,
        "expired"
    );

    let (_, access, _) = tokens_for(&server, &key, "").await;
    let response = http()
        .post(server.url("/oauth/revoke"))
        .form_body(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::sleep(PAST_THE_WINDOW).await;
    assert_eq!(
        bearer_status(&server, &access, "expiry").await,
        401,
        "revoked"
    );
    server.stop().await;
}
