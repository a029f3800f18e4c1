//! Hostile callers at the HTTP edge: repeated wrong keys, timing of wrong keys, revocation under
//! load ([`auth_abuse`]); malformed, oversized and deeply nested requests ([`requests`]); refused
//! requests' bodies and keep-alive ([`refused_bodies`]); and
//! property tests that throw generated input at the parsers ([`fuzz`]).

mod auth_abuse;
mod forms;
mod fuzz;
mod refused_bodies;
mod requests;

use crate::helpers::TestServer;

pub const INITIALIZE: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}"#;

/// Posts an `initialize` to `/mcp` with `key`, and a forwarded-for address when given.
pub async fn initialize(
    client: &reqwest::Client,
    server: &TestServer,
    key: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = client
        .post(server.url("/mcp"))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(key)
        .body(INITIALIZE);
    if let Some(address) = forwarded_for {
        request = request.header("x-forwarded-for", address);
    }
    request.send().await.expect("POST /mcp")
}

/// `key` with its last character changed: the same prefix, a wrong secret.
pub fn wrong_secret(key: &str) -> String {
    let last = if key.ends_with('a') { 'b' } else { 'a' };
    format!("{}{last}", &key[..key.len() - 1])
}

/// A key of the right shape whose prefix no stored key has.
pub fn unknown_prefix(n: usize) -> String {
    format!("cdf_{:0>10}_{}", n, "x".repeat(40))
}
