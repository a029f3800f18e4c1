//! What clients show about this server beside the protocol itself: the icon carried by the
//! server, tool and prompt metadata (`icons`, revisions 2025-11-25 and later), and the W3C
//! `traceparent` a 2026-07-28 client sends in a request's `_meta`, which our log lines carry;
//! and whether a request came at that stateless revision.

use rmcp::RoleServer;
use rmcp::model::Icon;
use rmcp::service::RequestContext;

/// A small square mark (a "C" on blue), embedded as a percent-encoded `data:` URI so no request
/// leaves the server to fetch it.
const ICON: &str = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 32 32'%3E%3Crect width='32' height='32' rx='6' fill='%231f4e79'/%3E%3Cpath d='M21 10.5a7.5 7.5 0 1 0 0 11' fill='none' stroke='%23fff' stroke-width='3' stroke-linecap='round'/%3E%3C/svg%3E";

/// The server's icon, for server, tool and prompt metadata.
pub fn icons() -> Vec<Icon> {
    vec![
        Icon::new(ICON)
            .with_mime_type("image/svg+xml")
            .with_sizes(vec!["any".to_owned()]),
    ]
}

/// The `_meta.traceparent` of a request, when it has the W3C shape
/// (`00-<32 hex>-<16 hex>-<2 hex>`); anything else is left out of the logs rather than echoed.
pub fn traceparent(ctx: &RequestContext<RoleServer>) -> Option<String> {
    let value = ctx.meta.get("traceparent")?.as_str()?;
    let parts: Vec<&str> = value.split('-').collect();
    let shaped = parts.len() == 4
        && [2, 32, 16, 2]
            .iter()
            .zip(&parts)
            .all(|(len, part)| part.len() == *len && part.bytes().all(|b| b.is_ascii_hexdigit()));
    shaped.then(|| value.to_ascii_lowercase())
}

/// Whether the request came over HTTP at a revision without sessions (2026-07-28 and later).
pub fn is_stateless(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.extensions
        .get::<axum::http::request::Parts>()
        .and_then(|parts| parts.headers.get("mcp-protocol-version"))
        .and_then(|value| value.to_str().ok())
        .is_some_and(|version| version >= rmcp::model::ProtocolVersion::V_2026_07_28.as_str())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_icon_is_an_svg_data_uri() {
        let icons = super::icons();
        assert!(icons[0].src.starts_with("data:image/svg+xml,%3Csvg "));
        assert!(
            !icons[0].src.contains(['<', '>', '#', '"']),
            "{}",
            icons[0].src
        );
        assert_eq!(icons[0].mime_type.as_deref(), Some("image/svg+xml"));
    }
}
