//! What a working session reads is what the database holds, whichever server process wrote it:
//! a project's stack set through one server is the stack `load_context` gives through another
//! that had already read the project (its project cache holds the old metadata).

use std::net::SocketAddr;

use serde_json::json;

use super::agent_pack::{ids, server_with_library};
use crate::clients::{self, call, ok};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

#[tokio::test]
async fn a_stack_set_through_one_server_is_the_stack_another_server_loads_at_once() {
    for backend in backends() {
        let (first, _project) = server_with_library(backend).await;
        let address = SocketAddr::from(([127, 0, 0, 1], 0));
        let second = TestServer::start_on(first.database.clone(), address).await;
        let one = clients::streamable(&first.url("/mcp"), OPERATOR_TOKEN).await;
        let other = clients::streamable(&second.url("/mcp"), OPERATOR_TOKEN).await;

        let before = ok(&call(&other, "load_context", json!({"project_id": "p"})).await);
        assert_eq!(
            before["project"]["stack"],
            json!([]),
            "{backend:?}: no stack yet"
        );

        let set = json!({"project_id": "p", "stack_hints": ["Rust"]});
        let saved = ok(&call(&one, "load_context", set).await);
        assert_eq!(saved["stack_saved"], true, "{backend:?}");

        let after = ok(&call(&other, "load_context", json!({"project_id": "p"})).await);
        assert_eq!(
            after["project"]["stack"],
            json!(["Rust"]),
            "{backend:?}: the other server reads the stack the first one saved"
        );
        assert_eq!(after["stack"], json!(["rust"]), "{backend:?}");
        assert_eq!(
            ids(&after["skills"], "id")[0],
            "rust-async",
            "{backend:?}: the skills of the new stack"
        );

        let cleared = json!({"project_id": "p", "stack_hints": ["React"]});
        ok(&call(&other, "load_context", cleared).await);
        let back = ok(&call(&one, "load_context", json!({"project_id": "p"})).await);
        assert_eq!(
            back["project"]["stack"],
            json!(["React"]),
            "{backend:?}: and the other way round"
        );
        second.stop().await;
        first.stop().await;
    }
}
