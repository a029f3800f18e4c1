//! What a token may do: exactly what its key may, narrowed to the role chosen on the consent
//! page (never widened), over MCP and the other bearer routes.

use codifier::domain::Role;
use serde_json::json;

use super::*;
use crate::clients::{call, ok, refused, streamable};
use crate::helpers::{Backend, TestServer, backends};

#[tokio::test]
async fn a_token_acts_as_its_key_in_an_mcp_tool_call_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("oauth-tools").await;
        let key = server.key(project.id, Role::Write).await;
        let (_, access, _) = tokens_for(&server, &key, "").await;
        let client = streamable(&server.url("/mcp"), &access).await;
        let written = ok(&call(
            &client,
            "update_memory",
            json!({"project_id": "oauth-tools", "memory_type": "rule", "title": "Via OAuth",
                   "content": {"text": "written with an access token"}}),
        )
        .await);
        assert_eq!(written["outcome"], "created", "{backend:?}");
        let other = server.project("someone-else").await;
        let message =
            refused(&call(&client, "fetch_context", json!({"project_id": other.id})).await);
        assert!(message.contains("another project"), "{message}");
        client.cancel().await.ok();
        assert_eq!(bearer_status(&server, &access, "oauth-tools").await, 200);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_write_key_can_grant_read_only_and_never_admin() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("narrow").await;
    let key = server.key(project.id, Role::Write).await;

    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    let query = request(&server, &client_id, &challenge);
    let (_, csrf) = open(&server, &query).await;
    let review = post_consent(
        &server,
        &query,
        &csrf,
        &[("key", &key), ("action", "review")],
    )
    .await;
    assert_eq!(review.status(), 200);
    let html = review.text().await.unwrap();
    assert!(
        html.contains("narrow") && html.contains(">write<"),
        "shows project and role: {html}"
    );
    assert!(
        !html.contains("value=\"admin\""),
        "admin is not offered to a write key"
    );
    let widened = post_consent(
        &server,
        &query,
        &csrf,
        &[("key", &key), ("role", "admin"), ("action", "approve")],
    )
    .await;
    assert_eq!(widened.status(), 400);
    assert!(widened.text().await.unwrap().contains("never `admin`"));

    let (_, access, _) = tokens_for(&server, &key, "read").await;
    let client = streamable(&server.url("/mcp"), &access).await;
    let message = refused(
        &call(
            &client,
            "update_memory",
            json!({"project_id": "narrow", "memory_type": "rule", "title": "No",
               "content": {"text": "a read token cannot write"}}),
        )
        .await,
    );
    assert!(message.contains("`read` role"), "{message}");
    ok(&call(&client, "fetch_context", json!({"project_id": "narrow"})).await);
    client.cancel().await.ok();
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_key_shows_the_form_again_with_the_request_kept() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    let query = request(&server, &client_id, &challenge);
    let (_, csrf) = open(&server, &query).await;
    let wrong = format!("cdf_{}_{}", "a".repeat(10), "b".repeat(40));
    let again = post_consent(
        &server,
        &query,
        &csrf,
        &[("key", &wrong), ("action", "approve")],
    )
    .await;
    assert_eq!(again.status(), 401);
    let html = again.text().await.unwrap();
    assert!(html.contains("not known to the server"), "{html}");
    assert!(
        html.contains(&challenge) && html.contains(&client_id),
        "the request rides along"
    );
    assert!(!html.contains(&wrong), "a refused key is not echoed back");
    server.stop().await;
}

#[tokio::test]
async fn a_token_approved_with_the_operator_token_acts_as_the_operator() {
    let server = TestServer::start(Backend::Sqlite).await;
    server.project("op-one").await;
    let (_, access, _) = tokens_for(&server, crate::helpers::OPERATOR_TOKEN, "").await;
    let client = streamable(&server.url("/mcp"), &access).await;
    let listed = ok(&call(&client, "manage_projects", json!({"operation": "list"})).await);
    assert!(listed.to_string().contains("op-one"), "{listed}");
    client.cancel().await.ok();
    server.stop().await;
}

#[tokio::test]
async fn an_access_token_does_not_sign_in_to_the_console_as_its_key() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("console-token").await;
    let key = server.key(project.id, Role::Write).await;
    let (_, access, _) = tokens_for(&server, &key, "read").await;
    let response = http()
        .post(server.url("/console/sign-in"))
        .form_body(&[("key", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        401,
        "a narrowed token must not become its key"
    );
    server.stop().await;
}
