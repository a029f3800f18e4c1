//! The scratch store unit tests build on: a fresh SQLite database in a temporary directory,
//! opened through [`connect`](super::connect) as the server opens it (project cache included)
//! and migrated, with the actor the tests write as and one project, "p". Integration tests
//! under `tests/` have their own servers and stores.

use std::sync::Arc;

use uuid::Uuid;

use super::{Actor, Store};

/// A migrated store with one project in it, and the directory that holds its database.
///
/// Bind `dir` to a named variable (`dir: _dir`), not `_`: the directory, and the database in
/// it, is removed when `dir` is dropped.
pub(crate) struct ScratchStore {
    pub(crate) store: Arc<dyn Store>,
    /// `local`, writing as tool `test`.
    pub(crate) actor: Actor,
    /// The id of project "p", created by `actor`.
    pub(crate) project: Uuid,
    /// Holds the database file; also free for a test's own files.
    pub(crate) dir: tempfile::TempDir,
}

impl ScratchStore {
    pub(crate) async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("scratch.db").display());
        let store = super::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let actor = Actor {
            label: "local".into(),
            tool: "test".into(),
        };
        let project = store.create_project(&actor, "p", None).await.unwrap().id;
        Self {
            store,
            actor,
            project,
            dir,
        }
    }
}
