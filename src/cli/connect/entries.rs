//! What each client's configuration file holds for this server, and where that file is.

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::{Client, KEY_VARIABLE};

/// The top-level key the client keeps its servers under, and our entry in it. Without a key
/// the entry reads it from `CODIFIER_API_KEY` in the client's own syntax; Claude Desktop has none.
pub fn entry(
    client: Client,
    endpoint: &str,
    key: Option<&str>,
) -> anyhow::Result<(&'static str, Value)> {
    // How each client spells "the value of an environment variable" inside its file.
    let from_env = |syntax: &str| syntax.replace("VAR", KEY_VARIABLE);
    let header = |reference: String| match key {
        Some(key) => format!("Bearer {key}"),
        None => format!("Bearer {reference}"),
    };
    Ok(match client {
        Client::Connector => {
            bail!("a connector takes the URL alone (`codifier connect connector`), no file entry")
        }
        Client::ClaudeCode => (
            "mcpServers",
            json!({
                "type": "http",
                "url": endpoint,
                "headers": { "Authorization": header(from_env("${VAR}")) },
            }),
        ),
        Client::Cursor => (
            "mcpServers",
            json!({
                "url": endpoint,
                "headers": { "Authorization": header(from_env("${env:VAR}")) },
            }),
        ),
        Client::Windsurf => (
            "mcpServers",
            json!({
                "serverUrl": endpoint,
                "headers": { "Authorization": header(from_env("${env:VAR}")) },
            }),
        ),
        Client::Vscode => (
            "servers",
            json!({
                "type": "http",
                "url": endpoint,
                "headers": { "Authorization": header(from_env("${env:VAR}")) },
            }),
        ),
        Client::ClaudeDesktop => {
            let key = key.context(
                "Claude Desktop's entry must hold the key itself: pass --key (it passes no \
                 environment variables to the servers it starts)",
            )?;
            ("mcpServers", mcp_remote_entry(endpoint, key))
        }
    })
}

/// Claude Desktop's entry: it starts `npx mcp-remote <endpoint>`, which speaks stdio to Claude
/// Desktop and HTTP to us. mcp-remote (0.15) replaces each `${VAR}` in a `--header` value, once,
/// with the variable from its own environment, which is the entry's `env`; Claude Desktop
/// itself expands nothing. So `env` holds the whole header value with the key, and `args` holds
/// no space (Claude Desktop on Windows splits arguments at spaces). mcp-remote refuses a plain
/// `http://` address other than localhost and 127.0.0.1 unless given `--allow-http`.
fn mcp_remote_entry(endpoint: &str, key: &str) -> Value {
    let mut args = vec![
        "-y".to_owned(),
        "mcp-remote".to_owned(),
        endpoint.to_owned(),
        "--header".to_owned(),
        "Authorization:${CODIFIER_AUTH_HEADER}".to_owned(),
    ];
    let url = reqwest::Url::parse(endpoint).ok();
    let plain_http_elsewhere = url.as_ref().is_some_and(|url| {
        url.scheme() == "http" && !matches!(url.host_str(), Some("localhost" | "127.0.0.1"))
    });
    if plain_http_elsewhere {
        args.push("--allow-http".to_owned());
    }
    json!({
        "command": "npx",
        "args": args,
        "env": { "CODIFIER_AUTH_HEADER": format!("Bearer {key}") },
    })
}

/// Where each client keeps its configuration by default.
pub fn default_file(client: Client) -> Option<PathBuf> {
    let home = dirs::home_dir();
    match client {
        Client::Connector => None,
        Client::ClaudeCode => Some(PathBuf::from(".mcp.json")),
        Client::Vscode => Some(PathBuf::from(".vscode").join("mcp.json")),
        Client::Cursor => home.map(|home| home.join(".cursor").join("mcp.json")),
        Client::Windsurf => home.map(|home| {
            home.join(".codeium")
                .join("windsurf")
                .join("mcp_config.json")
        }),
        Client::ClaudeDesktop => {
            let dir = if cfg!(target_os = "macos") {
                home.map(|home| home.join("Library").join("Application Support"))
            } else {
                dirs::config_dir()
            };
            dir.map(|dir| dir.join("Claude").join("claude_desktop_config.json"))
        }
    }
}
