//! Answering an earlier step again: what depends on it runs again, and the outline shows it.

use super::*;

#[tokio::test]
async fn answering_an_earlier_step_again_reruns_what_depends_on_it_and_the_outline_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, _, _) = versioned_repo(dir.path());
    let git = GitServer::start(&[("versioned.git", &repo)], None).await;
    for backend in backends() {
        let (server, client) = packing_server(backend).await;
        let (good, bad) = (git.url("versioned.git"), git.url("missing.git"));
        let view = ok(&call(
            &client,
            "run_playbook",
            json!({"playbook_id": "brownfield-onboard", "project_id": "legacy",
                   "input": {"repository_urls": [bad]}}),
        )
        .await);
        let id = view["session_id"].clone();
        assert_eq!(current(&view), "pack-repositories", "{backend:?}");
        assert_eq!(view["outline"][1]["state"], "failed");
        assert!(
            view["current"]["error"]
                .as_str()
                .unwrap()
                .contains("`step_id` `repositories`")
        );

        // Go back to the repositories: the pack runs again by itself, with the new list.
        let revise = json!({"session_id": id, "step_id": "repositories", "revise": true,
                            "input": {"repository_urls": [good]}});
        let view = ok(&call(&client, "advance_step", revise.clone()).await);
        assert_eq!(current(&view), "extra-context", "{view}");
        assert_eq!(view["outline"][0]["revisions"], 1);
        assert_eq!(view["outline"][1]["state"], "done");
        assert_eq!(view["outline"][1]["outcomes"][0]["status"], "packed");
        let again = ok(&call(&client, "advance_step", revise).await);
        assert_eq!(
            again["replayed"], true,
            "the same revision sent twice is one revision"
        );
        assert_eq!(again["outline"], view["outline"]);

        let mut view = view;
        for (key, value) in [
            ("extra_context", "Deployed by hand."),
            ("rules", "RULES-ONE"),
            ("architecture", "# Architecture"),
        ] {
            let step = view["current"]["id"].clone();
            view = ok(&call(
                &client,
                "advance_step",
                json!({"session_id": id, "step_id": step, "input": {key: value}}),
            )
            .await);
        }
        assert_eq!(view["status"], "completed");

        // Answering it again after the end reopens the session at the first step that reads
        // it; the user's own answer in between is kept, and packing ran again by itself.
        let view = ok(&call(&client, "advance_step", json!({"session_id": id, "step_id": "repositories", "revise": true, "input": {"repository_urls": [good.clone(), good]}})).await);
        assert_eq!(view["status"], "active");
        assert_eq!(current(&view), "generate-rules");
        let states: Vec<(&str, &str, bool)> = view["outline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap(),
                    s["state"].as_str().unwrap(),
                    s["runs_again"] == true,
                )
            })
            .collect();
        assert_eq!(
            states,
            [
                ("repositories", "done", false),
                ("pack-repositories", "done", false),
                ("extra-context", "done", false),
                ("generate-rules", "current", true),
                ("generate-architecture", "pending", true),
            ]
        );
        assert_eq!(view["outline"][0]["revisions"], 2);
        assert_eq!(view["outline"][1]["outcomes"].as_array().unwrap().len(), 2);
        let markdown = clients::text(&call(&client, "run_playbook", json!({"playbook_id": "brownfield-onboard", "project_id": "legacy", "session_id": id})).await);
        assert!(
            markdown.contains("Repositories (revised 2 times)") && markdown.contains("runs again"),
            "{markdown}"
        );

        let view = ok(&call(
            &client,
            "advance_step",
            json!({"session_id": id, "step_id": "generate-rules", "input": {"rules": "RULES-TWO"}}),
        )
        .await);
        assert!(generate_prompt(&view).contains("RULES-TWO"));
        let view = ok(&call(&client, "advance_step", json!({"session_id": id, "step_id": "generate-architecture", "input": {"architecture": "# Architecture 2"}})).await);
        assert_eq!(view["status"], "completed");
        // The new artifacts replaced those the steps stored before (restorable, not kept live).
        let titles: Vec<String> = memories(&client, "legacy")
            .await
            .iter()
            .map(|m| m["title"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(titles.len(), 3, "{titles:?}");

        // What cannot be answered again says why.
        for (arguments, expected) in [
            (
                json!({"session_id": id, "step_id": "pack-repositories", "revise": true, "input": {}}),
                "answer again the step it reads (`repositories`)",
            ),
            (
                json!({"session_id": id, "revise": true, "input": {"repository_urls": []}}),
                "needs `step_id`",
            ),
            (
                json!({"session_id": id, "step_id": "repositories", "revise": true, "input": {"repository_urls": ["/srv/app"]}}),
                "local paths",
            ),
        ] {
            let message = refused(&call(&client, "advance_step", arguments).await);
            assert!(message.contains(expected), "{message}");
        }
        server.stop().await;
    }
}
