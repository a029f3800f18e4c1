//! `pack_repo` (pack a repository into a versioned snapshot; returns its id and a summary, never
//! the whole text), `list_snapshots` (a project's snapshots, newest first) and `read_snapshot`
//! (a snapshot's text in pages, with a file filter).

use std::fmt::Write;

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{input_schema, output_schema};
use crate::knowledge::snapshots::{self, PackOutcome, PackRequest, SnapshotList, SnapshotPage};
use crate::mcp::CodifierServer;
use crate::packer::{Encoding, PackOptions, SecretMode, Style};

/// Arguments of `pack_repo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PackRepoParams {
    /// The repository: an https:// (or ssh://, git@host:owner/repo) URL. Local paths and
    /// file:// URLs only work for the local operator (stdio).
    pub url: String,
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// A label for this version of the snapshot (e.g. `v2.1` or `before-refactor`).
    pub version_label: Option<String>,
    /// A branch, tag or full 40-character commit id (default: the default branch).
    #[serde(rename = "ref")]
    pub reference: Option<String>,
    /// Commits of history to fetch: 1 (the default) is a shallow clone; 0 fetches everything.
    pub depth: Option<u32>,
    /// Only files matching one of these globs (gitignore syntax), e.g. `["src/**", "*.md"]`.
    pub include: Option<Vec<String>>,
    /// Leave out files matching these globs, e.g. `["tests/**", "*.snap"]`.
    pub ignore: Option<Vec<String>>,
    /// Apply the built-in ignores: lock files, build output, vendored dependencies, media (default true).
    pub default_ignores: Option<bool>,
    /// Apply .gitignore, .git/info/exclude, .codifierignore and .repomixignore (default true).
    pub gitignore: Option<bool>,
    /// Leave out files larger than this many bytes (default and maximum: the server's limit).
    #[schemars(range(min = 1))]
    pub max_file_bytes: Option<u64>,
    /// Files holding credentials: `exclude` them (default) or `redact` the credentials.
    pub secrets: Option<SecretMode>,
    /// The tokenizer: `o200k_base` (default) or `cl100k_base`.
    pub encoding: Option<Encoding>,
    /// How read_snapshot lays out the text: `xml` (default), `markdown`, `plain` or `json`.
    pub style: Option<Style>,
    /// How many of the largest files the summary names (default 10, at most 100).
    #[schemars(range(max = 100))]
    pub top_files: Option<u32>,
}

/// Arguments of `list_snapshots`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSnapshotsParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// Only snapshots of this source: a repository URL (or a local directory's path) exactly as
    /// listed in `url`.
    pub source: Option<String>,
    /// How many snapshots to return, 1 to 100 (default 20), newest first.
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page, to read the next one.
    pub cursor: Option<String>,
}

/// Arguments of `read_snapshot`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadSnapshotParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// The snapshot's id, as pack_repo returned it.
    pub snapshot_id: String,
    /// Only files whose paths match one of these globs, e.g. `["src/**/*.rs", "README.md"]`.
    pub files: Option<Vec<String>>,
    /// The page to read, from 1 (default 1); each result names the next page.
    #[schemars(range(min = 1))]
    pub page: Option<u32>,
    /// Bytes of file text per page (default 100000, at most 1000000).
    #[schemars(range(min = 1000, max = 1_000_000))]
    pub page_bytes: Option<u64>,
    /// Prefix each line with its number.
    pub line_numbers: Option<bool>,
}

#[tool_router(router = snapshot_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Pack a git repository into one AI-readable snapshot of the project: a shallow clone, a
    /// gitignore-aware walk with sensible default ignores, files with credentials left out or
    /// redacted, exact token counts. Returns the snapshot id and a summary (files, tokens, the
    /// largest files, files left out and why); read the text with read_snapshot.
    #[tool(
        name = "pack_repo",
        input_schema = input_schema::<PackRepoParams>(),
        output_schema = output_schema::<PackOutcome>(),
        annotations(
            title = "Pack a repository",
            read_only_hint = false,
            destructive_hint = false,
            idempotent_hint = false,
            open_world_hint = true
        )
    )]
    pub async fn pack_repo(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: PackRepoParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let settings = &self.app.packer;
            let defaults = PackOptions::default();
            let max_file_bytes = params
                .max_file_bytes
                .unwrap_or(settings.max_file_bytes)
                .min(settings.max_file_bytes);
            let options = PackOptions {
                reference: params.reference.filter(|text| !text.trim().is_empty()),
                depth: params.depth.unwrap_or(1),
                include: params.include.unwrap_or_default(),
                ignore: params.ignore.unwrap_or_default(),
                default_ignores: params.default_ignores.unwrap_or(true),
                gitignore: params.gitignore.unwrap_or(true),
                max_file_bytes,
                max_total_bytes: settings.max_total_bytes,
                secrets: params.secrets.unwrap_or_default(),
                encoding: params.encoding.unwrap_or_default(),
                style: params.style.unwrap_or_default(),
                top_files: params.top_files.unwrap_or(10).min(100) as usize,
                timeout: settings.timeout,
                ..defaults
            };
            let request = PackRequest {
                project,
                url: params.url,
                version_label: params.version_label.filter(|text| !text.trim().is_empty()),
                options,
            };
            snapshots::pack(&self.store, settings, &identity, "pack_repo", request).await
        };
        self.run_tool("pack_repo", arguments, ctx, action, render_pack)
            .await
    }

    /// List the project's repository snapshots, newest first: each one's id, source (URL or
    /// path), version, commit, whether the working tree had uncommitted changes, file and token
    /// counts and when it was packed. Page with `cursor`; read one with read_snapshot.
    #[tool(
        name = "list_snapshots",
        input_schema = input_schema::<ListSnapshotsParams>(),
        output_schema = output_schema::<SnapshotList>(),
        annotations(
            title = "List repository snapshots",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn list_snapshots(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: ListSnapshotsParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let limit = params
                .limit
                .unwrap_or(i64::from(snapshots::DEFAULT_LIST_LIMIT));
            let limit = u32::try_from(limit).unwrap_or(0);
            snapshots::list(
                &self.store,
                &identity,
                &project,
                params.source.as_deref(),
                limit,
                params.cursor.as_deref(),
            )
            .await
        };
        self.run_tool("list_snapshots", arguments, ctx, action, render_list)
            .await
    }

    /// Read a repository snapshot's text, one page at a time, optionally only some files
    /// (`files` globs). The result names the next page.
    #[tool(
        name = "read_snapshot",
        input_schema = input_schema::<ReadSnapshotParams>(),
        output_schema = output_schema::<SnapshotPage>(),
        annotations(
            title = "Read a repository snapshot",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn read_snapshot(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: ReadSnapshotParams, identity| async move {
            let project = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            snapshots::read_page(
                &self.store,
                &identity,
                &project,
                &params.snapshot_id,
                &params.files.unwrap_or_default(),
                params.page.unwrap_or(1),
                params.page_bytes.unwrap_or(snapshots::DEFAULT_PAGE_BYTES),
                params.line_numbers.unwrap_or(false),
            )
            .await
        };
        self.run_tool("read_snapshot", arguments, ctx, action, render_page)
            .await
    }
}

fn render_pack(outcome: &PackOutcome) -> String {
    let summary = &outcome.summary;
    let mut out = String::new();
    let label = outcome
        .version_label
        .as_deref()
        .map(|label| format!(" ({label})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "Packed **{}** as snapshot `{}`, version {}{label}.",
        summary.source, outcome.snapshot_id, outcome.version
    );
    if let Some(commit) = &summary.commit_sha {
        let branch = summary.branch.as_deref().unwrap_or("detached");
        let _ = writeln!(out, "Commit `{commit}` on `{branch}`.");
    }
    if let Some(tree) = summary.working_tree.as_ref().filter(|tree| tree.dirty) {
        let _ = writeln!(
            out,
            "**Uncommitted changes**: the snapshot is the working tree, not that commit; {}.",
            tree.describe()
        );
    }
    let _ = writeln!(
        out,
        "\n{}, {} bytes, **{} tokens** ({}); {} counts came from the cache. Took {} ms.",
        crate::plural::count(summary.file_count as usize, "file"),
        summary.total_bytes,
        summary.total_tokens,
        summary.encoding.as_str(),
        summary.cached_token_counts,
        outcome.elapsed_ms
    );
    if !summary.top_files.is_empty() {
        let _ = writeln!(out, "\nLargest files by tokens:");
        for file in &summary.top_files {
            let _ = writeln!(out, "- `{}`: {} tokens", file.path, file.tokens);
        }
    }
    if !summary.skipped.is_empty() {
        let _ = writeln!(out, "\nLeft out ({}):", summary.skipped.len());
        for file in summary.skipped.iter().take(50) {
            let detail = file
                .detail
                .as_deref()
                .map(|detail| format!(" ({detail})"))
                .unwrap_or_default();
            let _ = writeln!(out, "- `{}`: {:?}{detail}", file.path, file.reason);
        }
        if summary.skipped.len() > 50 {
            let _ = writeln!(
                out,
                "- … and {} more (see the structured result)",
                summary.skipped.len() - 50
            );
        }
    }
    if !summary.redacted.is_empty() {
        let _ = writeln!(out, "\nCredentials redacted in:");
        for file in &summary.redacted {
            let _ = writeln!(out, "- `{}`: {}", file.path, file.kinds.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "\nRead the text with read_snapshot (`snapshot_id` `{}`, optionally `files` globs).",
        outcome.snapshot_id
    );
    out
}

fn render_list(list: &SnapshotList) -> String {
    let mut out = String::new();
    if list.snapshots.is_empty() {
        let _ = writeln!(
            out,
            "No snapshots{}. pack_repo makes one.",
            if list.next_cursor.is_none() {
                ""
            } else {
                " on this page"
            }
        );
        return out;
    }
    let plural = if list.count == 1 { "" } else { "s" };
    let _ = writeln!(out, "{} snapshot{plural}, newest first:\n", list.count);
    for snapshot in &list.snapshots {
        let label = snapshot
            .version_label
            .as_deref()
            .map(|label| format!(" ({label})"))
            .unwrap_or_default();
        let commit = match &snapshot.commit_sha {
            Some(commit) => format!(
                ", commit `{}`{}",
                &commit[..commit.len().min(12)],
                snapshot
                    .branch
                    .as_deref()
                    .map(|branch| format!(" on `{branch}`"))
                    .unwrap_or_default()
            ),
            None => String::new(),
        };
        let dirty = match &snapshot.working_tree {
            Some(tree) if tree.dirty => format!(
                ", **uncommitted changes** ({} file{})",
                tree.changed_count,
                if tree.changed_count == 1 { "" } else { "s" }
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "- `{}`: **{}** version {}{label}{commit}{dirty}; {}, {} tokens; packed {}",
            snapshot.id,
            snapshot.url,
            snapshot.version,
            crate::plural::count(snapshot.file_count as usize, "file"),
            snapshot.token_count,
            snapshot.created_at.format("%Y-%m-%d %H:%M UTC")
        );
    }
    if let Some(cursor) = &list.next_cursor {
        let _ = writeln!(out, "\nMore: call again with `cursor` = `{cursor}`.");
    }
    let _ = writeln!(
        out,
        "\nRead one with read_snapshot (`snapshot_id`), or whole as the resource in `uri`."
    );
    out
}

fn render_page(page: &SnapshotPage) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Snapshot `{}` of {} (version {}): page {} of {}, {} matching files.\n",
        page.snapshot.id,
        page.snapshot.url,
        page.snapshot.version,
        page.page,
        page.pages,
        page.matching_files
    );
    out.push_str(&page.text);
    match page.next_page {
        Some(next) => {
            let _ = writeln!(out, "\nNext: read_snapshot with `page` {next}.");
        }
        None => out.push_str("\n(last page)\n"),
    }
    out
}
