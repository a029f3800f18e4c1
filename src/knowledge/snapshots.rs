//! Repository snapshot services: pack a repository into a versioned snapshot (the packer runs
//! on blocking threads and streams its files into one store transaction), list a project's
//! snapshots newest first, and read a snapshot's text back, in pages with a file filter or
//! whole (as an MCP resource). Every call checks the caller's identity: packing needs the write
//! role, local paths need the local operator, reading needs the project.

use std::sync::Arc;
use std::time::Instant;

use schemars::JsonSchema;
use serde::Serialize;
use uuid::Uuid;

use super::{KnowledgeError, projects};
use crate::auth::Identity;
use crate::domain::{
    Actor, Cursor, NewSnapshotFile, Role, Snapshot, SnapshotChunk, SnapshotDraft,
    SnapshotFileEntry, SnapshotFilter,
};
use crate::packer::{
    PackError, PackOptions, PackSummary, PackerSettings, RepoSource, SecretMode, SourcePolicy,
    TokenCache, tokens::Encoding,
};
use crate::store::Store;

impl From<PackError> for KnowledgeError {
    fn from(error: PackError) -> Self {
        match error {
            PackError::Invalid(message) | PackError::TooLarge(message) => {
                KnowledgeError::Invalid(message)
            }
            PackError::Forbidden(message) | PackError::NeedsCredentials(message) => {
                KnowledgeError::Forbidden(message)
            }
            PackError::NotFound(message) => KnowledgeError::NotFound(message),
            PackError::Timeout(message) | PackError::Failed(message) => {
                KnowledgeError::Unavailable(message)
            }
        }
    }
}

/// The token-count cache kept in the store, reached from the packer's blocking threads.
pub struct StoreTokenCache {
    pub store: Arc<dyn Store>,
    pub runtime: tokio::runtime::Handle,
}

impl TokenCache for StoreTokenCache {
    fn lookup(
        &self,
        encoding: Encoding,
        blob_ids: &[String],
    ) -> std::collections::HashMap<String, u64> {
        self.runtime
            .block_on(self.store.token_counts(encoding.as_str(), blob_ids))
            .unwrap_or_else(|error| {
                tracing::warn!(%error, "the token-count cache could not be read; counting every file");
                Default::default()
            })
    }

    fn record(&self, encoding: Encoding, counts: &[(String, u64)]) {
        if let Err(error) = self
            .runtime
            .block_on(self.store.record_token_counts(encoding.as_str(), counts))
        {
            tracing::warn!(%error, "the token-count cache could not be written");
        }
    }
}

/// A finished pack: the stored snapshot and what it holds.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PackOutcome {
    pub snapshot_id: Uuid,
    pub project_id: Uuid,
    pub version: i32,
    pub version_label: Option<String>,
    pub summary: PackSummary,
    /// How long the pack took, in milliseconds.
    pub elapsed_ms: u64,
}

/// What to pack, and where to keep it.
#[derive(Debug, Clone)]
pub struct PackRequest {
    /// The project's id or name.
    pub project: String,
    pub url: String,
    pub version_label: Option<String>,
    pub options: PackOptions,
}

/// What `identity` may pack under the operator's `settings`: local paths only for the local
/// operator. The `pack_repo` tool and playbook steps (which check URLs when they are answered)
/// both go by it.
pub fn source_policy(settings: &PackerSettings, identity: &Identity) -> SourcePolicy {
    SourcePolicy {
        allow_local: *identity == Identity::Local,
        allow_private_network: settings.allow_private_network,
    }
}

/// Packs `request.url` into a new snapshot of `request.project`.
pub async fn pack(
    store: &Arc<dyn Store>,
    settings: &PackerSettings,
    identity: &Identity,
    tool: &str,
    request: PackRequest,
) -> Result<PackOutcome, KnowledgeError> {
    let PackRequest {
        project,
        url,
        version_label,
        options,
    } = request;
    let project = projects::resolve(store, identity, &project, Role::Write).await?;
    let local = *identity == Identity::Local;
    if options.secrets == SecretMode::Off && !local {
        return Err(KnowledgeError::Forbidden(
            "`secrets: off` is only for the local operator: use `exclude` or `redact`".into(),
        ));
    }
    let policy = source_policy(settings, identity);
    let started = Instant::now();
    let cache = StoreTokenCache {
        store: store.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let credentials = settings.credentials.clone();
    let prepare_options = options.clone();
    let prepared = tokio::task::spawn_blocking(move || {
        let source = RepoSource::parse(&url, policy)?;
        crate::packer::prepare(&source, &prepare_options, &credentials, &cache, &|_| {})
    })
    .await
    .map_err(|error| KnowledgeError::Unavailable(format!("the pack stopped: {error}")))??;
    let summary = prepared.summary.clone();
    let draft = SnapshotDraft {
        url: summary.source.clone(),
        commit_sha: summary.commit_sha.clone(),
        branch: summary.branch.clone(),
        version_label,
        file_count: summary.file_count as i64,
        token_count: summary.total_tokens as i64,
        total_bytes: summary.total_bytes as i64,
        file_tree: prepared.tree.clone(),
        encoding: summary.encoding.as_str().to_owned(),
        style: summary.style.as_str().to_owned(),
        report: serde_json::to_value(&summary).unwrap_or_default(),
    };
    let (sender, receiver) = tokio::sync::mpsc::channel(2);
    let producer = tokio::task::spawn_blocking(move || {
        let stopped = || PackError::Failed("the store stopped receiving files".into());
        prepared.stream(4 << 20, |batch| {
            let files = batch
                .into_iter()
                .map(|file| NewSnapshotFile {
                    path: file.path,
                    blob_id: file.blob_id,
                    tokens: file.tokens as i64,
                    content: file.text,
                })
                .collect();
            sender
                .blocking_send(SnapshotChunk::Files(files))
                .map_err(|_| stopped())
        })?;
        sender
            .blocking_send(SnapshotChunk::Done)
            .map_err(|_| stopped())
        // `prepared` (and the clone's temporary directory) is dropped here.
    });
    let actor = Actor {
        label: identity.label(),
        tool: tool.to_owned(),
    };
    let saver = async {
        let mut receiver = receiver;
        // Dropping the receiver on failure unblocks the producer.
        store
            .save_snapshot(project.id, &actor, &draft, &mut receiver)
            .await
    };
    let (saved, produced) = tokio::join!(saver, producer);
    produced
        .map_err(|error| KnowledgeError::Unavailable(format!("the pack stopped: {error}")))??;
    let snapshot = saved?;
    let elapsed_ms = started.elapsed().as_millis() as u64;
    tracing::info!(
        project = %project.id,
        url = %snapshot.url,
        version = snapshot.version,
        files = snapshot.file_count,
        tokens = snapshot.token_count,
        cached = summary.cached_token_counts,
        elapsed_ms,
        "repository packed"
    );
    Ok(PackOutcome {
        snapshot_id: snapshot.id,
        project_id: project.id,
        version: snapshot.version,
        version_label: snapshot.version_label,
        summary,
        elapsed_ms,
    })
}

/// One page of a snapshot's text.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SnapshotPage {
    pub snapshot: SnapshotInfo,
    /// 1-based.
    pub page: u32,
    pub pages: u32,
    /// The next page to ask for, if any.
    pub next_page: Option<u32>,
    /// How many files match the filter, over all pages.
    pub matching_files: u32,
    /// The files (or parts of files) on this page.
    pub files: Vec<PagePart>,
    /// The page rendered in the snapshot's style.
    #[serde(skip)]
    pub text: String,
}

/// A snapshot's description, without its files.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SnapshotInfo {
    pub id: Uuid,
    /// The MCP resource holding the whole packed text (`resources/read`).
    pub uri: String,
    /// The source packed: the repository URL, or a local directory's path.
    pub url: String,
    pub commit_sha: Option<String>,
    pub branch: Option<String>,
    pub version: i32,
    pub version_label: Option<String>,
    pub file_count: i64,
    pub token_count: i64,
    pub style: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// For a local directory in a git repository: whether (and which) files differed from the
    /// commit when it was packed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_tree: Option<crate::packer::WorkingTree>,
}

impl From<&Snapshot> for SnapshotInfo {
    fn from(snapshot: &Snapshot) -> Self {
        SnapshotInfo {
            id: snapshot.id,
            uri: resource_uri(snapshot.project_id, snapshot.id),
            url: snapshot.url.clone(),
            commit_sha: snapshot.commit_sha.clone(),
            branch: snapshot.branch.clone(),
            version: snapshot.version,
            version_label: snapshot.version_label.clone(),
            file_count: snapshot.file_count,
            token_count: snapshot.token_count,
            style: snapshot.style.clone(),
            created_at: snapshot.created_at,
            working_tree: snapshot
                .report
                .get("working_tree")
                .and_then(|tree| serde_json::from_value(tree.clone()).ok()),
        }
    }
}

/// The MCP resource URI of a snapshot.
pub fn resource_uri(project: Uuid, snapshot: Uuid) -> String {
    format!("{RESOURCE_PREFIX}{project}/snapshots/{snapshot}")
}

/// What every snapshot's resource URI starts with.
pub const RESOURCE_PREFIX: &str = "codifier://projects/";

/// The project and snapshot ids of a resource URI made by [`resource_uri`].
pub fn parse_resource_uri(uri: &str) -> Option<(Uuid, Uuid)> {
    let (project, snapshot) = uri
        .trim()
        .strip_prefix(RESOURCE_PREFIX)?
        .split_once("/snapshots/")?;
    Some((
        Uuid::parse_str(project).ok()?,
        Uuid::parse_str(snapshot).ok()?,
    ))
}

/// One page of a project's snapshots, newest first.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct SnapshotList {
    pub project_id: Uuid,
    pub count: usize,
    pub snapshots: Vec<SnapshotInfo>,
    /// Send this as `cursor` to read the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// How many snapshots a page lists unless the caller asks for another number, and at most.
pub const DEFAULT_LIST_LIMIT: u32 = 20;
pub const MAX_LIST_LIMIT: u32 = 100;

/// Lists the snapshots of `project` (optionally of one `source`), newest first, `limit` at a
/// time from `cursor`.
pub async fn list(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
    source: Option<&str>,
    limit: u32,
    cursor: Option<&str>,
) -> Result<SnapshotList, KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Read).await?;
    if !(1..=MAX_LIST_LIMIT).contains(&limit) {
        return Err(KnowledgeError::Invalid(format!(
            "`limit` must be between 1 and {MAX_LIST_LIMIT}"
        )));
    }
    let after = match cursor.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => Some(Cursor::parse(text).ok_or_else(|| {
            KnowledgeError::Invalid(
                "`cursor` is not one list_snapshots issued: send `next_cursor` from the previous page, or leave it out".into(),
            )
        })?),
        None => None,
    };
    let filter = SnapshotFilter {
        url: source
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned),
        limit: limit + 1,
        after,
    };
    let mut found = store.list_snapshots(project.id, &filter).await?;
    let next_cursor = (found.len() > limit as usize).then(|| {
        found.truncate(limit as usize);
        found.last().map(|last| {
            Cursor {
                created_at: last.created_at,
                id: last.id,
            }
            .encode()
        })
    });
    let snapshots: Vec<SnapshotInfo> = found.iter().map(SnapshotInfo::from).collect();
    Ok(SnapshotList {
        project_id: project.id,
        count: snapshots.len(),
        snapshots,
        next_cursor: next_cursor.flatten(),
    })
}

/// The largest snapshot (sum of its files' bytes) read whole as a resource; larger ones are
/// read in pages with read_snapshot.
pub const MAX_WHOLE_BYTES: i64 = 16 << 20;

/// A snapshot's whole packed text, as the pack wrote it: the summary, the directory structure
/// and every file, in the snapshot's style.
pub async fn read_whole(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: Uuid,
    snapshot: Uuid,
) -> Result<(Snapshot, String), KnowledgeError> {
    let project = projects::resolve(store, identity, &project.to_string(), Role::Read).await?;
    let found = store
        .get_snapshot(project.id, snapshot)
        .await?
        .ok_or_else(|| {
            KnowledgeError::NotFound(format!(
                "project `{}` has no snapshot {snapshot}: list_snapshots lists them",
                project.name
            ))
        })?;
    if found.total_bytes > MAX_WHOLE_BYTES {
        return Err(KnowledgeError::Invalid(format!(
            "snapshot {snapshot} holds {} bytes, more than the {MAX_WHOLE_BYTES} read whole: read it in pages with read_snapshot",
            found.total_bytes
        )));
    }
    let style = found
        .style
        .as_deref()
        .and_then(crate::packer::Style::parse)
        .unwrap_or_default();
    let summary = serde_json::from_value::<PackSummary>(found.report.clone()).map_err(|error| {
        KnowledgeError::Unavailable(format!("the snapshot's report cannot be read: {error}"))
    })?;
    let tree = found.file_tree.clone().unwrap_or_default();
    let mut out = Vec::new();
    let ordinals: Vec<i32> = store
        .snapshot_files(project.id, snapshot)
        .await?
        .iter()
        .map(|entry| entry.ordinal)
        .collect();
    let write = |result: std::io::Result<()>| {
        result.map_err(|error| KnowledgeError::Unavailable(format!("cannot render: {error}")))
    };
    write(crate::packer::render::header(
        &mut out, style, &summary, &tree,
    ))?;
    let mut first = true;
    for chunk in ordinals.chunks(500) {
        for text in store.snapshot_texts(project.id, snapshot, chunk).await? {
            let file = crate::packer::PackedFile {
                path: text.path,
                text: text.content,
                tokens: text.tokens as u64,
                blob_id: String::new(),
            };
            write(crate::packer::render::file(
                &mut out, style, &file, false, first,
            ))?;
            first = false;
        }
    }
    write(crate::packer::render::footer(&mut out, style))?;
    Ok((found, String::from_utf8_lossy(&out).into_owned()))
}

/// A file, or one part of a file too large for one page.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PagePart {
    pub path: String,
    pub tokens: i64,
    /// `k/n` when the file is split over pages.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    pub content: String,
}

/// Pages are cut at this many bytes of file text unless the caller asks for less.
pub const DEFAULT_PAGE_BYTES: u64 = 100_000;
pub const MAX_PAGE_BYTES: u64 = 1_000_000;

/// Reads page `page` of the files of `snapshot` whose paths match one of `files` (globs; all
/// files when empty), in the snapshot's style; with `line_numbers`, each line of the text and of
/// `files[].content` starts with its number, and the shape stays the same.
#[allow(clippy::too_many_arguments)]
pub async fn read_page(
    store: &Arc<dyn Store>,
    identity: &Identity,
    project: &str,
    snapshot: &str,
    files: &[String],
    page: u32,
    page_bytes: u64,
    line_numbers: bool,
) -> Result<SnapshotPage, KnowledgeError> {
    let project = projects::resolve(store, identity, project, Role::Read).await?;
    let id = Uuid::parse_str(snapshot.trim()).map_err(|_| {
        KnowledgeError::Invalid(format!(
            "`snapshot_id` {snapshot:?} is not a UUID: send the id pack_repo returned"
        ))
    })?;
    let found = store.get_snapshot(project.id, id).await?.ok_or_else(|| {
        KnowledgeError::NotFound(format!(
            "project `{}` has no snapshot {id}: pack_repo returns the ids of the snapshots it makes",
            project.name
        ))
    })?;
    let filter = glob_filter(files)?;
    let index: Vec<SnapshotFileEntry> = store
        .snapshot_files(project.id, id)
        .await?
        .into_iter()
        .filter(|entry| filter.as_ref().is_none_or(|set| set.is_match(&entry.path)))
        .collect();
    if page == 0 {
        return Err(KnowledgeError::Invalid("`page` starts at 1".into()));
    }
    let page_bytes = page_bytes.clamp(1_000, MAX_PAGE_BYTES);
    let pages = paginate(&index, page_bytes);
    let total = pages.len().max(1) as u32;
    if page > total {
        return Err(KnowledgeError::Invalid(format!(
            "`page` {page} is past the last page ({total}) of this selection"
        )));
    }
    let slots = pages.get(page as usize - 1).cloned().unwrap_or_default();
    let ordinals: Vec<i32> = slots.iter().map(|slot| index[slot.entry].ordinal).collect();
    let texts = store.snapshot_texts(project.id, id, &ordinals).await?;
    let mut parts = Vec::new();
    for (slot, text) in slots.iter().zip(texts) {
        let content = match slot.parts {
            1 => text.content,
            _ => segment(&text.content, slot.part, page_bytes).to_owned(),
        };
        parts.push(PagePart {
            path: text.path,
            tokens: text.tokens,
            part: (slot.parts > 1).then(|| format!("{}/{}", slot.part + 1, slot.parts)),
            content,
        });
    }
    let style = found
        .style
        .as_deref()
        .and_then(crate::packer::Style::parse)
        .unwrap_or_default();
    let mut text = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let path = match &part.part {
            Some(part_of) => format!("{} (part {part_of})", part.path),
            None => part.path.clone(),
        };
        let file = crate::packer::PackedFile {
            path,
            text: part.content.clone(),
            tokens: part.tokens as u64,
            blob_id: String::new(),
        };
        let _ = crate::packer::render::file(&mut text, style, &file, line_numbers, index == 0);
    }
    if line_numbers {
        for part in &mut parts {
            part.content = crate::packer::render::number_lines(&part.content);
        }
    }
    Ok(SnapshotPage {
        snapshot: SnapshotInfo::from(&found),
        page,
        pages: total,
        next_page: (page < total).then_some(page + 1),
        matching_files: index.len() as u32,
        files: parts,
        text: String::from_utf8_lossy(&text).into_owned(),
    })
}

fn glob_filter(files: &[String]) -> Result<Option<globset::GlobSet>, KnowledgeError> {
    if files.is_empty() {
        return Ok(None);
    }
    let mut builder = globset::GlobSetBuilder::new();
    for pattern in files {
        let glob = globset::GlobBuilder::new(pattern.trim())
            .literal_separator(false)
            .build()
            .map_err(|error| {
                KnowledgeError::Invalid(format!(
                    "`files` holds the glob `{pattern}`, which is not valid ({error}): use e.g. `src/**/*.rs`"
                ))
            })?;
        builder.add(glob);
    }
    builder
        .build()
        .map(Some)
        .map_err(|error| KnowledgeError::Invalid(format!("`files` globs do not combine: {error}")))
}

/// A file (or a part of one) placed on a page.
#[derive(Debug, Clone, Default)]
struct Slot {
    entry: usize,
    part: usize,
    parts: usize,
}

/// Cuts the files into pages of about `page_bytes`; a larger file is split over pages of its own.
fn paginate(index: &[SnapshotFileEntry], page_bytes: u64) -> Vec<Vec<Slot>> {
    let mut pages: Vec<Vec<Slot>> = Vec::new();
    let mut current: Vec<Slot> = Vec::new();
    let mut used = 0u64;
    for (entry, file) in index.iter().enumerate() {
        let bytes = file.bytes.max(0) as u64;
        if bytes > page_bytes {
            if !current.is_empty() {
                pages.push(std::mem::take(&mut current));
                used = 0;
            }
            let parts = bytes.div_ceil(page_bytes) as usize;
            for part in 0..parts {
                pages.push(vec![Slot { entry, part, parts }]);
            }
            continue;
        }
        if used + bytes > page_bytes && !current.is_empty() {
            pages.push(std::mem::take(&mut current));
            used = 0;
        }
        used += bytes;
        current.push(Slot {
            entry,
            part: 0,
            parts: 1,
        });
    }
    if !current.is_empty() {
        pages.push(current);
    }
    pages
}

/// Part `part` of `text` cut every `size` bytes, moved back to character boundaries.
fn segment(text: &str, part: usize, size: u64) -> &str {
    let boundary = |at: usize| {
        let mut at = at.min(text.len());
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let start = boundary(part * size as usize);
    let end = boundary((part + 1) * size as usize);
    &text[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, bytes: i64) -> SnapshotFileEntry {
        SnapshotFileEntry {
            ordinal: 0,
            path: path.into(),
            tokens: 1,
            bytes,
        }
    }

    #[test]
    fn small_files_share_pages_and_a_large_one_is_split() {
        let index = [
            entry("a", 600),
            entry("b", 600),
            entry("big", 2500),
            entry("c", 10),
        ];
        let pages = paginate(&index, 1000);
        let shape: Vec<Vec<(usize, usize)>> = pages
            .iter()
            .map(|page| page.iter().map(|slot| (slot.entry, slot.part)).collect())
            .collect();
        assert_eq!(
            shape,
            vec![
                vec![(0, 0)],
                vec![(1, 0)],
                vec![(2, 0)],
                vec![(2, 1)],
                vec![(2, 2)],
                vec![(3, 0)]
            ]
        );
    }

    #[test]
    fn segments_cover_the_text_without_splitting_a_character() {
        let text = "ééééé"; // 10 bytes
        let joined: String = (0..4).map(|part| segment(text, part, 3)).collect();
        assert_eq!(joined, text);
    }
}
