//! Crash safety of plans and webhooks: the real server killed with `SIGKILL` at a random moment
//! while three writers create plans and move their tasks through `update_task`, and while the
//! deliverer posts the events to a webhook receiver on loopback. After every restart each
//! acknowledged plan is there with all its tasks, each task's status is the acknowledged one
//! (or the next, when that call was cut off after its commit), every status change has its
//! event and no event lacks its change, SQLite passes `PRAGMA integrity_check`, and the MCP
//! session opened before the first kill resumes.
//!
//! Webhooks are at least once: after the last restart every event reaches the receiver, and a
//! delivery is repeated only across a kill (the dead server posted it but could not record the
//! answer; its lease ran out and the next server posted it again), never twice by one process.
//! Receivers drop repeats by the `Codifier-Delivery` header.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::HeaderMap;
use rand::Rng;
use serde_json::{Value, json};
use uuid::Uuid;

use super::crash::{healthy, integrity_check};
use super::{Mcp, Process, knob};
use crate::helpers::{Backend, OPERATOR_TOKEN, backends, fresh_database};

const WRITERS: usize = 3;
/// The statuses each task goes through, in order (pending is where it starts).
const FLOW: [&str; 3] = ["pending", "in-progress", "completed"];

/// What the receiver got: (delivery id, event id, the server process running at the time).
#[derive(Default)]
struct Receipts {
    got: Mutex<Vec<(String, i64, usize)>>,
    process: AtomicUsize,
}

async fn receiver(receipts: Arc<Receipts>) -> String {
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let receipts = receipts.clone();
            async move {
                let delivery = headers
                    .get("codifier-delivery")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let event = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .and_then(|body| body["id"].as_i64())
                    .unwrap_or(-1);
                let process = receipts.process.load(Ordering::SeqCst);
                receipts
                    .got
                    .lock()
                    .unwrap()
                    .push((delivery, event, process));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{address}/hook")
}

/// What was acknowledged: each plan with its task ids, and each task's last status.
#[derive(Default, Clone)]
struct Acked {
    plans: HashMap<Uuid, Vec<Uuid>>,
    status: HashMap<Uuid, usize>,
}

/// One writer: plans of three chained tasks, each task started and completed in turn, until
/// a call fails (the server was killed).
async fn writer(client: Mcp, base: String, acked: Arc<Mutex<Acked>>, name: String) {
    for n in 0.. {
        let tasks = json!([{"id": "a", "title": "first"},
                           {"id": "b", "title": "second", "depends_on": ["a"]},
                           {"id": "c", "title": "third", "depends_on": ["b"]}]);
        let args = json!({"title": format!("{name} plan {n}"), "tasks": tasks});
        let Ok(plan) = client.call(&base, "plan_tasks", args).await else {
            return;
        };
        let plan_id: Uuid = plan["plan_id"].as_str().unwrap().parse().unwrap();
        let ids: Vec<Uuid> = ["a", "b", "c"]
            .iter()
            .map(|id| {
                plan["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|task| task["id"] == *id)
                    .and_then(|task| task["task_id"].as_str())
                    .and_then(|task| task.parse().ok())
                    .unwrap_or_else(|| panic!("no task {id} in {plan}"))
            })
            .collect();
        {
            let mut acked = acked.lock().unwrap();
            acked.plans.insert(plan_id, ids.clone());
            for id in &ids {
                acked.status.insert(*id, 0);
            }
        }
        for id in &ids {
            for (step, status) in FLOW.iter().enumerate().skip(1) {
                let args = json!({"task_id": id, "status": status});
                if client.call(&base, "update_task", args).await.is_err() {
                    return;
                }
                acked.lock().unwrap().status.insert(*id, step);
            }
        }
    }
}

/// Checks the store against what was acknowledged; returns the number of task.update events.
async fn check_plans(
    store: &std::sync::Arc<dyn codifier::store::Store>,
    project: Uuid,
    acked: &Acked,
    round: u64,
) -> usize {
    let plans = store.list_plans(project, 10_000).await.unwrap();
    let stored: HashSet<Uuid> = plans.iter().map(|plan| plan.plan_id).collect();
    for plan in acked.plans.keys() {
        assert!(
            stored.contains(plan),
            "round {round}: the acknowledged plan {plan} is gone after SIGKILL"
        );
    }
    // Each kill may cut off one plan per writer after its commit, before its answer.
    assert!(
        plans.len() <= acked.plans.len() + WRITERS * (round as usize + 1),
        "round {round}: {} plans for {} acknowledged",
        plans.len(),
        acked.plans.len()
    );
    let filter = codifier::domain::EventFilter {
        types: vec!["task.update".into()],
        limit: 100_000,
        ..Default::default()
    };
    let events = store.list_events(project, &filter).await.unwrap();
    let mut changes: HashMap<String, usize> = HashMap::new();
    for event in &events {
        *changes
            .entry(event.subject.clone().unwrap_or_default())
            .or_default() += 1;
    }
    for summary in &plans {
        let plan = store
            .get_plan(project, summary.plan_id)
            .await
            .unwrap()
            .expect("a listed plan");
        assert_eq!(
            plan.tasks.len(),
            3,
            "round {round}: plan {} is whole, not half-written",
            plan.plan_id
        );
        for task in &plan.tasks {
            let at = FLOW
                .iter()
                .position(|status| *status == task.status.as_str())
                .unwrap_or_else(|| panic!("round {round}: unexpected status {:?}", task.status));
            if let Some(acked) = acked.status.get(&task.task_id) {
                assert!(
                    at == *acked || at == acked + 1,
                    "round {round}: task {} is {} but {} was acknowledged",
                    task.task_id,
                    FLOW[at],
                    FLOW[*acked]
                );
            }
            let events = changes.get(&task.task_id.to_string()).copied().unwrap_or(0);
            assert_eq!(
                events, at,
                "round {round}: task {} made {at} status changes and has {events} events",
                task.task_id
            );
        }
    }
    events.len()
}

async fn kill_during_plans_and_deliveries(backend: Backend) {
    let rounds = knob("CRASH_ROUNDS", 3);
    let database = fresh_database(backend).await;
    let store = codifier::store::connect(&database.url).await.unwrap();
    store.migrate().await.unwrap();
    let actor = codifier::domain::Actor {
        label: "test".into(),
        tool: "test".into(),
    };
    let project = store
        .create_project(&actor, "crash", None)
        .await
        .unwrap()
        .id;
    let receipts = Arc::new(Receipts::default());
    let hook = receiver(receipts.clone()).await;
    let env = [
        ("CODIFIER_WEBHOOK_ALLOW_PRIVATE", "true"),
        ("CODIFIER_EVENTS_POLL_MS", "50"),
        ("CODIFIER_WEBHOOK_BACKOFF_SECONDS", "1"),
        ("CODIFIER_WEBHOOK_TIMEOUT_SECONDS", "1"),
        ("CODIFIER_WEBHOOK_LEASE_SECONDS", "2"),
    ];
    let mut client = Mcp::new(OPERATOR_TOKEN);
    let acked: Arc<Mutex<Acked>> = Arc::default();
    for round in 0..=rounds {
        receipts.process.store(round as usize, Ordering::SeqCst);
        let server = Process::start(&database.url, &env).await;
        healthy(&server).await;
        if round == 0 {
            client.initialize(&server.base).await;
            client
                .call(
                    &server.base,
                    "manage_projects",
                    json!({"operation": "switch", "project_id": "crash"}),
                )
                .await
                .expect("switch");
            let types = ["plan.create", "task.update"];
            client
                .call(
                    &server.base,
                    "manage_webhooks",
                    json!({"operation": "create", "url": hook, "event_types": types}),
                )
                .await
                .expect("create the webhook");
        } else {
            assert_eq!(
                client.list_tools(&server.base).await,
                200,
                "round {round}: the session opened before the kills resumes"
            );
            let shown = client
                .call(&server.base, "manage_projects", json!({"operation": "get"}))
                .await
                .expect("get the active project");
            assert_eq!(shown["active_project_id"], json!(project), "round {round}");
        }
        if round == rounds {
            // The last server is left to run: every event must reach the receiver.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let filter = codifier::domain::EventFilter {
                types: vec!["plan.create".into(), "task.update".into()],
                limit: 100_000,
                ..Default::default()
            };
            let events: HashSet<i64> = store
                .list_events(project, &filter)
                .await
                .unwrap()
                .iter()
                .map(|event| event.id)
                .collect();
            loop {
                let got: HashSet<i64> = receipts.got.lock().unwrap().iter().map(|r| r.1).collect();
                let missing = events.difference(&got).count();
                if missing == 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{backend:?}: {missing} of {} events never reached the webhook",
                    events.len()
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            server.kill().await;
            let got = receipts.got.lock().unwrap().clone();
            let mut by_delivery: HashMap<&str, Vec<usize>> = HashMap::new();
            for (delivery, _, process) in &got {
                by_delivery.entry(delivery).or_default().push(*process);
            }
            let repeated = by_delivery.values().filter(|p| p.len() > 1).count();
            for (delivery, processes) in &by_delivery {
                let distinct: HashSet<&usize> = processes.iter().collect();
                assert_eq!(
                    distinct.len(),
                    processes.len(),
                    "{backend:?}: delivery {delivery} was posted twice by one server ({processes:?})"
                );
            }
            let acked = acked.lock().unwrap();
            eprintln!(
                "{backend:?}: {rounds} kills during plan updates and deliveries; {} plans, {} task changes acknowledged, all present; {} events delivered, {repeated} of them again after a kill",
                acked.plans.len(),
                acked.status.values().sum::<usize>(),
                events.len()
            );
            return;
        }
        let writers: Vec<_> = (0..WRITERS)
            .map(|n| {
                let (client, base, acked) = (client.clone(), server.base.clone(), acked.clone());
                tokio::spawn(writer(
                    client,
                    base,
                    acked,
                    format!("writer {n} round {round}"),
                ))
            })
            .collect();
        let wait = rand::thread_rng().gen_range(150..900);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill().await;
        for writer in writers {
            writer.await.unwrap();
        }
        let acked_now = acked.lock().unwrap().clone();
        assert!(
            !acked_now.status.is_empty(),
            "round {round}: nothing was acknowledged"
        );
        check_plans(&store, project, &acked_now, round).await;
        if backend == Backend::Sqlite {
            assert_eq!(integrity_check(&database.url).await, "ok", "round {round}");
        }
    }
}

#[tokio::test]
async fn acknowledged_plan_changes_survive_sigkill_and_every_event_reaches_the_webhook() {
    for backend in backends() {
        kill_during_plans_and_deliveries(backend).await;
    }
}
