//! The Postgres text half counts how many memories hold each query word. Words held by at least
//! the common-word threshold only rank; the rarer words find. Whichever words are common, a
//! search whose rarer words imply the common ones finds the same memories.

use codifier::domain::MemoryType;
use codifier::store::postgres::PgStore;
use codifier::store::*;

use serde_json::json;
use uuid::Uuid;

use crate::helpers::fresh_postgres;

fn actor() -> Actor {
    let (label, tool) = ("key:cdf_tester".into(), "remember".into());
    Actor { label, tool }
}

/// Memory `n` of 13: "deploy" is in 8 of them, "database" in 6, "rollback" in 4, "canary" in 3
/// (the last one holds "canary" alone).
fn memory(n: usize) -> MemoryDraft {
    let mut words = vec![format!("note{n}")];
    if n == 12 {
        words.push("canary".into());
    }
    for (word, every) in [
        ("deploy", 8),
        ("database", 6),
        ("rollback", 4),
        ("canary", 2),
    ] {
        if n < every {
            // Repeats differ per memory, so ranks differ and the order is meaningful.
            words.extend(std::iter::repeat_n(word.to_string(), 1 + n % 3));
        }
    }
    MemoryDraft {
        memory_type: if n.is_multiple_of(2) {
            MemoryType::Learning
        } else {
            MemoryType::Rule
        },
        title: format!("memory {n}"),
        content: json!({ "text": words.join(" ") }),
        category: None,
        description: None,
        confidence: 1.0,
        tags: Vec::new(),
        source_role: None,
    }
}

fn words(query: &str) -> Vec<String> {
    query.split(' ').map(str::to_owned).collect()
}

/// The ids a text lookup returns, in rank order.
async fn lookup(
    store: &PgStore,
    project: Uuid,
    filter: &MemoryFilter,
    query: &str,
    match_all: bool,
) -> Vec<Uuid> {
    let found = store
        .text_candidates(project, filter, &words(query), match_all, 50)
        .await
        .expect("text candidates");
    found.into_iter().map(|c| c.id).collect()
}

fn sorted(mut ids: Vec<Uuid>) -> Vec<Uuid> {
    ids.sort();
    ids
}

#[tokio::test]
async fn common_words_rank_what_rarer_words_find_and_find_only_when_every_word_is_common() {
    let Some((store, _database)) = fresh_postgres().await else {
        return;
    };
    let project = store.create_project(&actor(), "p", None).await.unwrap().id;
    let mut ids = Vec::new();
    for n in 0..13 {
        let (memory, _) = store
            .create_memory(project, &actor(), &memory(n))
            .await
            .expect("create");
        ids.push(memory.id);
    }
    let everything = MemoryFilter {
        limit: 50,
        ..Default::default()
    };
    let rules = MemoryFilter {
        memory_type: Some(MemoryType::Rule),
        ..everything.clone()
    };
    // Thresholds that make every word rare, some words common, and every word common.
    let plans = [4096, 5, 3, 1].map(|common| (common, store.clone().with_common_term(common)));
    let queries = [
        ("deploy rollback", &everything, vec![0, 1, 2, 3]),
        ("deploy database", &rules, vec![1, 3, 5]),
        ("rollback canary", &rules, vec![1]),
        ("deploy nowhere", &everything, vec![]),
    ];
    for (query, filter, expected) in queries {
        let expected = sorted(expected.into_iter().map(|n| ids[n]).collect());
        for (common, plan) in &plans {
            let found = lookup(plan, project, filter, query, true).await;
            assert_eq!(sorted(found), expected, "{query}, common from {common}");
        }
    }

    // "deploy" is common from 5 memories: then "canary" alone finds, so memory 12 (canary
    // without deploy) is found too, ranked below those holding both.
    let strict = lookup(&plans[0].1, project, &everything, "deploy canary", true).await;
    assert_eq!(sorted(strict), sorted(vec![ids[0], ids[1]]));
    let loose = lookup(&plans[1].1, project, &everything, "deploy canary", true).await;
    assert_eq!(loose.len(), 3);
    assert_eq!(sorted(loose[..2].to_vec()), sorted(vec![ids[0], ids[1]]));
    assert_eq!(loose[2], ids[12]);

    // Any word: with every word rare the 8 "deploy" memories and memory 12 match; once
    // "deploy" is common only "canary" finds; when every word is common every word finds.
    let rare = lookup(&plans[0].1, project, &everything, "deploy canary", false).await;
    assert_eq!(rare.len(), 9);
    let common = lookup(&plans[1].1, project, &everything, "deploy canary", false).await;
    assert_eq!(sorted(common), sorted(vec![ids[0], ids[1], ids[12]]));
    let all_common = lookup(&plans[3].1, project, &everything, "deploy canary", false).await;
    assert_eq!(all_common, rare);
}
