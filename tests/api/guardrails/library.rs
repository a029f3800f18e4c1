//! The skills library through a real MCP client on both stores: every key reads it, no one
//! writes it over MCP, and it is never a project to list, switch to or act on.

use codifier::domain::Role;
use codifier::domain::guardrail::LIBRARY_PROJECT;
use serde_json::json;

use crate::clients::{self, call, ok, refused};
use crate::helpers::{OPERATOR_TOKEN, TestServer, backends};

#[tokio::test]
async fn the_library_is_never_listed_switched_to_or_written_over_mcp() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let mine = server.project("mine").await;
        let key = server.key(mine.id, Role::Admin).await;
        let library = LIBRARY_PROJECT.to_string();
        for secret in [key.as_str(), OPERATOR_TOKEN] {
            let client = clients::streamable(&server.url("/mcp"), secret).await;
            let listed = ok(&call(&client, "manage_projects", json!({"operation": "list"})).await);
            let ids: Vec<_> = listed["projects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect();
            assert_eq!(ids, [mine.id.to_string()], "{backend:?}: only `mine`");
            let switch = json!({"operation": "switch", "project_id": library});
            refused(&call(&client, "manage_projects", switch).await);
            let write = json!({"project_id": library, "memory_type": "rule", "title": "t",
                "content": {"text": "x"}});
            refused(&call(&client, "update_memory", write).await);
            let read = json!({"project_id": library});
            refused(&call(&client, "fetch_context", read).await);
        }
    }
}
