//! `codifier pack` from the command line: a nasty local repository to an XML file, JSON on
//! stdout, a `file://` clone at a tag, the total-size limit, and a clone over smart HTTP with a
//! token that never reaches the output or the logs; the token-count cache file, and a dirty
//! working tree marked in the pack.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::git_server::{FAKE_AWS_KEY, GitServer, git, nasty_repo, versioned_repo};

fn pack(args: &[&str], env: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().unwrap();
    run_pack(env!("CARGO_BIN_EXE_codifier"), data.path(), args, env)
}

fn run_pack(
    codifier: impl AsRef<Path>,
    data: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut command = std::process::Command::new(codifier.as_ref());
    command
        .arg("pack")
        .args(args)
        .env("CODIFIER_DATA_DIR", data)
        .env_remove("DATABASE_URL")
        .env_remove("GITHUB_TOKEN")
        .env_remove("GITLAB_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run codifier pack")
}

fn succeeded(output: &Output) -> (String, String) {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "codifier pack failed: {stderr}");
    (String::from_utf8_lossy(&output.stdout).into_owned(), stderr)
}

#[test]
fn the_pack_command_writes_a_repomix_style_xml_file_without_secrets_or_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = nasty_repo(dir.path());
    let out = dir.path().join("pack.xml");
    let (_, stderr) = succeeded(&pack(
        &[repo.to_str().unwrap(), "-o", out.to_str().unwrap()],
        &[],
    ));
    assert!(stderr.contains("7 files"), "{stderr}");
    assert!(
        stderr.contains("config/aws.ini"),
        "the report names the file left out: {stderr}"
    );
    let xml = std::fs::read_to_string(&out).unwrap();
    for part in [
        "<file_summary>",
        "<directory_structure>",
        "<files>",
        "<file path=\"src/main.rs\">",
        "  c/\n      deep.txt\n",
    ] {
        assert!(xml.contains(part), "missing {part:?} in\n{xml}");
    }
    for leak in [
        FAKE_AWS_KEY,
        "OUTSIDE-THE-REPOSITORY",
        "root:x:",
        "0123456789abcdef\n0123",
    ] {
        assert!(!xml.contains(leak), "{leak:?} leaked into the pack");
    }
}

#[test]
fn the_pack_command_writes_json_to_stdout_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let repo = nasty_repo(dir.path());
    let (stdout, _) = succeeded(&pack(
        &[
            repo.to_str().unwrap(),
            "--style",
            "json",
            "--line-numbers",
            "--include",
            "src/**",
        ],
        &[],
    ));
    let pack: Value = serde_json::from_str(&stdout).expect("one JSON document on stdout");
    let files = pack["files"].as_array().unwrap();
    let paths: Vec<&str> = files
        .iter()
        .map(|file| file["path"].as_str().unwrap())
        .collect();
    assert_eq!(paths, ["src/lib.rs", "src/main.rs"]);
    assert!(
        files[1]["content"]
            .as_str()
            .unwrap()
            .starts_with("1: fn main() {\n")
    );
    assert_eq!(pack["summary"]["file_count"], 2);
}

#[test]
fn the_pack_command_clones_a_file_url_at_a_tag() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, first, _) = versioned_repo(dir.path());
    let url = format!("file://{}", repo.display());
    let (stdout, _) = succeeded(&pack(&[&url, "--ref", "v1", "--style", "plain"], &[]));
    assert!(stdout.contains("File: version.txt\n"), "{stdout}");
    assert!(stdout.contains("\none\n"), "{stdout}");
    assert!(stdout.contains(&first), "the commit is named in the notes");
}

#[test]
fn the_pack_command_stops_at_the_total_size_limit_with_a_hint() {
    let dir = tempfile::tempdir().unwrap();
    let repo = nasty_repo(dir.path());
    let output = pack(&[repo.to_str().unwrap(), "--max-total-bytes", "100"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("narrow the pack"), "{stderr}");
    assert!(
        output.stdout.is_empty(),
        "nothing is written when the pack is refused"
    );
}

#[tokio::test]
async fn the_pack_command_clones_over_http_with_a_token_that_never_reaches_output_or_logs() {
    const TOKEN: &str = "cli-secret-token-9876543210";
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, second) = versioned_repo(dir.path());
    let required = {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("x-access-token:{TOKEN}"));
        format!("Basic {encoded}")
    };
    let git = GitServer::start(&[("versioned.git", &repo)], Some(required.clone())).await;
    let url = git.url("versioned.git");
    let output = tokio::task::spawn_blocking(move || {
        pack(
            &[&url, "--json-summary"],
            &[
                ("GITHUB_TOKEN", TOKEN),
                ("CODIFIER_GITHUB_HOSTS", "127.0.0.1"),
                ("CODIFIER_LOG", "trace"),
            ],
        )
    })
    .await
    .unwrap();
    let (stdout, stderr) = succeeded(&output);
    assert!(
        stdout.contains("<file path=\"version.txt\">\ntwo\n</file>"),
        "{stdout}"
    );
    assert!(stdout.contains(&second));
    assert!(git.seen_authorization.lock().unwrap().contains(&required));
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "the token leaked"
    );
}

/// The summary `--json-summary` prints on stderr.
fn summary(output: &Output) -> Value {
    let (_, stderr) = succeeded(output);
    serde_json::from_str(stderr.trim()).unwrap_or_else(|_| panic!("a JSON summary: {stderr}"))
}

#[test]
fn packing_a_repository_again_takes_every_count_from_the_cache_file() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, head) = versioned_repo(dir.path());
    let data = tempfile::tempdir().unwrap();
    let codifier = env!("CARGO_BIN_EXE_codifier");
    let args = [repo.to_str().unwrap(), "-o", "/dev/null", "--json-summary"];
    let uncached = summary(&run_pack(
        codifier,
        data.path(),
        &[&args[..], &["--no-cache"]].concat(),
        &[],
    ));
    assert_eq!(uncached["cached_token_counts"], 0);
    assert!(
        !data.path().join("token-counts.v1").exists(),
        "--no-cache writes no cache"
    );
    let first = summary(&run_pack(codifier, data.path(), &args, &[]));
    assert_eq!(first["cached_token_counts"], 0);
    assert_eq!(first["commit_sha"], head.as_str(), "the commit HEAD names");
    let second = summary(&run_pack(codifier, data.path(), &args, &[]));
    assert_eq!(second["cached_token_counts"], second["file_count"]);
    assert_eq!(second["total_tokens"], uncached["total_tokens"]);
    assert_eq!(second["total_tokens"], first["total_tokens"]);
}

#[test]
fn a_pack_of_uncommitted_work_says_so_and_names_the_files_while_a_clean_one_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, head) = versioned_repo(dir.path());
    let clean = pack(&[repo.to_str().unwrap(), "--style", "plain"], &[]);
    let (text, stderr) = succeeded(&clean);
    assert!(text.contains(&format!("Commit: {head} (main)\n")), "{text}");
    assert!(!text.contains("uncommitted") && !stderr.contains("uncommitted"));

    std::fs::write(repo.join("version.txt"), "three\n").unwrap();
    std::fs::write(repo.join("draft.md"), "not yet\n").unwrap();
    std::fs::remove_file(repo.join("src/app.py")).unwrap();
    let dirty = pack(&[repo.to_str().unwrap(), "--style", "plain"], &[]);
    let (text, stderr) = succeeded(&dirty);
    assert!(
        text.contains("with uncommitted changes: this text is the working tree, not that commit"),
        "{text}"
    );
    assert!(
        text.contains(
            "3 files differ from that commit: draft.md (untracked), src/app.py (deleted), version.txt (modified)"
        ),
        "{text}"
    );
    assert!(
        stderr.contains("uncommitted changes: 3 files differ"),
        "{stderr}"
    );
    assert!(
        text.contains(&format!(
            "Source: {}",
            repo.canonicalize().unwrap().display()
        )),
        "no origin: the canonical path; {text}"
    );
}

#[test]
fn the_pack_command_names_every_kind_of_change_relative_to_the_packed_directory() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let write = |path: &str, text: &str| {
        let path = repo.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib/old name.py", "x = 1\n");
    write("lib/gone.py", "y = 2\n");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "three"]);
    git(
        &repo,
        &[
            "remote",
            "add",
            "origin",
            "https://ci:s3cret@example.com/team/app.git",
        ],
    );
    write("version.txt", "three\n"); // modified
    write("lib/staged é.py", "z = 3\n"); // added (staged)
    git(&repo, &["add", "lib/staged é.py"]);
    std::fs::remove_file(repo.join("src/app.py")).unwrap(); // deleted
    write("lib/new/draft.md", "not yet\n"); // untracked, in an untracked directory
    git(&repo, &["mv", "lib/old name.py", "lib/new name.py"]); // a rename: deleted and added
    git(&repo, &["rm", "-q", "--cached", "lib/gone.py"]); // out of the index only: deleted

    for packed in [repo.clone(), repo.join("lib")] {
        let args = [packed.to_str().unwrap(), "--style", "json", "--no-cache"];
        let (text, _) = succeeded(&pack(&args, &[]));
        let json: Value = serde_json::from_str(&text).unwrap();
        let tree = &json["summary"]["working_tree"];
        let changed: Vec<String> = tree["changed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|file| format!("{} {}", file["path"].as_str().unwrap(), file["change"]))
            .collect();
        if packed == repo {
            assert_eq!(
                json["summary"]["source"],
                "https://example.com/team/app.git"
            );
            assert_eq!(
                changed,
                [
                    "lib/gone.py \"deleted\"",
                    "lib/new name.py \"added\"",
                    "lib/new/draft.md \"untracked\"",
                    "lib/old name.py \"deleted\"",
                    "lib/staged é.py \"added\"",
                    "src/app.py \"deleted\"",
                    "version.txt \"modified\"",
                ]
            );
        } else {
            assert_eq!(
                changed,
                [
                    "gone.py \"deleted\"",
                    "new name.py \"added\"",
                    "new/draft.md \"untracked\"",
                    "old name.py \"deleted\"",
                    "staged é.py \"added\"",
                ]
            );
        }
    }
}
