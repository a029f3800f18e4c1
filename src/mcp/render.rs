//! Markdown renderings of tool results, for the person reading the conversation.

use std::fmt::Write;

use super::tools::{FetchContextOutput, ManageProjectsOutput, ProjectOperation};
use crate::store::{Memory, Project, WriteOutcome};

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

pub fn written(memory: &Memory, outcome: WriteOutcome) -> String {
    let mut out = match outcome {
        WriteOutcome::Created => "Stored a new memory.\n\n".to_owned(),
        WriteOutcome::Updated => "Updated the memory.\n\n".to_owned(),
        WriteOutcome::Unchanged => {
            "The same content is already stored in this project; nothing was written. Send `id` to change that memory.\n\n".to_owned()
        }
    };
    memory_block(&mut out, memory);
    out
}

pub fn fetched(output: &FetchContextOutput) -> String {
    let mut out = String::new();
    if output.memories.is_empty() {
        out.push_str("No memories match these filters.\n");
        return out;
    }
    let _ = writeln!(out, "## {} memories, newest first\n", output.count);
    for memory in &output.memories {
        memory_block(&mut out, memory);
    }
    if let Some(cursor) = &output.next_cursor {
        let _ = writeln!(out, "More results: call again with `cursor` = `{cursor}`.");
    }
    out
}

pub fn deleted(memory: &Memory) -> String {
    format!(
        "Deleted memory **{}** (`{}`). It no longer appears in any read; the audit log keeps the record.\n",
        memory.title, memory.id
    )
}
