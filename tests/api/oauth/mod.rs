//! The OAuth authorization server over our keys (issue 20), through its real HTTP interface:
//! metadata, registration and client ID metadata documents, the consent form (posted as a
//! browser would, with its CSRF cookie), the token endpoint, and tokens used over MCP.

mod flow;
mod grants;
mod housekeeping;
mod scope;
mod tokens;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::TestServer;

pub const REDIRECT: &str = "http://localhost:7777/callback";

/// An HTTP client that does not follow redirects (the tests read `Location`).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Extends a request with an urlencoded form body (reqwest's `form` feature is not built).
pub trait FormBody {
    fn form_body<T: serde::Serialize + ?Sized>(self, form: &T) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body<T: serde::Serialize + ?Sized>(self, form: &T) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).expect("an urlencoded form"))
    }
}

/// A PKCE pair: (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Registers a public client redirecting to `redirect`; returns its id.
pub async fn register(server: &TestServer, redirect: &str) -> String {
    let response = http()
        .post(server.url("/oauth/register"))
        .json(&json!({
            "client_name": "Test client", "redirect_uris": [redirect],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_endpoint_auth_method"], "none");
    body["client_id"].as_str().unwrap().to_owned()
}

/// The query of an authorization request.
pub fn request(server: &TestServer, client_id: &str, challenge: &str) -> Vec<(String, String)> {
    [
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("state", "st-123"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .chain([("resource".to_owned(), server.url("/mcp"))])
    .collect()
}

/// `GET /oauth/authorize`: the response, and the CSRF cookie it set.
pub async fn open(server: &TestServer, query: &[(String, String)]) -> (reqwest::Response, String) {
    let response = http()
        .get(format!(
            "{}?{}",
            server.url("/oauth/authorize"),
            serde_urlencoded::to_string(query).unwrap()
        ))
        .send()
        .await
        .unwrap();
    let csrf = response
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|cookie| cookie.strip_prefix("codifier_oauth_csrf="))
        .map(|rest| rest.split(';').next().unwrap().to_owned())
        .unwrap_or_default();
    (response, csrf)
}

/// Posts the consent form as the page would (same origin, CSRF cookie and field).
pub async fn post_consent(
    server: &TestServer,
    query: &[(String, String)],
    csrf: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form: Vec<(String, String)> = query.to_vec();
    form.push(("csrf".into(), csrf.into()));
    form.extend(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    http()
        .post(server.url("/oauth/authorize"))
        .header("origin", format!("http://{}", server.address))
        .header("cookie", format!("codifier_oauth_csrf={csrf}"))
        .form_body(&form)
        .send()
        .await
        .unwrap()
}

/// Approves `query` with `key` (and `role`, empty for the key's own); returns the code.
pub async fn approve(
    server: &TestServer,
    query: &[(String, String)],
    key: &str,
    role: &str,
) -> String {
    let (page, csrf) = open(server, query).await;
    assert_eq!(page.status(), 200, "{}", page.text().await.unwrap());
    let response = post_consent(
        server,
        query,
        &csrf,
        &[("key", key), ("role", role), ("action", "approve")],
    )
    .await;
    assert_eq!(response.status(), 303, "{}", response.text().await.unwrap());
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let url = url::Url::parse(&location).unwrap();
    assert!(location.starts_with(REDIRECT), "{location}");
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(param("state").as_deref(), Some("st-123"));
    assert!(!location.contains(key), "the key never appears in a URL");
    param("code").expect("a code")
}

/// Posts to the token endpoint.
pub async fn token_request(server: &TestServer, form: &[(&str, &str)]) -> (u16, Value) {
    let response = http()
        .post(server.url("/oauth/token"))
        .form_body(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// Exchanges a code.
pub async fn exchange(
    server: &TestServer,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("resource", &server.url("/mcp")),
        ],
    )
    .await
}

/// The whole flow for a registered client: (client id, access token, refresh token).
pub async fn tokens_for(server: &TestServer, key: &str, role: &str) -> (String, String, String) {
    let client_id = register(server, REDIRECT).await;
    let (verifier, challenge) = pkce();
    let code = approve(server, &request(server, &client_id, &challenge), key, role).await;
    let (status, body) = exchange(server, &client_id, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let access = body["access_token"].as_str().unwrap().to_owned();
    let refresh = body["refresh_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("cdo_at_") && refresh.starts_with("cdo_rt_"));
    (client_id, access, refresh)
}

/// The status of `GET /events` (a bearer route) with `token`: 200 or 401.
pub async fn bearer_status(server: &TestServer, token: &str, project: &str) -> u16 {
    http()
        .get(server.url(&format!("/events?project={project}")))
        .bearer_auth(token)
        .timeout(std::time::Duration::from_secs(2))
        .send()
        .await
        .map(|response| response.status().as_u16())
        .unwrap_or(0)
}
