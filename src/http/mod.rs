//! The HTTP edge: one axum router with `/health` (no key), Streamable HTTP at `/mcp`, the
//! legacy HTTP+SSE transport at `/sse` + `/messages`, and the OAuth protected-resource document
//! (no key), the OAuth authorization server (`/.well-known/oauth-authorization-server`,
//! `/oauth/*`, no key), the live event stream at `/events`, and the web console at `/console` (its own
//! session cookie; `GET /` sends browsers there). Every route but `/health` checks the `Host` header against the allowed hosts; the
//! MCP routes require `Authorization: Bearer <key>`.

mod auth;
pub mod console;
mod discovery;
mod error;
mod events;
mod health;
mod oauth;
mod observe;
mod serve;
mod sessions;
mod sse;
mod subscriptions;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use tokio_util::sync::CancellationToken;

use crate::allocator::Activity;
use crate::app::App;
use crate::auth::keys::KeyVerifier;
use crate::config::Config;
use crate::mcp::CodifierServer;
use crate::store::Store;

pub use error::ApiError;
pub use serve::{serve, serve_app};

/// The header carrying a request's id, in both directions (named by the handler, whose log lines
/// carry it).
pub use crate::mcp::REQUEST_ID;

/// After this long without a request the server gives its free memory back
/// ([`crate::allocator::trim_when_idle`]).
const QUIET_BEFORE_TRIM: Duration = Duration::from_secs(10);

/// What every HTTP handler shares.
#[derive(Clone)]
pub struct HttpState {
    pub store: Arc<dyn Store>,
    pub app: App,
    pub verifier: Arc<KeyVerifier>,
    pub allowed_hosts: Arc<Vec<String>>,
    pub sse: sse::SseSessions,
    /// Which key opened each Streamable HTTP session seen so far ([`sessions::enforce_owner`]).
    pub session_owners: sessions::KnownOwners,
    pub shutdown: CancellationToken,
    pub max_body_bytes: usize,
    /// `CODIFIER_PUBLIC_URL`: the base URL clients use, when it cannot be read off the request.
    pub public_url: Option<Arc<str>>,
    /// `CODIFIER_AUTHORIZATION_SERVERS`: OAuth authorization servers to name to clients.
    pub authorization_servers: Arc<Vec<String>>,
    /// Requests seen, so free memory is given back when they stop.
    pub activity: Arc<Activity>,
    /// `CODIFIER_CONSOLE_SESSION_HOURS`: how long a web console sign-in lasts.
    pub console_session: Duration,
    /// The OAuth authorization server, unless `CODIFIER_OAUTH=off` or an external one is named.
    pub oauth: Option<Arc<oauth::OAuthServer>>,
    /// Wrong keys per client address ([`crate::auth::throttle`]).
    pub throttle: Arc<crate::auth::throttle::FailureThrottle>,
}

/// Builds the router. `shutdown` ends open SSE streams and MCP sessions when cancelled.
pub fn router(config: &Config, app: App, shutdown: CancellationToken) -> Router {
    let store = app.store().clone();
    let verifier = Arc::new(KeyVerifier::new(
        store.clone(),
        config.operator_token.as_deref(),
        config.key_cache_ttl,
    ));
    let state = HttpState {
        store: store.clone(),
        app: app.clone(),
        verifier,
        allowed_hosts: Arc::new(config.allowed_hosts.clone()),
        sse: sse::SseSessions::default(),
        session_owners: sessions::KnownOwners::default(),
        shutdown: shutdown.clone(),
        max_body_bytes: config.max_body_bytes,
        public_url: config.public_url.as_deref().map(Arc::from),
        authorization_servers: Arc::new(config.authorization_servers.clone()),
        activity: Arc::default(),
        console_session: config.console_session,
        oauth: (config.oauth.enabled && config.authorization_servers.is_empty()).then(|| {
            crate::oauth::sweep::start(
                store.clone(),
                config.oauth.unused_client,
                shutdown.child_token(),
            );
            Arc::new(oauth::OAuthServer {
                config: config.oauth.clone(),
                clients: crate::oauth::clients::Clients::new(
                    store.clone(),
                    config.oauth.loopback_client_documents,
                ),
                registrations: crate::auth::throttle::FailureThrottle::new(
                    crate::auth::throttle::ThrottleConfig {
                        max_failures: config.oauth.registrations_per_hour,
                        window: Duration::from_secs(3600),
                        client_address_header: config.auth_throttle.client_address_header.clone(),
                    },
                ),
            })
        }),
        throttle: Arc::new(crate::auth::throttle::FailureThrottle::new(
            config.auth_throttle.clone(),
        )),
    };
    tokio::spawn({
        let (activity, shutdown) = (state.activity.clone(), shutdown.clone());
        async move {
            crate::allocator::trim_when_idle(
                &activity,
                QUIET_BEFORE_TRIM,
                shutdown,
                crate::allocator::trim,
            )
            .await;
        }
    });

    let mut mcp_config =
        StreamableHttpServerConfig::default().with_allowed_hosts(config.allowed_hosts.clone());
    mcp_config.sse_keep_alive = Some(Duration::from_secs(15));
    mcp_config.cancellation_token = shutdown.child_token();
    mcp_config.max_request_body_bytes = config.max_body_bytes;
    mcp_config.session_store = Some(Arc::new(sessions::StoredSessions::new(store.clone())));
    let handler_app = app.clone();
    let session_idle = config.session_idle;
    let mut sessions = LocalSessionManager::default();
    // A session nobody closed (a client that crashed or just dropped the connection) leaves
    // memory after this long; a client that comes back is restored from the database.
    sessions.session_config.keep_alive = Some(config.session_idle);
    let mcp_service = StreamableHttpService::new(
        move || {
            Ok(CodifierServer::for_http(handler_app.clone())
                .idling_out_after(session_idle)
                .counted(crate::metrics::Transport::StreamableHttp))
        },
        Arc::new(sessions),
        mcp_config,
    );

    let protected = Router::new()
        .route_service("/mcp", mcp_service)
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            subscriptions::read_listen_start,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            sessions::enforce_owner,
        ))
        .route("/sse", get(sse::open))
        .route("/messages", post(sse::message))
        .route("/metrics", get(observe::metrics_for_operator))
        .route("/events", get(events::stream))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_allowed_host,
        ));

    let discovery = Router::new()
        .route(discovery::PATH, get(discovery::protected_resource))
        .route(
            &format!("{}/{{*resource}}", discovery::PATH),
            get(discovery::protected_resource),
        )
        .merge(oauth::router())
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_allowed_host,
        ));

    let console =
        console::router()
            .route("/", get(console::root))
            .layer(middleware::from_fn_with_state(
                state.clone(),
                auth::require_allowed_host,
            ));

    Router::new()
        .route("/health", get(health::health))
        .merge(discovery)
        .merge(console)
        .merge(protected)
        .fallback(error::not_found)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            observe::request_context,
        ))
        .with_state(state)
}

/// The router of the separate metrics address (`CODIFIER_METRICS_LISTEN`): `/metrics` only.
pub fn metrics_router() -> Router {
    Router::new()
        .route("/metrics", get(observe::metrics_open))
        .fallback(error::not_found)
}
