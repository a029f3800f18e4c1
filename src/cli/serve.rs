//! `codifier serve` and `codifier stdio`: the MCP server over HTTP until a signal, or over
//! stdin/stdout as the local user.

use anyhow::Context;
use rmcp::ServiceExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::{App, open_store};
use crate::config::Config;
use crate::mcp::CodifierServer;

/// `codifier serve`: bind, announce the address, serve until SIGINT or SIGTERM.
pub async fn run_http(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let listener = TcpListener::bind(config.listen).await.with_context(|| {
        format!(
            "cannot listen on {} (CODIFIER_LISTEN / PORT)",
            config.listen
        )
    })?;
    let address = listener.local_addr()?;
    if let Some(file) = &config.addr_file {
        std::fs::write(file, address.to_string())
            .with_context(|| format!("cannot write CODIFIER_ADDR_FILE {}", file.display()))?;
    }
    if config.operator_token.is_none() {
        tracing::warn!(
            "API_AUTH_TOKEN is not set: only API keys made with `codifier keys create` can connect"
        );
    }
    tracing::info!(%address, allowed_hosts = ?config.allowed_hosts, "codifier listening: MCP at /mcp (Streamable HTTP) and /sse (legacy SSE)");
    let shutdown = CancellationToken::new();
    tokio::spawn(stop_on_signal(shutdown.clone()));
    if let Some(metrics_address) = config.metrics_listen {
        let metrics_listener = TcpListener::bind(metrics_address).await.with_context(|| {
            format!("cannot listen on {metrics_address} (CODIFIER_METRICS_LISTEN)")
        })?;
        tracing::info!(address = %metrics_address, "metrics at /metrics (no key: keep this address private)");
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let served = axum::serve(metrics_listener, crate::http::metrics_router())
                .with_graceful_shutdown(stop.cancelled_owned())
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "the metrics listener stopped");
            }
        });
    }
    crate::http::serve(&config, store, listener, shutdown).await?;
    tracing::info!("codifier stopped");
    Ok(())
}

async fn stop_on_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => return,
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutting down: finishing in-flight requests");
    shutdown.cancel();
}

/// `codifier stdio`: MCP over stdin/stdout as the local user.
pub async fn run_stdio(config: Config) -> anyhow::Result<()> {
    let store = open_store(&config).await?;
    let shutdown = CancellationToken::new();
    let app = App::start(&config, store, &shutdown)?;
    let service = CodifierServer::for_local(app)
        .counted(crate::metrics::Transport::Stdio)
        .serve(rmcp::transport::stdio())
        .await
        .context("the MCP handshake on stdio failed")?;
    service
        .waiting()
        .await
        .context("the stdio session ended with an error")?;
    Ok(())
}
