//! Pages that only read: playbook sessions, and snapshots listed and read a page of files at a
//! time.

use codifier::domain::{NewSnapshotFile, Role, SnapshotChunk, SnapshotDraft};

use super::{actor, sign_in};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer};

#[tokio::test]
async fn a_snapshot_is_listed_and_read_with_its_files_filtered_by_a_glob() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("packed").await;
    let other = server.project("other").await;
    let file = |path: &str, content: &str| NewSnapshotFile {
        path: path.into(),
        blob_id: format!("blob-{path}"),
        tokens: 3,
        content: content.into(),
    };
    let draft = SnapshotDraft {
        url: "https://git.example/team/app".into(),
        commit_sha: Some("0123456789abcdef".into()),
        branch: Some("main".into()),
        version_label: None,
        file_count: 2,
        token_count: 6,
        total_bytes: 40,
        file_tree: "src/main.rs\nREADME.md".into(),
        encoding: "o200k_base".into(),
        style: "markdown".into(),
        report: serde_json::json!({}),
    };
    let (sender, mut receiver) = tokio::sync::mpsc::channel(2);
    sender
        .send(SnapshotChunk::Files(vec![
            file("src/main.rs", "fn main() { launch(); }"),
            file("README.md", "The app, in words."),
        ]))
        .await
        .unwrap();
    sender.send(SnapshotChunk::Done).await.unwrap();
    let snapshot = server
        .store
        .save_snapshot(project.id, &actor(), &draft, &mut receiver)
        .await
        .unwrap();
    let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
    let list = format!("/console/projects/{}/snapshots", project.id);
    let (status, html) = reader.get(&list).await;
    assert_eq!(status, 200);
    assert!(html.contains(&snapshot.id.to_string()), "{html}");
    let page = format!("{list}/{}", snapshot.id);
    let (status, html) = reader.get(&page).await;
    assert_eq!(status, 200);
    assert!(html.contains("launch()") && html.contains("The app, in words."));
    let (_, only_rust) = reader.get(&format!("{page}?files=src%2F**")).await;
    assert!(only_rust.contains("launch()") && !only_rust.contains("The app, in words."));
    let outsider = sign_in(&server, &server.key(other.id, Role::Admin).await).await;
    assert_eq!(outsider.get(&page).await.0, 403);
    let guessed = format!("/console/projects/{}/snapshots/{}", other.id, snapshot.id);
    assert_eq!(outsider.get(&guessed).await.0, 404);
}

#[tokio::test]
async fn a_playbook_session_started_over_mcp_shows_on_the_console_with_its_step() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("atlas").await;
    let client = crate::clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let started = crate::clients::ok(
        &crate::clients::call(
            &client,
            "run_playbook",
            serde_json::json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}}),
        )
        .await,
    );
    client.cancel().await.unwrap();
    let reader = sign_in(&server, &server.key(project.id, Role::Read).await).await;
    let (status, html) = reader
        .get(&format!("/console/projects/{}/playbooks", project.id))
        .await;
    assert_eq!(status, 200);
    let session = started["session_id"].as_str().unwrap();
    assert!(html.contains(session), "{html}");
    assert!(html.contains(">active<"), "{html}");
    let step = started["current"]["id"].as_str().unwrap();
    assert!(
        html.contains(&format!(">{step}<")),
        "waits at {step}: {html}"
    );
}
