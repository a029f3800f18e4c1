//! Steps that pack repositories: a URL the server cannot pack is refused when it is answered,
//! and a good and a bad repository are each packed or reported.

use super::*;

#[tokio::test]
async fn a_repository_url_the_server_cannot_pack_is_refused_when_answered_and_nothing_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let (server, client) = packing_server(backend).await;
        let started = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "legacy",
                   "input": {"project_name": "Legacy"}}),
        )
        .await);
        let id = started["session_id"].clone();
        for (step, value) in [
            ("description", json!("A tracker.")),
            ("statement-of-work", json!("")),
        ] {
            let key = if step == "description" {
                "description"
            } else {
                "statement_of_work"
            };
            ok(&call(
                &client,
                "advance_step",
                json!({"session_id": id, "step_id": step, "input": {key: value}}),
            )
            .await);
        }
        let before = ok(&call(
            &client,
            "playbook_sessions",
            json!({"project_id": "legacy"}),
        )
        .await);
        let good = git.url("versioned.git");
        let message = refused(
            &call(
                &client,
                "advance_step",
                json!({"session_id": id, "step_id": "repositories",
                       "input": {"repository_urls": ["/home/me/code/app", good, "ftp://example.com/x.git"]}}),
            )
            .await,
        );
        assert!(
            message.contains("2 of the 3 repository URLs")
                && message.contains("`/home/me/code/app`: local paths")
                && message.contains("`ftp://example.com/x.git`: `url` uses the scheme `ftp`")
                && message.contains("Send `input.repository_urls` again"),
            "{backend:?}: {message}"
        );
        assert!(
            !message.contains("versioned.git"),
            "the good URL is not blamed: {message}"
        );
        let after = ok(&call(
            &client,
            "playbook_sessions",
            json!({"project_id": "legacy"}),
        )
        .await);
        assert_eq!(before, after, "nothing changed");
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "initialize-project", "project_id": "legacy", "session_id": id}),
        )
        .await);
        assert_eq!(current(&view), "repositories");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_good_and_a_bad_repository_are_each_packed_or_reported_without_sinking_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let (server, client) = packing_server(backend).await;
        // `missing.git` passes every check and fails at clone time: the git server has no such
        // repository.
        let (good, bad) = (git.url("versioned.git"), git.url("missing.git"));
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "brownfield-onboard", "project_id": "legacy",
                   "input": {"repository_urls": [good, bad]}}),
        )
        .await);
        assert_eq!(current(&view), "extra-context", "{backend:?}: {view}");
        let pack = &view["outline"][1];
        assert_eq!(pack["state"], "done");
        let outcomes = pack["outcomes"].as_array().unwrap();
        assert_eq!(outcomes[0]["url"], good);
        assert_eq!(outcomes[0]["status"], "packed");
        assert!(outcomes[0]["snapshot_id"].is_string());
        assert_eq!(outcomes[1]["url"], bad);
        assert_eq!(outcomes[1]["status"], "failed");
        assert!(outcomes[1]["error"].as_str().is_some_and(|e| !e.is_empty()));
        let note = pack["note"].as_str().unwrap();
        assert!(
            note.contains("packed 1 of 2") && note.contains(&bad),
            "{note}"
        );
        let view = ok(&call(&client, "advance_step", json!({"session_id": view["session_id"], "step_id": "extra-context", "input": {"extra_context": ""}})).await);
        let prompt = generate_prompt(&view);
        assert!(
            prompt.contains("app.py") && !prompt.contains("missing.git"),
            "{prompt}"
        );
        server.stop().await;
    }
}
