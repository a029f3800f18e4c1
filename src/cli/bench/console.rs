//! `codifier bench --console`: how fast the web console's memory pages answer. It serves the
//! real router, signs in through the console's form with the run's operator token (as a
//! browser does, keeping the session cookie), then has `--clients` clients GET, for the
//! scenario's duration, the memory list (first page), the list filtered by type and tag, a
//! words search page and — with a model — a hybrid search page, each timed from request to
//! the last byte of the HTML over loopback (so an upper bound on the server's own time).
//! The target (issue 19): p95 <= 100 ms per page at 100,000 memories.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use uuid::Uuid;

use super::load::{self, Row};
use super::{BenchArgs, Served, corpus, load_average, serve};
use crate::config::Config;
use crate::domain::MemoryType;
use crate::embeddings::Embedder;
use crate::http::console::session::COOKIE as SESSION_COOKIE;
use crate::store::Store;

/// The p95 a console page must meet, in ms.
const TARGET_P95_MS: f64 = 100.0;

/// One page to time: its URL, and a text its HTML must hold to count (e.g. that the search
/// ran in the mode asked for).
#[derive(Debug, Clone)]
struct Page {
    url: String,
    must_hold: &'static str,
}

/// Signs in with the operator token through the form; returns the `Cookie` header value.
async fn sign_in(http: &reqwest::Client, served: &Served) -> anyhow::Result<String> {
    let body = serde_urlencoded::to_string([("key", served.token.as_str())])?;
    let response = http
        .post(format!("{}/console/sign-in", served.base))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .context("posting the console's sign-in form")?;
    let prefix = format!("{SESSION_COOKIE}=");
    let cookie = response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|value| value.split(';').next())
        .find(|pair| pair.starts_with(&prefix))
        .map(str::to_owned);
    cookie.with_context(|| {
        format!(
            "the console's sign-in answered {} without a session cookie",
            response.status()
        )
    })
}

fn search_url(base: &str, query: &str, mode: &str) -> anyhow::Result<String> {
    Ok(format!(
        "{base}?{}",
        serde_urlencoded::to_string([("q", query), ("mode", mode)])?
    ))
}

/// The scenarios: a name and the pages its clients take in turn.
fn scenarios(project: Uuid, base: &str, hybrid: bool) -> anyhow::Result<Vec<(String, Vec<Page>)>> {
    let list = format!("{base}/console/projects/{project}/memories");
    let queries = corpus::queries(64, 42);
    let mut filtered = Vec::new();
    for tag in corpus::TOPIC_TAGS {
        for kind in MemoryType::KNOWLEDGE {
            let query = serde_urlencoded::to_string([("type", kind.as_str()), ("tags", tag)])?;
            filtered.push(Page {
                url: format!("{list}?{query}"),
                must_hold: "class=\"results\"",
            });
        }
    }
    let searches = |mode: &str, must_hold: &'static str| -> anyhow::Result<Vec<Page>> {
        queries
            .iter()
            .map(|q| {
                Ok(Page {
                    url: search_url(&list, q, mode)?,
                    must_hold,
                })
            })
            .collect()
    };
    let mut out = vec![
        (
            "memory list".to_owned(),
            vec![Page {
                url: list.clone(),
                must_hold: "class=\"results\"",
            }],
        ),
        ("memory list, type + tag".to_owned(), filtered),
        (
            "text search".to_owned(),
            searches("text", "Ranked by text search")?,
        ),
    ];
    if hybrid {
        out.push((
            "hybrid search".to_owned(),
            searches("hybrid", "Ranked by hybrid search")?,
        ));
    }
    Ok(out)
}

/// What the clients measured on one scenario.
#[derive(Default)]
struct Timed {
    ms: Vec<f64>,
    errors: u64,
    first_error: Option<String>,
}

/// Every client GETs the pages in turn until `duration` is over.
async fn drive(
    http: &reqwest::Client,
    cookie: &str,
    pages: &Arc<Vec<Page>>,
    clients: usize,
    duration: Duration,
) -> (Timed, Duration) {
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<_> = (0..clients)
        .map(|index| {
            let (http, cookie, pages) = (http.clone(), cookie.to_owned(), pages.clone());
            tokio::spawn(async move {
                let mut timed = Timed::default();
                let mut next = index;
                while Instant::now() < deadline {
                    let page = &pages[next % pages.len()];
                    next += clients;
                    let call = Instant::now();
                    let result = async {
                        let response = http.get(&page.url).header(COOKIE, &cookie).send().await?;
                        let status = response.status();
                        let text = response.text().await?;
                        anyhow::Ok((status, text))
                    }
                    .await;
                    let ms = call.elapsed().as_secs_f64() * 1000.0;
                    let failure = match result {
                        Err(error) => Some(format!("GET {}: {error:#}", page.url)),
                        Ok((status, _)) if !status.is_success() => {
                            Some(format!("GET {} answered {status}", page.url))
                        }
                        Ok((_, text)) if !text.contains(page.must_hold) => Some(format!(
                            "GET {}: the page does not hold `{}`",
                            page.url, page.must_hold
                        )),
                        Ok(_) => {
                            timed.ms.push(ms);
                            None
                        }
                    };
                    if let Some(failure) = failure {
                        timed.errors += 1;
                        timed.first_error.get_or_insert(failure);
                    }
                }
                timed
            })
        })
        .collect();
    let mut all = Timed::default();
    for task in tasks {
        match task.await {
            Ok(part) => {
                all.ms.extend(part.ms);
                all.errors += part.errors;
                if all.first_error.is_none() {
                    all.first_error = part.first_error;
                }
            }
            Err(error) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert(format!("client task failed: {error}"));
            }
        }
    }
    (all, started.elapsed())
}

/// Times the console's memory pages and prints the table and the verdicts.
pub async fn run(
    config: &Config,
    store: &Arc<dyn Store>,
    embedder: Option<Arc<dyn Embedder>>,
    project: Uuid,
    args: &BenchArgs,
) -> anyhow::Result<()> {
    let hybrid = embedder.is_some();
    let served = serve(config, store, embedder).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let cookie = sign_in(&http, &served).await?;
    if !hybrid {
        println!("no model: the hybrid search page is not timed");
    }
    let (duration, warmup) = (
        Duration::from_secs(args.duration_secs.max(1)),
        Duration::from_secs((args.duration_secs / 4).clamp(1, 5)),
    );
    let mut rows = Vec::new();
    let mut failed = None;
    for (name, pages) in scenarios(project, &served.base, hybrid)? {
        let pages = Arc::new(pages);
        let load_before = load_average();
        drive(&http, &cookie, &pages, args.clients, warmup).await;
        let (timed, elapsed) = drive(&http, &cookie, &pages, args.clients, duration).await;
        let row = Row::new(&name, &timed.ms, elapsed, timed.errors);
        print!(
            "\n== Console page: {name} == (load average before: {load_before})\n{}",
            load::table(std::slice::from_ref(&row))
        );
        if let Some(error) = &timed.first_error {
            println!("first error: {error}");
            failed.get_or_insert_with(|| error.clone());
        }
        rows.push(row);
    }
    served.stop().await?;
    println!(
        "\n== Console pages ({} clients, {} s per page, {}) ==",
        args.clients,
        args.duration_secs,
        store.backend()
    );
    print!("{}", load::table(&rows));
    for row in &rows {
        let verdict = if row.p95 <= TARGET_P95_MS {
            "met"
        } else {
            "MISSED"
        };
        println!(
            "target: console {} p95 {:.2} ms <= {TARGET_P95_MS} ms: {verdict}",
            row.name, row.p95
        );
    }
    match failed {
        Some(error) => anyhow::bail!("some console pages failed: {error}"),
        None => Ok(()),
    }
}
