//! Test fixtures for the packer: git repositories built in temp directories (including nasty
//! ones), and a real smart-HTTP git server — `git http-backend` run as CGI behind a tiny axum
//! server on 127.0.0.1, through the same bridge as the soak's (`codifier::cli::bench::git_http`)
//! — that can demand Basic credentials and records what it was sent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// The fake AWS access key id planted in the nasty repository.
pub const FAKE_AWS_KEY: &str = "AKIAZ7QWERTYUIOP2345";

/// Runs git in `dir`, panicking with its output on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "init.defaultBranch=main",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run git");
    assert!(
        output.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn write(root: &Path, path: &str, contents: impl AsRef<[u8]>) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// A repository with ordinary code and everything a packer must not be fooled by: symlinks
/// pointing outside, a 50 MB file, binary files, a non-UTF-8 file name and content, a file with
/// a fake AWS key, lock files, vendored code, and ignore files. Returns the repository's path
/// (inside `parent`, next to `outside.txt`, which must never be read).
pub fn nasty_repo(parent: &Path) -> PathBuf {
    let root = parent.join("nasty");
    std::fs::create_dir_all(&root).unwrap();
    write(parent, "outside.txt", "OUTSIDE-THE-REPOSITORY\n");
    git(&root, &["init", "-q"]);
    write(
        &root,
        "README.md",
        "# Nasty\n\nA repository full of traps.\n",
    );
    write(
        &root,
        "src/main.rs",
        "fn main() {\n    println!(\"hello from main\");\n}\n",
    );
    write(
        &root,
        "src/lib.rs",
        "//! The library.\npub fn add(a: u32, b: u32) -> u32 {\n    a + b\n}\n",
    );
    write(&root, "a/b/c/deep.txt", "deep file\n");
    write(
        &root,
        "config/aws.ini",
        format!("[default]\naws_access_key_id = {FAKE_AWS_KEY}\nregion = eu-west-1\n"),
    );
    write(&root, "Cargo.lock", "# lock file\n");
    write(&root, "vendor/dep/lib.rs", "// vendored\n");
    write(&root, "node_modules/pkg/index.js", "module.exports = 1;\n");
    write(&root, "assets/logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    write(&root, "data/blob.dat", b"header\0\x01\x02binary");
    write(&root, "latin1.txt", b"caf\xe9 au lait\n");
    write(
        &root,
        "big.txt",
        "0123456789abcdef\n".repeat(50 * 1024 * 1024 / 17 + 1),
    );
    write(&root, ".gitignore", "ignored.log\n");
    write(&root, "ignored.log", "ignored by .gitignore\n");
    write(&root, ".codifierignore", "private-notes.md\n");
    write(&root, "private-notes.md", "ignored by .codifierignore\n");
    write(&root, ".repomixignore", "legacy/\n");
    write(&root, "legacy/old.txt", "ignored by .repomixignore\n");
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"caf\xe9.txt");
        std::fs::write(root.join(name), "a file whose name is not UTF-8\n").unwrap();
    }
    std::os::unix::fs::symlink("/etc/passwd", root.join("passwd-link")).unwrap();
    std::os::unix::fs::symlink("../outside.txt", root.join("escape-link")).unwrap();
    std::os::unix::fs::symlink(parent, root.join("parent-dir-link")).unwrap();
    git(&root, &["add", "-A"]);
    git(
        &root,
        &["add", "-f", "Cargo.lock", "vendor", "node_modules"],
    );
    git(&root, &["commit", "-q", "-m", "nasty"]);
    root
}

/// A small repository with two commits and a tag on the first: `v1` holds `version.txt` = "one",
/// `main` holds "two". Returns (path, first commit, second commit).
pub fn versioned_repo(parent: &Path) -> (PathBuf, String, String) {
    let root = parent.join("versioned");
    std::fs::create_dir_all(&root).unwrap();
    git(&root, &["init", "-q"]);
    write(&root, "version.txt", "one\n");
    write(&root, "src/app.py", "print('hello')\n");
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "one"]);
    let first = git(&root, &["rev-parse", "HEAD"]);
    git(&root, &["tag", "v1"]);
    write(&root, "version.txt", "two\n");
    git(&root, &["commit", "-q", "-am", "two"]);
    let second = git(&root, &["rev-parse", "HEAD"]);
    (root, first, second)
}

/// A smart-HTTP git server on 127.0.0.1 serving the bare repositories under its root.
pub struct GitServer {
    pub address: std::net::SocketAddr,
    /// Every `Authorization` header received, in order.
    pub seen_authorization: Arc<Mutex<Vec<String>>>,
    _root: tempfile::TempDir,
    shutdown: tokio_util::sync::CancellationToken,
}

#[derive(Clone)]
struct ServerState {
    root: PathBuf,
    required: Option<String>,
    seen: Arc<Mutex<Vec<String>>>,
}

impl GitServer {
    /// Serves bare clones of `repos` (name → working repository). With `required`, every request
    /// without exactly that `Authorization` header gets `401` with a Basic challenge.
    pub async fn start(repos: &[(&str, &Path)], required: Option<String>) -> Self {
        let root = tempfile::tempdir().unwrap();
        for (name, path) in repos {
            let bare = root.path().join(name);
            git(
                root.path(),
                &[
                    "clone",
                    "-q",
                    "--bare",
                    path.to_str().unwrap(),
                    bare.to_str().unwrap(),
                ],
            );
            git(&bare, &["config", "uploadpack.allowAnySHA1InWant", "true"]);
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ServerState {
            root: root.path().to_path_buf(),
            required,
            seen: seen.clone(),
        };
        let app = axum::Router::new().fallback(cgi).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .unwrap();
        });
        Self {
            address,
            seen_authorization: seen,
            _root: root,
            shutdown,
        }
    }

    pub fn url(&self, name: &str) -> String {
        format!("http://{}/{name}", self.address)
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn cgi(
    State(state): State<ServerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let authorization = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if let Some(value) = &authorization {
        state.seen.lock().unwrap().push(value.clone());
    }
    if let Some(required) = &state.required
        && authorization.as_deref() != Some(required.as_str())
    {
        return (
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Basic realm=\"git\"")],
            "credentials needed",
        )
            .into_response();
    }
    codifier::cli::bench::git_http::respond(&state.root, &method, &uri, &headers, body)
        .await
        .unwrap_or_else(|error| (StatusCode::BAD_GATEWAY, format!("{error:#}")).into_response())
}
