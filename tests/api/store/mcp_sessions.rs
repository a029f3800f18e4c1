//! MCP sessions: the first owner stays, the initialize params and the active project are kept.

use serde_json::json;

use super::fixtures::Ctx;
use crate::helpers::Backend;

store_cases!(an_mcp_session_keeps_its_first_owner_its_params_and_its_project);

async fn an_mcp_session_keeps_its_first_owner_its_params_and_its_project(b: Backend) {
    let t = Ctx::new(b).await;
    let s = &*t.s;
    let load = |id| async move { s.load_mcp_session(id).await.expect("load") };
    assert!(load("s1").await.is_none(), "{b:?}: unknown");
    s.claim_mcp_session("s1", "one").await.expect("claim");
    s.claim_mcp_session("s1", "two").await.expect("claim");
    let params = json!({ "protocolVersion": "2025-06-18" });
    s.save_mcp_session_params("s1", &params).await.unwrap();
    s.set_mcp_session_project("s1", t.p).await.expect("set");
    let session = load("s1").await.expect("stored");
    let owner = session.owner.as_deref();
    assert_eq!(owner, Some("one"), "{b:?}: the first owner stays");
    let params = Some(params);
    assert_eq!(session.initialize_params, params, "{b:?}: params");
    let project = session.active_project_id;
    assert_eq!(project, Some(t.p), "{b:?}: active project");
    s.save_mcp_session_params("s2", &json!({})).await.unwrap();
    let s2 = load("s2").await.expect("stored");
    let unset = (s2.owner, s2.active_project_id);
    assert_eq!(unset, (None, None), "{b:?}: nothing else set");
    s.delete_mcp_session("s1").await.expect("delete");
    assert!(load("s1").await.is_none(), "{b:?}: deleted");
    assert!(load("s2").await.is_some(), "{b:?}: others stay");
}
