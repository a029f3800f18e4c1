//! The forms that take a key — the console's sign-in and the OAuth consent page — are slowed
//! per client address exactly as bearer keys are: after the allowed wrong keys a 429 page with
//! `Retry-After`, other addresses unaffected, and a key this server already proved still gets in.

use std::time::Duration;

use codifier::auth::throttle::ThrottleConfig;
use codifier::domain::Role;

use super::{unknown_prefix, wrong_secret};
use crate::helpers::{Backend, TestServer};
use crate::oauth::{REDIRECT, http, open, pkce, post_consent, register, request};

async fn limited_server() -> TestServer {
    TestServer::start_with(Backend::Sqlite, |config| {
        config.auth_throttle = ThrottleConfig {
            max_failures: 2,
            window: Duration::from_secs(60),
            client_address_header: Some("x-forwarded-for".into()),
        };
    })
    .await
}

/// Posts the console's sign-in form from `address`.
async fn sign_in(server: &TestServer, key: &str, address: &str) -> reqwest::Response {
    http()
        .post(server.url("/console/sign-in"))
        .header("x-forwarded-for", address)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string([("key", key)]).unwrap())
        .send()
        .await
        .unwrap()
}

async fn assert_throttled_page(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let html = response.text().await.unwrap();
    assert!(
        html.contains(&format!("wait {wait} seconds")),
        "the page says how long: {html}"
    );
}

#[tokio::test]
async fn wrong_keys_at_the_console_sign_in_get_a_429_page_for_that_address_only() {
    let server = limited_server().await;
    let project = server.project("p").await;
    let key = server.key(project.id, Role::Read).await;
    let attacker = "10.2.0.1";
    assert_eq!(sign_in(&server, &key, attacker).await.status(), 303);
    for wrong in [wrong_secret(&key), unknown_prefix(1)] {
        assert_eq!(sign_in(&server, &wrong, attacker).await.status(), 401);
    }
    assert_throttled_page(sign_in(&server, &unknown_prefix(2), attacker).await).await;
    assert_throttled_page(sign_in(&server, &wrong_secret(&key), attacker).await).await;
    assert_eq!(
        sign_in(&server, &key, attacker).await.status(),
        303,
        "the proven key still signs in from the slowed address"
    );
    assert_eq!(
        sign_in(&server, &unknown_prefix(3), "10.2.0.2")
            .await
            .status(),
        401,
        "another address is not slowed"
    );
    server.stop().await;
}

#[tokio::test]
async fn wrong_keys_on_the_consent_page_get_a_429_page_for_that_address_only() {
    let server = limited_server().await;
    let project = server.project("p").await;
    let key = server.key(project.id, Role::Read).await;
    let client_id = register(&server, REDIRECT).await;
    let (_, challenge) = pkce();
    let query = request(&server, &client_id, &challenge);
    let (_, csrf) = open(&server, &query).await;
    let consent = |key: String, address: &'static str| {
        let (server, query, csrf) = (&server, &query, &csrf);
        async move {
            let mut form: Vec<(String, String)> = query.to_vec();
            form.extend([
                ("csrf".to_owned(), csrf.clone()),
                ("key".to_owned(), key),
                ("action".to_owned(), "review".to_owned()),
            ]);
            http()
                .post(server.url("/oauth/authorize"))
                .header("origin", format!("http://{}", server.address))
                .header("cookie", format!("codifier_oauth_csrf={csrf}"))
                .header("x-forwarded-for", address)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(serde_urlencoded::to_string(&form).unwrap())
                .send()
                .await
                .unwrap()
        }
    };
    let attacker = "10.3.0.1";
    assert_eq!(consent(key.clone(), attacker).await.status(), 200);
    for wrong in [wrong_secret(&key), unknown_prefix(1)] {
        assert_eq!(consent(wrong, attacker).await.status(), 401);
    }
    assert_throttled_page(consent(unknown_prefix(2), attacker).await).await;
    assert_eq!(
        consent(key.clone(), attacker).await.status(),
        200,
        "the proven key still gets to the review step"
    );
    assert_eq!(
        consent(unknown_prefix(3), "10.3.0.2").await.status(),
        401,
        "another address is not slowed"
    );
    // Without the proxy header every test request shares one socket address: unaffected too.
    let plain = post_consent(
        &server,
        &query,
        &csrf,
        &[("key", &unknown_prefix(4)), ("action", "review")],
    )
    .await;
    assert_eq!(plain.status(), 401);
    server.stop().await;
}
