//! The packer as the `pack_repo` skill of playbook `skill-invoke` steps: the same rules as the
//! `pack_repo` tool (the caller's identity decides whether local paths may be packed), the
//! operator's limits, and a stored snapshot per repository.

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::Identity;
use crate::knowledge::snapshots::{self, PackRequest};
use crate::packer::{PackOptions, PackerSettings, RepoSource};
use crate::playbooks::steps::{self, PackedRepository, Skills};
use crate::store::Store;

/// [`Skills`] backed by the native packer.
pub struct PackerSkills {
    pub store: Arc<dyn Store>,
    pub settings: PackerSettings,
}

#[async_trait]
impl Skills for PackerSkills {
    /// The packer's own source rules (`RepoSource::parse` under the caller's policy), without
    /// cloning: a URL refused here is refused by `pack_repo` too.
    async fn check_url(&self, identity: &Identity, url: &str) -> Result<(), String> {
        let policy = snapshots::source_policy(&self.settings, identity);
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || RepoSource::parse(&url, policy).map(|_| ()))
            .await
            .map_err(|error| format!("the URL check stopped: {error}"))?
            .map_err(|error| error.to_string())
    }

    async fn pack_repo(&self, request: steps::PackRequest) -> Result<PackedRepository, String> {
        let options = PackOptions {
            max_file_bytes: self.settings.max_file_bytes,
            max_total_bytes: self.settings.max_total_bytes,
            timeout: self.settings.timeout,
            ..PackOptions::default()
        };
        let url = request.url.clone();
        let outcome = snapshots::pack(
            &self.store,
            &self.settings,
            &request.identity,
            "run_playbook",
            PackRequest {
                project: request.project_id.to_string(),
                url: request.url,
                version_label: request.version_label,
                options,
            },
        )
        .await
        .map_err(|error| error.to_string())?;
        let snapshot = self
            .store
            .get_snapshot(request.project_id, outcome.snapshot_id)
            .await
            .map_err(|error| error.to_string())?;
        let summary = &outcome.summary;
        let top: Vec<String> = summary
            .top_files
            .iter()
            .take(5)
            .map(|file| format!("{} ({} tokens)", file.path, file.tokens))
            .collect();
        Ok(PackedRepository {
            url,
            snapshot_id: Some(outcome.snapshot_id),
            version: Some(i64::from(outcome.version)),
            commit: summary.commit_sha.clone(),
            file_count: summary.file_count,
            token_count: summary.total_tokens,
            file_tree: snapshot.and_then(|s| s.file_tree).unwrap_or_default(),
            summary: Some(format!(
                "{}, {} tokens; largest: {}",
                crate::plural::count(summary.file_count as usize, "file"),
                summary.total_tokens,
                top.join(", ")
            )),
        })
    }
}
