//! [`MeteredStore`]: any [`Store`], with the time and failure of each operation recorded under
//! the operation's name. Every server store is wrapped in one (see `app::open_store`).

use std::sync::Arc;

use crate::store::Store;

/// A store whose operations are timed into [`super::global`].
pub struct MeteredStore {
    inner: Arc<dyn Store>,
}

impl MeteredStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self { inner }
    }
}

/// Times one call to the inner store and records it under the operation's name.
macro_rules! metered {
    ($layer:ident, $name:ident($($arg:ident),*)) => {{
        let started = std::time::Instant::now();
        let result = $layer.inner.$name($($arg),*).await;
        $crate::metrics::global().store_call(stringify!($name), started.elapsed(), result.is_err());
        result
    }};
}

crate::forward_store!(MeteredStore, metered);
