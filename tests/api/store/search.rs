//! Search: the filters of a fetch (type, every tag, text in any case) and the full-text
//! candidates, following updates, deletes and restores within the project.

use codifier::domain::MemoryType::{self, ApiContract, Document, Learning, Rule};
use codifier::store::*;
use serde_json::json;
use uuid::Uuid;

use super::fixtures::{Ctx, actor, draft, filter, with};
use crate::helpers::Backend;

store_cases!(
    fetch_filters_by_type_by_every_tag_and_by_text_in_any_case,
    full_text_candidates_follow_updates_deletes_and_restores_within_the_project,
    a_tag_filter_follows_tag_changes_deletes_and_restores,
);

async fn fetch_filters_by_type_by_every_tag_and_by_text_in_any_case(b: Backend) {
    let t = Ctx::new(b).await;
    let (tabs, retry, terms) = ("Use Tabs", "Retry policy", "Glossary ÉCOLE");
    let text = |text: &str| json!({ "text": text });
    let memories = [
        with(text("Tabs always"), Rule, tabs, &["a", "b"]),
        with(text("Back off SLOWLY"), Learning, retry, &["a", "c"]),
        with(json!(["Widget"]), Document, terms, &[]),
    ];
    for memory in &memories {
        t.create(t.p, memory).await;
    }
    let by = |kind, tags: &[&str], query: Option<&str>| {
        let mut by = filter(9);
        by.memory_type = kind;
        by.tags = tags.iter().map(|tag| tag.to_string()).collect();
        by.query = query.map(str::to_owned);
        by
    };
    let (rule, learning) = (Some(Rule), Some(Learning));
    let cases: [(MemoryFilter, &[&str]); 15] = [
        (by(rule, &[], None), &[tabs]),
        (by(Some(ApiContract), &[], None), &[]),
        (by(None, &[], None), &[terms, retry, tabs]),
        (by(None, &["a"], None), &[retry, tabs]),
        (by(None, &["a", "b"], None), &[tabs]),
        (by(None, &["a", "c"], None), &[retry]),
        (by(None, &["b", "c"], None), &[]),
        (by(None, &["A"], None), &[]),
        (by(None, &[], Some("use tABS")), &[tabs]),
        (by(None, &[], Some("slowly")), &[retry]),
        (by(None, &[], Some("WIDGET")), &[terms]),
        (by(None, &[], Some("ÉCOLE")), &[terms]),
        (by(None, &[], Some("nowhere")), &[]),
        (by(learning, &["a"], Some("back off")), &[retry]),
        (by(rule, &["a"], Some("retry")), &[]),
    ];
    for (filter, want) in cases {
        let found = t.titles(t.p, &filter).await;
        assert_eq!(found, want, "{b:?}: {filter:?}");
    }
}

async fn full_text_candidates_follow_updates_deletes_and_restores_within_the_project(b: Backend) {
    let t = Ctx::new(b).await;
    let other = t.project("other").await;
    let text = |text: &str| json!({ "text": text });
    let zebra = with(
        text("zebra crossing near the school"),
        Rule,
        "Crossing",
        &["x"],
    );
    let id = t.create(t.p, &zebra).await.id;
    let note = with(text("zebra sightings"), Document, "Zoo notes", &[]);
    let doc = t.create(t.p, &note).await.id;
    t.create(other, &with(text("zebra elsewhere"), Rule, "Other", &[]))
        .await;
    let found = |words: &'static [&'static str], all: bool, kind: Option<MemoryType>| {
        let (s, p) = (t.s.clone(), t.p);
        async move {
            let mut by = filter(10);
            by.memory_type = kind;
            let words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            let found = s.text_candidates(p, &by, &words, all, 10).await;
            let mut ids: Vec<Uuid> = found
                .expect("text candidates")
                .iter()
                .map(|c| c.id)
                .collect();
            ids.sort();
            ids
        }
    };
    let mut both = vec![id, doc];
    both.sort();
    assert_eq!(
        found(&["zebra"], false, None).await,
        both,
        "{b:?}: own project only"
    );
    assert_eq!(
        found(&["zebra"], false, Some(Document)).await,
        [doc],
        "{b:?}: by type"
    );
    assert_eq!(
        found(&["zebra", "school"], true, None).await,
        [id],
        "{b:?}: every word"
    );
    assert_eq!(
        found(&["zebra", "school"], false, None).await,
        both,
        "{b:?}: any word"
    );
    let giraffe = with(text("giraffe crossing"), Rule, "Crossing", &["x"]);
    t.update(t.p, id, &giraffe).await.expect("update");
    let none: [Uuid; 0] = [];
    assert_eq!(
        found(&["school"], false, None).await,
        none,
        "{b:?}: old words gone"
    );
    assert_eq!(
        found(&["giraffe"], false, None).await,
        [id],
        "{b:?}: new words"
    );
    t.delete(t.p, id).await.expect("delete");
    assert_eq!(
        found(&["giraffe"], false, None).await,
        [] as [Uuid; 0],
        "{b:?}: deleted"
    );
    t.s.restore_deleted(t.p, &actor(), id)
        .await
        .expect("restore");
    assert_eq!(
        found(&["giraffe"], false, None).await,
        [id],
        "{b:?}: restored"
    );
}

async fn a_tag_filter_follows_tag_changes_deletes_and_restores(b: Backend) {
    let t = Ctx::new(b).await;
    let other = t.project("other").await;
    let by_tags = |tags: &[&str]| {
        let mut by = filter(10);
        by.tags = tags.iter().map(|tag| tag.to_string()).collect();
        by
    };
    let first = draft("first", &["rare", "common"]);
    let id = t.create(t.p, &first).await.id;
    t.create(t.p, &draft("second", &["common"])).await;
    t.create(other, &draft("elsewhere", &["rare"])).await;
    assert_eq!(t.ids(t.p, &by_tags(&["rare"])).await, [id], "{b:?}");
    let both = by_tags(&["common", "rare", "rare"]);
    assert_eq!(
        t.ids(t.p, &both).await,
        [id],
        "{b:?}: every tag, repeats ignored"
    );
    assert_eq!(t.ids(t.p, &by_tags(&["common"])).await.len(), 2, "{b:?}");

    t.update(t.p, id, &draft("first", &["common"]))
        .await
        .expect("update");
    assert!(
        t.ids(t.p, &by_tags(&["rare"])).await.is_empty(),
        "{b:?}: tag removed"
    );
    t.update(t.p, id, &draft("first", &["rare"]))
        .await
        .expect("update");
    assert_eq!(
        t.ids(t.p, &by_tags(&["rare"])).await,
        [id],
        "{b:?}: tag back"
    );
    t.delete(t.p, id).await.expect("delete");
    assert!(
        t.ids(t.p, &by_tags(&["rare"])).await.is_empty(),
        "{b:?}: deleted"
    );
    t.s.restore_deleted(t.p, &actor(), id)
        .await
        .expect("restore");
    assert_eq!(
        t.ids(t.p, &by_tags(&["rare"])).await,
        [id],
        "{b:?}: restored"
    );
}
