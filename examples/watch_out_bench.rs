//! `watch_out` latency with a whole skills library loaded: opens a store that already holds the
//! library (`codifier skills import DIR` into it first), then calls the `watch_out` service the
//! MCP tool calls, round after round over a fixed set of stacks, situations and code (our own
//! text), and prints the first call (which reads the library into memory) and p50/p99 of the
//! rest. Words only: no embedding model is loaded, as on a server without one.
//!
//! `cargo run --release --example watch_out_bench -- <database-url> [rounds]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use codifier::embeddings::service::Embeddings;
use codifier::guardrails::index::LibraryCache;
use codifier::guardrails::watch_out::{WatchOutRequest, watch_out};
use codifier::knowledge::KnowledgeBase;

/// A component of about eighty lines, the kind of `code_context` an agent sends.
fn component() -> String {
    let mut code = String::from(
        "import { useEffect, useState } from 'react';\n\nexport function Orders({ url }) {\n  const [rows, setRows] = useState([]);\n  useEffect(() => {\n    fetch(url).then((r) => r.json()).then(setRows);\n    const timer = setInterval(() => setRows(rows), 1000);\n    return () => clearInterval(timer);\n  }, [url]);\n",
    );
    for n in 0..70 {
        code.push_str(&format!(
            "  const total{n} = rows.reduce((sum, row) => sum + row.amount{n}, 0);\n"
        ));
    }
    code.push_str(
        "  return <ul>{rows.map((row, index) => <li key={index}>{row.name}</li>)}</ul>;\n}\n",
    );
    code
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let Some(url) = args.next() else {
        eprintln!("usage: watch_out_bench <database-url> [rounds]");
        std::process::exit(2);
    };
    let rounds: usize = args.next().map_or(Ok(20), |r| r.parse())?;
    let store = codifier::store::connect(&url).await?;
    store.migrate().await?;
    let knowledge = KnowledgeBase {
        store,
        embeddings: Embeddings::disabled(),
        duplicate_threshold: 0.92,
    };
    let library = Arc::new(LibraryCache::default());
    let code = component();
    let calls: Vec<WatchOutRequest> = [
        (
            "react",
            "adding a live counter that refreshes every second",
            true,
        ),
        (
            "nextjs",
            "fetching data in a server component and caching it",
            false,
        ),
        (
            "postgres",
            "adding an index to a large table in production",
            false,
        ),
        (
            "python",
            "reading a big CSV file and writing it to the database",
            false,
        ),
        ("typescript", "typing the response of an API call", true),
        ("redis", "caching product pages with a short expiry", false),
        ("docker", "building a small image for a node service", false),
        (
            "kubernetes",
            "rolling out a new version without downtime",
            false,
        ),
        ("stripe", "handling webhooks for failed payments", false),
        (
            "supabase",
            "row level security for a multi-tenant table",
            false,
        ),
    ]
    .into_iter()
    .map(|(stack, situation, with_code)| WatchOutRequest {
        stack: stack.into(),
        situation: Some(situation.into()),
        code_context: with_code.then(|| code.clone()),
    })
    .collect();

    let started = Instant::now();
    let first = watch_out(&knowledge, &library, None, calls[0].clone()).await?;
    let first_took = started.elapsed();
    let index = library.current(knowledge.store.as_ref()).await?;
    println!(
        "library: {} skills, {} sharp edges; first call (reads the library): {:.1} ms, {} edges",
        index.skills.len(),
        index.edges.len(),
        first_took.as_secs_f64() * 1000.0,
        first.edges.len()
    );
    let mut took = Vec::new();
    let mut considered = 0;
    for _ in 0..rounds {
        for call in &calls {
            let started = Instant::now();
            let found = watch_out(&knowledge, &library, None, call.clone()).await?;
            took.push(started.elapsed());
            considered += found.considered;
        }
    }
    took.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "watch_out: {} calls, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (on average {} edges of the stack considered)",
        took.len(),
        ms(percentile(&took, 0.50)),
        ms(percentile(&took, 0.99)),
        ms(*took.last().unwrap_or(&Duration::ZERO)),
        considered / took.len().max(1)
    );
    Ok(())
}
