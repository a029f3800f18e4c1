//! What the working-session tests share: a server with a small skills pack (the public layout:
//! `<group>/<skill>/skill.yaml`, `sharp-edges.yaml`, …) imported into its library, and small
//! readers of results and telemetry.

use std::path::Path;

use codifier::domain::{Actor, GuardrailEventKind};
use codifier::guardrails::import::{self, Options};
use serde_json::Value;

use crate::clients::{Client, call, ok};
use crate::helpers::TestServer;

/// Imports the pack at `dir` (relative to the crate) into the library, as
/// `codifier skills import` does.
pub async fn import_pack(server: &TestServer, dir: &str) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let actor = Actor {
        label: "local".into(),
        tool: "skills import".into(),
    };
    let report = import::import(&server.store, &actor, &root, Options::default())
        .await
        .expect("the pack imports");
    assert_eq!(
        (report.skills.usable, report.sharp_edges.usable),
        (3, 9),
        "every skill and sharp edge of the pack: {report:?}"
    );
}

pub(super) const PACK: &str = "tests/fixtures/skills/agent";

/// A server with the fixture pack imported and a project `p` (its id returned).
pub(super) async fn server_with_library(backend: crate::helpers::Backend) -> (TestServer, String) {
    let server = TestServer::start(backend).await;
    import_pack(&server, PACK).await;
    let project = server.project("p").await;
    (server, project.id.to_string())
}

pub(super) fn ids(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

pub(super) async fn events(server: &TestServer, project: &str, kind: GuardrailEventKind) -> u64 {
    let project = project.parse().expect("a project id");
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let counts = server
        .store
        .guardrail_event_counts(project, since)
        .await
        .expect("event counts");
    counts
        .iter()
        .filter(|c| c.kind == kind)
        .map(|c| c.count)
        .sum()
}

pub(super) async fn remember(client: &Client, arguments: Value) -> Value {
    ok(&call(client, "remember", arguments).await)
}
