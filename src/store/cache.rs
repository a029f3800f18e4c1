//! [`ProjectCache`]: a layer over any store that remembers the projects it found. Every tool call
//! resolves its project, and a project's id and name never change once created (nothing renames
//! or deletes one), so each is read from the database once per process. Only projects found are
//! kept: one missing now may be created later. Its `metadata` may change
//! (`update_project_metadata`): this process then forgets the project and reads it again.

use std::sync::Arc;

use super::{Project, Store};
use crate::remembered::Remembered;

/// A store whose `find_project` answers from memory what it found before.
pub struct ProjectCache {
    inner: Arc<dyn Store>,
    known: Remembered<Project>,
}

impl ProjectCache {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            known: Remembered::default(),
        }
    }
}

/// `find_project` through the cache; every other operation straight to the inner store.
macro_rules! cached {
    ($layer:ident, find_project($id_or_name:ident)) => {{
        if let Some(project) = $layer.known.get($id_or_name) {
            return Ok(Some(project));
        }
        let found = $layer.inner.find_project($id_or_name).await?;
        if let Some(project) = &found {
            $layer.known.remember($id_or_name, project.clone());
        }
        Ok(found)
    }};
    ($layer:ident, update_project_metadata($actor:ident, $project:ident, $changes:ident)) => {{
        let updated = $layer.inner.update_project_metadata($actor, $project, $changes).await;
        $layer.known.forget_where(|known| known.id == $project);
        updated
    }};
    ($layer:ident, $name:ident($($arg:ident),*)) => {
        $layer.inner.$name($($arg),*).await
    };
}

crate::forward_store!(ProjectCache, cached);

#[cfg(test)]
mod tests {
    use crate::store::scratch::ScratchStore;

    #[tokio::test]
    async fn the_cache_finds_a_project_created_after_a_lookup_missed_and_keeps_finding_it() {
        // The scratch store's own project, "p", is never looked up, so never cached.
        let ScratchStore {
            store,
            actor,
            dir: _dir,
            ..
        } = ScratchStore::new().await;
        assert!(store.find_project("later").await.unwrap().is_none());
        let created = store.create_project(&actor, "later", None).await.unwrap();
        for asked in ["later".to_owned(), created.id.to_string()] {
            for _ in 0..2 {
                let found = store.find_project(&asked).await.unwrap().expect("found");
                assert_eq!(found.id, created.id);
            }
        }
    }
}
