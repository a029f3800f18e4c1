//! A local directory's place in its repository, through libgit2: the `origin` remote (without
//! credentials), which becomes the snapshot's source so that packs of one repository from any
//! checkout number together, and how the working tree differs from the commit it has checked
//! out (modified, staged, deleted and untracked files), so that a pack of uncommitted work is
//! never labelled as that commit alone.

use std::path::Path;

use git2::{Repository, Status, StatusOptions};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::source::{RepoSource, SourcePolicy};

/// How many differing files a pack names; the count covers them all.
pub const MAX_LISTED: usize = 50;

/// How a file differs from the commit checked out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Tracked, and its text (or type) differs from the commit, staged or not, or is in a
    /// merge conflict.
    Modified,
    /// New and staged, not yet committed.
    Added,
    /// In the commit, gone from the working tree or the index.
    Deleted,
    /// Not tracked by git (and not ignored).
    Untracked,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Modified => "modified",
            Change::Added => "added",
            Change::Deleted => "deleted",
            Change::Untracked => "untracked",
        }
    }
}

/// A file that differs from the commit; the path is relative to the packed directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChangedFile {
    pub path: String,
    pub change: Change,
}

/// How a local working tree differs from its checked-out commit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct WorkingTree {
    /// True when any file under the packed directory differs from the commit.
    pub dirty: bool,
    /// How many files differ.
    pub changed_count: u64,
    /// The files that differ (at most 50), in path order.
    pub changed: Vec<ChangedFile>,
}

impl WorkingTree {
    /// One line for a pack's header: the count and the named files.
    pub fn describe(&self) -> String {
        let named: Vec<String> = self
            .changed
            .iter()
            .map(|file| format!("{} ({})", file.path, file.change.as_str()))
            .collect();
        let more = self.changed_count as usize - self.changed.len();
        let more = if more > 0 {
            format!(", and {more} more")
        } else {
            String::new()
        };
        let files = if self.changed_count == 1 {
            "file differs"
        } else {
            "files differ"
        };
        format!(
            "{} {files} from that commit: {}{more}",
            self.changed_count,
            named.join(", ")
        )
    }
}

/// For a directory (canonical) inside a git repository: the `origin` remote's URL without
/// credentials when the directory is the repository's top (a subdirectory is a different
/// pack, known by its path), and, when HEAD has a commit, how the files under the directory
/// differ from it. `(None, None)` outside a repository.
pub fn inspect(root: &Path) -> (Option<String>, Option<WorkingTree>) {
    let Ok(repo) = Repository::discover(root) else {
        return (None, None);
    };
    let Some(workdir) = repo.workdir().and_then(|dir| dir.canonicalize().ok()) else {
        return (None, None);
    };
    let origin = (workdir == root)
        .then(|| repo.find_remote("origin").ok())
        .flatten()
        .and_then(|remote| remote.url().map(clean_remote));
    let has_commit = repo.head().is_ok_and(|head| head.peel_to_commit().is_ok());
    let tree = has_commit.then(|| status(&repo, &workdir, root)).flatten();
    (origin, tree)
}

/// A remote URL as stored: credentials taken out as for any URL we clone, `git@host:path`
/// written as `ssh://`; a remote that is a local path is its path.
pub(crate) fn clean_remote(url: &str) -> String {
    let policy = SourcePolicy {
        allow_local: true,
        allow_private_network: true,
    };
    match RepoSource::parse(url, policy) {
        Ok(source) => source.display(),
        // A URL we would not clone: keep only what cannot be a credential.
        Err(_) => match url::Url::parse(url) {
            Ok(mut parsed) => {
                let _ = parsed.set_password(None);
                let _ = parsed.set_username("");
                parsed.to_string()
            }
            Err(_) => url.to_owned(),
        },
    }
}

fn status(repo: &Repository, workdir: &Path, root: &Path) -> Option<WorkingTree> {
    let prefix = root.strip_prefix(workdir).ok()?;
    let prefix = prefix.to_str()?.replace('\\', "/");
    let mut options = StatusOptions::new();
    options
        .include_untracked(true)
        .recurse_untracked_dirs(true)
        .include_ignored(false)
        .exclude_submodules(true)
        .renames_head_to_index(false);
    if !prefix.is_empty() {
        options.pathspec(format!("{prefix}/"));
    }
    let statuses = repo.statuses(Some(&mut options)).ok()?;
    let changed: Vec<ChangedFile> = statuses
        .iter()
        .filter_map(|entry| {
            let path = entry.path()?;
            let path = match prefix.is_empty() {
                true => path,
                false => path.strip_prefix(&prefix)?.strip_prefix('/')?,
            };
            let change = change_of(entry.status())?;
            Some(ChangedFile {
                path: path.to_owned(),
                change,
            })
        })
        .collect();
    Some(listed(changed))
}

/// The report on `changed` (paths relative to the packed directory, each once): all counted,
/// the first [`MAX_LISTED`] in path order named.
pub(crate) fn listed(mut changed: Vec<ChangedFile>) -> WorkingTree {
    changed.sort_by(|a, b| a.path.cmp(&b.path));
    let count = changed.len() as u64;
    changed.truncate(MAX_LISTED);
    WorkingTree {
        dirty: count > 0,
        changed_count: count,
        changed,
    }
}

fn change_of(status: Status) -> Option<Change> {
    if status.intersects(Status::INDEX_DELETED | Status::WT_DELETED) {
        Some(Change::Deleted)
    } else if status.contains(Status::INDEX_NEW) {
        Some(Change::Added)
    } else if status.contains(Status::WT_NEW) {
        Some(Change::Untracked)
    } else if status.intersects(
        Status::CONFLICTED
            | Status::INDEX_MODIFIED
            | Status::INDEX_RENAMED
            | Status::INDEX_TYPECHANGE
            | Status::WT_MODIFIED
            | Status::WT_RENAMED
            | Status::WT_TYPECHANGE,
    ) {
        Some(Change::Modified)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_remote_url_is_stored_without_credentials() {
        assert_eq!(
            clean_remote("https://user:s3cret@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            clean_remote("git@github.com:o/r.git"),
            "ssh://git@github.com/o/r.git"
        );
    }
}
