//! The key verifier's unit tests: caching, revocation within the window, equal-cost refusals.

use super::*;
use crate::auth::keys::generate;
use crate::domain::Role;
use crate::store::{Actor, NewApiKey};

/// A verifier over a fresh SQLite store holding one write key; returns the key's text too.
async fn verifier_with_a_key(
    ttl: Duration,
) -> (KeyVerifier, Arc<dyn Store>, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let store = crate::store::connect(&url).await.unwrap();
    store.migrate().await.unwrap();
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    let project = store.create_project(&actor, "p", None).await.unwrap();
    let generated = generate().unwrap();
    let new = NewApiKey {
        project_id: project.id,
        prefix: generated.prefix,
        hash: generated.hash,
        role: Role::Write,
        label: None,
    };
    store.create_api_key(&actor, &new).await.unwrap();
    let verifier = KeyVerifier::new(store.clone(), None, ttl);
    (verifier, store, generated.key, dir)
}

fn wrong_secret(key: &str) -> String {
    let last = if key.ends_with('a') { 'b' } else { 'a' };
    format!("{}{last}", &key[..key.len() - 1])
}

#[tokio::test]
async fn concurrent_first_requests_for_one_key_run_argon2_once() {
    let (verifier, _store, key, _dir) = verifier_with_a_key(Duration::from_secs(60)).await;
    let verifier = Arc::new(verifier);
    let checks: Vec<_> = (0..16)
        .map(|_| {
            let (verifier, key) = (verifier.clone(), key.clone());
            tokio::spawn(async move { verifier.verify(&key).await })
        })
        .collect();
    for check in checks {
        assert!(matches!(check.await.unwrap(), Ok(Identity::Key { .. })));
    }
    assert_eq!(verifier.argon2_runs(), 1);
}

#[tokio::test]
async fn an_expired_check_asks_the_store_again_but_not_argon2() {
    let (verifier, store, key, _dir) = verifier_with_a_key(Duration::ZERO).await;
    for _ in 0..3 {
        assert!(verifier.verify(&key).await.is_ok());
    }
    assert_eq!(verifier.argon2_runs(), 1);
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    let prefix = prefix_of(&key).unwrap();
    store.revoke_api_key(&actor, prefix).await.unwrap();
    assert_eq!(verifier.verify(&key).await, Err(AuthFailure::Revoked));
    assert_eq!(verifier.verify(&key).await, Err(AuthFailure::Revoked));
    assert_eq!(
        verifier.argon2_runs(),
        1,
        "a revoked key costs no argon2 either"
    );
}

#[tokio::test]
async fn a_wrong_secret_under_a_proven_prefix_is_refused_without_a_real_check_or_harm() {
    let (verifier, _store, key, _dir) = verifier_with_a_key(Duration::ZERO).await;
    let wrong = wrong_secret(&key);
    assert_eq!(verifier.verify(&wrong).await, Err(AuthFailure::Unknown));
    assert_eq!(verifier.argon2_runs(), 1, "an unproven prefix costs argon2");
    assert!(verifier.verify(&key).await.is_ok());
    assert_eq!(verifier.argon2_runs(), 2);
    assert_eq!(verifier.verify(&wrong).await, Err(AuthFailure::Unknown));
    assert!(
        verifier.verify(&key).await.is_ok(),
        "the proven key still works"
    );
    assert_eq!(verifier.argon2_runs(), 2);
    assert_eq!(
        verifier.dummy_runs(),
        1,
        "the wrong secret under the proven prefix cost a dummy check, as an unknown prefix does"
    );
}

#[tokio::test]
async fn a_recheck_by_id_and_prefix_sees_a_revocation_once_the_cache_window_passed() {
    let (verifier, store, key, _dir) = verifier_with_a_key(Duration::ZERO).await;
    let Ok(Identity::Key { id, prefix, .. }) = verifier.verify(&key).await else {
        panic!("the key verifies");
    };
    assert!(verifier.recheck(id, &prefix).await.is_ok());
    assert_eq!(
        verifier.recheck(uuid::Uuid::new_v4(), &prefix).await,
        Err(AuthFailure::Unknown),
        "another id under the prefix is not this key"
    );
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    store.revoke_api_key(&actor, &prefix).await.unwrap();
    assert_eq!(
        verifier.recheck(id, &prefix).await,
        Err(AuthFailure::Revoked)
    );
    assert_eq!(verifier.argon2_runs(), 1, "a recheck never runs argon2");
}

#[tokio::test]
async fn a_made_up_prefix_costs_neither_argon2_nor_a_slot() {
    let (verifier, _store, _key, _dir) = verifier_with_a_key(Duration::ZERO).await;
    let made_up = format!("cdf_{}_{}", "z".repeat(10), "y".repeat(40));
    assert_eq!(verifier.verify(&made_up).await, Err(AuthFailure::Unknown));
    assert_eq!(verifier.argon2_runs(), 0);
    assert!(verifier.slots.get("zzzzzzzzzz").is_none());
}
