//! What keeps the authorization server's tables bounded: the sweep of ended codes, tokens and
//! spent grants, the deletion of registered clients nobody uses, and the per-address limit on
//! open registration.

use std::time::Duration;

use codifier::domain::{OAuthSwept, Role};
use codifier::oauth::sweep::sweep;
use serde_json::{Value, json};

use super::*;
use crate::helpers::{Backend, TestServer, backends};

#[tokio::test]
async fn ended_codes_tokens_and_unused_clients_are_swept_and_live_ones_kept_on_both_stores() {
    for backend in backends() {
        let server = TestServer::start_with(backend, |config| {
            config.oauth.access_token = Duration::from_secs(3);
            config.oauth.refresh_token = Duration::from_secs(3);
            config.oauth.code = Duration::from_secs(3);
        })
        .await;
        let project = server.project("sweep").await;
        let key = server.key(project.id, Role::Read).await;
        // A: redeemed, then its tokens end. B: a code never redeemed. C: never authorized.
        let (used, _, ended_refresh) = tokens_for(&server, &key, "").await;
        let unredeemed = register(&server, REDIRECT).await;
        let (_, challenge) = pkce();
        approve(
            &server,
            &request(&server, &unredeemed, &challenge),
            &key,
            "",
        )
        .await;
        let never = register(&server, REDIRECT).await;
        tokio::time::sleep(Duration::from_millis(3500)).await;
        // D: redeemed just now, so its tokens are live.
        let (live, live_access, _) = tokens_for(&server, &key, "").await;

        let swept = sweep(&server.store, Duration::from_secs(3600))
            .await
            .unwrap();
        assert_eq!(
            swept,
            OAuthSwept {
                tokens: 2,
                grants: 2,
                clients: 0
            },
            "{backend:?}: A's pair, A's and B's grants; every client registered within the hour stays"
        );
        let swept = sweep(&server.store, Duration::ZERO).await.unwrap();
        assert_eq!(
            swept,
            OAuthSwept {
                tokens: 0,
                grants: 0,
                clients: 3
            },
            "{backend:?}: A, B and C have no grant left; D has one"
        );
        for gone in [&used, &unredeemed, &never] {
            assert!(
                server
                    .store
                    .find_oauth_client(gone)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
        assert!(
            server
                .store
                .find_oauth_client(&live)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(bearer_status(&server, &live_access, "sweep").await, 200);
        let (status, body) = token_request(
            &server,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &ended_refresh),
                ("client_id", &used),
            ],
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        assert_eq!(
            sweep(&server.store, Duration::ZERO).await.unwrap(),
            OAuthSwept::default(),
            "{backend:?}: a second sweep finds nothing"
        );
        server.stop().await;
    }
}

#[tokio::test]
async fn a_revoked_family_is_swept_with_its_tokens() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("revoked").await;
    let key = server.key(project.id, Role::Read).await;
    let (_, access, _) = tokens_for(&server, &key, "").await;
    let revoked = http()
        .post(server.url("/oauth/revoke"))
        .form_body(&[("token", access.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let swept = sweep(&server.store, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(
        swept,
        OAuthSwept {
            tokens: 2,
            grants: 1,
            clients: 0
        }
    );
    server.stop().await;
}

async fn register_from(server: &TestServer, address: &str) -> reqwest::Response {
    http()
        .post(server.url("/oauth/register"))
        .header("x-forwarded-for", address)
        .json(&json!({"client_name": "Many", "redirect_uris": [REDIRECT]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn open_registration_is_limited_per_client_address_with_retry_after() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.oauth.registrations_per_hour = 2;
        config.auth_throttle.client_address_header = Some("x-forwarded-for".into());
    })
    .await;
    for _ in 0..2 {
        assert_eq!(register_from(&server, "10.9.0.1").await.status(), 201);
    }
    let refused = register_from(&server, "10.9.0.1").await;
    assert_eq!(refused.status(), 429);
    let wait: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3500..=3600).contains(&wait), "Retry-After: {wait}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_registrations", "{body}");
    assert_eq!(
        register_from(&server, "10.9.0.2").await.status(),
        201,
        "another address still registers"
    );
    server.stop().await;
}
