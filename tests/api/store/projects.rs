//! Projects: found by id and by name, listed by name, unique by name.

use uuid::Uuid;

use super::fixtures::{Ctx, actor, outcome};
use crate::helpers::Backend;

store_cases!(projects_are_found_by_id_and_by_name_listed_by_name_and_unique_by_name);

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
