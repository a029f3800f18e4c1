//! Markdown renderings of tool results, for the person reading the conversation.

use std::fmt::Write;

use super::tools::{
    DeleteMemoryOutput, FetchContextOutput, ManageProjectsOutput, MemoryHistoryOutput,
    ProjectOperation, RestoreMemoryOutput, UpdateMemoryOutput,
};
use crate::domain::{Memory, Project, WriteOutcome};

fn project_line(out: &mut String, project: &Project, active: Option<uuid::Uuid>) {
    let marker = if Some(project.id) == active {
        " (active)"
    } else {
        ""
    };
    let org = project
        .org
        .as_deref()
        .map(|org| format!(", org {org}"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "- **{}**{marker} — `{}`{org}",
        project.name, project.id
    );
}

pub fn projects(output: &ManageProjectsOutput) -> String {
    let mut out = String::new();
    match (output.operation, &output.project, &output.projects) {
        (ProjectOperation::List, _, Some(projects)) if projects.is_empty() => {
            out.push_str(
                "No projects yet. Create one with `manage_projects` operation `create`.\n",
            );
        }
        (ProjectOperation::List, _, Some(projects)) => {
            let _ = writeln!(out, "## Projects ({})\n", projects.len());
            for project in projects {
                project_line(&mut out, project, output.active_project_id);
            }
        }
        (operation, Some(project), _) => {
            let verb = match operation {
                ProjectOperation::Create => "Created project",
                ProjectOperation::Switch => "Switched to project",
                _ => "Project",
            };
            let _ = writeln!(out, "{verb} **{}**\n", project.name);
            let _ = writeln!(out, "- id: `{}`", project.id);
            if let Some(org) = &project.org {
                let _ = writeln!(out, "- org: {org}");
            }
            let _ = writeln!(out, "- created: {}", project.created_at.to_rfc3339());
        }
        _ => out.push_str("Done.\n"),
    }
    out
}

fn memory_block(out: &mut String, memory: &Memory) {
    let _ = writeln!(out, "### {} ({})", memory.title, memory.memory_type);
    let _ = writeln!(out, "- id: `{}`", memory.id);
    if !memory.tags.is_empty() {
        let _ = writeln!(out, "- tags: {}", memory.tags.join(", "));
    }
    if let Some(category) = &memory.category {
        let _ = writeln!(out, "- category: {category}");
    }
    let _ = writeln!(out, "- updated: {}", memory.updated_at.to_rfc3339());
    let text = memory
        .content
        .get("text")
        .and_then(|text| text.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| serde_json::to_string_pretty(&memory.content).unwrap_or_default());
    let _ = writeln!(out, "\n{text}\n");
}

pub fn written(output: &UpdateMemoryOutput) -> String {
    let mut out = match output.outcome {
        WriteOutcome::Created => "Stored a new memory.\n\n".to_owned(),
        WriteOutcome::Updated => format!(
            "Updated the memory's {}; every other field is kept, and so is the previous version (see memory_history).\n\n",
            output.changed.join(", ")
        ),
        WriteOutcome::Unchanged => {
            "The same content is already stored in this project; nothing was written. Send `id` to change that memory.\n\n".to_owned()
        }
    };
    if let Some(near) = &output.near_duplicate {
        let _ = writeln!(
            out,
            "**Near duplicate:** this is {:.0}% similar to **{}** (`{}`). Both are kept; delete one or merge them by hand if they say the same thing.\n",
            near.similarity * 100.0,
            near.title,
            near.id
        );
    }
    memory_block(&mut out, &output.memory);
    out
}

pub fn fetched(output: &FetchContextOutput) -> String {
    let mut out = String::new();
    if let Some(notice) = output
        .search
        .as_ref()
        .and_then(|search| search.notice.as_ref())
    {
        let _ = writeln!(out, "_{notice}_\n");
    }
    if output.memories.is_empty() {
        out.push_str("No memories match these filters.\n");
        return out;
    }
    let order = match (&output.search, output.deleted) {
        (_, true) => {
            "most recently deleted first (bring one back with restore_memory and its `id`)"
                .to_owned()
        }
        (Some(search), _) => format!("best match first ({:?} search)", search.mode).to_lowercase(),
        (None, _) => "newest first".to_owned(),
    };
    let what = match output.deleted {
        true => "deleted memory",
        false => "memory",
    };
    let _ = writeln!(out, "## {}, {order}\n", count(output.count, what));
    for (index, memory) in output.memories.iter().enumerate() {
        memory_block(&mut out, memory);
        if let Some(explanation) = output.explain.as_ref().and_then(|all| all.get(index)) {
            let rank = |rank: Option<u32>| rank.map_or("–".to_owned(), |r| r.to_string());
            let _ = writeln!(
                out,
                "_text rank {}, semantic rank {}{}, fused score {:.4}_\n",
                rank(explanation.text_rank),
                rank(explanation.semantic_rank),
                explanation
                    .similarity
                    .map(|s| format!(" (similarity {s:.3})"))
                    .unwrap_or_default(),
                explanation.fused_score
            );
        }
    }
    if let Some(cursor) = &output.next_cursor {
        let _ = writeln!(out, "More results: call again with `cursor` = `{cursor}`.");
    }
    out
}

pub fn history(output: &MemoryHistoryOutput) -> String {
    let (current, revisions) = (&output.current, &output.revisions);
    let mut out = format!("## History of **{}** (`{}`)\n\n", current.title, current.id);
    if revisions.is_empty() {
        out.push_str("This memory has never been changed.\n");
        return out;
    }
    for revision in revisions {
        let _ = writeln!(
            out,
            "- revision {}: **{}**, replaced {} by {}",
            revision.revision,
            revision.memory.title,
            revision.replaced_at.to_rfc3339(),
            revision.actor
        );
    }
    out.push_str("\nRestore one with restore_memory and its `revision`.\n");
    out
}

pub fn restored(output: &RestoreMemoryOutput) -> String {
    let mut out = "Restored the memory.\n\n".to_owned();
    memory_block(&mut out, &output.memory);
    out
}

pub fn deleted(output: &DeleteMemoryOutput) -> String {
    let memory = &output.deleted;
    format!(
        "Deleted memory **{}** (`{}`). It no longer appears in any read; the audit log keeps the record.\n\nTo undo this, call {} with `id` = `{}` (and no `revision`).\n",
        memory.title, memory.id, output.undo.tool, memory.id
    )
}

pub use crate::plural::count;
