//! `pack_repo`, `list_snapshots`, `read_snapshot` and the snapshot resources end to end: nasty
//! local repositories packed by the local operator over stdio, remote clones over a real
//! smart-HTTP git server with a token, the refusals a remote caller gets, snapshots versioned
//! per source, a dirty working tree marked as such, and the token-count cache.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::clients::{self, Client, call, ok, refused};
use crate::git_server::{FAKE_AWS_KEY, GitServer, nasty_repo, versioned_repo};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends, fresh_database};

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

/// A server that may clone from the test's git server on 127.0.0.1
/// (`CODIFIER_PACK_ALLOW_PRIVATE_NETWORK`).
async fn packing_server(backend: Backend) -> TestServer {
    TestServer::start_with(backend, |config| config.packer.allow_private_network = true).await
}

fn all_snapshots() -> codifier::store::SnapshotFilter {
    codifier::store::SnapshotFilter {
        limit: 10,
        ..Default::default()
    }
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
        let reader = server.key(project.id, codifier::domain::Role::Read).await;
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
                .list_snapshots(project.id, &all_snapshots())
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
        let anonymous = packing_server(backend).await;
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
            .list_snapshots(project.id, &all_snapshots())
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
        let server = packing_server(backend).await;
        let owner = server.project("owner").await;
        let other = server.project("other").await;
        let writer = server.key(owner.id, codifier::domain::Role::Write).await;
        let client = clients::streamable(&server.url("/mcp"), &writer).await;
        let packed = ok(&call(
            &client,
            "pack_repo",
            json!({"url": git.url("versioned.git")}),
        )
        .await);
        let snapshot = packed["snapshot_id"].as_str().unwrap();
        let stranger = server.key(other.id, codifier::domain::Role::Admin).await;
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
        let server = packing_server(backend).await;
        let project = server.project("legacy").await;
        let writer = server.key(project.id, codifier::domain::Role::Write).await;
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

/// The text of a snapshot resource, read through `resources/read`.
async fn read_resource(client: &Client, uri: &str) -> Result<String, rmcp::ServiceError> {
    let read = client
        .read_resource(rmcp::model::ReadResourceRequestParams::new(uri))
        .await?;
    match &read.contents[0] {
        rmcp::model::ResourceContents::TextResourceContents { text, .. } => Ok(text.clone()),
        other => panic!("a text resource, not {other:?}"),
    }
}

#[tokio::test]
async fn snapshots_are_listed_newest_first_and_read_as_resources_only_by_their_project() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, second) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    let url = git.url("versioned.git");
    for backend in backends() {
        let server = packing_server(backend).await;
        let owner = server.project("owner").await;
        let other = server.project("other").await;
        let writer = server.key(owner.id, codifier::domain::Role::Write).await;
        let client = clients::streamable(&server.url("/mcp"), &writer).await;
        let empty = ok(&call(&client, "list_snapshots", json!({})).await);
        assert_eq!(empty["count"], 0);
        let first = ok(&call(
            &client,
            "pack_repo",
            json!({"url": url, "version_label": "a"}),
        )
        .await);
        let latest = ok(&call(
            &client,
            "pack_repo",
            json!({"url": url, "style": "markdown"}),
        )
        .await);
        let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        ok(&call(
            &operator,
            "pack_repo",
            json!({"project_id": "other", "url": url}),
        )
        .await);

        let listed = ok(&call(&client, "list_snapshots", json!({})).await);
        assert_eq!(listed["count"], 2, "{backend:?}: {listed}");
        let newest = &listed["snapshots"][0];
        assert_eq!(newest["id"], latest["snapshot_id"], "newest first");
        assert_eq!(newest["url"], url.as_str());
        assert_eq!(newest["version"], 2);
        assert_eq!(newest["commit_sha"], second.as_str());
        assert_eq!(newest["file_count"], 2);
        assert_eq!(newest["token_count"], latest["summary"]["total_tokens"]);
        assert!(newest["created_at"].is_string());
        assert_eq!(listed["snapshots"][1]["id"], first["snapshot_id"]);
        assert_eq!(listed["snapshots"][1]["version_label"], "a");
        assert!(listed["next_cursor"].is_null());

        let page = ok(&call(&client, "list_snapshots", json!({"limit": 1})).await);
        assert_eq!(page["snapshots"][0]["version"], 2);
        let cursor = page["next_cursor"]
            .as_str()
            .expect("a next page")
            .to_owned();
        let page = ok(&call(
            &client,
            "list_snapshots",
            json!({"limit": 1, "cursor": cursor}),
        )
        .await);
        assert_eq!(page["snapshots"][0]["version"], 1);
        assert!(page["next_cursor"].is_null(), "{page}");
        let none = ok(&call(
            &client,
            "list_snapshots",
            json!({"source": "https://example.com/other.git"}),
        )
        .await);
        assert_eq!(none["count"], 0);
        for bad in [
            json!({"limit": 0}),
            json!({"limit": 101}),
            json!({"cursor": "nope"}),
        ] {
            let message = refused(&call(&client, "list_snapshots", bad.clone()).await);
            assert!(
                message.contains("limit") || message.contains("cursor"),
                "{bad}: {message}"
            );
        }

        // The same snapshots as resources; the text is the whole pack.
        let listed_resources = client.list_all_resources().await.expect("resources/list");
        // The project's event log is listed too, before its snapshots.
        assert_eq!(
            listed_resources[0].uri,
            codifier::mcp::event_resource::uri(owner.id)
        );
        let resources = snapshots_only(listed_resources);
        let uris: Vec<&str> = resources.iter().map(|r| r.uri.as_str()).collect();
        assert_eq!(
            uris,
            [
                newest["uri"].as_str().unwrap(),
                listed["snapshots"][1]["uri"].as_str().unwrap()
            ]
        );
        assert!(uris[0].starts_with(&format!("codifier://projects/{}/snapshots/", owner.id)));
        assert_eq!(resources[0].mime_type.as_deref(), Some("text/markdown"));
        let text = read_resource(&client, uris[0]).await.unwrap();
        assert!(text.starts_with(&format!("# Repository: {url}")), "{text}");
        assert!(
            text.contains("two\n") && text.contains("src/app.py"),
            "{text}"
        );
        let xml = read_resource(&client, uris[1]).await.unwrap();
        assert!(
            xml.contains("<file path=\"version.txt\">\ntwo\n</file>"),
            "{xml}"
        );

        // A key of another project sees only its own snapshot and reads nothing of ours.
        let stranger = server.key(other.id, codifier::domain::Role::Admin).await;
        let stranger = clients::streamable(&server.url("/mcp"), &stranger).await;
        let theirs = snapshots_only(stranger.list_all_resources().await.unwrap());
        assert_eq!(theirs.len(), 1);
        assert!(theirs[0].uri.contains(&other.id.to_string()));
        let error = read_resource(&stranger, uris[0])
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("no snapshot"), "{error}");
        let message =
            refused(&call(&stranger, "list_snapshots", json!({"project_id": "owner"})).await);
        assert!(!message.contains(&url), "{message}");
        let missing = format!(
            "codifier://projects/{}/snapshots/{}",
            owner.id,
            uuid::Uuid::new_v4()
        );
        let error = read_resource(&client, &missing)
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("no snapshot"), "{error}");
        let error = read_resource(&client, "codifier://elsewhere")
            .await
            .unwrap_err()
            .to_string();
        assert!(error.contains("resources/list"), "{error}");

        // The operator sees every project's snapshots, newest first.
        let all = snapshots_only(operator.list_all_resources().await.unwrap());
        assert_eq!(all.len(), 3);
        assert!(all[0].uri.contains(&other.id.to_string()));
        server.stop().await;
    }
}

/// The snapshots among listed resources (each project's event log is listed too).
fn snapshots_only(resources: Vec<rmcp::model::Resource>) -> Vec<rmcp::model::Resource> {
    resources
        .into_iter()
        .filter(|resource| resource.uri.contains("/snapshots/"))
        .collect()
}

/// A committed repository with an `origin` remote whose URL carries a token.
fn repository_with_origin(parent: &std::path::Path, name: &str) -> std::path::PathBuf {
    let root = parent.join(name);
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::write(root.join("README.md"), "# app\n").unwrap();
    std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
    crate::git_server::git(&root, &["init", "-q"]);
    crate::git_server::git(&root, &["add", "-A"]);
    crate::git_server::git(&root, &["commit", "-q", "-m", "one"]);
    crate::git_server::git(
        &root,
        &[
            "remote",
            "add",
            "origin",
            "https://bot:tok3n@git.example.com/team/app.git",
        ],
    );
    root
}

#[tokio::test]
async fn a_dirty_working_tree_is_marked_and_checkouts_of_one_origin_number_together() {
    let dir = tempfile::tempdir().unwrap();
    let dirty = repository_with_origin(dir.path(), "dirty");
    let clean = repository_with_origin(dir.path(), "clean");
    std::fs::write(dirty.join("README.md"), "# app, edited\n").unwrap();
    std::fs::write(dirty.join("notes.txt"), "not committed\n").unwrap();
    let no_origin = dir.path().join("plain");
    std::fs::create_dir_all(&no_origin).unwrap();
    std::fs::write(no_origin.join("a.txt"), "a\n").unwrap();
    for backend in backends() {
        let database = fresh_database(backend).await;
        let client = clients::stdio(&database.url).await;
        ok(&call(
            &client,
            "manage_projects",
            json!({"operation": "create", "name": "app"}),
        )
        .await);

        let packed = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "app", "url": dirty.to_str().unwrap()}),
        )
        .await);
        let summary = &packed["summary"];
        assert_eq!(
            summary["source"], "https://git.example.com/team/app.git",
            "the origin, without its credentials"
        );
        assert_eq!(summary["working_tree"]["dirty"], true, "{summary}");
        assert_eq!(summary["working_tree"]["changed_count"], 2);
        assert_eq!(
            summary["working_tree"]["changed"],
            json!([
                {"path": "README.md", "change": "modified"},
                {"path": "notes.txt", "change": "untracked"}
            ])
        );
        assert!(!summary.to_string().contains("tok3n"));
        let listed = ok(&call(&client, "list_snapshots", json!({"project_id": "app"})).await);
        assert_eq!(listed["snapshots"][0]["working_tree"]["dirty"], true);
        let uri = listed["snapshots"][0]["uri"].as_str().unwrap().to_owned();
        let text = read_resource(&client, &uri).await.unwrap();
        assert!(
            text.contains("with uncommitted changes")
                && text.contains("README.md (modified), notes.txt (untracked)"),
            "{text}"
        );

        // Another checkout of the same origin, clean: the next version, and no mark.
        let again = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "app", "url": clean.to_str().unwrap()}),
        )
        .await);
        assert_eq!(again["version"], 2, "one repository, one numbering");
        assert_eq!(again["summary"]["working_tree"]["dirty"], false);
        let listed = ok(&call(&client, "list_snapshots", json!({"project_id": "app"})).await);
        let uri = listed["snapshots"][0]["uri"].as_str().unwrap().to_owned();
        let text = read_resource(&client, &uri).await.unwrap();
        assert!(!text.contains("uncommitted"), "{text}");

        // A directory outside any repository is known by its canonical absolute path.
        let relative = format!("{}/../plain", dir.path().join("dirty").display());
        let plain = ok(&call(
            &client,
            "pack_repo",
            json!({"project_id": "app", "url": relative}),
        )
        .await);
        assert_eq!(
            plain["summary"]["source"],
            no_origin.canonicalize().unwrap().to_str().unwrap()
        );
        assert!(plain["summary"].get("working_tree").is_none());
        client.cancel().await.ok();
    }
}

#[tokio::test]
async fn read_snapshot_with_line_numbers_keeps_the_snapshots_style_and_shape() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    let server = packing_server(Backend::Sqlite).await;
    server.project("numbers").await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let packed = ok(&call(
        &client,
        "pack_repo",
        json!({"project_id": "numbers", "url": git.url("versioned.git")}),
    )
    .await);
    let read = |line_numbers: bool| {
        call(
            &client,
            "read_snapshot",
            json!({"project_id": "numbers", "snapshot_id": packed["snapshot_id"],
                   "files": ["version.txt"], "line_numbers": line_numbers}),
        )
    };
    let (plain, numbered) = (read(false).await, read(true).await);
    let (plain_text, numbered_text) = (clients::text(&plain), clients::text(&numbered));
    assert!(
        plain_text.contains("<file path=\"version.txt\">\ntwo\n</file>\n"),
        "{plain_text}"
    );
    assert!(
        numbered_text.contains("<file path=\"version.txt\">\n1: two\n</file>\n"),
        "the same XML shape, with numbered lines: {numbered_text}"
    );
    let (plain, numbered) = (ok(&plain), ok(&numbered));
    assert_eq!(numbered["files"][0]["path"], "version.txt");
    assert_eq!(numbered["files"][0]["content"], "1: two\n");
    let keys = |value: &Value| {
        value
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(keys(&plain), keys(&numbered));
}

/// A repository of `files` files of a few kilobytes each, so that storing a pack takes long
/// enough for packs started together to overlap in the database.
fn wide_repo(parent: &std::path::Path, files: usize) -> std::path::PathBuf {
    let root = parent.join("wide");
    for n in 0..files {
        let path = root.join(format!("src/module_{n:03}.rs"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let body = format!("pub fn f{n}() -> usize {{\n    {n}\n}}\n").repeat(60);
        std::fs::write(path, body).unwrap();
    }
    crate::git_server::git(&root, &["init", "-q"]);
    crate::git_server::git(&root, &["add", "-A"]);
    crate::git_server::git(&root, &["commit", "-q", "-m", "wide"]);
    root
}

#[tokio::test]
async fn packs_of_one_repository_started_at_once_from_several_sessions_all_succeed_with_consecutive_versions()
 {
    const SESSIONS: usize = 3;
    const ROUNDS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let repo = wide_repo(dir.path(), 300);
    let git = GitServer::start(&[("wide.git", &repo)], None).await;
    let url = git.url("wide.git");
    for backend in backends() {
        let server = packing_server(backend).await;
        let project = server.project("racing").await;
        let key = server.key(project.id, codifier::domain::Role::Write).await;
        let mut sessions = Vec::new();
        for _ in 0..SESSIONS {
            sessions.push(clients::streamable(&server.url("/mcp"), &key).await);
        }
        let mut versions = Vec::new();
        for round in 0..ROUNDS {
            let packs = sessions
                .iter()
                .map(|client| call(client, "pack_repo", json!({"url": url})));
            for result in futures::future::join_all(packs).await {
                assert_ne!(
                    result.is_error,
                    Some(true),
                    "{backend:?}, round {round}: a pack failed: {}",
                    clients::text(&result)
                );
                versions.push(ok(&result)["version"].as_i64().unwrap());
            }
        }
        versions.sort_unstable();
        let expected: Vec<i64> = (1..=(SESSIONS * ROUNDS) as i64).collect();
        assert_eq!(versions, expected, "{backend:?}: one version each, no gap");
        let stored = server
            .store
            .list_snapshots(project.id, &all_snapshots())
            .await
            .unwrap();
        assert_eq!(stored.len(), SESSIONS * ROUNDS, "{backend:?}");
        assert!(
            stored.iter().all(|snapshot| snapshot.file_count == 300),
            "{backend:?}: every snapshot whole"
        );
        server.stop().await;
    }
}
