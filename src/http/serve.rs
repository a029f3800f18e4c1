//! Serving the application over HTTP on a bound listener until a shutdown signal, then draining
//! in-flight requests for at most the grace period.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::config::Config;
use crate::store::Store;

/// Serves HTTP on `listener` until `shutdown` is cancelled, then drains in-flight requests.
pub async fn serve(
    config: &Config,
    store: Arc<dyn Store>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let app = App::start(config, store, &shutdown)?;
    serve_app(config, app, listener, shutdown).await
}

/// Serves HTTP with the application already built (its embedder may still be loading).
pub async fn serve_app(
    config: &Config,
    app: App,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let athena = app.athena.clone();
    let router = super::router(config, app, shutdown.clone());
    // The peer address feeds the per-address limit on wrong keys (src/auth/throttle.rs).
    let server = axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown.clone().cancelled_owned());
    let grace = config.shutdown_grace;
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace).await;
    };
    // After a shutdown signal the listener closes at once and open requests may finish, but
    // only for `grace`: a stuck request must not keep the process from stopping.
    let served = tokio::select! {
        result = server => result.context("the HTTP server stopped with an error"),
        () = deadline => {
            tracing::warn!(grace_seconds = grace.as_secs(), "requests still open after the grace period were cut off");
            Ok(())
        }
    };
    if let Some(athena) = athena {
        athena.shutdown().await;
    }
    served
}
