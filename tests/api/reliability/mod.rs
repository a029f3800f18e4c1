//! Reliability under faults, with real parts only: the real `codifier` binary started as a
//! process (and killed with `SIGKILL`), real Postgres clusters stopped with `pg_ctl`, MCP spoken
//! over raw Streamable HTTP. The CI versions are short; `scripts/reliability.sh` runs the long ones
//! through the knobs each module reads (`CODIFIER_RELIABILITY_*`).

mod crash;
mod crash_plans;
mod outage;
mod soak;
mod two_servers;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::OPERATOR_TOKEN;

/// A knob of the long runs: `CODIFIER_RELIABILITY_<name>`, else `default`.
pub fn knob(name: &str, default: u64) -> u64 {
    std::env::var(format!("CODIFIER_RELIABILITY_{name}"))
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// `codifier serve` as a child process on a free loopback port.
pub struct Process {
    pub child: tokio::process::Child,
    pub base: String,
    _dir: tempfile::TempDir,
}

impl Process {
    /// Starts the binary on `database_url` and waits until it listens (not until it is healthy:
    /// a test of an outage starts it however the database is).
    pub async fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let addr_file = dir.path().join("address");
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_codifier"));
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("DATABASE_URL", database_url)
            .env("CODIFIER_ADDR_FILE", &addr_file)
            .env(
                "CODIFIER_LOG",
                std::env::var("CODIFIER_RELIABILITY_SERVER_LOG").unwrap_or("warn".into()),
            )
            .env("CODIFIER_EMBEDDINGS", "none")
            .env("CODIFIER_MODEL_FETCH", "off")
            .env("API_AUTH_TOKEN", OPERATOR_TOKEN)
            .env("CODIFIER_ALLOWED_HOSTS", "127.0.0.1")
            .env("CODIFIER_SHUTDOWN_GRACE_SECONDS", "2")
            .env_remove("CODIFIER_METRICS_LISTEN")
            .stdin(Stdio::null())
            // `CODIFIER_RELIABILITY_SERVER_LOG=info` shows the servers' own log.
            .stdout(match std::env::var_os("CODIFIER_RELIABILITY_SERVER_LOG") {
                Some(_) => Stdio::inherit(),
                None => Stdio::null(),
            })
            .kill_on_drop(true);
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start codifier serve");
        let started = Instant::now();
        let address = loop {
            if let Ok(address) = std::fs::read_to_string(&addr_file)
                && !address.trim().is_empty()
            {
                break address.trim().to_owned();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("codifier serve stopped before listening ({status}); its log is above");
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "codifier serve did not listen within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Self {
            child,
            base: format!("http://{address}"),
            _dir: dir,
        }
    }

    /// `GET /health`'s status (0 when nothing answers).
    pub async fn health(&self) -> u16 {
        match reqwest::Client::new()
            .get(format!("{}/health", self.base))
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        }
    }

    /// Kills the process with `SIGKILL` and reaps it.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("SIGKILL");
        self.child.wait().await.expect("reap the killed server");
    }
}

/// One MCP client over raw Streamable HTTP, so a session id can be carried to another server
/// or across a restart.
#[derive(Clone)]
pub struct Mcp {
    pub http: reqwest::Client,
    pub bearer: String,
    pub session: Option<String>,
}

/// The JSON-RPC id of the next request (ids must not repeat among a session's open requests).
static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(10);

/// What a tool call came back with: its structured content, or the error text.
pub type ToolAnswer = Result<Value, String>;

impl Mcp {
    pub fn new(bearer: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            bearer: bearer.to_owned(),
            session: None,
        }
    }

    /// Posts one JSON-RPC message to `base`'s `/mcp`: the HTTP status and the JSON-RPC answer
    /// (read from a JSON or an SSE body).
    pub async fn post(&self, base: &str, body: &Value) -> Result<(u16, Value), String> {
        let mut request = self
            .http
            .post(format!("{base}/mcp"))
            .bearer_auth(&self.bearer)
            .header("accept", "application/json, text/event-stream")
            .json(body);
        if let Some(session) = &self.session {
            request = request
                .header("mcp-session-id", session)
                .header("mcp-protocol-version", "2025-06-18");
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let session = response
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.map_err(|e| e.to_string())?;
        let mut answer = text
            .lines()
            .filter_map(|line| line.strip_prefix("data:"))
            .chain(std::iter::once(text.as_str()))
            .filter_map(|data| serde_json::from_str::<Value>(data.trim()).ok())
            .find(|value| value.get("id").is_some() || value.get("error").is_some())
            .unwrap_or(Value::Null);
        if let Some(session) = session {
            answer["_session"] = Value::String(session);
        }
        Ok((status, answer))
    }

    /// Opens a session on `base` and keeps its id.
    pub async fn initialize(&mut self, base: &str) {
        self.session = None;
        let (status, answer) = self
            .post(
                base,
                &json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                    "protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "reliability", "version": "1"}}}),
            )
            .await
            .expect("initialize");
        assert_eq!(status, 200, "initialize: {answer}");
        self.session = Some(
            answer["_session"]
                .as_str()
                .expect("a session id")
                .to_owned(),
        );
        let (status, _) = self
            .post(
                base,
                &json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await
            .expect("initialized");
        assert!(status < 300, "notifications/initialized: {status}");
    }

    /// Calls `tool` on `base`: `Ok(structured content)` or `Err(the error text)`.
    pub async fn call(&self, base: &str, tool: &str, arguments: Value) -> ToolAnswer {
        // Each request its own id: the server routes answers by id within a session.
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
            "params": {"name": tool, "arguments": arguments}});
        let (status, answer) = self.post(base, &body).await?;
        if status != 200 {
            return Err(format!("HTTP {status}: {answer}"));
        }
        if let Some(error) = answer.get("error") {
            return Err(error.to_string());
        }
        let result = &answer["result"];
        if result["isError"] == true {
            return Err(result["content"][0]["text"]
                .as_str()
                .unwrap_or("")
                .to_owned());
        }
        Ok(result["structuredContent"].clone())
    }

    /// `tools/list` on `base` with the kept session: the HTTP status.
    pub async fn list_tools(&self, base: &str) -> u16 {
        let id = NEXT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "id": id, "method": "tools/list", "params": {}});
        self.post(base, &body).await.map_or(0, |(status, _)| status)
    }
}

/// A memory for `update_memory` in `project`, numbered `n` by writer `writer`.
pub fn memory(project: uuid::Uuid, writer: usize, n: u64) -> Value {
    json!({
        "project_id": project,
        "memory_type": "learning",
        // A random word in both, so no write is taken for a near duplicate of another.
        "title": format!("reliability {writer}-{n} {}", uuid::Uuid::new_v4().simple()),
        "content": {"text": format!("writer {writer} wrote {n}: {}", uuid::Uuid::new_v4().simple())},
        "tags": ["reliability", format!("writer-{writer}")],
    })
}

/// The id in an `update_memory` answer.
pub fn written_id(answer: &Value) -> uuid::Uuid {
    answer["memory"]["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("no memory id in {answer}"))
}

/// A Postgres 16 cluster of this test's own (so stopping it stops no other test), made from the
/// test environment's binaries (`CODIFIER_PG_BIN`); `None` when the environment has none.
pub struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
}

impl Cluster {
    pub async fn create() -> Option<Self> {
        let bin = PathBuf::from(std::env::var_os("CODIFIER_PG_BIN")?);
        if !crate::helpers::backends().contains(&crate::helpers::Backend::Postgres) {
            return None;
        }
        let dir = tempfile::Builder::new()
            .prefix("codifier-outage-")
            .tempdir()
            .expect("temp dir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cluster = Self { bin, dir, port };
        if is_root() {
            let user = std::env::var("CODIFIER_PG_OS_USER").unwrap_or("codifier-pg".into());
            let chowned = std::process::Command::new("chown")
                .args(["-R", &user, &cluster.dir.path().display().to_string()])
                .status()
                .unwrap();
            assert!(chowned.success(), "chown the cluster dir");
        }
        let data = cluster.data().display().to_string();
        cluster.pg(&[
            "initdb",
            "-D",
            &data,
            "-U",
            "codifier",
            "-E",
            "UTF8",
            "--no-locale",
            "--auth=trust",
            "--no-sync",
        ]);
        cluster.start();
        let mut admin = cluster.connect("postgres").await;
        sqlx::query("CREATE DATABASE codifier")
            .execute(&mut admin)
            .await
            .unwrap();
        let mut db = cluster.connect("codifier").await;
        sqlx::query("CREATE EXTENSION IF NOT EXISTS vector")
            .execute(&mut db)
            .await
            .unwrap();
        Some(cluster)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://codifier@127.0.0.1:{}/{database}", self.port)
    }

    async fn connect(&self, database: &str) -> sqlx::PgConnection {
        use sqlx::Connection;
        sqlx::PgConnection::connect(&self.url(database))
            .await
            .expect("connect to the test cluster")
    }

    /// Runs a Postgres program of `CODIFIER_PG_BIN` as the cluster's owner.
    fn pg(&self, args: &[&str]) {
        let program = self.bin.join(args[0]);
        let mut command = if is_root() {
            let user = std::env::var("CODIFIER_PG_OS_USER").unwrap_or("codifier-pg".into());
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", &user, "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        };
        let output = command
            .args(&args[1..])
            .current_dir(self.dir.path())
            .output()
            .expect("run a Postgres program");
        assert!(
            output.status.success(),
            "{args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    pub fn start(&self) {
        let (data, log) = (
            self.data().display().to_string(),
            self.dir.path().join("postgres.log").display().to_string(),
        );
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.path().display()
        );
        self.pg(&[
            "pg_ctl", "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
        ]);
    }

    /// Stops the cluster as an operator (or a managed database's failover) would: `-m fast`
    /// ends every connection at once.
    pub fn stop(&self) {
        let data = self.data().display().to_string();
        self.pg(&[
            "pg_ctl", "-D", &data, "-m", "fast", "-w", "-t", "60", "stop",
        ]);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let program = self.bin.join("pg_ctl");
        let _ = if is_root() {
            let user = std::env::var("CODIFIER_PG_OS_USER").unwrap_or("codifier-pg".into());
            std::process::Command::new("runuser")
                .args(["-u", &user, "--"])
                .arg(&program)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .current_dir(self.dir.path())
                .output()
        } else {
            std::process::Command::new(&program)
                .args(["-D", &data, "-m", "immediate", "stop"])
                .output()
        };
    }
}

fn is_root() -> bool {
    Path::new("/proc/self/status").exists()
        && std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("Uid:"))
                    .map(|line| line.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
}
