//! `pack_repo` and `read_snapshot` end to end: nasty local repositories packed by the local
//! operator over stdio, remote clones over a real smart-HTTP git server with a token, the
//! refusals a remote caller gets, snapshots versioned per URL, and the token-count cache.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::git_server::{FAKE_AWS_KEY, GitServer, nasty_repo, versioned_repo};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends, fresh_database};

/// Every file of a snapshot (path → content), read page by page through `read_snapshot`.
pub async fn read_all(
    client: &Client,
    project: &str,
    snapshot: &str,
    files: Value,
) -> BTreeMap<String, String> {
    let mut contents = BTreeMap::new();
    let mut page = 1;
    loop {
        let result = ok(&call(
            client,
            "read_snapshot",
            json!({"project_id": project, "snapshot_id": snapshot, "files": files, "page": page, "page_bytes": 2000}),
        )
        .await);
        for file in result["files"].as_array().unwrap() {
            let path = file["path"].as_str().unwrap().to_owned();
            contents
                .entry(path)
                .or_insert_with(String::new)
                .push_str(file["content"].as_str().unwrap());
        }
        match result["next_page"].as_u64() {
            Some(next) => page = next,
            None => break,
        }
    }
    contents
}

fn skipped(summary: &Value) -> BTreeMap<String, String> {
    summary["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|file| {
            (
                file["path"].as_str().unwrap().to_owned(),
                file["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_local_operator_packs_a_nasty_repository_over_stdio_and_nothing_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = nasty_repo(dir.path());
    let repo = repo.to_str().unwrap();
    for backend in backends() {
        let database = fresh_database(backend).await;
        let client = clients::stdio(&database.url).await;
        ok(&call(
            &client,
            "manage_projects",
            json!({"operation": "create", "name": "nasty"}),
        )
        .await);
        let packed = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "nasty", "url": repo, "version_label": "first"}),
        )
        .await);
        let summary = &packed["summary"];
        assert_eq!(packed["version"], 1, "{backend:?}");
        let left_out = skipped(summary);
        for (path, reason) in [
            ("big.txt", "too_large"),
            ("data/blob.dat", "binary"),
            ("latin1.txt", "not_utf8"),
            ("config/aws.ini", "secret"),
            ("passwd-link", "symlink"),
            ("escape-link", "symlink"),
            ("parent-dir-link", "symlink"),
        ] {
            assert_eq!(
                left_out.get(path).map(String::as_str),
                Some(reason),
                "{path}: {left_out:?}"
            );
        }
        assert!(
            left_out
                .iter()
                .any(|(path, reason)| path.starts_with("caf") && reason == "not_utf8"),
            "the non-UTF-8 file name is listed: {left_out:?}"
        );
        let snapshot = packed["snapshot_id"].as_str().unwrap();
        let files = read_all(&client, "nasty", snapshot, json!([])).await;
        let paths: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(
            paths,
            [
                ".codifierignore",
                ".gitignore",
                ".repomixignore",
                "README.md",
                "a/b/c/deep.txt",
                "src/lib.rs",
                "src/main.rs"
            ],
            "ignore files, default ignores and filters apply"
        );
        assert_eq!(summary["file_count"], 7);
        let everything: String = files.values().cloned().collect();
        assert!(!everything.contains(FAKE_AWS_KEY));
        assert!(!everything.contains("OUTSIDE-THE-REPOSITORY"));
        assert!(
            !everything.contains("root:"),
            "nothing read through a symlink"
        );
        assert!(files["src/main.rs"].contains("hello from main"));
        let tops = summary["top_files"].as_array().unwrap();
        assert!(
            tops.windows(2)
                .all(|pair| pair[0]["tokens"].as_u64() >= pair[1]["tokens"].as_u64())
        );
        let total: u64 = tops
            .iter()
            .map(|file| file["tokens"].as_u64().unwrap())
            .sum();
        assert_eq!(
            summary["total_tokens"].as_u64().unwrap(),
            total,
            "7 files fit in the top 10"
        );
        assert!(total > 20);

        let only_src = read_all(&client, "nasty", snapshot, json!(["src/**"])).await;
        assert_eq!(
            only_src.keys().collect::<Vec<_>>(),
            ["src/lib.rs", "src/main.rs"]
        );

        let again = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "nasty", "url": repo}),
        )
        .await);
        assert_eq!(again["version"], 2, "versions count up per repository");
        assert_eq!(
            again["summary"]["cached_token_counts"], 7,
            "an unchanged repository is counted from the cache"
        );

        let redacted = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "nasty", "url": repo, "secrets": "redact", "style": "markdown"}),
        )
        .await);
        assert_eq!(redacted["summary"]["redacted"][0]["path"], "config/aws.ini");
        let id = redacted["snapshot_id"].as_str().unwrap();
        let aws = read_all(&client, "nasty", id, json!(["config/*"])).await;
        assert!(aws["config/aws.ini"].contains("[REDACTED aws_access_key_id]"));
        assert!(!aws["config/aws.ini"].contains(FAKE_AWS_KEY));
        client.cancel().await.ok();
    }
}

#[tokio::test]
async fn a_remote_caller_can_pack_neither_local_paths_nor_internal_addresses() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let path = repo.to_str().unwrap().to_owned();
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("remote").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        for url in [path.clone(), format!("file://{path}")] {
            let message = refused(
                &call(
                    &client,
                    "pack_repo",
                    json!({"project_id": "remote", "url": url}),
                )
                .await,
            );
            assert!(message.contains("local operator"), "{message}");
        }
        for url in [
            "http://127.0.0.1:9/r.git",
            "http://localhost:9/r.git",
            "https://[::1]/r.git",
            "https://169.254.169.254/latest/meta-data",
            "https://10.0.0.8/r.git",
            "git@127.0.0.1:owner/r.git",
        ] {
            let message = refused(
                &call(
                    &client,
                    "pack_repo",
                    json!({"project_id": "remote", "url": url}),
                )
                .await,
            );
            assert!(message.contains("own network"), "{url}: {message}");
        }
        let message = refused(&call(
            &client,
            "pack_repo",
            json!({"project_id": "remote", "url": "https://example.com/r.git", "secrets": "off"}),
        )
        .await);
        assert!(message.contains("local operator"), "{message}");
        let reader = server.key(project.id, codifier::auth::Role::Read).await;
        let read_only = clients::streamable(&server.url("/mcp"), &reader).await;
        let message = refused(
            &call(
                &read_only,
                "pack_repo",
                json!({"url": "https://example.com/r.git"}),
            )
            .await,
        );
        assert!(message.contains("`read` role"), "{message}");
        assert!(
            server
                .store
                .list_snapshots(project.id, None, 10)
                .await
                .unwrap()
                .is_empty()
        );
        server.stop().await;
    }
}

const TOKEN: &str = "s3cr3t-forge-token-0123456789";

fn gitlab_credentials() -> codifier::packer::clone::Credentials {
    codifier::packer::clone::Credentials {
        hosts: vec![codifier::packer::clone::HostToken {
            variable: "GITLAB_TOKEN",
            username: "oauth2",
            hosts: vec!["127.0.0.1".into()],
            hosts_configured: true,
            token: Some(TOKEN.into()),
        }],
    }
}

fn basic(user: &str, secret: &str) -> String {
    use base64::Engine;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}"))
    )
}

#[tokio::test]
async fn a_private_repository_is_cloned_over_http_with_its_token_which_is_never_stored() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, first, second) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], Some(basic("oauth2", TOKEN))).await;
    let url = git.url("versioned.git");
    for backend in backends() {
        let anonymous = TestServer::start_with(backend, |config| {
            config.packer.allow_private_network = true;
        })
        .await;
        anonymous.project("p").await;
        let client = clients::streamable(&anonymous.url("/mcp"), OPERATOR_TOKEN).await;
        let message =
            refused(&call(&client, "pack_repo", json!({"project_id": "p", "url": url})).await);
        assert!(message.contains("asks for credentials"), "{message}");
        anonymous.stop().await;

        let server = TestServer::start_with(backend, |config| {
            config.packer.allow_private_network = true;
            config.packer.credentials = gitlab_credentials();
        })
        .await;
        let project = server.project("private").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        let head = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "private", "url": url}),
        )
        .await);
        assert_eq!(head["summary"]["commit_sha"], second.as_str());
        assert_eq!(head["summary"]["branch"], "main");
        assert_eq!(head["summary"]["file_count"], 2);
        assert!(
            git.seen_authorization
                .lock()
                .unwrap()
                .contains(&basic("oauth2", TOKEN)),
            "the token was sent to its host"
        );
        let snapshot = head["snapshot_id"].as_str().unwrap();
        let files = read_all(&client, "private", snapshot, json!(["version.txt"])).await;
        assert_eq!(files["version.txt"], "two\n");

        let tagged = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "private", "url": url, "ref": "v1"}),
        )
        .await);
        assert_eq!(tagged["summary"]["commit_sha"], first.as_str());
        let files = read_all(
            &client,
            "private",
            tagged["snapshot_id"].as_str().unwrap(),
            json!(["version.txt"]),
        )
        .await;
        assert_eq!(files["version.txt"], "one\n");
        let pinned = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "private", "url": url, "ref": first}),
        )
        .await);
        assert_eq!(pinned["summary"]["commit_sha"], first.as_str());
        assert_eq!(pinned["version"], 3);
        assert!(pinned["summary"]["cached_token_counts"].as_u64().unwrap() >= 1);
        let message = refused(
            &call(
                &client,
                "pack_repo",
                json!({"project_id": "private", "url": url, "ref": "no-such-branch"}),
            )
            .await,
        );
        assert!(message.contains("no branch, tag or commit"), "{message}");
        let message = refused(
            &call(
                &client,
                "pack_repo",
                json!({"project_id": "private", "url": git.url("missing.git")}),
            )
            .await,
        );
        assert!(message.contains("no repository"), "{message}");

        let snapshots = server
            .store
            .list_snapshots(project.id, None, 10)
            .await
            .unwrap();
        assert_eq!(snapshots.len(), 3);
        assert!(snapshots.iter().all(|snapshot| snapshot.url == url));
        let stored = serde_json::to_string(&snapshots).unwrap()
            + &serde_json::to_string(&server.store.list_audit(project.id, 100).await.unwrap())
                .unwrap();
        assert!(!stored.contains(TOKEN), "the token is stored nowhere");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_key_of_another_project_cannot_read_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let server =
            TestServer::start_with(backend, |config| config.packer.allow_private_network = true)
                .await;
        let owner = server.project("owner").await;
        let other = server.project("other").await;
        let writer = server.key(owner.id, codifier::auth::Role::Write).await;
        let client = clients::streamable(&server.url("/mcp"), &writer).await;
        let packed = ok(&call(
            &client,
            "pack_repo",
            json!({"url": git.url("versioned.git")}),
        )
        .await);
        let snapshot = packed["snapshot_id"].as_str().unwrap();
        let stranger = server.key(other.id, codifier::auth::Role::Admin).await;
        let stranger = clients::streamable(&server.url("/mcp"), &stranger).await;
        let message = refused(
            &call(
                &stranger,
                "read_snapshot",
                json!({"project_id": "owner", "snapshot_id": snapshot}),
            )
            .await,
        );
        assert!(message.contains("another project"), "{message}");
        let message =
            refused(&call(&stranger, "read_snapshot", json!({"snapshot_id": snapshot})).await);
        assert!(message.contains("no snapshot"), "{message}");
        server.stop().await;
    }
}

#[tokio::test]
async fn brownfield_onboard_packs_the_repositories_itself_and_the_tree_reaches_the_rules_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let server =
            TestServer::start_with(backend, |config| config.packer.allow_private_network = true)
                .await;
        let project = server.project("legacy").await;
        let writer = server.key(project.id, codifier::auth::Role::Write).await;
        let client = clients::streamable(&server.url("/mcp"), &writer).await;
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "brownfield-onboard", "project_id": "legacy",
                   "input": {"repository_urls": [git.url("versioned.git")]}}),
        )
        .await);
        // The pack ran on the server within the same call: the session waits for the user.
        assert_eq!(
            view["current"]["id"], "extra-context",
            "{backend:?}: {view}"
        );
        assert_eq!(view["outline"][1]["state"], "done", "{view}");
        assert!(
            view["collected_keys"]
                .as_array()
                .unwrap()
                .contains(&json!("repository_snapshots"))
        );

        let view = ok(&call(
            &client,
            "advance_step",
            json!({"session_id": view["session_id"], "step_id": "extra-context",
                   "input": {"extra_context": "Deployed by hand."}}),
        )
        .await);
        assert_eq!(view["current"]["id"], "generate-rules");
        let prompt = view["current"]["generate"]["prompt"].as_str().unwrap();
        assert!(
            prompt.contains("app.py"),
            "the packed tree reaches the rules generator: {prompt}"
        );
        server.stop().await;
    }
}
