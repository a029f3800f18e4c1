//! `validate_code` and `guardrail_stats` through an MCP client, on every backend: a project's
//! own validations (written with `update_memory`) grouped by severity with their lines, the
//! `applies_to` prefilter, a pattern built to backtrack forever stopped by its budget, and
//! telemetry that stays in its project (and is mirrored on `/metrics`).

use std::time::{Duration, Instant};

use codifier::domain::{GuardrailEventKind, Role};
use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

/// Writes a validation into `project` through `update_memory`.
async fn validation(client: &Client, project: &str, check: Value, tags: &[&str]) {
    let title = check["name"].as_str().expect("name").to_owned();
    let written = call(
        client,
        "update_memory",
        json!({"project_id": project, "memory_type": "validation", "title": title,
               "content": check, "tags": tags}),
    )
    .await;
    ok(&written);
}

fn check(id: &str, severity: &str, pattern: &str, applies_to: &[&str]) -> Value {
    json!({
        "id": id, "name": format!("Check {id}"), "severity": severity, "kind": "regex",
        "patterns": [pattern], "message": format!("{id} found"),
        "fix_action": format!("remove {id}"), "applies_to": applies_to
    })
}

/// The ids and lines of one severity group of a report.
fn group(report: &Value, severity: &str) -> Vec<(String, Vec<u64>)> {
    let failures = report[severity].as_array().expect(severity);
    let entry = |f: &Value| {
        let lines = f["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_u64().unwrap());
        (f["check"].as_str().unwrap().to_owned(), lines.collect())
    };
    failures.iter().map(entry).collect()
}

async fn validate(client: &Client, project: &str, path: &str, code: &str) -> Value {
    let args = json!({"project_id": project, "file_path": path, "code": code});
    ok(&call(client, "validate_code", args).await)
}

/// Three checks of three severities, on TypeScript files only.
async fn three_checks(client: &Client, project: &str) {
    let ts = ["**/*.ts", "*.tsx"];
    validation(
        client,
        project,
        check("no-eval", "critical", r"\beval\(", &ts),
        &["security"],
    )
    .await;
    validation(
        client,
        project,
        check("no-log", "warning", r"console\.log\(", &ts),
        &["style"],
    )
    .await;
    validation(
        client,
        project,
        check("todo", "info", r"TODO(?!\(#\d+\))", &[]),
        &["style"],
    )
    .await;
}

const CODE: &str = "const a = 1;\nconsole.log(a);\neval(input);\n// TODO(#12) tracked\n// TODO untracked\nconsole.log(a, a);\n";

#[tokio::test]
async fn validate_code_groups_failures_by_severity_with_their_lines_and_fails_on_critical() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("p").await;
        let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        three_checks(&operator, "p").await;
        let reader = server.key(project.id, Role::Read).await;
        let reader = clients::streamable(&server.url("/mcp"), &reader).await;

        let report = validate(&reader, "p", "src/app.ts", CODE).await;
        assert_eq!(report["passed"], false, "{backend:?}: {report}");
        assert_eq!(group(&report, "critical"), [("no-eval".into(), vec![3])]);
        assert_eq!(group(&report, "warnings"), [("no-log".into(), vec![2, 6])]);
        assert_eq!(
            group(&report, "info"),
            [("todo".into(), vec![5])],
            "lookahead"
        );
        assert_eq!(group(&report, "errors"), []);
        let failure = &report["critical"][0];
        assert_eq!(failure["line"], 3);
        assert_eq!(failure["fix_suggestion"], "remove no-eval");
        assert_eq!(failure["message"], "no-eval found");
        assert_eq!(failure["skill"], Value::Null, "the project's own check");
        assert_eq!(report["checks_run"], 3);
        let summary = report["summary"].as_str().unwrap();
        assert!(
            summary.starts_with("Failed: 3 checks on src/app.ts"),
            "{summary}"
        );

        let clean = CODE.replace("eval(input);", "run(input);");
        let report = validate(&reader, "p", "src/app.ts", &clean).await;
        assert_eq!(report["passed"], true, "{backend:?}: warnings do not fail");
        assert_eq!(group(&report, "warnings").len(), 1);

        let only = json!({"project_id": "p", "file_path": "src/app.ts", "code": CODE,
                          "check_types": ["security"]});
        let report = ok(&call(&reader, "validate_code", only).await);
        assert_eq!(
            report["checks_run"], 1,
            "{backend:?}: only the security check"
        );
        assert_eq!(group(&report, "critical").len(), 1);
    }
}

#[tokio::test]
async fn a_file_meets_only_the_checks_whose_applies_to_globs_match_its_path() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        three_checks(&client, "p").await;
        let py = check("py-print", "error", r"print\(", &["**/*.py"]);
        validation(&client, "p", py, &[]).await;
        let broken = check("broken", "error", r"print(", &["**/*.py"]);
        let write = json!({"project_id": "p", "memory_type": "validation", "title": "Broken",
                           "content": broken});
        let refusal = refused(&call(&client, "update_memory", write).await);
        assert!(
            refusal.contains("content.patterns[0]"),
            "{backend:?}: {refusal}"
        );

        let python = validate(&client, "p", "tools/build.py", "print(1)\n# TODO x\n").await;
        assert_eq!(
            python["checks_run"], 2,
            "{backend:?}: py-print and the unscoped todo"
        );
        assert_eq!(group(&python, "errors"), [("py-print".into(), vec![1])]);
        assert_eq!(group(&python, "info"), [("todo".into(), vec![2])]);
        assert_eq!(python["skipped_checks"], json!([]), "{backend:?}: {python}");

        let markdown = validate(&client, "p", "docs/guide.md", CODE).await;
        assert_eq!(
            markdown["checks_run"], 1,
            "{backend:?}: only the unscoped check"
        );
        assert_eq!(
            markdown["passed"], true,
            "eval in a .md file is not checked"
        );

        let tsx = validate(&client, "p", "./App.tsx", CODE).await;
        assert_eq!(tsx["checks_run"], 3, "{backend:?}: *.tsx at the root");
    }
}

#[tokio::test]
async fn a_pattern_built_to_backtrack_forever_finishes_within_its_budget() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let forever = check("forever", "critical", r"^(a+)+(?=z)b$", &[]);
        validation(&client, "p", forever, &[]).await;
        validation(&client, "p", check("no-eval", "error", r"eval\(", &[]), &[]).await;

        let code = format!("eval(x)\n{}b\n", "a".repeat(48));
        let started = Instant::now();
        let report = validate(&client, "p", "src/a.ts", &code).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(20), "{backend:?}: took {took:?}");
        let unfinished = report["unfinished"].as_array().expect("unfinished");
        assert_eq!(unfinished.len(), 1, "{backend:?}: {report}");
        assert_eq!(unfinished[0]["check"], "forever");
        assert_eq!(
            unfinished[0]["message"],
            "check did not finish within its budget"
        );
        assert_eq!(group(&report, "critical"), [], "not a failure");
        assert_eq!(
            group(&report, "errors"),
            [("no-eval".into(), vec![1])],
            "the rest ran"
        );
        let summary = report["summary"].as_str().unwrap();
        assert!(
            summary.contains("did not finish within the budget"),
            "{summary}"
        );
    }
}

/// The guardrail blocks `/metrics` has counted in this process so far.
async fn blocks_on_metrics(server: &TestServer) -> f64 {
    let response = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(OPERATOR_TOKEN)
        .send()
        .await
        .expect("metrics");
    let text = response.text().await.expect("metrics text");
    let series = "codifier_guardrail_events_total{kind=\"guardrail_block\"}";
    let value = text.lines().find_map(|line| line.strip_prefix(series));
    value.map_or(0.0, |value| value.trim().parse().expect("a number"))
}

#[tokio::test]
async fn guardrail_stats_count_blocks_by_check_and_severity_and_overrides_in_their_own_project_only()
 {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let (a, b) = (server.project("a").await, server.project("b").await);
        let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        three_checks(&operator, "a").await;
        three_checks(&operator, "b").await;
        let key_a = server.key(a.id, Role::Read).await;
        let key_a = clients::streamable(&server.url("/mcp"), &key_a).await;
        let key_b = server.key(b.id, Role::Read).await;
        let key_b = clients::streamable(&server.url("/mcp"), &key_b).await;

        let counted = blocks_on_metrics(&server).await;
        for _ in 0..2 {
            validate(&key_a, "a", "src/app.ts", CODE).await;
        }
        let added = blocks_on_metrics(&server).await - counted;
        assert!(
            added >= 2.0,
            "{backend:?}: /metrics counted {added} more blocks"
        );
        validate(&key_b, "b", "src/app.ts", "const clean = 1;\n").await;
        // An override (a task closed despite a block) as the task tools record one.
        let overridden = codifier::guardrails::telemetry::event(
            GuardrailEventKind::GuardrailOverride,
            "update_task",
            &codifier::auth::Identity::Local,
            "no-eval",
            Some(codifier::domain::guardrail::Severity::Critical),
            json!({"task": "ship the form"}),
        );
        codifier::guardrails::telemetry::record(server.store.as_ref(), a.id, &[overridden])
            .await
            .expect("an override is recorded");

        let stats = ok(&call(&key_a, "guardrail_stats", json!({"days": 7})).await);
        assert_eq!(stats["days"], 7);
        let blocks = json!([{"check": "no-eval", "severity": "critical", "count": 2}]);
        assert_eq!(
            stats["blocks"], blocks,
            "{backend:?}: warnings do not block"
        );
        assert_eq!(stats["totals"]["guardrail_block"], 2);
        assert_eq!(stats["totals"]["session_start"], 0);
        assert_eq!(stats["totals"]["guardrail_override"], 1, "{backend:?}");
        assert_eq!(stats["escape_hatch_triggers"], json!([]));

        let of_b = ok(&call(&key_b, "guardrail_stats", json!({"project_id": "b"})).await);
        assert_eq!(of_b["blocks"], json!([]), "{backend:?}: B sees none of A's");
        assert_eq!(of_b["totals"]["guardrail_block"], 0);
        assert_eq!(of_b["totals"]["guardrail_override"], 0);
        let across = call(&key_b, "guardrail_stats", json!({"project_id": "a"})).await;
        let refusal = refused(&across);
        assert!(refusal.contains("bound to another project"), "{refusal}");
        let bad = call(&key_a, "guardrail_stats", json!({"days": 0})).await;
        assert!(refused(&bad).contains("`days`"), "{backend:?}");
    }
}
