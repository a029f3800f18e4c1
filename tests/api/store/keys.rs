//! API keys: created, found by prefix, listed per project, revoked by prefix or id, touched.

use codifier::domain::Role;
use codifier::store::*;
use uuid::Uuid;

use super::fixtures::{Ctx, actor, outcome};
use crate::helpers::Backend;

store_cases!(api_keys_are_found_by_prefix_listed_revoked_and_touched);

async fn api_keys_are_found_by_prefix_listed_revoked_and_touched(b: Backend) {
    let (t, a) = (&Ctx::new(b).await, actor());
    let other = t.project("b").await;
    let new = |project_id, prefix: &str, role| NewApiKey {
        project_id,
        prefix: prefix.into(),
        hash: format!("$argon2id$hash-of-{prefix}"),
        role,
        label: Some(format!("label {prefix}")),
    };
    let key = |project, prefix: &str, role| {
        let key = new(project, prefix, role);
        async move { t.s.create_api_key(&actor(), &key).await.expect("key") }
    };
    let one = key(t.p, "cdf_one", Role::Admin).await;
    let two = key(t.p, "cdf_two", Role::Read).await;
    let oth = key(other, "cdf_oth", Role::Write).await;
    let times = (one.last_used_at, one.revoked_at);
    assert_eq!(times, (None, None), "{b:?}: a new key");
    let find = |prefix| async move {
        let found = t.s.find_api_key(prefix).await.expect("find");
        found.expect("stored")
    };
    let found = find("cdf_one").await;
    let hash = "$argon2id$hash-of-cdf_one";
    assert_eq!((found.hash.as_str(), &found.key), (hash, &one), "{b:?}");
    let none = t.s.find_api_key("cdf_none").await.expect("find");
    assert!(none.is_none(), "{b:?}: unknown prefix");
    let prefixes = |project| async move {
        let keys = t.s.list_api_keys(project).await.expect("list");
        let mut prefixes: Vec<_> = keys.into_iter().map(|k| k.prefix).collect();
        prefixes.sort();
        prefixes
    };
    let of_a = prefixes(Some(t.p)).await;
    assert_eq!(of_a, ["cdf_one", "cdf_two"], "{b:?}: A's keys");
    let every = prefixes(None).await;
    assert_eq!(every, ["cdf_one", "cdf_oth", "cdf_two"], "{b:?}");
    let revoked = t.s.revoke_api_key(&a, "cdf_one").await.expect("revoke");
    assert!(revoked.revoked_at.is_some(), "{b:?}: by prefix");
    let twice = t.s.revoke_api_key(&a, "cdf_one").await.expect("again");
    let at = revoked.revoked_at;
    assert_eq!(twice.revoked_at, at, "{b:?}: revoking twice is fine");
    let by_id = t.s.revoke_api_key(&a, &two.id.to_string()).await;
    let by_id = by_id.expect("revoke by id");
    assert_eq!(by_id.id, two.id, "{b:?}: by id");
    let stored = find("cdf_two").await.key.revoked_at;
    assert!(stored.is_some(), "{b:?}: the revocation is stored");
    for unknown in ["cdf_none".into(), Uuid::new_v4().to_string()] {
        let result = t.s.revoke_api_key(&a, &unknown).await;
        assert_eq!(outcome(&result), "not found", "{b:?}: {unknown}");
    }
    t.s.touch_api_key(oth.id).await.expect("touch");
    let touched = find("cdf_oth").await.key;
    assert!(touched.last_used_at.is_some(), "{b:?}: touched");
    assert!(touched.revoked_at.is_none(), "{b:?}: not revoked");
    let upper = oth.id.to_string().to_uppercase();
    let upper = t.s.revoke_api_key(&a, &upper).await;
    assert_eq!(outcome(&upper), "ok", "{b:?}: an upper-case id");
}
