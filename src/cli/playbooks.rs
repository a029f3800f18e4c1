//! `codifier playbooks validate <file>` and `codifier playbooks list`: JSON on stdout, mistakes
//! (file, step, reason) on stderr with a failing exit status.

use serde_json::{Value, json};

use clap::Subcommand;

use crate::config::Config;
use crate::playbooks::catalog::{self, Catalog};
use crate::playbooks::spec::{Action, Playbook};
use crate::playbooks::templates::Templates;

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

fn outline(playbook: &Playbook) -> Value {
    let steps: Vec<Value> = playbook
        .steps
        .iter()
        .map(|step| {
            let mut entry = json!({
                "id": step.id,
                "title": step.title,
                "action": step.action.name(),
                "provides": step.action.provides(),
            });
            if let Action::Generate { template, .. } = &step.action {
                entry["template"] = Value::from(template.as_str());
            }
            if let Some(key) = &step.skip_if_empty {
                entry["skip_if_empty"] = Value::from(key.as_str());
            }
            entry
        })
        .collect();
    json!({
        "id": playbook.id,
        "name": playbook.name,
        "role": playbook.role,
        "version": playbook.version,
        "description": playbook.description,
        "source": playbook.source,
        "steps": steps,
    })
}

/// Runs one `playbooks` command.
pub fn run(config: &Config, command: PlaybooksCommand) -> anyhow::Result<()> {
    let settings = &config.playbooks;
    match command {
        PlaybooksCommand::Validate { file, templates } => {
            let dir = templates.or_else(|| settings.templates_dir.clone());
            let templates = Templates::load(dir.as_deref())?;
            let playbook = catalog::load_file(&file, &templates)?;
            println!("{}", serde_json::to_string_pretty(&outline(&playbook))?);
            eprintln!(
                "{} is a valid playbook: `{}` with {} steps.",
                file.display(),
                playbook.id,
                playbook.steps.len()
            );
            Ok(())
        }
        PlaybooksCommand::List => {
            let catalog = Catalog::load(
                settings.playbooks_dir.as_deref(),
                settings.templates_dir.as_deref(),
            )?;
            let all: Vec<Value> = catalog.playbooks().map(outline).collect();
            println!("{}", serde_json::to_string_pretty(&all)?);
            Ok(())
        }
    }
}
