//! `/.well-known/oauth-protected-resource`: clients that probe for OAuth get a proper answer,
//! naming an authorization server when one is configured and saying bearer keys are used when not.

use serde_json::Value;

use crate::helpers::{Backend, TestServer};

async fn get_json(url: &str) -> (u16, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The `WWW-Authenticate` header of the 401 a call without a key gets.
async fn challenge_without_a_key(server: &TestServer) -> String {
    let refused = reqwest::Client::new()
        .post(server.url("/mcp"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    refused.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn with_oauth_off_and_no_authorization_server_the_document_says_bearer_keys_are_used() {
    let server =
        TestServer::start_with(Backend::Sqlite, |config| config.oauth.enabled = false).await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (status, document) = get_json(&server.url(path)).await;
        assert_eq!(status, 200, "{path} answers without a key");
        assert_eq!(document["resource"], server.url("/mcp"));
        assert_eq!(document["bearer_methods_supported"][0], "header");
        assert!(document.get("authorization_servers").is_none());
        assert!(
            document["codifier_authentication"]
                .as_str()
                .unwrap()
                .contains("Authorization: Bearer")
        );
    }
    let challenge = challenge_without_a_key(&server).await;
    assert!(!challenge.contains("resource_metadata"), "{challenge}");
    server.stop().await;
}

#[tokio::test]
async fn a_configured_authorization_server_is_named_and_401s_point_at_the_document() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.public_url = Some("https://codifier.example".into());
        config.authorization_servers = vec!["https://auth.example".into()];
    })
    .await;
    let (status, document) = get_json(&server.url("/.well-known/oauth-protected-resource")).await;
    assert_eq!(status, 200);
    assert_eq!(document["resource"], "https://codifier.example/mcp");
    assert_eq!(document["authorization_servers"][0], "https://auth.example");

    let challenge = challenge_without_a_key(&server).await;
    assert!(
        challenge.contains(
            "resource_metadata=\"https://codifier.example/.well-known/oauth-protected-resource\""
        ),
        "{challenge}"
    );
    server.stop().await;
}

#[tokio::test]
async fn the_document_is_refused_for_a_host_that_is_not_served() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = reqwest::Client::new()
        .get(server.url("/.well-known/oauth-protected-resource"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    server.stop().await;
}
