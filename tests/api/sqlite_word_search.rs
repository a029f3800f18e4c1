//! The SQLite text half ranks at most a bounded number of matches, the newest, so a search's cost
//! stays flat as a project grows; below the bound every match is ranked.

use codifier::domain::MemoryType;
use codifier::store::sqlite::SqliteStore;
use codifier::store::{
    Actor, MemoryDraft, MemoryFilter, MemoryStore, ProjectStore, SearchStore, Store,
};
use serde_json::json;
use uuid::Uuid;

/// Memory `n`: "deploy" repeated more often the older the memory, in a text that is shorter the
/// older it is, so bm25 ranks the oldest first.
fn memory(n: usize) -> MemoryDraft {
    let mut words = vec!["deploy"; 6 - n];
    words.extend(std::iter::repeat_n("filler", n * 4));
    MemoryDraft {
        memory_type: MemoryType::Learning,
        title: format!("note {n}"),
        content: json!({ "text": words.join(" ") }),
        category: None,
        description: None,
        confidence: 1.0,
        tags: Vec::new(),
        source_role: None,
    }
}

async fn ranked(store: &SqliteStore, project: Uuid) -> Vec<Uuid> {
    let filter = MemoryFilter {
        limit: 50,
        ..Default::default()
    };
    let words = vec!["deploy".to_owned()];
    let found = store
        .text_candidates(project, &filter, &words, true, 50)
        .await
        .expect("text candidates");
    found.into_iter().map(|c| c.id).collect()
}

#[tokio::test]
async fn on_sqlite_a_word_search_ranks_only_the_newest_matches_past_its_bound() {
    let database = crate::helpers::fresh_database(crate::helpers::Backend::Sqlite).await;
    let store = SqliteStore::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    let project = store.create_project(&actor, "p", None).await.unwrap().id;
    let mut ids = Vec::new();
    for n in 0..6 {
        let (memory, _) = store
            .create_memory(project, &actor, &memory(n))
            .await
            .unwrap();
        ids.push(memory.id);
    }

    // Under the bound every match is ranked: the oldest, with the most "deploy", first.
    assert_eq!(ranked(&store, project).await, ids);

    // Past it only the newest three are ranked, still best first.
    let bounded = store.clone().with_ranked_matches(3);
    assert_eq!(ranked(&bounded, project).await, ids[3..].to_vec());
}

/// A learning or a rule whose text holds "deploy" `times` times among `len` words.
fn note(title: &str, kind: MemoryType, times: usize, filler: &str) -> MemoryDraft {
    let mut words = vec!["deploy"; times];
    words.extend(std::iter::repeat_n(filler, 8 - times));
    MemoryDraft {
        memory_type: kind,
        title: title.into(),
        content: json!({ "text": words.join(" ") }),
        ..memory(0)
    }
}

#[tokio::test]
async fn on_sqlite_a_word_search_reads_past_its_best_matches_when_filters_drop_them_and_breaks_ties_by_id()
 {
    let database = crate::helpers::fresh_database(crate::helpers::Backend::Sqlite).await;
    let store = SqliteStore::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    let project = store.create_project(&actor, "p", None).await.unwrap().id;
    let create = async |draft: MemoryDraft| {
        let (memory, _) = store.create_memory(project, &actor, &draft).await.unwrap();
        memory.id
    };
    // Two rules rank best, then two learnings tied with each other, then a weaker learning.
    let rules = [
        create(note("a", MemoryType::Rule, 6, "alpha")).await,
        create(note("b", MemoryType::Rule, 5, "alpha")).await,
    ];
    let mut twins = [
        create(note("c", MemoryType::Learning, 3, "alpha")).await,
        create(note("d", MemoryType::Learning, 3, "bravo")).await,
    ];
    twins.sort();
    let weak = create(note("e", MemoryType::Learning, 1, "alpha")).await;
    let words = vec!["deploy".to_owned()];
    let search = async |kind: Option<MemoryType>, k: u32| -> Vec<Uuid> {
        let filter = MemoryFilter {
            memory_type: kind,
            limit: k,
            ..Default::default()
        };
        let found = store
            .text_candidates(project, &filter, &words, true, k)
            .await
            .expect("text candidates");
        found.into_iter().map(|c| c.id).collect()
    };

    assert_eq!(search(None, 2).await, rules);
    // The filter drops the best two: the learnings below them are found, twins by id.
    assert_eq!(search(Some(MemoryType::Learning), 2).await, twins);
    assert_eq!(
        search(Some(MemoryType::Learning), 3).await,
        [twins[0], twins[1], weak]
    );
    // A tie at the k-th place: the smaller id of the two.
    assert_eq!(search(Some(MemoryType::Learning), 1).await, [twins[0]]);
    assert_eq!(search(None, 3).await, [rules[0], rules[1], twins[0]]);
}
