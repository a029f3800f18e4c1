//! Shared test fixtures: fresh databases on each backend, a running server on port 0, and the
//! actor and memory drafts tests write straight through the store with.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use codifier::config::{Config, LogFormat};
use codifier::domain::MemoryType;
use codifier::store::{Actor, MemoryDraft, Store};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The operator token every test server is configured with.
pub const OPERATOR_TOKEN: &str = "test-operator-token-0123456789";

/// The actor a test writes as when it calls the store itself.
pub fn local_actor() -> Actor {
    Actor {
        label: "local".into(),
        tool: "test".into(),
    }
}

/// A memory of `kind` whose content is `{"text": text}`, with no tags and full confidence.
pub fn text_draft(kind: MemoryType, title: &str, text: &str) -> MemoryDraft {
    MemoryDraft {
        memory_type: kind,
        title: title.into(),
        content: serde_json::json!({ "text": text }),
        category: None,
        description: None,
        confidence: 1.0,
        tags: Vec::new(),
        source_role: None,
    }
}

/// Which store a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The backends this run can reach: SQLite always, Postgres when `TEST_DATABASE_URL` is set.
/// Under CI a missing `TEST_DATABASE_URL` is an error, so Postgres is never skipped silently.
pub fn backends() -> Vec<Backend> {
    let mut backends = vec![Backend::Sqlite];
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        backends.push(Backend::Postgres);
    } else if std::env::var("CI").is_ok_and(|ci| ci == "true") {
        panic!("CI=true but TEST_DATABASE_URL is unset: run the tests through scripts/test.sh");
    }
    backends
}

/// A database of its own for one test; the SQLite file lives as long as this value, and a
/// Postgres database is dropped with it, so a long-lived `TEST_DATABASE_URL` does not fill up.
pub struct TestDatabase {
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    /// The admin URL and the name of a Postgres database to drop.
    postgres: Option<(String, String)>,
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Some((admin_url, name)) = self.postgres.take() else {
            return;
        };
        // Drop runs inside the test's runtime, so the statement runs on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime to drop the test database");
            runtime.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&admin_url).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut admin)
                    .await
                    .map(|_| ())
            })
        });
        if let Ok(Err(error)) = dropped.join() {
            eprintln!("could not drop a test database: {error}");
        }
    }
}

/// Makes an empty database on `backend`: a new SQLite file, or a new Postgres database.
pub async fn fresh_database(backend: Backend) -> TestDatabase {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("codifier.db").display());
            TestDatabase {
                url,
                _dir: Some(dir),
                postgres: None,
            }
        }
        Backend::Postgres => {
            use sqlx::Connection;
            let admin_url = std::env::var("TEST_DATABASE_URL").expect("TEST_DATABASE_URL");
            let name = format!("codifier_t_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&admin_url)
                .await
                .expect("connect to TEST_DATABASE_URL");
            sqlx::query(&format!("CREATE DATABASE {name}"))
                .execute(&mut admin)
                .await
                .expect("create test database");
            let (base, _) = admin_url
                .rsplit_once('/')
                .expect("a database URL with a path");
            TestDatabase {
                url: format!("{base}/{name}"),
                _dir: None,
                postgres: Some((admin_url.clone(), name)),
            }
        }
    }
}

/// A fresh, migrated Postgres store for Postgres-only tests, or `None` when this run has no
/// `TEST_DATABASE_URL` (as [`backends`] decides).
pub async fn fresh_postgres() -> Option<(codifier::store::postgres::PgStore, TestDatabase)> {
    if !backends().contains(&Backend::Postgres) {
        return None;
    }
    let database = fresh_database(Backend::Postgres).await;
    let store = codifier::store::postgres::PgStore::connect(&database.url)
        .await
        .expect("connect");
    codifier::store::Store::migrate(&store)
        .await
        .expect("migrate");
    Some((store, database))
}

/// Opens and migrates a fresh store on `backend`.
pub async fn fresh_store(backend: Backend) -> (Arc<dyn Store>, TestDatabase) {
    let database = fresh_database(backend).await;
    let store = codifier::store::connect(&database.url)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    (store, database)
}

/// The configuration a test server runs with.
pub fn test_config(database_url: &str) -> Config {
    Config {
        database_url: database_url.to_owned(),
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        operator_token: Some(OPERATOR_TOKEN.to_owned()),
        allowed_hosts: vec!["localhost".into(), "127.0.0.1".into()],
        log_filter: "warn".into(),
        log_format: LogFormat::Text,
        key_cache_ttl: Duration::from_secs(1),
        max_body_bytes: 512 * 1024,
        addr_file: None,
        embeddings: codifier::config::EmbeddingsConfig::None,
        duplicate_threshold: 0.92,
        public_url: None,
        authorization_servers: Vec::new(),
        shutdown_grace: Duration::from_secs(5),
        session_idle: Duration::from_secs(60),
        console_session: Duration::from_secs(12 * 3600),
        metrics_listen: None,
        athena: None,
        playbooks: codifier::config::PlaybooksConfig::default(),
        packer: Default::default(),
        events: Default::default(),
        oauth: Default::default(),
        auth_throttle: Default::default(),
    }
}

/// A server running in this process, stopped when dropped.
pub struct TestServer {
    pub address: SocketAddr,
    pub store: Arc<dyn Store>,
    pub database: Arc<TestDatabase>,
    shutdown: CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on port 0 over a fresh database on `backend`.
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, |_| {}).await
    }

    /// Starts a server on port 0 over a fresh database, with a configuration `tweak`ed first.
    pub async fn start_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        let database = Arc::new(fresh_database(backend).await);
        Self::start_configured(database, SocketAddr::from(([127, 0, 0, 1], 0)), tweak).await
    }

    /// Starts a server over an existing database at a given address (for restart tests).
    pub async fn start_on(database: Arc<TestDatabase>, address: SocketAddr) -> Self {
        Self::start_configured(database, address, |_| {}).await
    }

    /// Starts a server over an existing database at a given address, with a configuration
    /// `tweak`ed first (for restart tests that need settings of their own).
    pub async fn start_on_with(
        database: Arc<TestDatabase>,
        address: SocketAddr,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_configured(database, address, tweak).await
    }

    async fn start_configured(
        database: Arc<TestDatabase>,
        address: SocketAddr,
        tweak: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = test_config(&database.url);
        tweak(&mut config);
        let store = codifier::app::open_store(&config)
            .await
            .expect("open store");
        let listener = TcpListener::bind(address).await.expect("bind");
        let address = listener.local_addr().expect("address");
        let shutdown = CancellationToken::new();
        let (task_store, task_shutdown) = (store.clone(), shutdown.clone());
        let task = tokio::spawn(async move {
            codifier::http::serve(&config, task_store, listener, task_shutdown)
                .await
                .expect("server ran");
        });
        Self {
            address,
            store,
            database,
            shutdown,
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Stops the server and waits until it has let go of its port.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }

    /// Makes a project with the operator's rights, straight through the store.
    pub async fn project(&self, name: &str) -> codifier::store::Project {
        codifier::knowledge::projects::create(
            &self.store,
            &codifier::auth::Identity::Local,
            "test",
            name,
            None,
        )
        .await
        .expect("create project")
    }

    /// Makes an API key for `project` with `role`; returns the secret.
    pub async fn key(&self, project: uuid::Uuid, role: codifier::domain::Role) -> String {
        let generated = codifier::auth::keys::generate().expect("generate key");
        let new = codifier::store::NewApiKey {
            project_id: project,
            prefix: generated.prefix,
            hash: generated.hash,
            role,
            label: Some("test".into()),
        };
        self.store
            .create_api_key(&local_actor(), &new)
            .await
            .expect("store key");
        generated.key
    }

    /// Revokes the API key whose secret is `key`, as an operator would.
    pub async fn revoke(&self, key: &str) {
        let prefix = codifier::auth::keys::prefix_of(key).expect("a key's prefix");
        let actor = Actor {
            label: "operator".into(),
            tool: "test".into(),
        };
        self.store
            .revoke_api_key(&actor, prefix)
            .await
            .expect("revoke the key");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs the real binary's `args` (a CLI command that prints JSON) on `database` with no
/// model, and returns what it printed; panics with its stderr when it fails.
pub fn codifier_json(database: &str, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(args)
        .env("DATABASE_URL", database)
        .env("CODIFIER_EMBEDDINGS", "none")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
