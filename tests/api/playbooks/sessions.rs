//! Sessions over time and between callers: resuming after a restart, a retried call, input
//! that does not fit, and a key for another project.

use super::*;

#[tokio::test]
async fn a_session_resumes_after_a_server_restart() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        server.project("atlas").await;
        let (address, database) = (server.address, server.database.clone());
        let session = {
            let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
            let mut c = Counted {
                client: &client,
                calls: 0,
            };
            let view = c
                .call("run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}}))
                .await;
            let view = c.answer(&view, json!("Before the restart.")).await;
            assert_eq!(current(&view), "statement-of-work");
            view["session_id"].clone()
        };
        server.stop().await;

        let restarted = TestServer::start_on(database, address).await;
        let client = clients::streamable(&restarted.url("/mcp"), OPERATOR_TOKEN).await;
        let view = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "session_id": session})).await);
        assert_eq!(current(&view), "statement-of-work", "{backend:?}");
        assert_eq!(
            view["collected_keys"],
            json!(["description", "project_name"])
        );
        let mut c = Counted {
            client: &client,
            calls: 0,
        };
        let view = c.answer(&view, json!("After the restart.")).await;
        assert_eq!(current(&view), "repositories");
        let listed = ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        assert_eq!(listed["sessions"][0]["session_id"], session);
        assert_eq!(listed["sessions"][0]["current_step"], "repositories");
        restarted.stop().await;
    }
}

#[tokio::test]
async fn retrying_the_same_advance_neither_advances_twice_nor_stores_twice() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let started = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}})).await);
        let answer = json!({"session_id": started["session_id"], "step_id": "description", "input": {"description": "Once."}});
        let first = ok(&call(&client, "advance_step", answer.clone()).await);
        assert_eq!(first["stored"].as_array().unwrap().len(), 1);
        let again = ok(&call(&client, "advance_step", answer).await);
        assert_eq!(again["replayed"], true, "{backend:?}");
        assert_eq!(current(&again), "statement-of-work");
        assert!(again["stored"].as_array().unwrap().is_empty());
        // Without step_id, the identical input is recognised too.
        let bare = json!({"session_id": started["session_id"], "input": {"description": "Once."}});
        assert_eq!(
            ok(&call(&client, "advance_step", bare).await)["replayed"],
            true
        );
        assert_eq!(memories(&client, "atlas").await.len(), 1);
        let sessions =
            ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        assert_eq!(sessions["sessions"][0]["steps_done"], 2);

        let abandon = json!({"session_id": started["session_id"], "abandon": true});
        let ended = ok(&call(&client, "advance_step", abandon.clone()).await);
        assert_eq!(ended["status"], "abandoned");
        assert_eq!(
            ok(&call(&client, "advance_step", abandon).await)["replayed"],
            true
        );
        let late =
            json!({"session_id": started["session_id"], "input": {"statement_of_work": "x"}});
        assert!(refused(&call(&client, "advance_step", late).await).contains("abandoned"));
        server.stop().await;
    }
}

#[tokio::test]
async fn input_that_does_not_fit_the_step_is_refused_and_changes_nothing() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        server.project("atlas").await;
        let started = ok(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": "Atlas"}})).await);
        let id = started["session_id"].clone();
        let before = ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        for (arguments, expected) in [
            (
                json!({"session_id": id, "input": {"summary": "x"}}),
                "takes `input.description`",
            ),
            (
                json!({"session_id": id, "input": {"description": 42}}),
                "must be a string",
            ),
            (
                json!({"session_id": id, "input": {}}),
                "needs `input.description`",
            ),
            (
                json!({"session_id": id, "step_id": "generate-rules", "input": {"rules": "x"}}),
                "is at step `description`",
            ),
            (json!({"session_id": id, "skip": true}), "cannot be skipped"),
            (
                json!({"session_id": "not-a-uuid", "input": {}}),
                "`session_id` is `not-a-uuid`",
            ),
        ] {
            let message = refused(&call(&client, "advance_step", arguments).await);
            assert!(message.contains(expected), "{backend:?}: {message}");
        }
        let message = refused(
            &call(
                &client,
                "run_playbook",
                json!({"playbook_id": "nope", "project_id": "atlas"}),
            )
            .await,
        );
        assert!(message.contains("initialize-project"), "{message}");
        let message = refused(&call(&client, "run_playbook", json!({"playbook_id": "initialize-project", "project_id": "atlas", "input": {"project_name": ["x"]}})).await);
        assert!(message.contains("must be a string"), "{message}");
        let after = ok(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
        assert_eq!(before, after, "nothing changed");
        assert!(memories(&client, "atlas").await.is_empty());
        server.stop().await;
    }
}

#[tokio::test]
async fn a_key_for_one_project_cannot_see_or_advance_another_projects_session() {
    let server = TestServer::start(Backend::Sqlite).await;
    let operator = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    server.project("atlas").await;
    let other = server.project("other").await;
    let started = ok(&call(
        &operator,
        "run_playbook",
        json!({"playbook_id": "initialize-project", "project_id": "atlas"}),
    )
    .await);
    let key = server.key(other.id, codifier::domain::Role::Write).await;
    let client = clients::streamable(&server.url("/mcp"), &key).await;
    let message = refused(
        &call(
            &client,
            "advance_step",
            json!({"session_id": started["session_id"], "input": {"project_name": "x"}}),
        )
        .await,
    );
    assert!(message.contains("no playbook session"), "{message}");
    let message =
        refused(&call(&client, "playbook_sessions", json!({"project_id": "atlas"})).await);
    assert!(message.contains("cannot act on project"), "{message}");
    let read = server.key(other.id, codifier::domain::Role::Read).await;
    let reader = clients::streamable(&server.url("/mcp"), &read).await;
    let message = refused(
        &call(
            &reader,
            "run_playbook",
            json!({"playbook_id": "initialize-project"}),
        )
        .await,
    );
    assert!(message.contains("`read` role"), "{message}");
    server.stop().await;
}
