//! Projects: found by id and by name, listed by name, unique by name; their metadata set key by
//! key and audited.

use uuid::Uuid;

use super::fixtures::{Ctx, actor, outcome};
use crate::helpers::Backend;

store_cases!(
    projects_are_found_by_id_and_by_name_listed_by_name_and_unique_by_name,
    metadata_keys_are_set_and_removed_one_by_one_and_each_change_is_audited_once
);

async fn projects_are_found_by_id_and_by_name_listed_by_name_and_unique_by_name(b: Backend) {
    let (t, a) = (Ctx::new(b).await, actor());
    let zebra = t.s.create_project(&a, "zebra", Some("acme")).await;
    let zebra = zebra.expect("zebra");
    assert_eq!(zebra.org.as_deref(), Some("acme"), "{b:?}: org");
    let by_id = t.s.find_project(&zebra.id.to_string()).await;
    assert_eq!(by_id.expect("find"), Some(zebra), "{b:?}: by id");
    let by_name = t.s.find_project("p").await.expect("find");
    assert_eq!(by_name.map(|p| p.id), Some(t.p), "{b:?}: by name");
    let unknown = t.s.find_project("pear").await.expect("find");
    assert_eq!(unknown, None, "{b:?}: unknown name");
    let unknown = t.s.find_project(&Uuid::new_v4().to_string()).await;
    assert_eq!(unknown.expect("find"), None, "{b:?}: unknown id");
    t.project("apple").await;
    let again = t.s.create_project(&a, "apple", Some("other")).await;
    assert_eq!(outcome(&again), "conflict", "{b:?}: same name");
    let projects = t.s.list_projects().await.expect("list");
    let names: Vec<_> = projects.into_iter().map(|p| p.name).collect();
    assert_eq!(names, ["apple", "p", "zebra"], "{b:?}: by name");
}

async fn metadata_keys_are_set_and_removed_one_by_one_and_each_change_is_audited_once(b: Backend) {
    let (t, a) = (Ctx::new(b).await, actor());
    let object = |value: serde_json::Value| value.as_object().cloned().expect("an object");
    let set = object(serde_json::json!({"stack": ["rust", "axum"], "description": "a server"}));
    let updated =
        t.s.update_project_metadata(&a, t.p, &set)
            .await
            .expect("set");
    assert_eq!(
        updated.metadata["stack"],
        serde_json::json!(["rust", "axum"]),
        "{b:?}"
    );
    let again =
        t.s.update_project_metadata(&a, t.p, &set)
            .await
            .expect("same");
    assert_eq!(
        again.updated_at, updated.updated_at,
        "{b:?}: nothing changed"
    );
    let removed = object(serde_json::json!({"description": null}));
    let after =
        t.s.update_project_metadata(&a, t.p, &removed)
            .await
            .expect("remove");
    assert_eq!(
        after.metadata,
        serde_json::json!({"stack": ["rust", "axum"]}),
        "{b:?}"
    );
    let found = t.s.find_project("p").await.expect("find").expect("found");
    assert_eq!(found.metadata, after.metadata, "{b:?}: read back");
    let audit = t.s.list_audit(t.p, 10).await.expect("audit");
    let updates = audit
        .iter()
        .filter(|e| e.action == "project.update")
        .count();
    assert_eq!(updates, 2, "{b:?}: two changes, two entries");
    let missing = t.s.update_project_metadata(&a, Uuid::new_v4(), &set).await;
    assert_eq!(outcome(&missing), "not found", "{b:?}");
}
