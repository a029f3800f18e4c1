//! The Athena warehouse, reached through the `aws-athena-mcp` sidecar: one long-lived child
//! process per server, started on first use, shared by every caller, each call with a timeout,
//! and restarted when it dies or hangs. [`Athena::run`] is the one entry point, used by the
//! `query_data` tool and by playbook data-query steps alike: it checks the request (SQL through
//! [`sql_guard`], names), calls the sidecar, reads its JSON-in-text answers and error objects,
//! and returns a capped, rendered [`QueryOutcome`].

mod caps;
pub mod config;
mod operations;
pub mod playbook;
pub mod results;
mod sidecar;
pub mod sql_guard;

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;

pub use config::AthenaConfig;
pub use results::{MAX_RESULT_BYTES, MAX_ROWS, MoreRows, Operation, QueryOutcome};
pub use sql_guard::{GuardError, SelectQuery};

use operations::read_answer;
use sidecar::{CallFailure, Sidecar};

/// The most tables one `describe-tables` call may name.
pub const MAX_DESCRIBED_TABLES: usize = 50;

/// What a caller asks of the warehouse.
#[derive(Debug, Clone)]
pub enum AthenaRequest {
    ListTables,
    DescribeTables(Vec<String>),
    /// A query the guard accepted, and how many rows to keep (1 to [`MAX_ROWS`]).
    ExecuteQuery {
        query: SelectQuery,
        max_rows: usize,
    },
}

/// Why a request could not be answered, phrased for the caller.
#[derive(Debug, thiserror::Error)]
pub enum AthenaError {
    /// No sidecar is configured on this server.
    #[error(
        "no Athena warehouse is configured on this server: the operator sets CODIFIER_ATHENA_COMMAND (the aws-athena-mcp sidecar) and ATHENA_S3_OUTPUT_LOCATION to enable query_data"
    )]
    NotConfigured,
    /// The request is wrong (refused SQL, bad names); the message says what to change.
    #[error("{0}")]
    Invalid(String),
    /// Athena (through the sidecar) refused or failed the query.
    #[error("Athena could not run it: {message}{}", code.as_deref().map(|c| format!(" ({c})")).unwrap_or_default())]
    Athena {
        message: String,
        code: Option<String>,
    },
    /// The sidecar could not be started, did not answer in time, or died.
    #[error("{0}")]
    Unavailable(String),
}

impl From<AthenaError> for crate::knowledge::KnowledgeError {
    fn from(error: AthenaError) -> Self {
        use crate::knowledge::KnowledgeError;
        match error {
            AthenaError::Invalid(_) | AthenaError::Athena { .. } => {
                KnowledgeError::Invalid(error.to_string())
            }
            AthenaError::NotConfigured | AthenaError::Unavailable(_) => {
                KnowledgeError::Unavailable(error.to_string())
            }
        }
    }
}

impl AthenaRequest {
    /// An `execute-query` request for `sql`, checked by the SQL guard on a blocking thread
    /// (parsing is CPU work). `max_rows` must be from 1 to [`MAX_ROWS`].
    pub async fn execute(sql: String, max_rows: usize) -> Result<Self, AthenaError> {
        if !(1..=MAX_ROWS).contains(&max_rows) {
            return Err(AthenaError::Invalid(format!(
                "`max_rows` must be from 1 to {MAX_ROWS}"
            )));
        }
        let query = tokio::task::spawn_blocking(move || SelectQuery::parse(&sql))
            .await
            .map_err(|_| AthenaError::Invalid("the query could not be checked".into()))?
            .map_err(|error| AthenaError::Invalid(format!("the query was refused: {error}")))?;
        Ok(Self::ExecuteQuery { query, max_rows })
    }
}

/// Checks a database or table name: letters, digits, `_` and `-` only (the sidecar silently
/// strips anything else, which would query a different table than the one named).
pub fn validate_name(field: &str, name: &str) -> Result<String, AthenaError> {
    let name = name.trim();
    let ok = !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(AthenaError::Invalid(format!(
            "`{field}` must be a name of letters, digits, `_` or `-` (at most 255), not {name:?}"
        )))
    }
}

/// The shared sidecar client.
pub struct Athena {
    config: AthenaConfig,
    current: Mutex<Option<Arc<Sidecar>>>,
    /// Whether a sidecar was ever started: every later start is a restart (for `/metrics`).
    started_once: std::sync::atomic::AtomicBool,
}

impl Athena {
    pub fn new(config: AthenaConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            current: Mutex::new(None),
            started_once: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The database used when a request names none.
    pub fn default_database(&self) -> Option<&str> {
        self.config.default_database.as_deref()
    }

    /// The running sidecar's process id, if one runs (for operators and tests).
    pub async fn sidecar_pid(&self) -> Option<u32> {
        let current = self.current.lock().await;
        current
            .as_ref()
            .filter(|sidecar| !sidecar.is_closed())
            .and_then(|sidecar| sidecar.pid())
    }

    /// Stops the sidecar, if one runs; the next call starts a new one.
    pub async fn shutdown(&self) {
        if let Some(sidecar) = self.current.lock().await.take() {
            sidecar.kill();
        }
    }

    /// Answers one request against `database` (or the default database).
    #[tracing::instrument(skip_all, fields(database))]
    pub async fn run(
        &self,
        database: Option<&str>,
        request: AthenaRequest,
    ) -> Result<QueryOutcome, AthenaError> {
        let database = match database.map(str::trim).filter(|d| !d.is_empty()) {
            Some(named) => validate_name("database", named)?,
            None => self.default_database().map(str::to_owned).ok_or_else(|| {
                AthenaError::Invalid(
                    "`database` is missing and the server has no default (CODIFIER_ATHENA_DATABASE): send `database`".into(),
                )
            })?,
        };
        tracing::Span::current().record("database", database.as_str());
        let outcome = match request {
            AthenaRequest::ListTables => self.list_tables(&database).await?,
            AthenaRequest::DescribeTables(tables) => self.describe(&database, tables).await?,
            AthenaRequest::ExecuteQuery { query, max_rows } => {
                self.execute(&database, &query, max_rows).await?
            }
        };
        Ok(outcome.render())
    }

    /// Calls a sidecar tool and reads its JSON answer. A sidecar found dead is restarted and
    /// the call tried once more (every call is a read, so repeating it is safe); a hung one is
    /// killed and the call fails with the timeout.
    #[tracing::instrument(skip(self, arguments))]
    async fn call(&self, tool: &'static str, arguments: Value) -> Result<Value, AthenaError> {
        let Value::Object(arguments) = arguments else {
            unreachable!("tool arguments are built as JSON objects")
        };
        for attempt in 1..=2 {
            let sidecar = self.sidecar().await?;
            match sidecar
                .call(tool, arguments.clone(), self.config.call_timeout)
                .await
            {
                Ok(text) => return read_answer(tool, &text),
                Err(CallFailure::Protocol(message)) => {
                    tracing::warn!(%message, "athena sidecar answered unexpectedly");
                    return Err(AthenaError::Unavailable(format!(
                        "the Athena sidecar gave an unusable answer: {message}"
                    )));
                }
                Err(CallFailure::TimedOut) => {
                    tracing::warn!(
                        timeout_s = self.config.call_timeout.as_secs(),
                        output = %sidecar.output_tail(),
                        "athena sidecar did not answer in time; killing it"
                    );
                    self.discard(&sidecar).await;
                    return Err(AthenaError::Unavailable(format!(
                        "the Athena sidecar did not answer within {} s, so it was stopped; the next call starts a fresh one. If the query is expensive, make it cheaper (partition filters, LIMIT).",
                        self.config.call_timeout.as_secs()
                    )));
                }
                Err(CallFailure::Closed(reason)) => {
                    tracing::warn!(%reason, attempt, output = %sidecar.output_tail(), "athena sidecar connection closed; restarting it");
                    self.discard(&sidecar).await;
                }
            }
        }
        Err(AthenaError::Unavailable(
            "the Athena sidecar stopped twice while answering; the operator should check the server log".into(),
        ))
    }

    /// The running sidecar, started if there is none (or the last one died). Callers that
    /// arrive during a start wait for it, bounded by the start timeout.
    async fn sidecar(&self) -> Result<Arc<Sidecar>, AthenaError> {
        let wait = self.config.start_timeout * 2 + Duration::from_secs(1);
        let mut current = tokio::time::timeout(wait, self.current.lock())
            .await
            .map_err(|_| {
                AthenaError::Unavailable(
                    "the Athena sidecar is restarting and did not become ready in time; try again shortly".into(),
                )
            })?;
        if let Some(sidecar) = current.as_ref().filter(|sidecar| !sidecar.is_closed()) {
            return Ok(sidecar.clone());
        }
        if let Some(dead) = current.take() {
            dead.kill();
        }
        let started = Sidecar::start(&self.config).await.map_err(|reason| {
            tracing::error!(%reason, command = %self.config.command.display(), "athena sidecar failed to start");
            AthenaError::Unavailable(format!(
                "the Athena sidecar could not start ({}); the next call tries again, and the server log has the details",
                if reason.starts_with("no MCP handshake") {
                    format!("no answer within {} s", self.config.start_timeout.as_secs())
                } else {
                    "it failed during start".to_owned()
                }
            ))
        })?;
        if self
            .started_once
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            crate::metrics::global().sidecar_restarted();
        }
        let started = Arc::new(started);
        *current = Some(started.clone());
        Ok(started)
    }

    /// Forgets `failed` (unless another caller already replaced it) and kills it.
    async fn discard(&self, failed: &Arc<Sidecar>) {
        let mut current = self.current.lock().await;
        if current
            .as_ref()
            .is_some_and(|sidecar| Arc::ptr_eq(sidecar, failed))
        {
            current.take();
        }
        failed.kill();
    }
}
