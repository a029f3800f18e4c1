//! One request to a smart-HTTP git server: `git http-backend` run as a CGI program over the bare
//! repositories under a root, its CGI headers turned into an HTTP response. The soak's local
//! repository is served through it, and so is the packer tests' git server
//! (tests/api/git_server.rs), each behind its own routing and checks.

use std::path::Path;

use anyhow::Context;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;

/// Runs `git http-backend` for one request, as a web server would run a CGI program, and
/// returns its answer; an error when git cannot be started or answers without CGI headers.
pub async fn respond(
    root: &Path,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> anyhow::Result<Response> {
    use tokio::io::AsyncWriteExt;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut child = tokio::process::Command::new("git")
        .arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("REQUEST_METHOD", method.as_str())
        .env("PATH_INFO", uri.path())
        .env("QUERY_STRING", uri.query().unwrap_or_default())
        .env("CONTENT_TYPE", header("content-type"))
        .env("CONTENT_LENGTH", body.len().to_string())
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .env("REMOTE_ADDR", "127.0.0.1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start git http-backend")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let writer = tokio::spawn(async move {
        let _ = stdin.write_all(&body).await;
    });
    let output = child.wait_with_output().await?;
    let _ = writer.await;
    let raw = output.stdout;
    let (at, gap) = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .map(|at| (at, 4))
        .or_else(|| {
            raw.windows(2)
                .position(|window| window == b"\n\n")
                .map(|at| (at, 2))
        })
        .context("git http-backend answered without CGI headers")?;
    let mut response = Response::builder().status(200);
    for line in String::from_utf8_lossy(&raw[..at]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split_whitespace().next().unwrap_or("200");
            response = response.status(code.parse::<u16>().unwrap_or(500));
        } else {
            response = response.header(name.trim(), value);
        }
    }
    Ok(response.body(axum::body::Body::from(raw[at + gap..].to_vec()))?)
}
