//! A database outage: a Postgres cluster of the test's own stopped with `pg_ctl stop -m fast`
//! under a steady write load, then started again. While it is down `/health` says 503 and every
//! tool call fails within the pool's acquire timeout (`CODIFIER_DB_ACQUIRE_TIMEOUT_SECONDS`) with
//! "Store unavailable … Retry"; once it is back the server serves again by itself; every
//! acknowledged write is present and no more than the writes in flight at the stop are extra.
//! `CODIFIER_RELIABILITY_OUTAGE_SECS` sets how long it is down (CI: 6; the run: 15).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use uuid::Uuid;

use super::{Cluster, Mcp, Process, knob, memory, written_id};
use crate::helpers::OPERATOR_TOKEN;

const WRITERS: usize = 3;
/// The acquire timeout the server runs with here, and so the bound on a failing call.
const ACQUIRE_SECS: u64 = 3;

/// One tool call as a writer saw it.
struct Call {
    at: Instant,
    took: Duration,
    outcome: Result<Uuid, String>,
}

#[tokio::test]
async fn a_postgres_outage_answers_503_fails_calls_fast_and_recovers_with_every_acknowledged_write()
{
    let Some(cluster) = Cluster::create().await else {
        return;
    };
    let down_for = Duration::from_secs(knob("OUTAGE_SECS", 6));
    let url = cluster.url("codifier");
    let project = {
        let store = codifier::store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let actor = codifier::domain::Actor {
            label: "test".into(),
            tool: "test".into(),
        };
        store
            .create_project(&actor, "outage", None)
            .await
            .unwrap()
            .id
    };
    let acquire = ACQUIRE_SECS.to_string();
    let server = Process::start(
        &url,
        &[("CODIFIER_DB_ACQUIRE_TIMEOUT_SECONDS", acquire.as_str())],
    )
    .await;
    assert_eq!(server.health().await, 200);
    let mut client = Mcp::new(OPERATOR_TOKEN);
    client.initialize(&server.base).await;

    let (stop, calls) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (client, base) = (client.clone(), server.base.clone());
            let (stop, calls) = (stop.clone(), calls.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let at = Instant::now();
                    let answer = client
                        .call(&base, "update_memory", memory(project, writer, n))
                        .await;
                    let failed = answer.is_err();
                    calls.lock().unwrap().push(Call {
                        at,
                        took: at.elapsed(),
                        outcome: answer.map(|answer| written_id(&answer)),
                    });
                    if failed {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            })
        })
        .collect();

    tokio::time::sleep(Duration::from_secs(1)).await;
    cluster.stop();
    let stopped = Instant::now();
    let mut health = Vec::new();
    while stopped.elapsed() < down_for {
        let asked = Instant::now();
        health.push((server.health().await, asked.elapsed()));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    cluster.start();
    let started = Instant::now();
    let recovered = loop {
        let done = calls
            .lock()
            .unwrap()
            .iter()
            .filter(|call| call.at >= started && call.outcome.is_ok())
            .count();
        if done >= WRITERS {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not serve writes within 30 s of Postgres coming back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let health_after = server.health().await;

    let calls = std::mem::take(&mut *calls.lock().unwrap());
    let failed: Vec<&Call> = calls.iter().filter(|call| call.outcome.is_err()).collect();
    let acked: Vec<Uuid> = calls
        .iter()
        .filter_map(|call| call.outcome.clone().ok())
        .collect();
    let slowest = failed
        .iter()
        .map(|call| call.took)
        .max()
        .unwrap_or_default();
    eprintln!(
        "outage {down_for:?}: {} calls, {} acknowledged, {} failed (slowest failure {slowest:?}), \
         /health while down {:?}, writes again {recovered:?} after the start",
        calls.len(),
        acked.len(),
        failed.len(),
        health
    );
    for call in &failed {
        eprintln!("  failed after {:?}: {:?}", call.took, call.outcome);
    }
    assert!(!health.is_empty());
    for (status, took) in &health {
        assert_eq!(*status, 503, "/health while Postgres is down");
        assert!(*took < Duration::from_secs(5), "/health took {took:?}");
    }
    assert_eq!(health_after, 200, "/health after Postgres is back");
    assert!(!failed.is_empty(), "no call failed while Postgres was down");
    for call in &failed {
        let message = call.outcome.as_ref().unwrap_err();
        assert!(
            message.contains("Store unavailable") && message.contains("Retry"),
            "a failed call says what happened and what to do: {message}"
        );
        assert!(
            call.took <= Duration::from_secs(ACQUIRE_SECS + 2),
            "a call hung {:?} (acquire timeout {ACQUIRE_SECS} s): {message}",
            call.took
        );
    }

    let store = codifier::store::connect(&url).await.unwrap();
    for id in &acked {
        assert!(
            store.get_memory(project, *id).await.unwrap().is_some(),
            "the acknowledged write {id} is gone after the outage"
        );
    }
    let count = store.count_memories(project).await.unwrap() as usize;
    assert!(
        count >= acked.len() && count <= acked.len() + WRITERS,
        "{count} memories for {} acknowledged writes ({WRITERS} were in flight at the stop)",
        acked.len()
    );
    server.kill().await;
}
