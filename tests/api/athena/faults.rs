//! Sidecar faults under load (issue 21, part 5): four clients call `query_data` in a loop while
//! the real `aws-athena-mcp` sidecar is killed (`SIGKILL`) or hung (`SIGSTOP`) under them.
//! Each call caught by the fault either succeeds on a fresh sidecar (a read is retried once
//! when the sidecar died under it) or fails within its timeout with a message saying what
//! happened; then every client's next call succeeds, on a new sidecar process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{AthenaServer, Moto, list_tables, sidecar_config, sidecar_python, signal};
use crate::clients::{self, Client};
use crate::helpers::{Backend, OPERATOR_TOKEN};

const CLIENTS: usize = 4;
const CALL_TIMEOUT: Duration = Duration::from_secs(8);

/// One call's outcome: how long it took, and the error text when it failed.
type Outcome = (Duration, Result<(), String>);

/// Runs `list_tables` from every client in a loop until `stop`; returns each call's outcome.
async fn load(
    clients: &[Arc<Client>],
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<Vec<Outcome>>> {
    clients
        .iter()
        .map(|client| {
            let (client, stop) = (client.clone(), stop.clone());
            tokio::spawn(async move {
                let mut outcomes = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let answer = list_tables(&client, "warehouse").await;
                    let outcome = match answer.is_error {
                        Some(true) => Err(format!("{:?}", answer.content)),
                        _ => Ok(()),
                    };
                    outcomes.push((started.elapsed(), outcome));
                }
                outcomes
            })
        })
        .collect()
}

/// Runs the load, applies `fault` to the sidecar after a second, keeps loading for `then`, and
/// returns every call's outcome.
async fn under_load(
    server: &AthenaServer,
    clients: &[Arc<Client>],
    fault: &str,
    then: Duration,
) -> Vec<Outcome> {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(clients, stop.clone()).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal(server.pid().await, fault);
    tokio::time::sleep(then).await;
    stop.store(true, Ordering::SeqCst);
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.extend(task.await.expect("a client task"));
    }
    outcomes
}

/// Every client's next call succeeds, on a sidecar other than `before`.
async fn all_recover(server: &AthenaServer, clients: &[Arc<Client>], before: u32) {
    for client in clients {
        let answer = list_tables(client, "warehouse").await;
        assert_ne!(
            answer.is_error,
            Some(true),
            "the next call fails: {answer:?}"
        );
    }
    assert_ne!(server.pid().await, before, "a fresh sidecar answered");
}

fn summary(outcomes: &[Outcome]) -> (usize, usize, Duration) {
    let failed = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    let slowest = outcomes
        .iter()
        .map(|(took, _)| *took)
        .max()
        .unwrap_or_default();
    (outcomes.len(), failed, slowest)
}

#[tokio::test]
async fn under_four_clients_a_killed_or_hung_sidecar_fails_calls_within_their_timeout_and_the_next_succeed()
 {
    let Some(python) = sidecar_python() else {
        return;
    };
    let moto = Moto::start(&python).await;
    let server = AthenaServer::start(
        Backend::Sqlite,
        Some(sidecar_config(&python, &moto, CALL_TIMEOUT)),
    )
    .await;
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(Arc::new(
            clients::streamable(&server.url, OPERATOR_TOKEN).await,
        ));
    }
    let created = clients::call(
        &clients[0],
        "manage_projects",
        serde_json::json!({"operation": "create", "name": "warehouse"}),
    )
    .await;
    assert_ne!(created.is_error, Some(true), "{created:?}");
    all_recover(&server, &clients, 0).await;

    // Killed: the calls in flight are retried on a fresh sidecar, or fail saying so.
    let killed = server.pid().await;
    let outcomes = under_load(&server, &clients, "-KILL", Duration::from_secs(3)).await;
    for (took, outcome) in &outcomes {
        if let Err(message) = outcome {
            assert!(
                message.contains("Athena sidecar"),
                "a failed call says what failed: {message}"
            );
        }
        assert!(
            *took < CALL_TIMEOUT + Duration::from_secs(30),
            "a call caught by the kill took {took:?}"
        );
    }
    let (calls, failed, slowest) = summary(&outcomes);
    all_recover(&server, &clients, killed).await;

    // Hung: the calls on the stopped sidecar end at their timeout with the reason; the first
    // to time out kills it, and the rest are retried on a fresh one.
    let hung = server.pid().await;
    let outcomes = under_load(
        &server,
        &clients,
        "-STOP",
        CALL_TIMEOUT + Duration::from_secs(3),
    )
    .await;
    let timed_out: Vec<&Duration> = outcomes
        .iter()
        .filter_map(|(took, outcome)| outcome.as_ref().err().map(|message| (took, message)))
        .map(|(took, message)| {
            assert!(
                message.contains("did not answer within 8 s"),
                "a call on the hung sidecar says so: {message}"
            );
            took
        })
        .collect();
    assert!(!timed_out.is_empty(), "some call was caught by the hang");
    for took in &timed_out {
        assert!(
            **took < CALL_TIMEOUT + Duration::from_secs(3),
            "a call on the hung sidecar failed only after {took:?}"
        );
    }
    let (hung_calls, _, hung_slowest) = summary(&outcomes);
    all_recover(&server, &clients, hung).await;
    eprintln!(
        "sidecar faults under {CLIENTS} clients: killed — {calls} calls, {failed} failed, slowest {slowest:?}; \
         hung — {hung_calls} calls, {} failed at the {CALL_TIMEOUT:?} timeout (slowest failure {:?}), slowest call {hung_slowest:?}; \
         every client's next call succeeded on a new sidecar",
        timed_out.len(),
        timed_out.iter().max()
    );
    server.stop().await;
}
