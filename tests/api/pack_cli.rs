//! `codifier pack` from the command line: a nasty local repository to an XML file, JSON on
//! stdout, a `file://` clone at a tag, the total-size limit, and a clone over smart HTTP with a
//! token that never reaches the output or the logs.

use std::process::Output;

use serde_json::Value;

use crate::git_server::{FAKE_AWS_KEY, GitServer, nasty_repo, versioned_repo};

fn pack(args: &[&str], env: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_codifier"));
    command
        .arg("pack")
        .args(args)
        .env("CODIFIER_DATA_DIR", data.path())
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
