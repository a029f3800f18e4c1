//! `codifier projects create | list`: projects, as the local operator.

use clap::Subcommand;

use super::{plain, print_json};
use crate::app;
use crate::auth::Identity;
use crate::config::Config;
use crate::knowledge::projects;

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

/// Runs a `codifier projects` command.
pub async fn run(config: &Config, command: ProjectsCommand) -> anyhow::Result<()> {
    match command {
        ProjectsCommand::Create { name, org } => {
            let store = app::open_store(config).await?;
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
        ProjectsCommand::List => {
            let store = app::open_store(config).await?;
            print_json(
                &projects::list(&store, &Identity::Local)
                    .await
                    .map_err(plain)?,
            )
        }
    }
}
