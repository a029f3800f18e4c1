//! The playbooks and templates a server offers: the three shipped in `playbooks/` (embedded in the
//! binary) plus those in a configured directory, which add to them or replace one with the same id.

use std::collections::BTreeMap;
use std::path::Path;

use super::PlaybookError;
use super::loader;
use super::spec::Playbook;
use super::templates::Templates;

/// The playbooks shipped with the server.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "initialize-project.yaml",
        include_str!("../../playbooks/initialize-project.yaml"),
    ),
    (
        "brownfield-onboard.yaml",
        include_str!("../../playbooks/brownfield-onboard.yaml"),
    ),
    (
        "research-and-analyze.yaml",
        include_str!("../../playbooks/research-and-analyze.yaml"),
    ),
];

/// Every playbook by id, and the templates they render.
#[derive(Debug)]
pub struct Catalog {
    playbooks: BTreeMap<String, Playbook>,
    pub templates: Templates,
}

impl Catalog {
    /// The shipped playbooks and templates only.
    pub fn embedded() -> Result<Self, PlaybookError> {
        Self::load(None, None)
    }

    /// The shipped playbooks and templates, with the `*.yaml` files of `playbooks_dir` and the
    /// `*.md.j2` files of `templates_dir` added (same id or name: theirs wins).
    pub fn load(
        playbooks_dir: Option<&Path>,
        templates_dir: Option<&Path>,
    ) -> Result<Self, PlaybookError> {
        let templates = Templates::load(templates_dir)?;
        let mut playbooks = BTreeMap::new();
        for (file, text) in EMBEDDED {
            let playbook = loader::parse(&format!("embedded:playbooks/{file}"), text, &templates)?;
            playbooks.insert(playbook.id.clone(), playbook);
        }
        if let Some(dir) = playbooks_dir {
            for path in yaml_files(dir)? {
                let playbook = load_file(&path, &templates)?;
                playbooks.insert(playbook.id.clone(), playbook);
            }
        }
        Ok(Self {
            playbooks,
            templates,
        })
    }

    pub fn get(&self, id: &str) -> Option<&Playbook> {
        self.playbooks.get(id)
    }

    /// Every playbook, by id.
    pub fn playbooks(&self) -> impl Iterator<Item = &Playbook> {
        self.playbooks.values()
    }

    /// The ids, for messages that list what exists.
    pub fn ids(&self) -> String {
        self.playbooks
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Reads and validates one playbook file against `templates`.
pub fn load_file(path: &Path, templates: &Templates) -> Result<Playbook, PlaybookError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|error| PlaybookError::Io {
        path: shown.clone(),
        reason: error.to_string(),
    })?;
    loader::parse(&shown, &text, templates)
}

fn yaml_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, PlaybookError> {
    let entries = std::fs::read_dir(dir).map_err(|error| PlaybookError::Io {
        path: dir.display().to_string(),
        reason: error.to_string(),
    })?;
    let mut files: Vec<_> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.extension()
                .is_some_and(|ext| ext == "yaml" || ext == "yml")
        })
        .collect();
    files.sort();
    Ok(files)
}
