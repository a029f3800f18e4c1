//! The small local repository the soak packs: a git repository built in a temp directory and
//! served over git's smart HTTP protocol (`git http-backend` run as CGI behind a tiny axum server
//! on 127.0.0.1), so `pack_repo` clones it over the network as it would a forge's, through a
//! server that allows private networks for this run only.

use std::path::Path;

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio_util::sync::CancellationToken;

use crate::cli::bench::git_http;

/// The served repository: its clone URL, and the server, stopped when dropped.
pub struct LocalRepo {
    pub url: String,
    stop: CancellationToken,
    _dir: tempfile::TempDir,
}

impl Drop for LocalRepo {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn git(dir: &Path, args: &[&str]) -> anyhow::Result<()> {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=Soak", "-c", "user.email=soak@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .context("cannot run git: the soak packs a local repository and needs git on PATH")?;
    anyhow::ensure!(
        output.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(())
}

/// Builds a repository of a few dozen small source files with two commits and serves it.
pub async fn serve() -> anyhow::Result<LocalRepo> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("soak.git");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&work)?;
    git(&work, &["init", "-q"])?;
    for module in 0..24 {
        let path = work.join(format!("src/module_{module}.rs"));
        std::fs::create_dir_all(path.parent().context("a parent")?)?;
        let body: String = (0..40)
            .map(|line| {
                format!("pub fn f_{module}_{line}(x: u64) -> u64 {{ x * {line} + {module} }}\n")
            })
            .collect();
        std::fs::write(
            path,
            format!("//! Module {module} of the soak repository.\n{body}"),
        )?;
    }
    std::fs::write(
        work.join("README.md"),
        "# Soak\n\nA repository packed again and again.\n",
    )?;
    std::fs::write(work.join(".gitignore"), "target/\n")?;
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "-q", "-m", "first"])?;
    std::fs::write(work.join("CHANGELOG.md"), "## 1.0\n- first release\n")?;
    git(&work, &["add", "-A"])?;
    git(&work, &["commit", "-q", "-m", "second"])?;
    git(
        dir.path(),
        &[
            "clone",
            "-q",
            "--bare",
            "work",
            root.to_str().context("a UTF-8 path")?,
        ],
    )?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let url = format!("http://{}/soak.git", listener.local_addr()?);
    let router = axum::Router::new()
        .fallback(backend)
        .with_state(dir.path().to_owned());
    let stop = CancellationToken::new();
    let stopped = stop.clone();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stopped.cancelled_owned())
            .await;
    });
    Ok(LocalRepo {
        url,
        stop,
        _dir: dir,
    })
}

/// Answers one request from the repositories under `root`.
async fn backend(
    State(root): State<std::path::PathBuf>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match git_http::respond(&root, &method, &uri, &headers, body).await {
        Ok(response) => response,
        Err(error) => (StatusCode::BAD_GATEWAY, format!("{error:#}")).into_response(),
    }
}
