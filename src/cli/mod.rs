//! The `codifier` command line: `serve`, `stdio`, `migrate`, `reembed`, `keys create|list|revoke`,
//! `projects create|list`, `playbooks validate|list`, `models fetch`, `pack`, `connect` and `bench`. Commands that create things print JSON on stdout (for
//! scripts) and a hint for people on stderr.

use std::net::SocketAddr;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::app;
use crate::auth::{Identity, Role, keys};
use crate::config::Config;
use crate::knowledge::{KnowledgeError, projects};
use crate::store::{Actor, NewApiKey};

pub mod pack;

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
    Keys(KeysCommand),
    /// Create and list projects.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Print or write (`--write`) the configuration an MCP client needs to reach a server.
    Connect(crate::connect::ConnectArgs),
    /// Pack a repository (URL or local directory) into one AI-readable document, written to a
    /// file or stdout; with --project, store it as a snapshot instead.
    Pack(Box<pack::PackArgs>),
    /// Benchmark: seed a project, serve on 127.0.0.1 and measure fetch_context latency and recall.
    Bench(crate::bench::BenchArgs),
    /// Check playbook files and list the playbooks this server offers.
    #[command(subcommand)]
    Playbooks(PlaybooksCommand),
    /// The local embedding model's files.
    #[command(subcommand)]
    Models(ModelsCommand),
}

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Fetch the local model's files (all-MiniLM-L6-v2) into CODIFIER_MODEL_DIR (default: the
    /// data directory) and verify their pinned digests, with progress on stderr; prints the
    /// directory. `codifier serve` does the same in the background when they are missing.
    Fetch,
}

#[derive(Debug, Subcommand)]
pub enum PlaybooksCommand {
    /// Validate a playbook file: prints its outline, or the file, step and reason of each mistake.
    Validate {
        /// The playbook YAML file.
        file: std::path::PathBuf,
        /// A directory of extra `*.md.j2` templates (default: CODIFIER_TEMPLATES_DIR).
        #[arg(long)]
        templates: Option<std::path::PathBuf>,
    },
    /// List the playbooks this server offers (shipped, plus CODIFIER_PLAYBOOKS_DIR).
    List,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key for one project. The key is printed once; only its hash is stored.
    Create {
        /// The project's id or name.
        #[arg(long)]
        project: String,
        /// What the key may do: read, write or admin.
        #[arg(long, value_parser = ["read", "write", "admin"])]
        role: String,
        /// A note to recognise the key by (who or what holds it).
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        /// Only this project's keys (id or name).
        #[arg(long)]
        project: Option<String>,
    },
    /// Revoke a key by its id or prefix; it stops working within CODIFIER_KEY_CACHE_SECONDS.
    Revoke {
        /// The key's id or its public prefix.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// Create a project.
    Create {
        /// A unique name.
        #[arg(long)]
        name: String,
        /// The organisation it belongs to.
        #[arg(long)]
        org: Option<String>,
    },
    /// List every project.
    List,
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
        return crate::connect::run(args);
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
    let actor = |command: &str| Actor {
        label: Identity::Local.label(),
        tool: command.to_owned(),
    };
    match cli.command {
        Command::Serve { .. } => app::run_http(config).await,
        Command::Stdio => app::run_stdio(config).await,
        Command::Reembed => app::reembed(&config).await,
        Command::Bench(args) => crate::bench::run(config, args).await,
        Command::Playbooks(command) => crate::playbooks::cli::run(&config, command),
        Command::Models(ModelsCommand::Fetch) => {
            let (dir, fetch) = crate::config::local_model_from_env()?;
            app::fetch_model(&dir, fetch.as_ref()).await?;
            println!("{}", dir.display());
            Ok(())
        }
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
        Command::Projects(ProjectsCommand::Create { name, org }) => {
            let store = app::open_store(&config).await?;
            let project = projects::create(
                &store,
                &Identity::Local,
                "cli:projects create",
                &name,
                org.as_deref(),
            )
            .await
            .map_err(plain)?;
            print_json(&project)
        }
        Command::Projects(ProjectsCommand::List) => {
            let store = app::open_store(&config).await?;
            print_json(
                &projects::list(&store, &Identity::Local)
                    .await
                    .map_err(plain)?,
            )
        }
        Command::Keys(KeysCommand::Create {
            project,
            role,
            label,
        }) => {
            let store = app::open_store(&config).await?;
            let project = project_named(&store, &project).await?;
            let role = Role::parse(&role).context("--role must be read, write or admin")?;
            let generated = tokio::task::spawn_blocking(keys::generate).await??;
            let new = NewApiKey {
                project_id: project.id,
                prefix: generated.prefix.clone(),
                hash: generated.hash,
                role,
                label: label.filter(|label| !label.trim().is_empty()),
            };
            let key = store
                .create_api_key(&actor("cli:keys create"), &new)
                .await?;
            let mut shown = serde_json::to_value(&key)?;
            shown["key"] = serde_json::Value::String(generated.key);
            shown["project_name"] = serde_json::Value::String(project.name.clone());
            print_json(&shown)?;
            eprintln!(
                "Created a {role} key for project `{}`. Copy `key` now: it is not shown again.",
                project.name
            );
            Ok(())
        }
        Command::Keys(KeysCommand::List { project }) => {
            let store = app::open_store(&config).await?;
            let project = match project {
                Some(project) => Some(project_named(&store, &project).await?.id),
                None => None,
            };
            print_json(&store.list_api_keys(project).await?)
        }
        Command::Keys(KeysCommand::Revoke { key }) => {
            let store = app::open_store(&config).await?;
            let revoked = store
                .revoke_api_key(&actor("cli:keys revoke"), key.trim())
                .await?;
            print_json(&revoked)?;
            eprintln!(
                "Revoked key {}; clients using it are refused within {} s.",
                revoked.prefix,
                config.key_cache_ttl.as_secs()
            );
            Ok(())
        }
    }
}

/// The project a command names by id or name; when there is none, the error points at the
/// command line's own listing (the services' messages name MCP tools).
pub(crate) async fn project_named(
    store: &std::sync::Arc<dyn crate::store::Store>,
    id_or_name: &str,
) -> anyhow::Result<crate::store::Project> {
    store
        .find_project(id_or_name.trim())
        .await?
        .with_context(|| {
            format!(
                "no project has the id or name `{id_or_name}`: `codifier projects list` shows them"
            )
        })
}
