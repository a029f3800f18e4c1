//! [`Remembered`]: facts that never change once learned — a project by the id or name it was
//! asked for, the key that opened a session — kept in memory so the database is asked once per
//! process, or the one shared cell per API key prefix that the key verifier keeps its state in.
//! Only what was found is remembered (a miss may be created later), and the map is bounded: when
//! full it starts again.

use std::collections::HashMap;
use std::sync::Mutex;

/// At most this many entries are kept (then the map starts again).
const CAPACITY: usize = 4096;

/// A bounded map from a string key to a value that, once learned, never changes.
pub struct Remembered<V> {
    entries: Mutex<HashMap<String, V>>,
}

impl<V> Default for Remembered<V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone> Remembered<V> {
    pub fn get(&self, key: &str) -> Option<V> {
        self.lock().get(key).cloned()
    }

    pub fn remember(&self, key: &str, value: V) {
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(key.to_owned(), value);
    }

    /// The value under `key`, made by `make` and remembered if there was none: callers that
    /// race for one key all get the same value.
    pub fn get_or_insert_with(&self, key: &str, make: impl FnOnce() -> V) -> V {
        let mut entries = self.lock();
        if let Some(value) = entries.get(key) {
            return value.clone();
        }
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        let value = make();
        entries.insert(key.to_owned(), value.clone());
        value
    }

    /// Forgets every entry whose value `stale` picks (a fact that did change after all, such as
    /// a project's metadata).
    pub fn forget_where(&self, stale: impl Fn(&V) -> bool) {
        self.lock().retain(|_, value| !stale(value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, V>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_what_it_was_told_and_starts_again_when_full() {
        let remembered = Remembered::default();
        assert_eq!(remembered.get("a"), None);
        remembered.remember("a", 1);
        assert_eq!(remembered.get("a"), Some(1));
        for n in 1..CAPACITY {
            remembered.remember(&n.to_string(), n);
        }
        assert_eq!(remembered.get("a"), Some(1), "still room for every entry");
        remembered.remember("over", 0);
        assert_eq!(remembered.get("a"), None, "full: it started again");
        assert_eq!(remembered.get("over"), Some(0));
    }

    #[test]
    fn get_or_insert_with_keeps_the_first_value_for_a_key() {
        let remembered = Remembered::default();
        assert_eq!(remembered.get_or_insert_with("a", || 1), 1);
        assert_eq!(remembered.get_or_insert_with("a", || 2), 1);
        assert_eq!(remembered.get("a"), Some(1));
    }
}
