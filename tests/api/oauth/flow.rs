//! Discovery, clients (registered and by metadata document) and the authorization request's
//! checks: PKCE S256 only, exact redirect URIs, this server as the only resource, CSRF.

use serde_json::{Value, json};

use super::*;
use crate::helpers::{Backend, TestServer, backends};

#[tokio::test]
async fn the_metadata_names_this_server_as_its_own_authorization_server() {
    let server = TestServer::start(Backend::Sqlite).await;
    let base = server.url("");
    let metadata: Value = reqwest::get(server.url("/.well-known/oauth-authorization-server"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(metadata["issuer"], base);
    assert_eq!(
        metadata["authorization_endpoint"],
        format!("{base}/oauth/authorize")
    );
    assert_eq!(metadata["token_endpoint"], format!("{base}/oauth/token"));
    assert_eq!(
        metadata["registration_endpoint"],
        format!("{base}/oauth/register")
    );
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(metadata["client_id_metadata_document_supported"], true);

    let resource: Value = reqwest::get(server.url("/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resource["authorization_servers"], json!([base]));
    let refused = http()
        .post(server.url("/mcp"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let challenge = refused.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{base}/.well-known/oauth-protected-resource\""
        )),
        "{challenge}"
    );
    server.stop().await;
}

#[tokio::test]
async fn plain_or_missing_pkce_challenges_are_sent_back_as_clear_errors() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    for (method, challenge, expected) in [
        (Some("plain"), Some(challenge.as_str()), "plain` is refused"),
        (Some("S256"), None, "`code_challenge` is missing"),
        (
            None,
            Some(challenge.as_str()),
            "`code_challenge_method` is missing",
        ),
    ] {
        let query: Vec<(String, String)> = request(&server, &client_id, "x")
            .into_iter()
            .filter(|(k, _)| !k.starts_with("code_challenge"))
            .chain(method.map(|m| ("code_challenge_method".into(), m.into())))
            .chain(challenge.map(|c| ("code_challenge".into(), c.into())))
            .collect();
        let (response, _) = open(&server, &query).await;
        assert_eq!(response.status(), 303);
        let location = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
        assert_eq!(pairs["error"], "invalid_request");
        assert!(pairs["error_description"].contains(expected), "{pairs:?}");
        assert_eq!(pairs["state"], "st-123");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_redirect_uri_the_client_did_not_declare_exactly_gets_no_code() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    for other in [
        format!("{REDIRECT}/more"),
        "http://localhost:7777/callback?x=1".to_owned(),
        "https://evil.example/callback".to_owned(),
    ] {
        let query: Vec<(String, String)> = request(&server, &client_id, &challenge)
            .into_iter()
            .map(|(k, v)| {
                if k == "redirect_uri" {
                    (k, other.clone())
                } else {
                    (k, v)
                }
            })
            .collect();
        let (response, _) = open(&server, &query).await;
        assert_eq!(response.status(), 400, "{other}");
        assert!(response.headers().get("location").is_none());
        assert!(response.text().await.unwrap().contains("match exactly"));
    }
    server.stop().await;
}

#[tokio::test]
async fn a_request_for_another_resource_is_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    let query: Vec<(String, String)> = request(&server, &client_id, &challenge)
        .into_iter()
        .map(|(k, v)| {
            if k == "resource" {
                (k, "https://other.example/mcp".into())
            } else {
                (k, v)
            }
        })
        .collect();
    let (response, _) = open(&server, &query).await;
    assert_eq!(response.status(), 303);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.contains("error=invalid_target"), "{location}");
    server.stop().await;
}

#[tokio::test]
async fn registration_refuses_plain_http_redirects_to_other_machines() {
    let server = TestServer::start(Backend::Sqlite).await;
    let response = http()
        .post(server.url("/oauth/register"))
        .json(&json!({"redirect_uris": ["http://evil.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_redirect_uri");
    server.stop().await;
}

#[tokio::test]
async fn a_consent_form_without_its_csrf_cookie_is_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("csrf").await;
    let key = server.key(project.id, codifier::domain::Role::Write).await;
    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    let query = request(&server, &client_id, &challenge);
    let (_, csrf) = open(&server, &query).await;
    // The page's cookie, but a form token that is not its own (a forged form cannot read it).
    let mut form = query.clone();
    form.extend([
        ("csrf".into(), "0".repeat(64)),
        ("key".into(), key.clone()),
        ("action".into(), "approve".into()),
    ]);
    let forged = http()
        .post(server.url("/oauth/authorize"))
        .header("origin", format!("http://{}", server.address))
        .header("cookie", format!("codifier_oauth_csrf={csrf}"))
        .form_body(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let cross_site = http()
        .post(server.url("/oauth/authorize"))
        .header("origin", "https://evil.example")
        .header("cookie", format!("codifier_oauth_csrf={csrf}"))
        .form_body(&[("csrf", csrf.as_str()), ("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    server.stop().await;
}

/// Serves one client ID metadata document on 127.0.0.1; returns its URL.
async fn serve_document(redirect: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client.json", listener.local_addr().unwrap());
    let document = json!({
        "client_id": url, "client_name": "Document client", "client_uri": "https://client.example",
        "redirect_uris": [redirect], "token_endpoint_auth_method": "none"
    });
    let app = axum::Router::new().route(
        "/client.json",
        axum::routing::get(move || async move { axum::Json(document) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test]
async fn a_client_known_by_its_metadata_document_gets_tokens_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start_with(backend, |config| {
            config.oauth.loopback_client_documents = true;
        })
        .await;
        let project = server.project("cimd").await;
        let key = server.key(project.id, codifier::domain::Role::Read).await;
        let client_id = serve_document(REDIRECT).await;
        let (verifier, challenge) = pkce();
        let query = request(&server, &client_id, &challenge);
        let (page, _) = open(&server, &query).await;
        let html = page.text().await.unwrap();
        assert!(
            html.contains("Document client") && html.contains("localhost"),
            "{html}"
        );
        let code = approve(&server, &query, &key, "").await;
        let (status, body) = exchange(&server, &client_id, &code, &verifier).await;
        assert_eq!(status, 200, "{backend:?}: {body}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_metadata_document_on_an_internal_address_is_refused_without_the_test_switch() {
    let server = TestServer::start(Backend::Sqlite).await;
    let client_id = serve_document(REDIRECT).await;
    let (_, challenge) = pkce();
    let (page, _) = open(&server, &request(&server, &client_id, &challenge)).await;
    assert_eq!(page.status(), 400);
    assert!(page.text().await.unwrap().contains("https"));
    let internal = "https://127.0.0.1:9/client.json";
    let (page, _) = open(&server, &request(&server, internal, &challenge)).await;
    assert_eq!(page.status(), 400);
    let html = page.text().await.unwrap();
    assert!(html.contains("own network"), "{html}");
    server.stop().await;
}
