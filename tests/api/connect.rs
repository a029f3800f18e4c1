//! `codifier connect`: the entry each client needs, printed or merged into a file on disk
//! without disturbing what else the file holds; Claude Desktop's entry is run as Claude Desktop
//! runs it (`npx mcp-remote`, from npm) against a server, and logs in.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn connect(args: &[&str]) -> Output {
    connect_with(args, &[])
}

fn connect_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codifier"));
    command
        .arg("connect")
        .args(args)
        .env_remove("CODIFIER_API_KEY")
        .env_remove("CODIFIER_LISTEN")
        .env_remove("PORT");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run codifier connect")
}

fn desktop_args(entry: &Value) -> Vec<&str> {
    entry["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn ok(output: &Output) {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn each_client_gets_its_own_shape_of_entry_pointing_at_the_mcp_endpoint() {
    let cases = [
        ("claude-code", "mcpServers", "url"),
        ("cursor", "mcpServers", "url"),
        ("windsurf", "mcpServers", "serverUrl"),
        ("vscode", "servers", "url"),
    ];
    for (client, section, url_field) in cases {
        let output = connect(&[
            client,
            "--url",
            "https://codifier-mcp.fly.dev",
            "--key",
            "cdf_k",
        ]);
        ok(&output);
        let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
        let entry = &printed[section]["codifier"];
        assert_eq!(
            entry[url_field], "https://codifier-mcp.fly.dev/mcp",
            "{client}"
        );
        assert_eq!(
            entry["headers"]["Authorization"], "Bearer cdf_k",
            "{client}"
        );
    }

    let output = connect(&[
        "claude-desktop",
        "--url",
        "http://localhost:8080/mcp/",
        "--key",
        "cdf_k",
    ]);
    ok(&output);
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = &printed["mcpServers"]["codifier"];
    assert_eq!(entry["command"], "npx");
    let args = desktop_args(entry);
    assert_eq!(
        args,
        [
            "-y",
            "mcp-remote",
            "http://localhost:8080/mcp",
            "--header",
            "Authorization:${CODIFIER_AUTH_HEADER}"
        ],
        "localhost needs no --allow-http"
    );
    assert_eq!(
        entry["env"]["CODIFIER_AUTH_HEADER"], "Bearer cdf_k",
        "one level of ${{…}}, filled by mcp-remote from the entry's env, which holds the key"
    );
}

#[test]
fn claude_desktop_takes_the_key_from_the_environment_here_or_refuses_without_one() {
    let output = connect_with(
        &["claude-desktop", "--url", "https://c.example"],
        &[("CODIFIER_API_KEY", "cdf_from_env")],
    );
    ok(&output);
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = &printed["mcpServers"]["codifier"];
    assert_eq!(entry["env"]["CODIFIER_AUTH_HEADER"], "Bearer cdf_from_env");
    assert!(!printed.to_string().contains("${CODIFIER_API_KEY}"));

    let output = connect(&["claude-desktop", "--url", "https://c.example"]);
    assert!(
        !output.status.success(),
        "an entry that cannot log in is not printed"
    );
    assert!(output.stdout.is_empty());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("--key") && error.contains("CODIFIER_API_KEY"),
        "{error}"
    );
}

#[test]
fn plain_http_to_another_host_gets_allow_http_for_mcp_remote() {
    for (url, allowed) in [
        ("http://10.1.2.3:8080", true),
        ("http://[::1]:8080", true),
        ("http://127.0.0.1:8080", false),
        ("https://c.example", false),
    ] {
        let output = connect(&["claude-desktop", "--url", url, "--key", "cdf_k"]);
        ok(&output);
        let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
        let args = desktop_args(&printed["mcpServers"]["codifier"]);
        assert_eq!(args.contains(&"--allow-http"), allowed, "{url}: {args:?}");
    }
}

#[test]
fn without_a_url_the_entry_points_at_the_server_on_this_machine() {
    let url_of = |env: &[(&str, &str)]| {
        let output = connect_with(&["claude-code"], env);
        ok(&output);
        let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
        printed["mcpServers"]["codifier"]["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(url_of(&[]), "http://127.0.0.1:8080/mcp");
    assert_eq!(
        url_of(&[("CODIFIER_LISTEN", "0.0.0.0:9191")]),
        "http://127.0.0.1:9191/mcp"
    );
    assert_eq!(url_of(&[("PORT", "7000")]), "http://127.0.0.1:7000/mcp");
    let output = connect_with(&["cursor"], &[("CODIFIER_LISTEN", "nowhere")]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--url"));
}

#[test]
fn without_a_key_no_secret_is_written_and_the_variable_is_named() {
    let output = connect(&["cursor", "--url", "https://c.example"]);
    ok(&output);
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        printed["mcpServers"]["codifier"]["headers"]["Authorization"],
        "Bearer ${env:CODIFIER_API_KEY}"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("CODIFIER_API_KEY"));
}

#[test]
fn writing_merges_into_an_existing_file_and_keeps_every_other_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp.json");
    let original = r#"{
  "theme": "dark",
  "mcpServers": { "zeta": { "url": "https://z.example", "alpha": 1 }, "other": { "command": "other-server", "args": ["--x"] } }
}"#;
    std::fs::write(&file, original).unwrap();
    let before: Value = serde_json::from_str(original).unwrap();
    let file_arg = file.to_str().unwrap();

    let args = [
        "cursor",
        "--url",
        "https://c.example",
        "--write",
        "--file",
        file_arg,
    ];
    ok(&connect(&args));
    let after = read_json(&file);
    assert_eq!(after["mcpServers"]["other"], before["mcpServers"]["other"]);
    assert_eq!(after["theme"], "dark");
    assert_eq!(
        after["mcpServers"]["codifier"]["url"],
        "https://c.example/mcp"
    );
    assert_eq!(
        read_json(&dir.path().join("mcp.json.bak")),
        before,
        "the previous file is kept as a backup"
    );

    // Running it again replaces our entry instead of adding a second one.
    let again = connect(&[
        "cursor",
        "--url",
        "https://d.example",
        "--write",
        "--file",
        file_arg,
    ]);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stderr).contains("Updated"));
    let servers = read_json(&file)["mcpServers"].as_object().unwrap().clone();
    assert_eq!(servers.len(), 3);
    assert_eq!(servers["codifier"]["url"], "https://d.example/mcp");
}

#[test]
fn writing_creates_a_missing_file_and_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(".vscode/mcp.json");
    let output = connect(&[
        "vscode",
        "--url",
        "https://c.example",
        "--write",
        "--file",
        file.to_str().unwrap(),
    ]);
    ok(&output);
    assert_eq!(read_json(&file)["servers"]["codifier"]["type"], "http");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "a new file that may hold a key is private");
    }
}

#[test]
fn a_file_that_is_not_plain_json_is_left_untouched_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp.json");
    let original = "{\n  // my servers\n  \"servers\": {}\n}\n";
    std::fs::write(&file, original).unwrap();
    let output = connect(&[
        "vscode",
        "--url",
        "https://c.example",
        "--write",
        "--file",
        file.to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(
        error.contains("not plain JSON") && error.contains("by hand"),
        "{error}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    let printed: Value = serde_json::from_slice(&output.stdout).expect("the entry is printed");
    assert_eq!(
        printed["servers"]["codifier"]["url"], "https://c.example/mcp",
        "the entry to paste by hand is on stdout"
    );
}

#[test]
fn a_url_that_is_not_http_or_carries_credentials_is_refused() {
    for url in ["ftp://c.example", "c.example", "https://user:pw@c.example"] {
        let output = connect(&["cursor", "--url", url]);
        assert!(!output.status.success(), "{url} was accepted");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--url"));
    }
}

/// The mcp-remote release whose argument handling `connect` follows (0.15: each `${VAR}` in a
/// `--header` value is replaced once from its environment), installed from npm once into the
/// build's temporary directory. `None` (the test is skipped, saying so) only when npm is absent
/// outside CI.
fn mcp_remote() -> Option<PathBuf> {
    const VERSION: &str = "0.15.1";
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("mcp-remote-{VERSION}"));
    if dir.join("node_modules/.bin/mcp-remote").exists() {
        return Some(dir);
    }
    let npm = Command::new("npm").arg("--version").output();
    if !npm.is_ok_and(|output| output.status.success()) {
        let in_ci = std::env::var("CI").is_ok_and(|ci| ci == "true");
        assert!(
            !in_ci,
            "CI=true but npm is missing: the Claude Desktop entry must be tried with mcp-remote"
        );
        eprintln!("SKIPPED: npm is not installed, so the Claude Desktop entry was not run");
        return None;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let installed = Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!("mcp-remote@{VERSION}"))
        .current_dir(&dir)
        .output()
        .expect("run npm install");
    assert!(
        installed.status.success(),
        "npm install mcp-remote@{VERSION}: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    Some(dir)
}

#[tokio::test]
async fn the_claude_desktop_entry_logs_in_through_mcp_remote_as_printed() {
    use crate::helpers::{Backend, fresh_database, test_config};
    use rmcp::ServiceExt;

    let Some(mcp_remote) = mcp_remote() else {
        return;
    };
    // A server on a loopback address mcp-remote does not count as local, so that the entry
    // must carry --allow-http to reach it over plain http.
    let database = fresh_database(Backend::Sqlite).await;
    let mut config = test_config(&database.url);
    config.allowed_hosts.push("127.0.0.2".into());
    let store = codifier::app::open_store(&config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let serving = tokio::spawn({
        let (store, shutdown) = (store.clone(), shutdown.clone());
        async move { codifier::http::serve(&config, store, listener, shutdown).await }
    });
    let project = codifier::knowledge::projects::create(
        &store,
        &codifier::auth::Identity::Local,
        "test",
        "desktop",
        None,
    )
    .await
    .unwrap();
    let generated = codifier::auth::keys::generate().unwrap();
    let actor = codifier::store::Actor {
        label: "local".into(),
        tool: "test".into(),
    };
    store
        .create_api_key(
            &actor,
            &codifier::store::NewApiKey {
                project_id: project.id,
                prefix: generated.prefix,
                hash: generated.hash,
                role: codifier::domain::Role::Read,
                label: None,
            },
        )
        .await
        .unwrap();

    // The key comes from CODIFIER_API_KEY where `connect` runs, as a user would export it.
    let output = connect_with(
        &["claude-desktop", "--url", &format!("http://{address}")],
        &[("CODIFIER_API_KEY", &generated.key)],
    );
    ok(&output);
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = &printed["mcpServers"]["codifier"];

    // Spawned as Claude Desktop spawns it: the command, the args and the entry's env over a
    // minimal environment (PATH and HOME, nothing of ours). npx finds the installed mcp-remote.
    let home = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(entry["command"].as_str().unwrap());
    command
        .args(desktop_args(entry))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", home.path())
        .env("npm_config_update_notifier", "false")
        .current_dir(&mcp_remote);
    for (name, value) in entry["env"].as_object().unwrap() {
        command.env(name, value.as_str().unwrap());
    }
    // mcp-remote logs every message on stderr; a failure shows in the handshake's error.
    let (transport, _) = rmcp::transport::TokioChildProcess::builder(command)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn npx");
    let client = tokio::time::timeout(std::time::Duration::from_secs(60), ().serve(transport))
        .await
        .expect("mcp-remote answered within a minute")
        .expect("the MCP handshake through mcp-remote");
    let tools = client.list_all_tools().await.expect("tools/list");
    assert!(
        tools.iter().any(|tool| tool.name == "fetch_context"),
        "{tools:?}"
    );
    client.cancel().await.ok();
    shutdown.cancel();
    let _ = serving.await;
}

#[tokio::test]
async fn a_key_that_is_still_a_variable_name_is_refused_saying_it_was_not_expanded() {
    let server = crate::helpers::TestServer::start(crate::helpers::Backend::Sqlite).await;
    for header in ["Bearer ${CODIFIER_API_KEY}", "${CODIFIER_AUTH_HEADER}"] {
        let response = reqwest::Client::new()
            .post(server.url("/mcp"))
            .header("authorization", header)
            .header("accept", "application/json, text/event-stream")
            .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{header}");
        let body = response.text().await.unwrap();
        assert!(
            body.contains("unexpanded_variable") && body.contains("not expanded"),
            "{header}: {body}"
        );
    }
    server.stop().await;
}

#[test]
fn connect_connector_prints_the_url_hosted_oauth_clients_take() {
    let output = connect(&["connector", "--url", "https://codifier.example"]);
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "https://codifier.example/mcp"
    );
    let hint = String::from_utf8_lossy(&output.stderr);
    assert!(
        hint.contains("custom connector") && hint.contains("consent page"),
        "{hint}"
    );
}
