//! `update_task` and `plan_report`: the status flow and its refusals, a start refused while
//! dependencies are open, the "not done" gate and a recorded override, the third failure's
//! `unstick` analysis, the server failing a task past its timeout, and idempotent retries.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{plan, task_id, update};
use crate::clients::{self, Client, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

async fn report(client: &Client, plan_id: &str) -> Value {
    let args = json!({"project_id": "p", "plan_id": plan_id});
    ok(&call(client, "plan_report", args).await)
}

#[tokio::test]
async fn the_status_flow_is_enforced_and_a_start_before_dependencies_names_the_blockers() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(
            &client,
            "p",
            json!([{"id": "schema", "title": "Write the schema"},
                   {"id": "api", "title": "Build the API", "depends_on": ["schema"]}]),
        )
        .await;
        let (schema, api) = (task_id(&made, "schema"), task_id(&made, "api"));

        let blocked = ok(&update(&client, "p", &api, "in-progress", json!({})).await);
        assert_eq!(blocked["outcome"], "blocked", "{backend:?}: {blocked}");
        assert_eq!(blocked["status"], "pending", "nothing changed");
        assert_eq!(blocked["blocked_by"][0]["id"], "schema");
        assert_eq!(blocked["blocked_by"][0]["title"], "Write the schema");

        let message = refused(&update(&client, "p", &schema, "completed", json!({})).await);
        assert!(
            message.contains("is pending: it cannot become completed"),
            "{message}"
        );
        let started = ok(&update(&client, "p", &schema, "in-progress", json!({})).await);
        assert_eq!(
            (started["status"].as_str(), started["attempt"].as_i64()),
            (Some("in-progress"), Some(1))
        );
        let message = refused(&update(&client, "p", &schema, "in-progress", json!({})).await);
        assert!(
            message.contains("is in-progress: it cannot become in-progress"),
            "{message}"
        );
        let paused = json!({"blockers": ["waiting for the DBA"]});
        ok(&update(&client, "p", &schema, "blocked", paused).await);
        let message = refused(&update(&client, "p", &schema, "failed", json!({})).await);
        assert!(message.contains("is blocked"), "{message}");
        ok(&update(&client, "p", &schema, "in-progress", json!({})).await);
        ok(&update(
            &client,
            "p",
            &schema,
            "failed",
            json!({"note": "bad column"}),
        )
        .await);
        let again = ok(&update(&client, "p", &schema, "in-progress", json!({})).await);
        assert_eq!(
            again["attempt"], 2,
            "{backend:?}: a failed task starts a new attempt"
        );
        let done = ok(&update(&client, "p", &schema, "completed", json!({})).await);
        assert_eq!(done["checkpoint"], "none:schema:completed");
        let message = refused(&update(&client, "p", &schema, "in-progress", json!({})).await);
        assert!(message.contains("is completed"), "{message}");

        let state = ok(&call(
            &client,
            "project_state",
            json!({"project_id": "p", "operation": "get"}),
        )
        .await);
        assert_eq!(
            state["state"]["checkpoint"], "none:schema:completed",
            "{backend:?}"
        );
        let started = ok(&update(&client, "p", &api, "in-progress", json!({})).await);
        assert_eq!(started["outcome"], "updated");
    }
}

/// A critical project validation on TypeScript files.
async fn no_eval(client: &Client) {
    let check = json!({
        "id": "no-eval", "name": "No eval", "severity": "critical", "kind": "regex",
        "patterns": [r"\beval\("], "message": "eval runs any string as code",
        "fix_action": "parse the input instead", "applies_to": ["**/*.ts"]
    });
    let args = json!({"project_id": "p", "memory_type": "validation", "title": "No eval",
                      "content": check});
    ok(&call(client, "update_memory", args).await);
}

#[tokio::test]
async fn a_failing_check_keeps_the_task_in_progress_with_a_not_done_report_until_an_override_is_recorded()
 {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        no_eval(&client).await;
        let made = plan(
            &client,
            "p",
            json!([{"id": "parse", "title": "Parse input", "skill": "backend", "checks": ["no-eval"]},
                   {"id": "all", "title": "Everything", "checks": "guardrails"}]),
        )
        .await;
        let plan_id = made["plan_id"].as_str().unwrap();
        let parse = task_id(&made, "parse");
        ok(&update(&client, "p", &parse, "in-progress", json!({})).await);
        let message = refused(&update(&client, "p", &parse, "completed", json!({})).await);
        assert!(message.contains("send the files it produced"), "{message}");

        let bad = json!({"outputs": [{"path": "src/parse.ts", "content": "const x = 1;\neval(input);\n"}]});
        let answer = ok(&update(&client, "p", &parse, "completed", bad.clone()).await);
        assert_eq!(answer["outcome"], "not_done", "{backend:?}: {answer}");
        assert_eq!(answer["status"], "in-progress");
        let finding = &answer["not_done"]["findings"][0];
        assert_eq!(finding["check"], "no-eval");
        assert_eq!(finding["file_path"], "src/parse.ts");
        assert_eq!(finding["lines"], json!([2]));
        let options: Vec<&str> = answer["not_done"]["options"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["option"].as_str().unwrap())
            .collect();
        assert_eq!(options, ["fix", "alternative", "override"]);
        assert!(
            answer["not_done"]["options"][0]["detail"]
                .as_str()
                .unwrap()
                .contains("parse the input instead")
        );

        let mut overriding = bad.clone();
        overriding["override"] = json!({"reason": "sandboxed input, reviewed by Ana"});
        let answer = ok(&update(&client, "p", &parse, "completed", overriding).await);
        assert_eq!(answer["outcome"], "updated", "{backend:?}: {answer}");
        assert_eq!(answer["status"], "completed");
        assert_eq!(answer["overridden"][0]["check"], "no-eval");
        assert_eq!(answer["checkpoint"], "backend:parse:completed");

        let all = task_id(&made, "all");
        ok(&update(&client, "p", &all, "in-progress", json!({})).await);
        let clean =
            json!({"outputs": [{"path": "src/all.ts", "content": "const y = JSON.parse(s);\n"}]});
        let answer = ok(&update(&client, "p", &all, "completed", clean).await);
        assert_eq!(
            answer["status"], "completed",
            "clean files pass `guardrails`"
        );

        let report = report(&client, plan_id).await;
        assert_eq!(
            report["guardrail_blocks"].as_array().unwrap().len(),
            1,
            "{backend:?}"
        );
        assert_eq!(report["guardrail_overrides"][0]["id"], "parse");
        assert_eq!(
            report["guardrail_overrides"][0]["detail"]["reason"],
            "sandboxed input, reviewed by Ana"
        );
        assert_eq!(report["success_rate"], 1.0);
        assert_eq!(report["tasks"][0]["outputs"][0]["path"], "src/parse.ts");
        let actions: Vec<&str> = report["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect();
        assert_eq!(
            actions,
            [
                "plan.create",
                "task.update",
                "guardrail.block",
                "task.update",
                "guardrail.override",
                "task.update",
                "task.update"
            ],
            "{backend:?}"
        );
        let stats = ok(&call(&client, "guardrail_stats", json!({"project_id": "p"})).await);
        assert_eq!(
            stats["totals"]["guardrail_override"], 1,
            "{backend:?}: {stats}"
        );
        assert_eq!(
            stats["totals"]["guardrail_block"], 1,
            "{backend:?}: {stats}"
        );
    }
}

#[tokio::test]
async fn the_third_failed_attempt_comes_with_the_unstick_analysis() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(
            &client,
            "p",
            json!([{"id": "cache", "title": "Add a cache"}]),
        )
        .await;
        let cache = task_id(&made, "cache");
        for attempt in 1..=3 {
            ok(&update(&client, "p", &cache, "in-progress", json!({})).await);
            let note = json!({"note": format!("the cache test times out again (try {attempt})"),
                              "blockers": ["TimeoutError: cache warmup exceeded 5s"]});
            let answer = ok(&update(&client, "p", &cache, "failed", note).await);
            assert_eq!(answer["attempt"], attempt);
            if attempt < 3 {
                assert_eq!(
                    answer["unstick"],
                    Value::Null,
                    "{backend:?}: attempt {attempt}"
                );
            } else {
                let unstick = &answer["unstick"];
                assert_eq!(
                    unstick["attempts_analyzed"]["count"], 3,
                    "{backend:?}: {answer}"
                );
                assert!(unstick["diagnosis"].as_str().is_some_and(|d| !d.is_empty()));
            }
        }
    }
}

#[tokio::test]
async fn the_server_fails_an_in_progress_task_past_its_timeout() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(
            &client,
            "p",
            json!([{"id": "slow", "title": "Slow", "timeout_seconds": 1},
                                             {"id": "calm", "title": "No timeout"}]),
        )
        .await;
        let plan_id = made["plan_id"].as_str().unwrap();
        ok(&update(
            &client,
            "p",
            &task_id(&made, "slow"),
            "in-progress",
            json!({}),
        )
        .await);
        ok(&update(
            &client,
            "p",
            &task_id(&made, "calm"),
            "in-progress",
            json!({}),
        )
        .await);
        let started = Instant::now();
        let failed = loop {
            let report = report(&client, plan_id).await;
            if report["tasks"][0]["status"] == "failed" {
                break report;
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "{backend:?}: not failed: {report}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert_eq!(failed["tasks"][0]["last_reason"], "timeout");
        assert_eq!(failed["tasks"][1]["status"], "in-progress", "{backend:?}");
        let timeout = failed["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["detail"]["reason"] == "timeout")
            .expect("a task.update entry for the timeout");
        assert_eq!(timeout["action"], "task.update");
        assert_eq!(timeout["actor"], "server");
        assert_eq!(timeout["detail"]["to"], "failed");
    }
}

#[tokio::test]
async fn update_task_sent_again_with_the_same_key_changes_nothing_twice() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let made = plan(&client, "p", json!([{"id": "a", "title": "A"}])).await;
        let plan_id = made["plan_id"].as_str().unwrap();
        let a = task_id(&made, "a");
        let start = json!({"idempotency_key": "start-a"});
        let first = ok(&update(&client, "p", &a, "in-progress", start.clone()).await);
        let second = ok(&update(&client, "p", &a, "in-progress", start).await);
        assert_eq!(first["replayed"], false);
        assert_eq!(second["replayed"], true, "{backend:?}: {second}");
        assert_eq!(second["attempt"], 1);
        let done = json!({"idempotency_key": "done-a"});
        ok(&update(&client, "p", &a, "completed", done.clone()).await);
        let again = ok(&update(&client, "p", &a, "completed", done).await);
        assert_eq!(
            (again["replayed"].as_bool(), again["status"].as_str()),
            (Some(true), Some("completed"))
        );
        let report = report(&client, plan_id).await;
        let moves = report["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "task.update")
            .count();
        assert_eq!(moves, 2, "{backend:?}: one entry per change");
        let reused = json!({"idempotency_key": "done-a", "note": "other"});
        let message = refused(&update(&client, "p", &a, "completed", reused).await);
        assert!(message.contains("different update_task call"), "{message}");
    }
}
