//! `codifier skills import DIR`: the operator fills the shared skills library from a skills
//! tree (see [`crate::guardrails::import`]), opening the store directly. Prints every skip
//! and the counts (or, with `--json`, the whole report as JSON).

use std::path::PathBuf;

use clap::Subcommand;

use super::{local_actor, print_json};
use crate::app;
use crate::config::Config;
use crate::guardrails::import::{self, Options};

#[derive(Debug, Subcommand)]
pub enum SkillsCommand {
    /// Import a skills tree (one folder per skill holding skill.yaml, sharp-edges.yaml,
    /// validations.yaml, collaboration.yaml) into the library every project reads. Importing
    /// the same tree again changes nothing; items that left the tree are removed.
    Import {
        /// The tree's root folder.
        dir: PathBuf,
        /// Report what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Print the report as JSON (every skip and count) instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `codifier skills` command.
pub async fn run(config: &Config, command: SkillsCommand) -> anyhow::Result<()> {
    match command {
        SkillsCommand::Import { dir, dry_run, json } => {
            let store = app::open_store(config).await?;
            let actor = local_actor("cli:skills import");
            let report = import::import(&store, &actor, &dir, Options { dry_run }).await?;
            if json {
                print_json(&report)
            } else {
                print!("{}", report.text());
                Ok(())
            }
        }
    }
}
