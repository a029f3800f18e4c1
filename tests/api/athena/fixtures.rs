//! Fixtures for the Athena tests: the sidecar venv's python, a local moto server seeded with
//! query results, the sidecar's configuration, and a server that keeps a handle on its Athena
//! client (to find and signal the sidecar process).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use codifier::athena::{Athena, AthenaConfig};
use codifier::domain::Role;
use codifier::store::Store;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::clients::{self, call};
use crate::helpers::{Backend, TestDatabase, fresh_database, test_config};

/// The sidecar venv's python, or `None` (the test is skipped) outside CI when it is missing.
pub(crate) fn sidecar_python() -> Option<PathBuf> {
    match std::env::var("CODIFIER_TEST_ATHENA_PYTHON") {
        Ok(python) if !python.is_empty() => Some(PathBuf::from(python)),
        _ if std::env::var("CI").is_ok_and(|ci| ci == "true") => {
            panic!(
                "CI=true but CODIFIER_TEST_ATHENA_PYTHON is unset: run the tests through scripts/test.sh"
            )
        }
        _ => {
            eprintln!("skipped: CODIFIER_TEST_ATHENA_PYTHON is unset (source scripts/test-env.sh)");
            None
        }
    }
}

/// A local moto server on a free port, stopped when dropped.
pub(crate) struct Moto {
    pub(crate) url: String,
    _process: tokio::process::Child,
}

impl Moto {
    pub(crate) async fn start(python: &Path) -> Self {
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("a free port")
                .port();
            let mut process = tokio::process::Command::new(python)
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()
                .expect("spawn moto");
            let url = format!("http://127.0.0.1:{port}");
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(30) {
                if process.try_wait().ok().flatten().is_some() {
                    break; // the port was taken meanwhile: try another
                }
                if reqwest::get(format!("{url}/moto-api/")).await.is_ok() {
                    return Self {
                        url,
                        _process: process,
                    };
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        panic!("moto did not start");
    }

    /// Queues query results; each Athena query execution takes the next one.
    pub(crate) async fn seed(&self, results: Value) {
        let response = reqwest::Client::new()
            .post(format!("{}/moto-api/static/athena/query-results", self.url))
            .json(&json!({"region": "us-east-1", "results": results}))
            .send()
            .await
            .expect("seed moto");
        assert_eq!(response.status(), 201);
    }
}

/// One Athena result set as moto takes it: column names and rows of text.
pub(crate) fn result_set(columns: &[&str], rows: &[&[&str]]) -> Value {
    json!({
        "column_info": columns.iter().map(|name| json!({"Name": name, "Type": "varchar"})).collect::<Vec<_>>(),
        "rows": rows.iter().map(|row| json!({"Data": row.iter().map(|v| json!({"VarCharValue": v})).collect::<Vec<_>>()})).collect::<Vec<_>>(),
    })
}

pub(crate) fn sidecar_config(python: &Path, moto: &Moto, call_timeout: Duration) -> AthenaConfig {
    let env = [
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        (
            "ATHENA_S3_OUTPUT_LOCATION",
            "s3://codifier-test-results/queries/",
        ),
    ];
    AthenaConfig {
        command: python.to_path_buf(),
        args: AthenaConfig::default_args(),
        env: env
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect(),
        default_database: Some("analytics".into()),
        call_timeout,
        // Generous: Python starts slowly on a loaded machine; the start timeout has its own test.
        start_timeout: Duration::from_secs(180),
    }
}

/// A server with a sidecar configuration, keeping a handle on its Athena client.
pub(crate) struct AthenaServer {
    pub(crate) url: String,
    store: Arc<dyn Store>,
    athena: Option<Arc<Athena>>,
    shutdown: CancellationToken,
    _database: TestDatabase,
}

impl AthenaServer {
    pub(crate) async fn start(backend: Backend, athena: Option<AthenaConfig>) -> Self {
        let database = fresh_database(backend).await;
        let mut config = test_config(&database.url);
        config.athena = athena;
        let store = codifier::app::open_store(&config).await.expect("store");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/mcp", listener.local_addr().expect("address"));
        let shutdown = CancellationToken::new();
        let app = codifier::app::App::start(&config, store.clone(), &shutdown).expect("app");
        let athena = app.athena.clone();
        let serving = shutdown.clone();
        tokio::spawn(async move {
            codifier::http::serve_app(&config, app, listener, serving)
                .await
                .expect("server ran");
        });
        Self {
            url,
            store,
            athena,
            shutdown,
            _database: database,
        }
    }

    /// A project (made unless it exists) and a key with `role` for it.
    pub(crate) async fn project_key(&self, name: &str, role: Role) -> (uuid::Uuid, String) {
        let identity = codifier::auth::Identity::Local;
        let project = match self.store.find_project(name).await.expect("find project") {
            Some(project) => project,
            None => {
                codifier::knowledge::projects::create(&self.store, &identity, "test", name, None)
                    .await
                    .expect("project")
            }
        };
        let generated = codifier::auth::keys::generate().expect("key");
        let new = codifier::store::NewApiKey {
            project_id: project.id,
            prefix: generated.prefix,
            hash: generated.hash,
            role,
            label: None,
        };
        let actor = codifier::store::Actor {
            label: "local".into(),
            tool: "test".into(),
        };
        self.store
            .create_api_key(&actor, &new)
            .await
            .expect("store key");
        (project.id, generated.key)
    }

    pub(crate) async fn pid(&self) -> u32 {
        let athena = self.athena.as_ref().expect("athena configured");
        athena.sidecar_pid().await.expect("a running sidecar")
    }

    pub(crate) async fn stop(self) {
        if let Some(athena) = &self.athena {
            athena.shutdown().await;
        }
        self.shutdown.cancel();
    }
}

pub(crate) fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {signal} {pid}");
}

pub(crate) async fn list_tables(
    client: &clients::Client,
    project: &str,
) -> rmcp::model::CallToolResult {
    call(
        client,
        "query_data",
        json!({"operation": "list-tables", "project_id": project}),
    )
    .await
}
