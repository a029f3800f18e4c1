//! The key verifier's unit tests: caching, revocation within the window, equal-cost refusals.

use super::*;
use crate::auth::keys::generate;
use crate::domain::Role;
use crate::store::NewApiKey;
use crate::store::scratch::ScratchStore;

/// A verifier over a scratch store holding one write key in its project; returns the store
/// (to revoke the key as its actor) and the key's text too.
async fn verifier_with_a_key(ttl: Duration) -> (KeyVerifier, ScratchStore, String) {
    let scratch = ScratchStore::new().await;
    let generated = generate().unwrap();
    let new = NewApiKey {
        project_id: scratch.project,
        prefix: generated.prefix,
        hash: generated.hash,
        role: Role::Write,
        label: None,
    };
    scratch
        .store
        .create_api_key(&scratch.actor, &new)
        .await
        .unwrap();
    let verifier = KeyVerifier::new(scratch.store.clone(), None, ttl);
    (verifier, scratch, generated.key)
}

fn wrong_secret(key: &str) -> String {
    let last = if key.ends_with('a') { 'b' } else { 'a' };
    format!("{}{last}", &key[..key.len() - 1])
}

#[tokio::test]
async fn concurrent_first_requests_for_one_key_run_argon2_once() {
    let (verifier, _scratch, key) = verifier_with_a_key(Duration::from_secs(60)).await;
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
    let (verifier, scratch, key) = verifier_with_a_key(Duration::ZERO).await;
    for _ in 0..3 {
        assert!(verifier.verify(&key).await.is_ok());
    }
    assert_eq!(verifier.argon2_runs(), 1);
    let prefix = prefix_of(&key).unwrap();
    scratch
        .store
        .revoke_api_key(&scratch.actor, prefix)
        .await
        .unwrap();
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
    let (verifier, _scratch, key) = verifier_with_a_key(Duration::ZERO).await;
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
    let (verifier, scratch, key) = verifier_with_a_key(Duration::ZERO).await;
    let Ok(Identity::Key { id, prefix, .. }) = verifier.verify(&key).await else {
        panic!("the key verifies");
    };
    assert!(verifier.recheck(id, &prefix).await.is_ok());
    assert_eq!(
        verifier.recheck(uuid::Uuid::new_v4(), &prefix).await,
        Err(AuthFailure::Unknown),
        "another id under the prefix is not this key"
    );
    scratch
        .store
        .revoke_api_key(&scratch.actor, &prefix)
        .await
        .unwrap();
    assert_eq!(
        verifier.recheck(id, &prefix).await,
        Err(AuthFailure::Revoked)
    );
    assert_eq!(verifier.argon2_runs(), 1, "a recheck never runs argon2");
}

#[tokio::test]
async fn a_made_up_prefix_costs_neither_argon2_nor_a_slot() {
    let (verifier, _scratch, _key) = verifier_with_a_key(Duration::ZERO).await;
    let made_up = format!("cdf_{}_{}", "z".repeat(10), "y".repeat(40));
    assert_eq!(verifier.verify(&made_up).await, Err(AuthFailure::Unknown));
    assert_eq!(verifier.argon2_runs(), 0);
    assert!(verifier.slots.get("zzzzzzzzzz").is_none());
}
