//! Scopes: `read`, `write` and `admin` are the roles. A client's scope caps what the consent page
//! may grant, the token answers with the scope it got, a refresh may narrow it but never widen
//! it, and a refresh naming another resource is refused without spending its token.

use codifier::domain::Role;
use serde_json::{Value, json};

use super::*;
use crate::clients::{call, ok, refused, streamable};
use crate::helpers::{Backend, TestServer, backends};

/// The query of an authorization request asking for `scope`.
fn scoped(
    server: &TestServer,
    client_id: &str,
    challenge: &str,
    scope: &str,
) -> Vec<(String, String)> {
    let mut query = request(server, client_id, challenge);
    query.push(("scope".into(), scope.into()));
    query
}

/// Refreshes with `extra` parameters; (status, body).
async fn refresh(
    server: &TestServer,
    client_id: &str,
    token: &str,
    extra: &[(&str, &str)],
) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", client_id),
    ];
    form.extend_from_slice(extra);
    token_request(server, &form).await
}

#[tokio::test]
async fn both_metadata_documents_advertise_the_read_write_and_admin_scopes() {
    let server = TestServer::start(Backend::Sqlite).await;
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/oauth-protected-resource",
    ] {
        let document: Value = http()
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            document["scopes_supported"],
            json!(["read", "write", "admin"]),
            "{path}: {document}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_write_key_approving_the_read_scope_yields_a_token_that_acts_as_read_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("scoped").await;
        let key = server.key(project.id, Role::Write).await;
        let client_id = register(&server, REDIRECT).await;
        let (verifier, challenge) = pkce();
        let query = scoped(&server, &client_id, &challenge, "read");

        let (page, csrf) = open(&server, &query).await;
        let html = page.text().await.unwrap();
        assert!(
            html.contains("id=\"scope\"") && html.contains("<strong>read</strong> scope"),
            "the page shows the scope asked: {html}"
        );
        let review = post_consent(
            &server,
            &query,
            &csrf,
            &[("key", &key), ("action", "review")],
        )
        .await;
        let html = review.text().await.unwrap();
        assert!(
            html.contains("<option value=\"read\"") && !html.contains("<option value=\"write\""),
            "only roles within the scope are offered: {html}"
        );
        let widened = post_consent(
            &server,
            &query,
            &csrf,
            &[("key", &key), ("role", "write"), ("action", "approve")],
        )
        .await;
        assert_eq!(widened.status(), 400);
        assert!(
            widened
                .text()
                .await
                .unwrap()
                .contains("asked for the `read` scope"),
            "the person cannot grant more than the client asked"
        );

        let code = approve(&server, &query, &key, "").await;
        let (status, body) = exchange(&server, &client_id, &code, &verifier).await;
        assert_eq!(
            (status, body["scope"].as_str()),
            (200, Some("read")),
            "{body}"
        );
        let access = body["access_token"].as_str().unwrap();
        let client = streamable(&server.url("/mcp"), access).await;
        let message = refused(
            &call(
                &client,
                "update_memory",
                json!({"project_id": "scoped", "memory_type": "rule", "title": "No",
                   "content": {"text": "a read-scoped token cannot write"}}),
            )
            .await,
        );
        assert!(message.contains("`read` role"), "{backend:?}: {message}");
        ok(&call(&client, "fetch_context", json!({"project_id": "scoped"})).await);
        client.cancel().await.ok();

        server.stop().await;
    }
}

#[tokio::test]
async fn asking_for_every_scope_grants_the_keys_role_and_words_that_are_not_roles_are_ignored() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("wide").await;
    let key = server.key(project.id, Role::Write).await;
    let client_id = register(&server, REDIRECT).await;
    // What SDKs send from `scopes_supported`; a hosted client's own scope word (Claude.ai has
    // sent `claudeai`), which must not lock it out; and role words among others, which still narrow.
    for (asked, granted) in [
        ("read write admin offline_access", "write"),
        ("claudeai", "write"),
        ("read everything", "read"),
    ] {
        let (verifier, challenge) = pkce();
        let query = scoped(&server, &client_id, &challenge, asked);
        let code = approve(&server, &query, &key, "").await;
        let (status, body) = exchange(&server, &client_id, &code, &verifier).await;
        assert_eq!(
            (status, body["scope"].as_str()),
            (200, Some(granted)),
            "scope `{asked}` with a write key: {body}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn the_operator_token_cannot_approve_a_narrowed_scope() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    let query = scoped(&server, &client_id, &challenge, "read");
    let (_, csrf) = open(&server, &query).await;
    let response = post_consent(
        &server,
        &query,
        &csrf,
        &[
            ("key", crate::helpers::OPERATOR_TOKEN),
            ("action", "approve"),
        ],
    )
    .await;
    assert_eq!(response.status(), 400);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("cannot be narrowed")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_refresh_may_narrow_the_scope_but_never_widen_it_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("refresh-scope").await;
        let key = server.key(project.id, Role::Write).await;
        let (client_id, _, refresh_token) = tokens_for(&server, &key, "").await;

        let (status, body) =
            refresh(&server, &client_id, &refresh_token, &[("scope", "admin")]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{backend:?}: {body}"
        );
        let (status, body) =
            refresh(&server, &client_id, &refresh_token, &[("scope", "read")]).await;
        assert_eq!(
            (status, body["scope"].as_str()),
            (200, Some("read")),
            "{backend:?}: a refused widening does not spend the token: {body}"
        );
        let access = body["access_token"].as_str().unwrap().to_owned();
        let next = body["refresh_token"].as_str().unwrap().to_owned();
        let client = streamable(&server.url("/mcp"), &access).await;
        let message = refused(
            &call(
                &client,
                "update_memory",
                json!({"project_id": "refresh-scope", "memory_type": "rule", "title": "No",
                   "content": {"text": "narrowed by refresh"}}),
            )
            .await,
        );
        assert!(message.contains("`read` role"), "{backend:?}: {message}");
        client.cancel().await.ok();

        let (status, body) = refresh(&server, &client_id, &next, &[("scope", "write")]).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "{backend:?}: narrowed for good: {body}"
        );
        let (status, body) = refresh(&server, &client_id, &next, &[]).await;
        assert_eq!(
            (status, body["scope"].as_str()),
            (200, Some("read")),
            "{body}"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_refresh_for_another_resource_is_refused_and_leaves_the_family_working_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("target").await;
        let key = server.key(project.id, Role::Read).await;
        let (client_id, _, first) = tokens_for(&server, &key, "").await;
        let mcp = server.url("/mcp");
        let (status, body) = refresh(&server, &client_id, &first, &[("resource", &mcp)]).await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap().to_owned();
        let rotated = body["refresh_token"].as_str().unwrap().to_owned();

        let (status, body) = refresh(
            &server,
            &client_id,
            &rotated,
            &[("resource", "https://other.example/mcp")],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_target")),
            "{backend:?}: {body}"
        );
        assert_eq!(
            bearer_status(&server, &access, "target").await,
            200,
            "{backend:?}: the family is not revoked"
        );
        let (status, body) = refresh(&server, &client_id, &rotated, &[("resource", &mcp)]).await;
        assert_eq!(
            status, 200,
            "{backend:?}: the refused request did not spend the token: {body}"
        );
        let fresh = body["access_token"].as_str().unwrap().to_owned();
        assert_eq!(bearer_status(&server, &fresh, "target").await, 200);
        assert_eq!(bearer_status(&server, &access, "target").await, 200);
        server.stop().await;
    }
}
