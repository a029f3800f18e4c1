//! Merging our entry into a client's JSON file: every other entry and the order of keys kept,
//! a file that is not plain JSON refused and left as it is, a `.bak` copy of what was there,
//! and the new text written through a temporary file.

use std::path::Path;

use anyhow::{Context, bail};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A JSON document that keeps the order of every object's keys, so a rewritten file differs
/// from the original only where our entry changed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Ordered {
    Object(IndexMap<String, Ordered>),
    Array(Vec<Ordered>),
    Scalar(Value),
}

/// Puts `entry` under `section.name` in the JSON file, creating it (and its directory) if
/// needed. Returns whether an entry of that name was replaced.
pub fn merge_into_file(
    file: &Path,
    section: &str,
    name: &str,
    entry: Value,
) -> anyhow::Result<bool> {
    let existing = match std::fs::read_to_string(file) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(error).with_context(|| format!("cannot read {}", file.display())),
    };
    let mut document = match existing.as_deref().map(str::trim) {
        None | Some("") => Ordered::Object(IndexMap::new()),
        Some(text) => serde_json::from_str::<Ordered>(text).with_context(|| {
            format!(
                "{} is not plain JSON (comments or trailing commas?); it was left as it is",
                file.display()
            )
        })?,
    };
    let Ordered::Object(root) = &mut document else {
        bail!(
            "{} does not hold a JSON object; it was left as it is",
            file.display()
        );
    };
    let servers = root
        .entry(section.to_owned())
        .or_insert_with(|| Ordered::Object(IndexMap::new()));
    let Ordered::Object(servers) = servers else {
        bail!(
            "`{section}` in {} is not an object; it was left as it is",
            file.display()
        );
    };
    let entry: Ordered = serde_json::from_value(entry)?;
    let replaced = servers.insert(name.to_owned(), entry).is_some();

    if let Some(dir) = file.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the directory {}", dir.display()))?;
    }
    if let Some(previous) = &existing {
        let backup = file.with_extension(match file.extension() {
            Some(ext) => format!("{}.bak", ext.to_string_lossy()),
            None => "bak".into(),
        });
        std::fs::write(&backup, previous)
            .with_context(|| format!("cannot keep a backup at {}", backup.display()))?;
    }
    let temporary = file.with_extension("codifier-tmp");
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    std::fs::write(&temporary, text)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    #[cfg(unix)]
    {
        // The file may hold a key: readable by its owner only, unless it already had a mode.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(file)
            .map(|meta| meta.permissions().mode() & 0o777)
            .unwrap_or(0o600);
        std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(mode))?;
    }
    std::fs::rename(&temporary, file)
        .with_context(|| format!("cannot replace {}", file.display()))?;
    Ok(replaced)
}
