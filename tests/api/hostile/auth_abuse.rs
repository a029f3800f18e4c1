//! Auth abuse: repeated wrong keys are slowed per client address (429 with `Retry-After`)
//! without locking out other addresses or a proven key; a wrong key costs the same time whether
//! its prefix is stored or not; a revoked key is refused within the cache window while eight
//! clients hammer the server.

use std::time::{Duration, Instant};

use codifier::auth::throttle::ThrottleConfig;
use codifier::domain::Role;
use serde_json::Value;

use super::{initialize, unknown_prefix, wrong_secret};
use crate::helpers::{Backend, TestServer, backends};

fn throttle(max_failures: u32, header: Option<&str>) -> ThrottleConfig {
    ThrottleConfig {
        max_failures,
        window: Duration::from_secs(60),
        client_address_header: header.map(str::to_owned),
    }
}

async fn assert_throttled(response: reqwest::Response) {
    assert_eq!(response.status(), 429);
    let wait: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "too_many_failed_keys", "{body}");
}

#[tokio::test]
async fn repeated_wrong_keys_from_one_address_get_429_but_other_addresses_and_a_proven_key_do_not()
{
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.auth_throttle = throttle(3, Some("x-forwarded-for"));
    })
    .await;
    let project = server.project("p").await;
    let key = server.key(project.id, Role::Write).await;
    let client = reqwest::Client::new();
    let attacker = Some("10.0.0.1");
    assert_eq!(
        initialize(&client, &server, &key, attacker).await.status(),
        200
    );
    for n in 0..3 {
        let wrong = if n % 2 == 0 {
            wrong_secret(&key)
        } else {
            unknown_prefix(n)
        };
        assert_eq!(
            initialize(&client, &server, &wrong, attacker)
                .await
                .status(),
            401
        );
    }
    for wrong in [wrong_secret(&key), unknown_prefix(9)] {
        assert_throttled(initialize(&client, &server, &wrong, attacker).await).await;
    }
    assert_eq!(
        initialize(&client, &server, &key, attacker).await.status(),
        200,
        "the proven key still gets in from the slowed address"
    );
    let other = Some("10.0.0.2, 10.0.0.3");
    assert_eq!(
        initialize(&client, &server, &wrong_secret(&key), other)
            .await
            .status(),
        401,
        "another address is not slowed"
    );
    assert_eq!(
        initialize(&client, &server, &wrong_secret(&key), None)
            .await
            .status(),
        401,
        "without the header the socket's address counts, and it has no failures"
    );
}

#[tokio::test]
async fn a_forwarded_address_is_ignored_unless_the_proxy_setting_says_so() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.auth_throttle = throttle(2, None);
    })
    .await;
    let client = reqwest::Client::new();
    for n in 0..2 {
        let forged = format!("10.1.0.{n}");
        let response = initialize(&client, &server, &unknown_prefix(n), Some(&forged)).await;
        assert_eq!(response.status(), 401);
    }
    let response = initialize(&client, &server, &unknown_prefix(5), Some("10.1.0.9")).await;
    assert_throttled(response).await;
}

#[tokio::test]
async fn a_wrong_key_takes_as_long_with_a_stored_prefix_as_with_an_unknown_one() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.auth_throttle = throttle(0, None);
    })
    .await;
    let project = server.project("p").await;
    let proven = server.key(project.id, Role::Read).await;
    let unproven = server.key(project.id, Role::Read).await;
    let client = reqwest::Client::new();
    assert_eq!(
        initialize(&client, &server, &proven, None).await.status(),
        200
    );
    // Warm up the dummy hash (made once per process) and the connection.
    initialize(&client, &server, &unknown_prefix(999), None).await;
    let runs = 31;
    let kinds = [
        "unknown prefix",
        "stored prefix",
        "proven prefix",
        "not a key's shape",
    ];
    let mut times = vec![Vec::with_capacity(runs); kinds.len()];
    // Interleaved, so a burst of load elsewhere on the machine hits every kind alike.
    for n in 0..runs {
        let keys = [
            unknown_prefix(n),
            wrong_secret(&unproven),
            wrong_secret(&proven),
            "not-a-key".to_owned(),
        ];
        for (kind, key) in keys.iter().enumerate() {
            let started = Instant::now();
            let response = initialize(&client, &server, key, None).await;
            times[kind].push(started.elapsed());
            assert_eq!(response.status(), 401, "{}", kinds[kind]);
        }
    }
    let medians: Vec<Duration> = times
        .iter()
        .map(|times| {
            let mut sorted = times.clone();
            sorted.sort();
            sorted[runs / 2]
        })
        .collect();
    let figures: Vec<String> = kinds
        .iter()
        .zip(&medians)
        .map(|(kind, median)| format!("{kind} {median:?}"))
        .collect();
    println!("wrong-key timing, median of {runs}: {}", figures.join(", "));
    // Judged on pairs taken one right after the other in the same run: a burst of load on a
    // shared machine (load average 10 made the medians of separate kinds drift apart) slows both
    // calls of a pair alike, so the median of the pairs' ratios holds where the ratio of the
    // medians did not.
    let paired = |kind: usize, against: usize| -> f64 {
        let mut ratios: Vec<f64> = (0..runs)
            .map(|n| times[kind][n].as_secs_f64() / times[against][n].as_secs_f64())
            .collect();
        ratios.sort_by(f64::total_cmp);
        ratios[runs / 2]
    };
    for kind in 1..3 {
        let ratio = paired(kind, 0);
        assert!(
            (0.5..2.0).contains(&ratio),
            "a wrong key under a {} took {ratio:.2}x as long as under an unknown prefix \
             (median of {runs} pairs; medians {:?} and {:?})",
            kinds[kind],
            medians[kind],
            medians[0]
        );
        let work = paired(kind, 3);
        assert!(
            work > 10.0,
            "the {} did argon2-sized work: only {work:.1}x a key of the wrong shape \
             (median of {runs} pairs)",
            kinds[kind]
        );
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_within_the_window_while_eight_clients_hammer_the_server() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let window = Duration::from_secs(1);
        let project = server.project("p").await;
        let key = server.key(project.id, Role::Write).await;
        let client = reqwest::Client::new();
        assert_eq!(initialize(&client, &server, &key, None).await.status(), 200);
        let revoked_at = std::sync::Arc::new(tokio::sync::OnceCell::<Instant>::new());
        let hammers: Vec<_> = (0..8)
            .map(|_| {
                let (client, key, url) = (client.clone(), key.clone(), server.url("/mcp"));
                let revoked_at = revoked_at.clone();
                tokio::spawn(async move {
                    let mut served = 0u32;
                    loop {
                        let response = client
                            .post(&url)
                            .header("content-type", "application/json")
                            .header("accept", "application/json, text/event-stream")
                            .bearer_auth(&key)
                            .body(super::INITIALIZE)
                            .send()
                            .await
                            .expect("POST /mcp");
                        let status = response.status().as_u16();
                        let body = response.text().await.unwrap_or_default();
                        match status {
                            200 => served += 1,
                            401 if body.contains("revoked_api_key") => {
                                let since = revoked_at.get().expect("refused only after revoking");
                                return (served, since.elapsed());
                            }
                            other => panic!("unexpected {other}: {body}"),
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        revoked_at.set(Instant::now()).unwrap();
        server.revoke(&key).await;
        let mut total = 0;
        for hammer in hammers {
            let (served, after) = tokio::time::timeout(Duration::from_secs(10), hammer)
                .await
                .expect("every client sees the revocation")
                .unwrap();
            total += served;
            assert!(
                after < window + Duration::from_millis(500),
                "{backend:?}: refused {after:?} after revoking, the window is {window:?}"
            );
        }
        assert!(
            total > 8,
            "{backend:?}: the clients were served before ({total})"
        );
        server.stop().await;
    }
}
