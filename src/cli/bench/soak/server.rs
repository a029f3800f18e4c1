//! The server under test, a `codifier serve` child process, and what the soak reads of it from
//! outside: resident memory from `/proc/<pid>/status`, its open file descriptors and sockets from
//! `/proc/<pid>/fd` (client connections told apart through `/proc/<pid>/net/tcp`), the SQLite
//! files it holds open, and on Postgres its connections in `pg_stat_activity` (the child
//! connects with an `application_name` of its own so the harness's own pool is not counted).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::config::Config;

/// The `application_name` the server under test connects to Postgres with.
const APPLICATION_NAME: &str = "codifier-soak-server";

/// Resident memory of a process, in MB (10^6 bytes), read from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Resident {
    pub rss: f64,
    pub hwm: f64,
    /// Anonymous pages: the heap, thread stacks, anonymous maps.
    pub anon: f64,
    /// File-backed pages: the executable's and libraries' code, mapped files.
    pub file: f64,
}

pub fn resident(pid: u32) -> Option<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|line| line.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024.0 / 1e6)
    };
    Some(Resident {
        rss: field("VmRSS:")?,
        hwm: field("VmHWM:")?,
        anon: field("RssAnon:")?,
        file: field("RssFile:")?,
    })
}

/// The server's heap as its `/metrics` gives it, in MB: SQLite's allocations (of which page
/// caches) and glibc malloc's blocks in use and memory held, so the soak can tell what in
/// `RssAnon` is SQLite's, ours, or free space kept in malloc's arenas.
#[derive(Debug, Clone, Copy, Default)]
pub struct Heap {
    pub sqlite: f64,
    pub page_cache: f64,
    pub malloc_in_use: f64,
    pub malloc_held: f64,
}

impl Heap {
    /// The gauges in a Prometheus exposition; `None` when one is missing (an older server).
    fn parse(text: &str) -> Option<Heap> {
        let gauge = |name: &str| -> Option<f64> {
            let line = text
                .lines()
                .find(|line| line.split_whitespace().next() == Some(name))?;
            let bytes: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(bytes / 1e6)
        };
        Some(Heap {
            sqlite: gauge("codifier_sqlite_heap_bytes")?,
            page_cache: gauge("codifier_sqlite_page_cache_bytes")?,
            malloc_in_use: gauge("codifier_malloc_in_use_bytes")?,
            malloc_held: gauge("codifier_malloc_held_bytes")?,
        })
    }
}

/// What the server holds open at one moment.
#[derive(Debug, Clone, Copy, Default)]
pub struct Handles {
    /// Every open file descriptor.
    pub fds: usize,
    /// Of which sockets (TCP, Unix).
    pub sockets: usize,
    /// Of the sockets, TCP connections accepted on the server's port (MCP clients).
    pub clients: usize,
    /// The database's connections: Postgres backends from `pg_stat_activity`, or the
    /// descriptors open on the SQLite file and its `-wal` and `-shm`.
    pub database: usize,
}

/// The most database handles the server's pools may hold when full, as [`Handles::database`]
/// counts them: Postgres connections, or on SQLite each connection's descriptors on the file and
/// its `-wal` (2 per connection, reading and writing pools together) and the `-shm` one process
/// shares. A pool that widens to this is not leaking; more than this is.
pub fn database_capacity(database_url: &str) -> usize {
    if database_url.starts_with("postgres") {
        crate::store::postgres::MAX_CONNECTIONS as usize
    } else {
        2 * (crate::store::sqlite::MAX_READERS as usize + 1) + 1
    }
}

/// The server under test: a child process, killed when dropped.
pub struct Server {
    pub child: tokio::process::Child,
    pub pid: u32,
    pub url: String,
    port: u16,
    /// The server's separate `/metrics` address.
    metrics_url: String,
    sqlite_file: Option<PathBuf>,
    postgres: Option<sqlx::PgPool>,
    _dir: tempfile::TempDir,
}

/// `url` with `application_name` added to its query.
fn named_url(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={APPLICATION_NAME}")
}

/// The SQLite file of a `sqlite:` URL, made absolute.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next()?;
    std::path::absolute(path).ok()
}

pub async fn start(config: &Config, binary: &Path) -> anyhow::Result<Server> {
    let dir = tempfile::tempdir()?;
    let addr_file = dir.path().join("address");
    let postgres = config.database_url.starts_with("postgres");
    let database_url = if postgres {
        named_url(&config.database_url)
    } else {
        config.database_url.clone()
    };
    // A free port for the server's metrics address (it answers without a key there).
    let metrics_address = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut command = tokio::process::Command::new(binary);
    command
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &database_url)
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("CODIFIER_ALLOWED_HOSTS", "127.0.0.1")
        // The soak packs a repository served on 127.0.0.1.
        .env("CODIFIER_PACK_ALLOW_PRIVATE_NETWORK", "true")
        .env("CODIFIER_METRICS_LISTEN", metrics_address.to_string())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true);
    if std::env::var_os("CODIFIER_LOG").is_none() {
        command.env("CODIFIER_LOG", "warn");
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {} serve", binary.display()))?;
    let pid = child.id().context("the server exited at once")?;
    let started = Instant::now();
    let address = loop {
        if let Ok(address) = std::fs::read_to_string(&addr_file)
            && !address.trim().is_empty()
        {
            break address.trim().to_owned();
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!("the server stopped before listening ({status}); its log is above");
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the server did not listen within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let health = format!("http://{address}/health");
    while !reqwest::get(&health)
        .await
        .is_ok_and(|response| response.status().is_success())
    {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(120),
            "the server's /health did not answer 200 within 120 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let port = address
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .context("the server's address has no port")?;
    let postgres = if postgres {
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(1)
            .connect(&config.database_url)
            .await
            .context("the soak cannot connect to Postgres to count the server's connections")?;
        Some(pool)
    } else {
        None
    };
    Ok(Server {
        child,
        pid,
        url: format!("http://{address}/mcp"),
        port,
        metrics_url: format!("http://{metrics_address}/metrics"),
        sqlite_file: sqlite_file(&config.database_url),
        postgres,
        _dir: dir,
    })
}

impl Server {
    /// What the server holds open now.
    pub async fn handles(&self) -> anyhow::Result<Handles> {
        let mut handles = Handles::default();
        let mut socket_inodes = HashSet::new();
        let sqlite = self.sqlite_file.as_ref().map(|file| file.to_string_lossy());
        let entries = std::fs::read_dir(format!("/proc/{}/fd", self.pid))
            .context("the server's /proc/<pid>/fd is unreadable")?;
        for entry in entries.flatten() {
            let Ok(target) = std::fs::read_link(entry.path()) else {
                continue; // closed since the listing
            };
            handles.fds += 1;
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|rest| rest.strip_suffix(']'))
            {
                handles.sockets += 1;
                socket_inodes.insert(inode.to_owned());
            } else if sqlite
                .as_ref()
                .is_some_and(|file| target.starts_with(&**file))
            {
                handles.database += 1;
            }
        }
        handles.clients = self.client_connections(&socket_inodes);
        if let Some(pool) = &self.postgres {
            let count: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
            )
            .bind(APPLICATION_NAME)
            .fetch_one(pool)
            .await
            .context("counting the server's connections in pg_stat_activity failed")?;
            handles.database = usize::try_from(count).unwrap_or(0);
        }
        Ok(handles)
    }

    /// The server's heap figures ([`Heap`]); `None` when its `/metrics` does not give them.
    pub async fn heap(&self) -> Option<Heap> {
        let response = reqwest::get(&self.metrics_url).await.ok()?;
        Heap::parse(&response.text().await.ok()?)
    }

    /// TCP connections (not the listener) on the server's port among the server's sockets.
    fn client_connections(&self, inodes: &HashSet<String>) -> usize {
        let port = format!("{:04X}", self.port);
        ["tcp", "tcp6"]
            .iter()
            .filter_map(|table| {
                std::fs::read_to_string(format!("/proc/{}/net/{table}", self.pid)).ok()
            })
            .flat_map(|text| text.lines().skip(1).map(str::to_owned).collect::<Vec<_>>())
            .filter(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                // local_address is field 1 (ADDR:PORT), st is field 3 (0A: LISTEN), inode field 9.
                fields.len() > 9
                    && fields[1].rsplit(':').next() == Some(port.as_str())
                    && fields[3] != "0A"
                    && inodes.contains(fields[9])
            })
            .count()
    }

    /// Stops the server as an operator would (SIGTERM, so it exits cleanly and profilers wrapped
    /// around it finish their output), killing it after 10 s.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(pool) = self.postgres.take() {
            pool.close().await;
        }
        let asked = tokio::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status()
            .await
            .is_ok_and(|status| status.success());
        if asked
            && tokio::time::timeout(Duration::from_secs(10), self.child.wait())
                .await
                .is_ok()
        {
            return Ok(());
        }
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }
}

/// Waits until the server's memory holds still (a model loads in the background after start):
/// five one-second samples within 1 MB of each other, or two minutes.
pub async fn settled(pid: u32) -> anyhow::Result<Resident> {
    let read = || resident(pid).context("the server's /proc status is unreadable");
    let (started, mut last, mut still) = (Instant::now(), read()?, 0);
    while still < 5 && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = read()?;
        still = if (now.rss - last.rss).abs() < 1.0 {
            still + 1
        } else {
            0
        };
        last = now;
    }
    Ok(last)
}
