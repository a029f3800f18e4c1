//! `codifier keys create | list | revoke`: API keys for one project. A new key is printed once;
//! only its argon2id hash is stored.

use anyhow::Context;
use clap::Subcommand;

use super::{local_actor, print_json, project_named};
use crate::app;
use crate::auth::keys;
use crate::config::Config;
use crate::domain::{NewApiKey, Role};

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

/// Runs a `codifier keys` command.
pub async fn run(config: &Config, command: KeysCommand) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            project,
            role,
            label,
        } => {
            let store = app::open_store(config).await?;
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
                .create_api_key(&local_actor("cli:keys create"), &new)
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
        KeysCommand::List { project } => {
            let store = app::open_store(config).await?;
            let project = match project {
                Some(project) => Some(project_named(&store, &project).await?.id),
                None => None,
            };
            print_json(&store.list_api_keys(project).await?)
        }
        KeysCommand::Revoke { key } => {
            let store = app::open_store(config).await?;
            let revoked = store
                .revoke_api_key(&local_actor("cli:keys revoke"), key.trim())
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
