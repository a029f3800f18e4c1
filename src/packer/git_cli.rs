//! What [`super::worktree`] reads with libgit2, read by running the `git` command line instead,
//! for `codifier-pack` (which links no libgit2): the `origin` remote, and how the working tree
//! under the packed directory differs from its commit. The answers are the libgit2 path's: the
//! same change kinds, paths relative to the packed directory, and the same list
//! ([`worktree::listed`]) and credential-free URL ([`worktree::clean_remote`]).
//!
//! `git` runs without the caller's `GIT_*` variables (they could point it at another
//! repository), without a pager, optional locks or a file-system monitor (a repository's
//! `core.fsmonitor` names a program to run).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use super::worktree::{self, Change, ChangedFile, WorkingTree};

/// Whether a program named `git` is in a directory on `PATH` (without running it).
pub fn on_path() -> bool {
    let Some(path) = std::env::var_os("PATH") else {
        return false;
    };
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join("git")))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.with_extension("exe").is_file()
}

/// [`worktree::inspect`] through `git`, for a directory (canonical): the `origin` remote when
/// `root` is the repository's top, and how the files under it differ from the commit when HEAD
/// has one. `(None, None)` outside a repository. An error when `git` failed or said what this
/// does not understand: then only libgit2 can tell.
pub fn inspect(root: &Path) -> Result<(Option<String>, Option<WorkingTree>), String> {
    let Some(head) = super::head::from_files(root) else {
        return Err("HEAD is not readable from git's files".into());
    };
    if !super::head::in_repository(root) {
        return Ok((None, None));
    }
    let prefix = run(root, &["rev-parse", "--show-prefix"])?;
    let prefix = String::from_utf8(prefix).map_err(|_| "a directory name that is not UTF-8")?;
    let prefix = prefix.trim_end_matches(['\n', '\r']);
    let origin = match prefix.is_empty() {
        // `get-url` applies `url.<base>.insteadOf`, as libgit2 does; it fails when there is no
        // `origin`.
        true => run(root, &["remote", "get-url", "origin"])
            .ok()
            .and_then(|url| String::from_utf8(url).ok())
            .map(|url| worktree::clean_remote(url.trim_end_matches(['\n', '\r']))),
        false => None,
    };
    let tree = match head {
        (Some(_), _) => {
            let status = run(
                root,
                &[
                    "status",
                    "--porcelain=v2",
                    "-z",
                    "--untracked-files=all",
                    "--ignore-submodules=all",
                    "--no-renames",
                    "--",
                    ".",
                ],
            )?;
            Some(worktree::listed(changes(&status, prefix)?))
        }
        (None, _) => None,
    };
    Ok((origin, tree))
}

/// Runs `git -C root args…`; its standard output, or what went wrong.
fn run(root: &Path, args: &[&str]) -> Result<Vec<u8>, String> {
    let mut command = Command::new("git");
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|name| name.starts_with("GIT_")) {
            command.env_remove(&name);
        }
    }
    command
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args([
            "--no-pager",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.quotepath=off",
        ])
        .arg("-C")
        .arg(root)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .stdout(Stdio::piped());
    let output = command
        .output()
        .map_err(|error| format!("cannot run git: {error}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(format!("git {} failed: {}", args.join(" "), stderr.trim()));
    }
    Ok(output.stdout)
}

/// The changed files in `git status --porcelain=v2 -z` output, whose paths are relative to the
/// repository's top: those under `prefix` (the packed directory, `dir/` or empty), relative to
/// it. A path that is not UTF-8 is left out, as libgit2's path leaves it out.
fn changes(status: &[u8], prefix: &str) -> Result<Vec<ChangedFile>, String> {
    // A path can come twice (`1 D.` and `?` for a file taken out of the index only); libgit2
    // has one entry with both flags, weighed in the order of [`change_of`].
    let mut changed: BTreeMap<String, Change> = BTreeMap::new();
    let mut push = |path: &[u8], change: Change| {
        let Ok(path) = std::str::from_utf8(path) else {
            return;
        };
        if let Some(path) = path.strip_prefix(prefix).filter(|path| !path.is_empty()) {
            let entry = changed.entry(path.to_owned()).or_insert(change);
            if weight(change) < weight(*entry) {
                *entry = change;
            }
        }
    };
    let mut records = status
        .split(|byte| *byte == 0)
        .filter(|record| !record.is_empty());
    while let Some(record) = records.next() {
        let unexpected = || {
            format!(
                "git status printed what this does not read: {}",
                String::from_utf8_lossy(record)
            )
        };
        // Fields before the path: `1 XY sub mH mI mW hH hI path`, `2 … Xscore path\0orig`,
        // `u XY sub m1 m2 m3 mW h1 h2 h3 path`, `? path`, `! path`.
        let (fields, kind) = match record.first() {
            Some(b'1') => (8, record[0]),
            Some(b'2') => (9, record[0]),
            Some(b'u') => (10, record[0]),
            Some(b'?') => (1, record[0]),
            Some(b'!') => continue,
            _ => return Err(unexpected()),
        };
        let mut parts = record.splitn(fields + 1, |byte| *byte == b' ');
        let head: Vec<&[u8]> = parts.by_ref().take(fields).collect();
        let path = parts.next().ok_or_else(unexpected)?;
        let xy = head.get(1).copied().unwrap_or_default();
        match kind {
            b'?' => push(path, Change::Untracked),
            b'u' => push(path, Change::Modified),
            b'2' => {
                // Only when renames are detected after all: libgit2 (without rename
                // detection) sees the new path added and, unless copied, the old one deleted.
                let original = records.next().ok_or_else(unexpected)?;
                push(path, Change::Added);
                if xy.first() == Some(&b'R') {
                    push(original, Change::Deleted);
                }
            }
            _ => {
                let &[x, y] = xy else {
                    return Err(unexpected());
                };
                if let Some(change) = change_of(x, y) {
                    push(path, change);
                }
            }
        }
    }
    Ok(changed
        .into_iter()
        .map(|(path, change)| ChangedFile { path, change })
        .collect())
}

/// Which change wins when a path has two: the first that [`change_of`] (and libgit2's) tests.
fn weight(change: Change) -> u8 {
    match change {
        Change::Deleted => 0,
        Change::Added => 1,
        Change::Untracked => 2,
        Change::Modified => 3,
    }
}

/// The change of an ordinary entry from its index (`x`) and working-tree (`y`) letters, in the
/// order [`worktree`]'s `change_of` weighs libgit2's flags.
fn change_of(x: u8, y: u8) -> Option<Change> {
    let either = |letters: &[u8]| letters.contains(&x) || letters.contains(&y);
    if either(b"D") {
        Some(Change::Deleted)
    } else if x == b'A' || y == b'A' {
        Some(Change::Added)
    } else if either(b"MTRC") {
        Some(Change::Modified)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(status: &str, prefix: &str) -> Vec<(String, Change)> {
        changes(status.as_bytes(), prefix)
            .unwrap()
            .into_iter()
            .map(|file| (file.path, file.change))
            .collect()
    }

    const OID: &str = "0123456789012345678901234567890123456789";

    #[test]
    fn every_kind_of_status_record_becomes_the_change_libgit2_reports() {
        let status = format!(
            "1 .M N... 100644 100644 100644 {OID} {OID} a b.txt\0\
             1 AM N... 000000 100644 100644 {OID} {OID} added\0\
             1 D. N... 100644 000000 000000 {OID} {OID} out\0\
             ? out\0\
             1 .T N... 100644 100644 120000 {OID} {OID} link\0\
             2 R. N... 100644 100644 100644 {OID} {OID} R100 new\0old\0\
             u UU N... 100644 100644 100644 100644 {OID} {OID} {OID} conflict\0\
             ? dir/untracked\0\
             ! ignored\0"
        );
        assert_eq!(
            read(&status, ""),
            [
                ("a b.txt".to_owned(), Change::Modified),
                ("added".to_owned(), Change::Added),
                ("conflict".to_owned(), Change::Modified),
                ("dir/untracked".to_owned(), Change::Untracked),
                ("link".to_owned(), Change::Modified),
                ("new".to_owned(), Change::Added),
                ("old".to_owned(), Change::Deleted),
                ("out".to_owned(), Change::Deleted),
            ]
        );
        assert_eq!(
            read(&status, "dir/"),
            [("untracked".to_owned(), Change::Untracked)]
        );
    }

    #[test]
    fn a_status_record_this_does_not_read_is_an_error_not_a_clean_tree() {
        assert!(changes(b"1 .M N... 100644\0", "").is_err());
        assert!(changes(b"# branch.oid abc\0", "").is_err());
    }
}
