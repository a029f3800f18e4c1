//! The `codifier` command line: parsing ([`Cli`]) and one module per command group. Commands that
//! create things print JSON on stdout (for scripts) and a hint for people on stderr.
//!
//! - [`serve`]: `serve` (HTTP) and `stdio`.
//! - [`keys`]: `keys create | list | revoke`.
//! - [`projects`]: `projects create | list`.
//! - [`playbooks`]: `playbooks validate | list`.
//! - [`models`]: `models fetch` and `reembed`.
//! - [`connect`]: `connect <client>`, the configuration an MCP client needs.
//! - [`bench`]: `bench`, the load, recall and soak benchmark.
//! - [`pack`]: `pack`, a repository packed to a file, stdout or a snapshot.
//! - [`skills`]: `skills import`, the shared skills library from a skills tree.
//! - `migrate` is run from here.

pub mod bench;
pub mod connect;
pub mod keys;
pub mod models;
pub mod pack;
pub mod playbooks;
pub mod projects;
pub mod serve;
pub mod skills;

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app;
use crate::auth::Identity;
use crate::config::Config;
use crate::domain::Actor;
use crate::knowledge::KnowledgeError;

/// Codifier: a shared MCP knowledge server for teams.
#[derive(Debug, Parser)]
#[command(name = "codifier", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve MCP over HTTP: Streamable HTTP at /mcp, legacy SSE at /sse, health at /health.
    Serve {
        /// Address to listen on (default: CODIFIER_LISTEN, else 0.0.0.0:$PORT, else 127.0.0.1:8080).
        #[arg(long)]
        listen: Option<SocketAddr>,
    },
    /// Serve MCP over stdin/stdout for a local client, as the local user (no key needed).
    Stdio,
    /// Bring the database schema up to date (also done on every start).
    Migrate,
    /// Give every memory a vector of the configured embedding model (after changing models, or
    /// to catch up at once); resumable, with progress. The server also does this in the background.
    Reembed,
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// Create and list projects.
    #[command(subcommand)]
    Projects(projects::ProjectsCommand),
    /// Print or write (`--write`) the configuration an MCP client needs to reach a server.
    Connect(connect::ConnectArgs),
    /// Pack a repository (URL or local directory) into one AI-readable document, written to a
    /// file or stdout; with --project, store it as a snapshot instead.
    Pack(Box<pack::PackArgs>),
    /// Benchmark: seed a project, serve on 127.0.0.1 and measure fetch_context latency and recall.
    Bench(bench::BenchArgs),
    /// Check playbook files and list the playbooks this server offers.
    #[command(subcommand)]
    Playbooks(playbooks::PlaybooksCommand),
    /// The local embedding model's files.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// The shared skills library every project reads (guardrails).
    #[command(subcommand)]
    Skills(skills::SkillsCommand),
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn plain(error: KnowledgeError) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

/// Runs one command to completion.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Connect(args) = &cli.command {
        // Needs no database and no server configuration.
        return connect::run(args);
    }
    let listen = match &cli.command {
        Command::Serve { listen } => *listen,
        _ => None,
    };
    let mut config = Config::from_env(listen)?;
    if !matches!(
        cli.command,
        Command::Serve { .. } | Command::Stdio | Command::Reembed
    ) && std::env::var_os("CODIFIER_LOG").is_none()
    {
        // A command's output is its result; start-up and per-request logs would drown it.
        config.log_filter = "warn".into();
    }
    app::init_tracing(&config);
    match cli.command {
        Command::Serve { .. } => serve::run_http(config).await,
        Command::Stdio => serve::run_stdio(config).await,
        Command::Reembed => models::reembed(&config).await,
        Command::Bench(args) => bench::run(config, args).await,
        Command::Playbooks(command) => playbooks::run(&config, command),
        Command::Models(command) => models::run(command).await,
        Command::Connect(_) => unreachable!("handled before the configuration is read"),
        Command::Pack(args) if args.project.is_some() => pack::store_snapshot(config, *args).await,
        Command::Pack(args) => tokio::task::spawn_blocking(move || pack::write_pack(*args)).await?,
        Command::Migrate => {
            app::open_store(&config).await?;
            eprintln!(
                "the database schema is up to date: {}",
                crate::config::redact_url(&config.database_url)
            );
            Ok(())
        }
        Command::Projects(command) => projects::run(&config, command).await,
        Command::Keys(command) => keys::run(&config, command).await,
        Command::Skills(command) => skills::run(&config, command).await,
    }
}

/// Who the audit log names for a change made by a command: the local operator.
fn local_actor(command: &str) -> Actor {
    Actor {
        label: Identity::Local.label(),
        tool: command.to_owned(),
    }
}

/// The project a command names by id or name; when there is none, the error points at the
/// command line's own listing (the services' messages name MCP tools). The skills library is no
/// project a command acts on (`codifier skills import` writes it).
pub(crate) async fn project_named(
    store: &std::sync::Arc<dyn crate::store::Store>,
    id_or_name: &str,
) -> anyhow::Result<crate::domain::Project> {
    store
        .find_project(id_or_name.trim())
        .await?
        .filter(|project| project.id != crate::domain::guardrail::LIBRARY_PROJECT)
        .with_context(|| {
            format!(
                "no project has the id or name `{id_or_name}`: `codifier projects list` shows them"
            )
        })
}
