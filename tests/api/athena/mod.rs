//! `query_data` end to end: an MCP client over Streamable HTTP, the server, the real
//! `aws-athena-mcp` sidecar (from the venv `scripts/install-sidecar.sh` makes), and a local
//! `moto` server standing in for AWS, seeded through `/moto-api/static/athena/query-results`.

mod faults;
mod fixtures;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use codifier::athena::AthenaConfig;
use codifier::domain::Role;
use serde_json::json;

use crate::clients::{self, call, ok, refused};
use crate::helpers::{Backend, OPERATOR_TOKEN, backends};
pub(crate) use fixtures::{
    AthenaServer, Moto, list_tables, result_set, sidecar_config, sidecar_python, signal,
};

#[tokio::test]
async fn a_read_key_lists_describes_and_queries_through_the_real_sidecar() {
    let Some(python) = sidecar_python() else {
        return;
    };
    for backend in backends() {
        let moto = Moto::start(&python).await;
        let server = AthenaServer::start(
            backend,
            Some(sidecar_config(&python, &moto, Duration::from_secs(120))),
        )
        .await;
        let (_, key) = server.project_key("warehouse", Role::Read).await;
        let client = clients::streamable(&server.url, &key).await;
        let tool = client
            .list_all_tools()
            .await
            .expect("tools")
            .into_iter()
            .find(|tool| tool.name == "query_data")
            .expect("query_data is listed");
        let annotations = tool.annotations.expect("annotations");
        assert_eq!(annotations.read_only_hint, Some(true));

        // Athena's SHOW TABLES and DESCRIBE have no header row, but aws-athena-mcp 1.0.1 drops
        // the first row anyway: `events` and the `id` column go missing. The notices say so.
        moto.seed(json!([
            result_set(&["tab_name"], &[&["events"], &["orders"], &["users"]]),
            result_set(
                &["col_name", "data_type", "comment"],
                &[
                    &["id", "bigint", ""],
                    &["name", "string", ""],
                    &["email", "string", "contact"]
                ],
            ),
            // Athena's own DESCRIBE shape: Hive-style lines, tab-separated, in one column.
            result_set(
                &["col_name"],
                &[
                    &["order_id            \tbigint              \t"],
                    &["total               \tdouble              \tin euros"],
                    &["dt                  \tstring              \t"],
                    &[""],
                    &["# Partition Information"],
                    &["# col_name            \tdata_type           \tcomment"],
                    &["dt                  \tstring              \t"],
                ],
            ),
        ]))
        .await;
        let listed = ok(&list_tables(&client, "warehouse").await);
        assert_eq!(listed["database"], "analytics", "the default database");
        assert_eq!(
            listed["tables"],
            json!(["orders", "users"]),
            "the sidecar drops `events`"
        );
        assert!(listed["notices"].to_string().contains("SHOW TABLES"));
        let described = ok(&call(
            &client,
            "query_data",
            json!({"operation": "describe-tables", "project_id": "warehouse", "table_names": ["users", "orders"]}),
        )
        .await);
        let orders = &described["described"][1];
        assert_eq!(orders["table"], "orders");
        assert_eq!(
            orders["columns"],
            json!([{"name": "total", "type": "double", "comment": "in euros"}, {"name": "dt", "type": "string"}]),
            "split, the partition section folded in, and `order_id` dropped by the sidecar"
        );
        let columns = &described["described"][0]["columns"];
        assert_eq!(
            columns[0]["name"], "name",
            "the sidecar drops the `id` column"
        );
        assert_eq!(
            columns[1],
            json!({"name": "email", "type": "string", "comment": "contact"})
        );
        assert!(described["notices"].to_string().contains("DESCRIBE"));

        // A write never reaches Athena: the seeded result stays queued for the next query.
        moto.seed(json!([result_set(
            &["id", "name"],
            &[
                &["id", "name"],
                &["1", "ann"],
                &["2", "bob | co"],
                &["3", "cy"]
            ],
        )]))
        .await;
        let refusal = refused(&call(
            &client,
            "query_data",
            json!({"operation": "execute-query", "project_id": "warehouse", "query": "WITH x AS (DELETE FROM users RETURNING *) SELECT * FROM x"}),
        )
        .await);
        assert!(
            refusal.contains("refused") && refusal.contains("DELETE"),
            "{refusal}"
        );
        let queried = call(
            &client,
            "query_data",
            json!({"operation": "execute-query", "project_id": "warehouse", "database": "analytics",
                   "query": "select id, name -- who\nfrom users"}),
        )
        .await;
        let result = &ok(&queried)["result"];
        assert_eq!(
            result["sql"], "SELECT id, name FROM users",
            "sent without the comment"
        );
        assert_eq!(result["columns"], json!(["id", "name"]));
        assert_eq!(result["row_count"], 3);
        assert_eq!(result["rows"][1], json!({"id": "2", "name": "bob | co"}));
        assert_eq!(result["more_rows"], "no");
        assert!(clients::text(&queried).contains("| 2 | bob \\| co |"));

        // More rows than asked for: cut, and the caller is told.
        let mut rows: Vec<Vec<String>> = vec![vec!["n".into()]];
        rows.extend((0..15).map(|n| vec![n.to_string()]));
        let rows: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.iter().map(String::as_str).collect())
            .collect();
        let rows: Vec<&[&str]> = rows.iter().map(Vec::as_slice).collect();
        moto.seed(json!([result_set(&["n"], &rows)])).await;
        let capped = ok(&call(
            &client,
            "query_data",
            json!({"operation": "execute-query", "project_id": "warehouse", "query": "SELECT n FROM numbers", "max_rows": 10}),
        )
        .await);
        assert_eq!(capped["result"]["row_count"], 10);
        assert_eq!(capped["result"]["more_rows"], "yes");
        assert_eq!(capped["truncated"], true);
        assert!(capped["notices"].to_string().contains("more than 10 rows"));

        // Missing or misplaced fields are named.
        for (arguments, field) in [
            (
                json!({"operation": "execute-query", "project_id": "warehouse"}),
                "`query`",
            ),
            (
                json!({"operation": "describe-tables", "project_id": "warehouse"}),
                "`table_names`",
            ),
            (
                json!({"operation": "list-tables", "project_id": "warehouse", "query": "SELECT 1"}),
                "`query`",
            ),
            (
                json!({"operation": "execute-query", "project_id": "warehouse", "query": "SELECT 1", "max_rows": 5000}),
                "`max_rows`",
            ),
            (
                json!({"operation": "drop-tables", "project_id": "warehouse"}),
                "`operation`",
            ),
        ] {
            let message = refused(&call(&client, "query_data", arguments).await);
            assert!(message.contains(field), "{message}");
        }

        // Athena's own errors arrive as JSON without isError; they become tool errors.
        let bad_name = refused(
            &call(
                &client,
                "query_data",
                json!({"operation": "list-tables", "project_id": "warehouse", "database": "a.b"}),
            )
            .await,
        );
        assert!(bad_name.contains("`database`"), "{bad_name}");
        let sidecar_refusal = refused(&call(
            &client,
            "query_data",
            json!({"operation": "execute-query", "project_id": "warehouse", "query": "SELECT a FROM t UNION SELECT b FROM u"}),
        )
        .await);
        assert!(
            sidecar_refusal.contains("aws-athena-mcp 1.0.1 refuses"),
            "{sidecar_refusal}"
        );

        // A key reaches its own project only.
        let (_, other_key) = server.project_key("elsewhere", Role::Read).await;
        let other = clients::streamable(&server.url, &other_key).await;
        let forbidden = refused(&list_tables(&other, "warehouse").await);
        assert!(forbidden.contains("Not allowed"), "{forbidden}");
        let _ = other.cancel().await;
        let _ = client.cancel().await;
        server.stop().await;
    }
}

#[tokio::test]
async fn a_killed_sidecar_is_replaced_and_the_next_call_succeeds() {
    let Some(python) = sidecar_python() else {
        return;
    };
    for backend in backends() {
        let moto = Moto::start(&python).await;
        let server = AthenaServer::start(
            backend,
            Some(sidecar_config(&python, &moto, Duration::from_secs(120))),
        )
        .await;
        let (_, key) = server.project_key("warehouse", Role::Read).await;
        let client = Arc::new(clients::streamable(&server.url, &key).await);
        ok(&list_tables(&client, "warehouse").await);
        let first = server.pid().await;

        // Killed between calls.
        signal(first, "-KILL");
        ok(&list_tables(&client, "warehouse").await);
        let second = server.pid().await;
        assert_ne!(first, second, "a new sidecar process answered");

        // Killed while a call is in flight: the call is retried on a fresh sidecar.
        signal(second, "-STOP");
        let in_flight = tokio::spawn({
            let client = client.clone();
            async move { list_tables(&client, "warehouse").await }
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
        signal(second, "-KILL");
        ok(&in_flight.await.expect("the call task"));
        assert_ne!(server.pid().await, second);
        server.stop().await;
    }
}

#[tokio::test]
async fn a_hung_sidecar_times_out_with_a_clear_message_and_is_replaced() {
    let Some(python) = sidecar_python() else {
        return;
    };
    let moto = Moto::start(&python).await;
    let server = AthenaServer::start(
        Backend::Sqlite,
        Some(sidecar_config(&python, &moto, Duration::from_secs(15))),
    )
    .await;
    let client = clients::streamable(&server.url, OPERATOR_TOKEN).await;
    ok(&call(
        &client,
        "manage_projects",
        json!({"operation": "create", "name": "warehouse"}),
    )
    .await);
    ok(&list_tables(&client, "warehouse").await);
    let hung = server.pid().await;
    signal(hung, "-STOP");
    let started = Instant::now();
    let message = refused(&list_tables(&client, "warehouse").await);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "the call waited {:?}",
        started.elapsed()
    );
    assert!(message.contains("did not answer within 15 s"), "{message}");
    ok(&list_tables(&client, "warehouse").await);
    assert_ne!(server.pid().await, hung, "the hung sidecar was replaced");
    server.stop().await;
}

#[tokio::test]
async fn without_a_working_sidecar_query_data_says_so_plainly() {
    // No sidecar configured at all.
    let server = AthenaServer::start(Backend::Sqlite, None).await;
    let client = clients::streamable(&server.url, OPERATOR_TOKEN).await;
    ok(&call(
        &client,
        "manage_projects",
        json!({"operation": "create", "name": "p"}),
    )
    .await);
    let message = refused(&list_tables(&client, "p").await);
    assert!(
        message.contains("no Athena warehouse is configured"),
        "{message}"
    );
    server.stop().await;

    // A command that never speaks MCP: the start times out, every call fails, none hangs. It
    // also records the environment it was given: only what was configured, nothing inherited.
    let dir = tempfile::tempdir().expect("temp dir");
    let env_file = dir.path().join("env.txt");
    let config = AthenaConfig {
        command: PathBuf::from("/bin/sh"),
        args: vec![
            "-c".into(),
            format!("env > {}; exec sleep 600", env_file.display()),
        ],
        env: vec![
            ("AWS_REGION".into(), "us-east-1".into()),
            ("ATHENA_S3_OUTPUT_LOCATION".into(), "s3://b/q/".into()),
        ],
        default_database: Some("analytics".into()),
        call_timeout: Duration::from_secs(2),
        start_timeout: Duration::from_secs(5),
    };
    let server = AthenaServer::start(Backend::Sqlite, Some(config)).await;
    let client = clients::streamable(&server.url, OPERATOR_TOKEN).await;
    ok(&call(
        &client,
        "manage_projects",
        json!({"operation": "create", "name": "p"}),
    )
    .await);
    for _ in 0..2 {
        let started = Instant::now();
        let message = refused(&list_tables(&client, "p").await);
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "waited {:?}",
            started.elapsed()
        );
        assert!(
            message.contains("could not start (no answer within 5 s)"),
            "{message}"
        );
    }
    let env = std::fs::read_to_string(&env_file).expect("the env file");
    let mut names: Vec<&str> = env
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .filter(|name| !["PWD", "SHLVL", "_"].contains(name)) // set by sh itself
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "ATHENA_S3_OUTPUT_LOCATION",
            "AWS_REGION",
            "PYTHONUNBUFFERED"
        ]
    );
    server.stop().await;
}

/// The process ids of `parent`'s children (from /proc).
fn children_of(parent: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).expect("read tasks");
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|list| {
            list.split_whitespace()
                .filter_map(|pid| pid.parse().ok())
                .collect::<Vec<u32>>()
        })
        .collect()
}

#[tokio::test]
async fn sigterm_stops_the_sidecar_along_with_the_server_and_restarts_are_counted() {
    let Some(python) = sidecar_python() else {
        return;
    };
    let moto = Moto::start(&python).await;
    let dir = tempfile::tempdir().unwrap();
    let addr_file = dir.path().join("addr");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("c.db").display()),
        )
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("CODIFIER_EMBEDDINGS", "none")
        .env("CODIFIER_LOG", "warn")
        .env("API_AUTH_TOKEN", OPERATOR_TOKEN)
        .env("CODIFIER_ATHENA_COMMAND", &python)
        .env("CODIFIER_ATHENA_DATABASE", "analytics")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL", &moto.url)
        .env(
            "ATHENA_S3_OUTPUT_LOCATION",
            "s3://codifier-test-results/queries/",
        )
        .spawn()
        .expect("start the server");
    let mut address = String::new();
    for _ in 0..200 {
        address = std::fs::read_to_string(&addr_file).unwrap_or_default();
        if !address.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let base = format!("http://{address}");
    let client = clients::streamable(&format!("{base}/mcp"), OPERATOR_TOKEN).await;
    ok(&call(
        &client,
        "manage_projects",
        json!({"operation": "create", "name": "warehouse"}),
    )
    .await);
    ok(&list_tables(&client, "warehouse").await);
    let sidecar = *children_of(server.id())
        .first()
        .expect("the sidecar runs as the server's child");

    // A sidecar that dies is restarted, and /metrics counts it.
    let restarts = |text: &str| -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix("codifier_sidecar_restarts_total "))
            .and_then(|value| value.trim().parse().ok())
            .expect("the restart counter")
    };
    let metrics = || async {
        reqwest::Client::new()
            .get(format!("{base}/metrics"))
            .bearer_auth(OPERATOR_TOKEN)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(restarts(&metrics().await), 0.0);
    signal(sidecar, "-KILL");
    ok(&list_tables(&client, "warehouse").await);
    assert_eq!(restarts(&metrics().await), 1.0);
    let replacement = *children_of(server.id())
        .iter()
        .find(|pid| **pid != sidecar)
        .expect("a new sidecar");

    signal(server.id(), "-TERM");
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "the server did not stop"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status}");
    let gone = Instant::now();
    // Gone, or a zombie waiting for its new parent to reap it.
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
            stat.rsplit(')')
                .next()
                .is_some_and(|rest| !rest.trim_start().starts_with('Z'))
        })
    };
    while alive(replacement) {
        assert!(
            gone.elapsed() < Duration::from_secs(5),
            "the sidecar {replacement} outlived the server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
