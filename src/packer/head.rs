//! The commit and branch a local working tree has checked out, read from git's files: find the
//! `.git` directory (or the `gitdir:` file of a linked worktree or submodule) at or above the
//! root, read `HEAD`, and resolve its ref as a loose file or a line of `packed-refs` in the
//! common directory. Opening the repository with libgit2 instead costs more than a small pack
//! does (its global set-up loads the system's TLS certificates); libgit2 answers only what this
//! reader cannot (a reftable ref store, a HEAD it does not understand).

use std::path::{Path, PathBuf};

/// The commit and branch checked out at `root`, when it is in a git repository. An unborn
/// branch (no commit yet) has neither.
pub fn local_head(root: &Path) -> (Option<String>, Option<String>) {
    from_files(root).unwrap_or_else(|| super::clone::local_head_git2(root))
}

/// What [`local_head`] reads without libgit2; `None` when only libgit2 can tell.
pub(crate) fn from_files(root: &Path) -> Option<(Option<String>, Option<String>)> {
    match find_git_dir(root) {
        None => Some((None, None)),
        Some(git_dir) => read_head(&git_dir),
    }
}

/// The git directory of the repository containing `root`.
fn find_git_dir(root: &Path) -> Option<PathBuf> {
    for dir in root.ancestors() {
        let dot_git = dir.join(".git");
        let Ok(metadata) = std::fs::metadata(&dot_git) else {
            continue;
        };
        if metadata.is_dir() {
            return Some(dot_git);
        }
        // A linked worktree or a submodule: `gitdir: <path>`, relative to the file's directory.
        let text = std::fs::read_to_string(&dot_git).ok()?;
        let target = text.strip_prefix("gitdir:")?.trim();
        return Some(dir.join(target));
    }
    None
}

/// `Some((commit, branch))` when the files answer, `None` when libgit2 must.
fn read_head(git_dir: &Path) -> Option<(Option<String>, Option<String>)> {
    // A linked worktree keeps HEAD and its own refs; the rest is in the common directory.
    let common = match std::fs::read_to_string(git_dir.join("commondir")) {
        Ok(text) => git_dir.join(text.trim()),
        Err(_) => git_dir.to_path_buf(),
    };
    if common.join("reftable").exists() {
        return None;
    }
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(name) = head.strip_prefix("ref:") else {
        return is_object_id(head).then(|| (Some(head.to_owned()), None));
    };
    let name = name.trim();
    let Some(commit) = resolve(git_dir, &common, name, 0)? else {
        // An unborn branch: nothing to pack a commit of.
        return Some((None, None));
    };
    let branch = name.strip_prefix("refs/heads/").map(str::to_owned);
    Some((Some(commit), branch))
}

/// The object id `name` points to: `Some(None)` when the ref does not exist, `None` when the
/// files cannot tell.
fn resolve(git_dir: &Path, common: &Path, name: &str, depth: u32) -> Option<Option<String>> {
    if depth > 5 || name.split('/').any(|part| part.is_empty() || part == "..") {
        return None;
    }
    let per_worktree = name.starts_with("refs/worktree/") || name.starts_with("refs/bisect/");
    let base = if per_worktree { git_dir } else { common };
    if let Ok(text) = std::fs::read_to_string(base.join(name)) {
        let text = text.trim();
        return match text.strip_prefix("ref:") {
            Some(target) => resolve(git_dir, common, target.trim(), depth + 1),
            None => is_object_id(text).then(|| Some(text.to_owned())),
        };
    }
    let packed = match std::fs::read_to_string(common.join("packed-refs")) {
        Ok(packed) => packed,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Some(None),
        Err(_) => return None,
    };
    let found = packed
        .lines()
        .filter(|line| !line.starts_with('#') && !line.starts_with('^'))
        .filter_map(|line| line.split_once(' '))
        .find(|(_, ref_name)| ref_name.trim() == name)
        .map(|(id, _)| id.to_owned());
    match found {
        Some(id) if !is_object_id(&id) => None,
        found => Some(found),
    }
}

/// A full SHA-1 or SHA-256 object id in hex.
fn is_object_id(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && text.bytes().all(|byte| byte.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn git(dir: &Path, args: &[&str]) -> String {
        let output = Command::new("git")
            .args([
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .output()
            .expect("git runs");
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    /// What git itself says is checked out at `dir`.
    fn git_says(dir: &Path) -> (Option<String>, Option<String>) {
        let commit = git(dir, &["rev-parse", "HEAD"]);
        let branch = Command::new("git")
            .args(["symbolic-ref", "--short", "-q", "HEAD"])
            .current_dir(dir)
            .output()
            .unwrap();
        let branch = String::from_utf8(branch.stdout).unwrap().trim().to_owned();
        (Some(commit), (!branch.is_empty()).then_some(branch))
    }

    fn assert_agrees(dir: &Path) {
        let expected = git_says(dir);
        assert_eq!(local_head(dir), expected, "{}", dir.display());
        assert_eq!(from_files(dir), Some(expected.clone()));
        assert_eq!(super::super::clone::local_head_git2(dir), expected);
    }

    #[test]
    fn the_head_is_what_git_says_in_every_layout() {
        let temp = tempfile::tempdir().unwrap();
        let repo = temp.path().join("repo");
        std::fs::create_dir_all(repo.join("sub")).unwrap();
        git(&repo, &["init", "-q"]);
        assert_eq!(local_head(&repo), (None, None), "unborn");
        std::fs::write(repo.join("sub/a.txt"), "a\n").unwrap();
        git(&repo, &["add", "."]);
        git(&repo, &["commit", "-qm", "one"]);
        assert_agrees(&repo);
        assert_agrees(&repo.join("sub"));
        git(&repo, &["checkout", "-qb", "feature/x"]);
        git(&repo, &["commit", "-q", "--allow-empty", "-m", "two"]);
        assert_agrees(&repo);
        git(&repo, &["pack-refs", "--all"]);
        assert!(!repo.join(".git/refs/heads/feature/x").exists());
        assert_agrees(&repo);
        let linked = temp.path().join("linked");
        git(
            &repo,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "other",
                linked.to_str().unwrap(),
            ],
        );
        git(&linked, &["commit", "-q", "--allow-empty", "-m", "three"]);
        assert_agrees(&linked);
        git(&repo, &["checkout", "-q", "--detach", "main"]);
        assert_agrees(&repo);
        assert_eq!(local_head(&repo).1, None);
    }

    #[test]
    fn a_directory_outside_any_repository_has_no_head() {
        let temp = tempfile::tempdir().unwrap();
        assert_eq!(local_head(temp.path()), (None, None));
        assert_eq!(from_files(temp.path()), Some((None, None)));
    }

    #[test]
    fn a_reftable_repository_is_left_to_libgit2() {
        let temp = tempfile::tempdir().unwrap();
        git(temp.path(), &["init", "-q", "--ref-format=reftable"]);
        git(temp.path(), &["commit", "-q", "--allow-empty", "-m", "one"]);
        assert_eq!(from_files(temp.path()), None);
    }
}
