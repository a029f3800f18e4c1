//! `codifier skills import DIR`: reads a skills tree in the vibeship-spawner-skills layout (one
//! folder per skill: `skill.yaml`, `sharp-edges.yaml`, `validations.yaml`,
//! `collaboration.yaml`), normalizes what real packs write into the records of
//! [`crate::domain::guardrail`], and writes the library project, one transaction per skill,
//! under stable ids, so importing the same tree again changes nothing and a changed item is
//! updated in place (with a revision and an audit entry).
//!
//! Nothing aborts an import: a file that does not parse, an item that cannot be used, a skill
//! the store refuses is a skip, reported with its file, item and reason. Items that left the
//! tree (or became unusable) are deleted from the library — deleted as `delete_memory` does, so
//! the audit log keeps them and they come back under the same id if they return — except
//! those of a file that could not be read this time, which are kept as they were.

mod fields;
mod items;
mod report;
mod skill;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use serde_json::Value;
use uuid::Uuid;

pub use items::compile;
pub use report::{Report, Skip, Tally};

use super::library::{self, edge_draft, skill_draft, validation_draft};
use crate::domain::guardrail::{LIBRARY_PROJECT, LibraryItem, library_item_id};
use crate::domain::{Actor, Memory, MemoryDraft, MemoryType, WriteOutcome};
use crate::store::Store;

/// The largest pack file read (the largest of a real 1,800-file pack is 100 KB).
const MAX_FILE_BYTES: u64 = 4 << 20;

/// What a run may do.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Only report what would change; write nothing.
    pub dry_run: bool,
}

/// What was read of one skill folder: its drafts, and which of its kinds could not be read
/// (their library items are kept as they are).
struct Folder {
    skill_id: String,
    drafts: Vec<(Uuid, LibraryItem, MemoryDraft)>,
    unread: Vec<LibraryItem>,
}

/// Imports the tree at `dir` into the library of `store`.
pub async fn import(
    store: &Arc<dyn Store>,
    actor: &Actor,
    dir: &Path,
    options: Options,
) -> anyhow::Result<Report> {
    let folders = skill_folders(dir)
        .with_context(|| format!("cannot read the skills tree `{}`", dir.display()))?;
    let existing: HashMap<Uuid, Memory> = library::all_of(store, None, &[])
        .await?
        .into_iter()
        .map(|memory| (memory.id, memory))
        .collect();
    let mut report = Report {
        dry_run: options.dry_run,
        ..Report::default()
    };
    let mut seen: HashSet<Uuid> = HashSet::new();
    let mut kept_unread: HashSet<(String, MemoryType)> = HashSet::new();
    let mut skill_folders: HashMap<String, PathBuf> = HashMap::new();
    for folder in folders {
        let relative = folder.strip_prefix(dir).unwrap_or(&folder).to_path_buf();
        let Some(read) = read_folder(&folder, &relative, &mut report) else {
            let name = folder_name(&folder);
            for kind in [
                MemoryType::Skill,
                MemoryType::SharpEdge,
                MemoryType::Validation,
            ] {
                kept_unread.insert((name.clone(), kind));
            }
            continue;
        };
        if let Some(first) = skill_folders.get(&read.skill_id) {
            report
                .skills
                .skipped
                .entry("duplicate_skill".into())
                .and_modify(|n| *n += 1)
                .or_insert(1);
            report.skips.push(Skip {
                file: relative.join("skill.yaml"),
                item: Some(read.skill_id.clone()),
                reason: "duplicate_skill".into(),
                detail: format!(
                    "the skill id is also used by `{}`, imported from there",
                    first.display()
                ),
            });
            continue;
        }
        skill_folders.insert(read.skill_id.clone(), relative.clone());
        for kind in &read.unread {
            kept_unread.insert((read.skill_id.clone(), memory_type(*kind)));
        }
        let outcomes = if options.dry_run {
            read.drafts
                .iter()
                .map(|(id, _, draft)| predicted(existing.get(id), draft))
                .collect::<Vec<_>>()
        } else {
            let batch: Vec<(Uuid, MemoryDraft)> = read
                .drafts
                .iter()
                .map(|(id, _, draft)| (*id, draft.clone()))
                .collect();
            match store.put_memories(LIBRARY_PROJECT, actor, &batch).await {
                Ok(written) => {
                    seen.extend(written.iter().map(|(memory, _)| memory.id));
                    written.into_iter().map(|(_, outcome)| outcome).collect()
                }
                Err(error) => {
                    for kind in [
                        MemoryType::Skill,
                        MemoryType::SharpEdge,
                        MemoryType::Validation,
                    ] {
                        kept_unread.insert((read.skill_id.clone(), kind));
                    }
                    report
                        .skills
                        .skipped
                        .entry("store_refused".into())
                        .and_modify(|n| *n += 1)
                        .or_insert(1);
                    report.skips.push(Skip {
                        file: relative.join("skill.yaml"),
                        item: Some(read.skill_id.clone()),
                        reason: "store_refused".into(),
                        detail: format!("the store refused the skill and its items: {error}"),
                    });
                    continue;
                }
            }
        };
        for ((id, kind, _), outcome) in read.drafts.iter().zip(outcomes) {
            seen.insert(*id);
            let tally = tally(&mut report, *kind);
            tally.usable += 1;
            match outcome {
                WriteOutcome::Created => tally.created += 1,
                WriteOutcome::Updated => tally.updated += 1,
                WriteOutcome::Unchanged => tally.unchanged += 1,
            }
        }
    }
    remove_departed(
        store,
        actor,
        &existing,
        &seen,
        &kept_unread,
        &mut report,
        options,
    )
    .await;
    Ok(report)
}

/// Deletes the library items this run did not meet, but those of a file it could not read.
async fn remove_departed(
    store: &Arc<dyn Store>,
    actor: &Actor,
    existing: &HashMap<Uuid, Memory>,
    seen: &HashSet<Uuid>,
    kept_unread: &HashSet<(String, MemoryType)>,
    report: &mut Report,
    options: Options,
) {
    let mut departed: Vec<&Memory> = existing
        .values()
        .filter(|memory| !seen.contains(&memory.id))
        .filter(|memory| {
            let skill = memory.category.clone().unwrap_or_default();
            !kept_unread.contains(&(skill, memory.memory_type))
        })
        .collect();
    departed.sort_by_key(|memory| (memory.category.clone(), memory.title.clone()));
    for memory in departed {
        let kind = match memory.memory_type {
            MemoryType::Skill => LibraryItem::Skill,
            MemoryType::SharpEdge => LibraryItem::SharpEdge,
            MemoryType::Validation => LibraryItem::Validation,
            _ => continue,
        };
        if !options.dry_run
            && let Err(error) = store.delete_memory(LIBRARY_PROJECT, actor, memory.id).await
        {
            report.skips.push(Skip {
                file: PathBuf::from(memory.category.clone().unwrap_or_default()),
                item: Some(memory.title.clone()),
                reason: "store_refused".into(),
                detail: format!("could not remove an item that left the tree: {error}"),
            });
            continue;
        }
        tally(report, kind).removed += 1;
    }
}

fn tally(report: &mut Report, kind: LibraryItem) -> &mut Tally {
    match kind {
        LibraryItem::Skill => &mut report.skills,
        LibraryItem::SharpEdge => &mut report.sharp_edges,
        LibraryItem::Validation => &mut report.validations,
    }
}

fn memory_type(kind: LibraryItem) -> MemoryType {
    match kind {
        LibraryItem::Skill => MemoryType::Skill,
        LibraryItem::SharpEdge => MemoryType::SharpEdge,
        LibraryItem::Validation => MemoryType::Validation,
    }
}

/// What writing `draft` over `before` would do.
fn predicted(before: Option<&Memory>, draft: &MemoryDraft) -> WriteOutcome {
    match before {
        None => WriteOutcome::Created,
        Some(m)
            if m.memory_type == draft.memory_type
                && m.title == draft.title
                && m.content == draft.content
                && m.category == draft.category
                && m.description == draft.description
                && m.confidence == draft.confidence
                && m.tags == draft.tags
                && m.source_role == draft.source_role =>
        {
            WriteOutcome::Unchanged
        }
        Some(_) => WriteOutcome::Updated,
    }
}

fn folder_name(folder: &Path) -> String {
    folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Every folder under `dir` (itself included) holding a `skill.yaml`, in path order; hidden
/// folders are not entered.
fn skill_folders(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        if folder.join("skill.yaml").is_file() {
            found.push(folder.clone());
        }
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            let hidden = entry.file_name().to_string_lossy().starts_with('.');
            if !hidden && entry.file_type()?.is_dir() {
                pending.push(entry.path());
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads a file of a skill folder: `Ok(None)` when it is not there, `Err` (already reported as
/// a skip) when it cannot be read or parsed.
fn read_yaml(
    folder: &Path,
    relative: &Path,
    name: &str,
    report: &mut Report,
) -> Result<Option<Value>, ()> {
    let path = folder.join(name);
    if !path.is_file() {
        return Ok(None);
    }
    let parsed = match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > MAX_FILE_BYTES => Err(format!(
            "it is {} bytes, over the {MAX_FILE_BYTES} a pack file may have",
            meta.len()
        )),
        _ => std::fs::read_to_string(&path).map_err(|error| error.to_string()),
    }
    .and_then(|text| fields::parse_yaml(&text));
    parsed.map(Some).map_err(|detail| {
        report.skips.push(Skip {
            file: relative.join(name),
            item: None,
            reason: "unreadable_file".into(),
            detail: format!("the file does not parse: {detail}"),
        });
    })
}

/// The skill of one folder and the drafts of all its usable items; `None` when the skill
/// itself cannot be used (reported).
fn read_folder(folder: &Path, relative: &Path, report: &mut Report) -> Option<Folder> {
    let skip_skill = |report: &mut Report, reason: &str, detail: String| {
        *report.skills.skipped.entry(reason.into()).or_default() += 1;
        report.skips.push(Skip {
            file: relative.join("skill.yaml"),
            item: None,
            reason: reason.into(),
            detail,
        });
    };
    let document = match read_yaml(folder, relative, "skill.yaml", report) {
        Ok(document) => document.unwrap_or(Value::Null),
        Err(()) => {
            *report
                .skills
                .skipped
                .entry("unreadable_file".into())
                .or_default() += 1;
            return None;
        }
    };
    let collaboration = read_yaml(folder, relative, "collaboration.yaml", report)
        .ok()
        .flatten()
        .unwrap_or(Value::Null);
    let skill = match skill::skill(&document, &folder_name(folder), collaboration) {
        Ok(skill) => skill,
        Err(detail) => {
            let reason = if document.is_null() {
                "empty_file"
            } else {
                "unusable_skill"
            };
            skip_skill(report, reason, detail);
            return None;
        }
    };
    let mut read = Folder {
        skill_id: skill.id.clone(),
        drafts: vec![(
            library_item_id(LibraryItem::Skill, &skill.id, ""),
            LibraryItem::Skill,
            skill_draft(&skill),
        )],
        unread: Vec::new(),
    };
    for (kind, file, lists) in [
        (
            LibraryItem::SharpEdge,
            "sharp-edges.yaml",
            &["sharp_edges", "edges"][..],
        ),
        (
            LibraryItem::Validation,
            "validations.yaml",
            &["validations", "checks"][..],
        ),
    ] {
        let document = match read_yaml(folder, relative, file, report) {
            Ok(Some(document)) => document,
            Ok(None) => continue,
            Err(()) => {
                read.unread.push(kind);
                continue;
            }
        };
        let entries = match &document {
            Value::Array(_) => fields::items(&serde_json::json!({ "list": document }), &["list"]),
            other => fields::items(other, lists),
        };
        if entries.is_empty() {
            report.skips.push(Skip {
                file: relative.join(file),
                item: None,
                reason: "empty_file".into(),
                detail: format!("the file holds no `{}`", lists[0]),
            });
        }
        let mut ids: HashSet<String> = HashSet::new();
        for (n, entry) in entries.iter().enumerate() {
            let label = entry
                .get("id")
                .and_then(fields::scalar)
                .unwrap_or_else(|| format!("#{}", n + 1));
            let outcome = match kind {
                LibraryItem::SharpEdge => {
                    items::sharp_edge(entry, &skill.id).map(|(edge, note)| {
                        if let Some(note) = note {
                            *report
                                .detection_dropped
                                .entry(note.reason.into())
                                .or_default() += 1;
                            report.skips.push(Skip {
                                file: relative.join(file),
                                item: Some(label.clone()),
                                reason: note.reason.into(),
                                detail: format!(
                                    "kept without its detection pattern: {}",
                                    note.detail
                                ),
                            });
                        }
                        (edge.id.clone(), edge_draft(&edge, &skill))
                    })
                }
                _ => items::validation(entry, &skill.id)
                    .map(|check| (check.id.clone(), validation_draft(&check, &skill))),
            };
            let refusal = match outcome {
                Ok((id, _)) if !ids.insert(id.clone()) => items::Refusal {
                    reason: "duplicate_id",
                    detail: format!("another item of this file already has the id `{id}`"),
                },
                Ok((id, draft)) => {
                    read.drafts
                        .push((library_item_id(kind, &skill.id, &id), kind, draft));
                    continue;
                }
                Err(refusal) => refusal,
            };
            *tally(report, kind)
                .skipped
                .entry(refusal.reason.into())
                .or_default() += 1;
            report.skips.push(Skip {
                file: relative.join(file),
                item: Some(label),
                reason: refusal.reason.into(),
                detail: refusal.detail,
            });
        }
    }
    Some(read)
}
