//! `codifier connect <client>`: the configuration an MCP client needs to reach this server,
//! printed, or merged into the client's own file with `--write`. Merging keeps every other entry
//! of an existing file, replaces only ours, refuses a file it cannot parse (rather than
//! overwrite it, printing the entry to paste by hand instead), keeps a `.bak` copy of what was
//! there and writes through a temporary file. Without `--url` the entry points at this
//! machine's server (`CODIFIER_LISTEN`, else `PORT`, else 127.0.0.1:8080).

mod entries;
mod merge;

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Map, json};

pub use entries::{default_file, entry};
pub use merge::merge_into_file;

/// The clients `connect` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Client {
    /// Claude Code: `.mcp.json` in the project (HTTP transport).
    ClaudeCode,
    /// Claude Desktop: `claude_desktop_config.json`, through `npx mcp-remote`.
    ClaudeDesktop,
    /// Cursor: `~/.cursor/mcp.json`.
    Cursor,
    /// VS Code: `.vscode/mcp.json` in the workspace.
    Vscode,
    /// Windsurf: `~/.codeium/windsurf/mcp_config.json`.
    Windsurf,
    /// A hosted client that connects by URL and OAuth (Claude.ai and Claude Desktop custom
    /// connectors, ChatGPT connectors): prints the connector URL; no file, no key in a file.
    Connector,
}

/// `codifier connect` arguments.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// Which client to configure.
    #[arg(value_enum)]
    pub client: Client,
    /// The server's address, e.g. https://codifier-mcp.fly.dev (`/mcp` is added when missing).
    /// Default: the server on this machine (CODIFIER_LISTEN, else PORT, else 127.0.0.1:8080).
    #[arg(long)]
    pub url: Option<String>,
    /// The API key to send. Without it, the configuration reads the key from the
    /// CODIFIER_API_KEY environment variable when the client starts, so no secret is written.
    /// Claude Desktop cannot do that: its entry holds the key, taken from --key or else from
    /// CODIFIER_API_KEY as set where this command runs.
    #[arg(long)]
    pub key: Option<String>,
    /// The server's name in the client's list.
    #[arg(long, default_value = "codifier")]
    pub name: String,
    /// Merge the entry into the client's configuration file instead of printing it.
    #[arg(long)]
    pub write: bool,
    /// The configuration file to merge into (default: the client's usual file).
    #[arg(long)]
    pub file: Option<PathBuf>,
}

/// The environment variable a configuration without `--key` reads the key from.
pub const KEY_VARIABLE: &str = "CODIFIER_API_KEY";

/// Runs `codifier connect`: prints the entry, or merges it into the file and says where.
pub fn run(args: &ConnectArgs) -> anyhow::Result<()> {
    let url = match &args.url {
        Some(url) => url.clone(),
        None => {
            let url = local_server_url()?;
            eprintln!("No --url given: the entry points at the server on this machine, {url}.");
            url
        }
    };
    let endpoint = mcp_endpoint(&url)?;
    if args.client == Client::Connector {
        println!("{endpoint}");
        eprintln!(
            "Give this URL to the client as a custom connector (Claude.ai or Claude Desktop: \
             Settings → Connectors → Add custom connector; ChatGPT: a connector's MCP server URL). \
             The client registers itself and opens this server's consent page, where you paste an \
             API key (or the operator token) and may narrow its role; the client then holds \
             tokens that act as that key and stop working when it is revoked."
        );
        return Ok(());
    }
    let key = key_for(args.client, args.key.as_deref())?;
    let (section, entry) = entry(args.client, &endpoint, key.as_deref())?;
    let mut servers = Map::new();
    servers.insert(args.name.clone(), entry.clone());
    let printable = serde_json::to_string_pretty(&json!({ section: servers }))?;
    if !args.write {
        println!("{printable}");
        let file = args.file.clone().or_else(|| default_file(args.client));
        if let Some(file) = file {
            eprintln!(
                "Add this to {} (or run again with --write to merge it there).",
                file.display()
            );
        }
        print_hints(args, key.is_some());
        return Ok(());
    }
    let file = args
        .file
        .clone()
        .or_else(|| default_file(args.client))
        .context("no home directory is known here: pass --file")?;
    let replaced = match merge_into_file(&file, section, &args.name, entry) {
        Ok(replaced) => replaced,
        Err(error) => {
            // Nothing was written: give the entry to paste by hand.
            println!("{printable}");
            bail!("{error:#}. The entry is printed on stdout: paste it in by hand");
        }
    };
    eprintln!(
        "{} `{}` in {}.",
        if replaced { "Updated" } else { "Added" },
        args.name,
        file.display()
    );
    print_hints(args, key.is_some());
    Ok(())
}

/// The key the entry carries: `--key`; for Claude Desktop, which passes no environment to the
/// servers it starts and expands no `${…}` in its file, else the key in `CODIFIER_API_KEY` here.
fn key_for(client: Client, key: Option<&str>) -> anyhow::Result<Option<String>> {
    if let Some(key) = key.map(str::trim).filter(|key| !key.is_empty()) {
        return Ok(Some(key.to_owned()));
    }
    if client != Client::ClaudeDesktop {
        return Ok(None);
    }
    match std::env::var(KEY_VARIABLE) {
        Ok(key) if !key.trim().is_empty() => {
            eprintln!(
                "The key in {KEY_VARIABLE} is written into the entry: Claude Desktop passes no \
                 environment variables to the servers it starts."
            );
            Ok(Some(key.trim().to_owned()))
        }
        _ => bail!(
            "Claude Desktop needs the key written into its entry (it passes no environment \
             variables to the servers it starts and does not expand ${{…}} in its file): pass \
             --key <key>, or export {KEY_VARIABLE}=<key> and run this again (create a key with \
             `codifier keys create`)"
        ),
    }
}

/// This machine's server, as `codifier serve` would listen: `CODIFIER_LISTEN`, else `PORT`,
/// else 127.0.0.1:8080; an address listening on every interface is reached on loopback.
fn local_server_url() -> anyhow::Result<String> {
    let listen = match std::env::var("CODIFIER_LISTEN")
        .ok()
        .filter(|v| !v.trim().is_empty())
    {
        Some(text) => text
            .trim()
            .parse::<std::net::SocketAddr>()
            .with_context(|| {
                format!(
                    "CODIFIER_LISTEN={text:?} is not an address like 127.0.0.1:8080: pass --url"
                )
            })?,
        None => {
            let port = match std::env::var("PORT").ok().filter(|v| !v.trim().is_empty()) {
                Some(text) => text
                    .trim()
                    .parse::<u16>()
                    .with_context(|| format!("PORT={text:?} is not a port number: pass --url"))?,
                None => 8080,
            };
            std::net::SocketAddr::from(([127, 0, 0, 1], port))
        }
    };
    let host = match listen.ip() {
        ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_owned(),
        ip if ip.is_unspecified() => "[::1]".to_owned(),
        std::net::IpAddr::V6(ip) => format!("[{ip}]"),
        ip => ip.to_string(),
    };
    Ok(format!("http://{host}:{}", listen.port()))
}

fn print_hints(args: &ConnectArgs, key_written: bool) {
    if key_written && matches!(args.client, Client::ClaudeCode | Client::Vscode) {
        eprintln!(
            "Careful: this file lives in the project and is often committed. Prefer leaving out \
             --key and exporting {KEY_VARIABLE} instead."
        );
    }
    if !key_written {
        eprintln!(
            "The key is read from {KEY_VARIABLE} when the client starts: export it where the \
             client runs (create one with `codifier keys create`)."
        );
    }
    if args.client == Client::ClaudeDesktop {
        eprintln!(
            "Claude Desktop reaches the server through `npx mcp-remote` (Node.js 18+). Or add it \
             as a custom connector with OAuth instead, no key in a file: `codifier connect connector`."
        );
    }
}

/// The Streamable HTTP endpoint for a server address: http(s) only, `/mcp` added when missing.
pub fn mcp_endpoint(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url.trim())
        .with_context(|| format!("--url {url:?} is not a URL; use e.g. https://host.example"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        bail!("--url {url:?} must be an http:// or https:// address with a host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        bail!("--url must not carry credentials; pass the key with --key");
    }
    let base = parsed.as_str().trim_end_matches('/');
    Ok(if parsed.path().trim_end_matches('/').ends_with("/mcp") {
        base.to_owned()
    } else {
        format!("{base}/mcp")
    })
}
