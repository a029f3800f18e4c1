//! One running `aws-athena-mcp` process and the rmcp client talking to it over its stdio.
//!
//! The child gets an empty environment plus the configured variables. Its stdout carries a banner
//! (emoji lines printed before MCP starts) as well as JSON-RPC, so a filter task passes on only
//! lines that look like JSON objects and keeps the rest, with stderr, in a short tail for the log
//! when the sidecar fails. The child is killed when this value is dropped.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::{RunningService, ServiceError};
use rmcp::{RoleClient, ServiceExt};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use super::config::AthenaConfig;

/// How many non-JSON output lines are kept for diagnostics.
const TAIL_LINES: usize = 20;

/// Why a call to the sidecar did not produce an answer.
#[derive(Debug)]
pub enum CallFailure {
    /// No answer within the call timeout: the sidecar is hung.
    TimedOut,
    /// The connection closed: the sidecar died (or was stopped).
    Closed(String),
    /// The sidecar answered with something that is not a usable tool result.
    Protocol(String),
}

/// The last lines the sidecar wrote that were not JSON-RPC (banner, stderr).
#[derive(Default)]
pub struct OutputTail(Mutex<VecDeque<String>>);

impl OutputTail {
    fn push(&self, line: &str) {
        let mut lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line.chars().take(300).collect());
    }

    /// The kept lines, oldest first, joined for a log message.
    pub fn joined(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

/// A started sidecar with a finished MCP handshake.
pub struct Sidecar {
    client: RunningService<RoleClient, ()>,
    child: Mutex<Child>,
    pid: Option<u32>,
    tail: Arc<OutputTail>,
}

impl Sidecar {
    /// Spawns the configured command and completes the MCP handshake within the start timeout.
    /// On failure the child is killed and the error says why (with the output tail, for logs).
    pub async fn start(config: &AthenaConfig) -> Result<Self, String> {
        let mut command = Command::new(&config.command);
        command
            .args(&config.args)
            .env_clear()
            .envs(config.env.iter().map(|(name, value)| (name, value)))
            // Without buffering the banner comes out before the first JSON-RPC line, not at exit.
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .map_err(|error| format!("cannot run {}: {error}", config.command.display()))?;
        let pid = child.id();
        let tail = Arc::new(OutputTail::default());
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(stdin), Some(stdout), Some(stderr)) => (stdin, stdout, stderr),
                _ => return Err("the sidecar's stdio could not be captured".into()),
            };
        tokio::spawn(keep_stderr(stderr, tail.clone()));
        let (reader, writer) = tokio::io::duplex(256 * 1024);
        tokio::spawn(filter_json_lines(stdout, writer, tail.clone()));

        let handshake = ().serve((reader, stdin));
        let client = match tokio::time::timeout(config.start_timeout, handshake).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => {
                let _ = child.start_kill();
                let exited = child.try_wait().ok().flatten();
                return Err(format!(
                    "the MCP handshake failed ({error}){}; its output: {}",
                    exited
                        .map(|s| format!(", it exited with {s}"))
                        .unwrap_or_default(),
                    tail.joined()
                ));
            }
            Err(_) => {
                let _ = child.start_kill();
                return Err(format!(
                    "no MCP handshake within {} s; its output: {}",
                    config.start_timeout.as_secs(),
                    tail.joined()
                ));
            }
        };
        tracing::info!(pid, "athena sidecar started");
        Ok(Self {
            client,
            child: Mutex::new(child),
            pid,
            tail,
        })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the connection is gone (the process died or was stopped).
    pub fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// The recent non-JSON output, for logs.
    pub fn output_tail(&self) -> String {
        self.tail.joined()
    }

    /// Stops the process now (it may be hung, so no graceful shutdown).
    pub fn kill(&self) {
        let mut child = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.start_kill();
        // Reap it so no zombie stays behind; it has been sent SIGKILL, so this is quick.
        let _ = child.try_wait();
    }

    /// Calls one tool and returns the text of its result.
    pub async fn call(
        &self,
        tool: &'static str,
        arguments: JsonObject,
        timeout: Duration,
    ) -> Result<String, CallFailure> {
        let request = CallToolRequestParams::new(tool).with_arguments(arguments);
        let result =
            match tokio::time::timeout(timeout, self.client.peer().call_tool(request)).await {
                Err(_) => return Err(CallFailure::TimedOut),
                Ok(Err(ServiceError::McpError(error))) => {
                    return Err(CallFailure::Protocol(format!(
                        "the sidecar refused the call to {tool}: {}",
                        error.message
                    )));
                }
                Ok(Err(error)) => return Err(CallFailure::Closed(error.to_string())),
                Ok(Ok(result)) => result,
            };
        let text: String = result
            .content
            .iter()
            .filter_map(|block| block.as_text().map(|text| text.text.as_str()))
            .collect();
        if result.is_error == Some(true) {
            return Err(CallFailure::Protocol(format!(
                "the sidecar's {tool} reported an error: {}",
                text.chars().take(500).collect::<String>()
            )));
        }
        Ok(text)
    }
}

impl Drop for Sidecar {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Copies the lines of `stdout` that look like JSON objects to `out`; keeps the others in `tail`.
async fn filter_json_lines(
    stdout: impl AsyncRead + Unpin,
    mut out: tokio::io::DuplexStream,
    tail: Arc<OutputTail>,
) {
    let mut lines = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let trimmed = line.trim_ascii_start();
        if trimmed.starts_with(b"{") {
            if out.write_all(&line).await.is_err() {
                break;
            }
            if !line.ends_with(b"\n") && out.write_all(b"\n").await.is_err() {
                break;
            }
        } else if !trimmed.is_empty() {
            let text = String::from_utf8_lossy(trimmed);
            tracing::debug!(line = %text.trim_end(), "athena sidecar stdout (not JSON-RPC)");
            tail.push(text.trim_end());
        }
    }
    let _ = out.shutdown().await;
}

/// Keeps the sidecar's stderr lines in `tail` and the debug log. Reads bytes, not UTF-8 text,
/// so odd output can never stop the reading (a full pipe would block the sidecar).
async fn keep_stderr(stderr: impl AsyncRead + Unpin, tail: Arc<OutputTail>) {
    let mut lines = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match lines.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if !text.is_empty() {
            tracing::debug!(line = text, "athena sidecar stderr");
            tail.push(text);
        }
    }
}
