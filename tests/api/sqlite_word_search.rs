//! The SQLite text half ranks at most a bounded number of matches, the newest, so a search's cost
//! stays flat as a project grows; below the bound every match is ranked, in FTS5's own bm25
//! order. The words' counts it remembers never outlive a write, by this handle or another.

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

/// Memory `n` of the ranking corpus: words of a small vocabulary, each repeated by its own
/// pattern, in texts of different lengths, so that bm25 spreads the matches over many ranks.
fn ranking_text(n: usize) -> String {
    let mut words = Vec::new();
    for (index, word) in [
        "deploy", "rollback", "database", "canary", "latency", "schema",
    ]
    .into_iter()
    .enumerate()
    {
        let times = (n * (index + 3) + index) % 5;
        words.extend(std::iter::repeat_n(word, times));
    }
    words.extend(std::iter::repeat_n("filler", n % 7));
    words.join(" ")
}

/// The titles FTS5's own bm25 ranks first for every word of `query` (title weighted twice, ties
/// by id): what a text search must return while no word is common.
async fn bm25_titles(url: &str, query: &str, limit: i64) -> Vec<String> {
    let pool = sqlx::SqlitePool::connect(url).await.unwrap();
    let expression = query
        .split(' ')
        .map(|word| format!("\"{word}\""))
        .collect::<Vec<_>>()
        .join(" AND ");
    let titles = sqlx::query_scalar(
        "SELECT m.title FROM memories_fts JOIN memories m ON m.rowid = memories_fts.rowid \
         WHERE memories_fts MATCH ? AND m.deleted_at IS NULL \
         ORDER BY bm25(memories_fts, 2.0, 1.0), m.id LIMIT ?",
    )
    .bind(expression)
    .bind(limit)
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    titles
}

async fn text_titles(client: &crate::clients::Client, query: &str) -> Vec<String> {
    let found = crate::clients::ok(
        &crate::clients::call(
            client,
            "fetch_context",
            json!({"project_id": "p", "query": query, "mode": "text", "limit": 10}),
        )
        .await,
    );
    assert_eq!(found["search"]["mode"], "text");
    crate::clients::memory_titles(&found)
}

#[tokio::test]
async fn on_sqlite_a_text_search_returns_fts5s_bm25_order_before_and_after_writes() {
    use crate::clients::{call, ok};
    let server = crate::helpers::TestServer::start(crate::helpers::Backend::Sqlite).await;
    server.project("p").await;
    let client =
        crate::clients::streamable(&server.url("/mcp"), crate::helpers::OPERATOR_TOKEN).await;
    let remember = async |title: String, text: String| {
        let memory = json!({"project_id": "p", "memory_type": "learning", "title": title,
                            "content": {"text": text}});
        ok(&call(&client, "update_memory", memory).await)["memory"]["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let mut ids = Vec::new();
    for n in 0..40 {
        ids.push(remember(format!("m{n}"), ranking_text(n)).await);
    }
    let url = &server.database.url;
    let queries = [
        "deploy rollback",
        "database",
        "canary latency schema",
        "rollback deploy",
    ];
    for query in queries {
        let expected = bm25_titles(url, query, 10).await;
        assert!(expected.len() >= 5, "{query}: the corpus ranks several");
        assert_eq!(text_titles(&client, query).await, expected, "{query}");
        // Again, with the words' counts remembered.
        assert_eq!(
            text_titles(&client, query).await,
            expected,
            "{query}, again"
        );
    }

    // A new memory, an edited one and a deleted one: every ranking follows at once.
    remember(
        "deploy rollback title".into(),
        "deploy rollback deploy".into(),
    )
    .await;
    let edit = json!({"project_id": "p", "id": ids[7], "memory_type": "learning",
                      "title": "m7", "content": {"text": "canary canary latency schema"}});
    ok(&call(&client, "update_memory", edit).await);
    ok(&call(
        &client,
        "delete_memory",
        json!({"project_id": "p", "id": ids[3]}),
    )
    .await);
    for query in queries {
        let expected = bm25_titles(url, query, 10).await;
        assert_eq!(
            text_titles(&client, query).await,
            expected,
            "{query}, after writes"
        );
    }
    assert_eq!(
        text_titles(&client, "deploy rollback").await[0],
        "deploy rollback title"
    );
}

#[tokio::test]
async fn on_sqlite_a_words_remembered_count_never_outlives_a_write_by_another_handle() {
    let database = crate::helpers::fresh_database(crate::helpers::Backend::Sqlite).await;
    let store = SqliteStore::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    // Another process on the same file, as the CLI would be.
    let other = SqliteStore::connect(&database.url).await.unwrap();
    let actor = Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    let project = store.create_project(&actor, "p", None).await.unwrap().id;
    let draft = |title: &str, text: &str| MemoryDraft {
        title: title.into(),
        content: json!({ "text": text }),
        ..memory(0)
    };
    for n in 0..4 {
        store
            .create_memory(project, &actor, &draft(&format!("d{n}"), "deploy"))
            .await
            .unwrap();
    }
    let both = store
        .create_memory(project, &actor, &draft("both", "deploy canary"))
        .await
        .unwrap()
        .0
        .id;
    let canary = store
        .create_memory(project, &actor, &draft("canary", "canary"))
        .await
        .unwrap()
        .0
        .id;
    // Common from 3 memories: "deploy" (5) is, "canary" (2) is not, so "canary" alone finds.
    let plan = store.clone().with_common_term(3);
    let found = async || {
        let filter = MemoryFilter {
            limit: 50,
            ..Default::default()
        };
        let words = vec!["deploy".to_owned(), "canary".to_owned()];
        let mut ids: Vec<Uuid> = plan
            .text_candidates(project, &filter, &words, true, 50)
            .await
            .unwrap()
            .into_iter()
            .map(|c| c.id)
            .collect();
        ids.sort();
        ids
    };
    let sorted = |mut ids: Vec<Uuid>| {
        ids.sort();
        ids
    };
    assert_eq!(found().await, sorted(vec![both, canary]));
    assert_eq!(
        found().await,
        sorted(vec![both, canary]),
        "counted once, then remembered"
    );

    // The other handle writes "canary" into a third memory: now every word is common, and
    // all of them must match.
    let third = other
        .create_memory(project, &actor, &draft("third", "canary again"))
        .await
        .unwrap()
        .0
        .id;
    assert_eq!(found().await, vec![both]);

    // It edits that memory's text: "canary" is rare again and finds alone.
    other
        .update_memory(project, &actor, third, &draft("third", "nothing"))
        .await
        .unwrap();
    assert_eq!(found().await, sorted(vec![both, canary]));
}
