//! The `codifier` binary itself: help, configuration errors, the key and project commands,
//! the embedded default database, and a clean stop on SIGTERM.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::Value;

fn codifier(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codifier"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("API_AUTH_TOKEN")
        .env_remove("PORT");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run codifier")
}

fn stdout_json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

#[test]
fn every_command_explains_itself_with_help() {
    for command in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["stdio", "--help"],
        vec!["migrate", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "revoke", "--help"],
        vec!["projects", "create", "--help"],
        vec!["projects", "list", "--help"],
        vec!["playbooks", "validate", "--help"],
        vec!["playbooks", "list", "--help"],
    ] {
        let output = codifier(&command, &[]);
        assert!(output.status.success(), "{command:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("Usage"),
            "{command:?}"
        );
    }
}

#[test]
fn a_malformed_setting_fails_at_start_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    for (name, value) in [
        ("PORT", "eighty"),
        ("CODIFIER_LISTEN", "localhost"),
        ("CODIFIER_LOG_FORMAT", "xml"),
        ("DATABASE_URL", "mysql://db/codifier"),
        ("API_AUTH_TOKEN", "short"),
        ("CODIFIER_KEY_CACHE_SECONDS", "soon"),
        ("CODIFIER_MAX_BODY_BYTES", "12"),
    ] {
        let mut env = vec![(name, value)];
        if name != "DATABASE_URL" {
            env.push(("DATABASE_URL", &url));
        }
        let output = codifier(&["serve"], &env);
        assert!(!output.status.success(), "{name}={value} was accepted");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(name), "{name}: {stderr}");
    }
}

#[test]
fn keys_are_shown_once_listed_without_secrets_and_revocable() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let env = [("DATABASE_URL", url.as_str())];
    let project = stdout_json(&codifier(&["projects", "create", "--name", "web"], &env));
    let created = stdout_json(&codifier(
        &[
            "keys",
            "create",
            "--project",
            "web",
            "--role",
            "read",
            "--label",
            "ci",
        ],
        &env,
    ));
    let secret = created["key"].as_str().unwrap();
    assert!(secret.starts_with("cdf_"));
    assert_eq!(created["project_id"], project["id"]);

    let listed = codifier(&["keys", "list", "--project", "web"], &env);
    let listing = String::from_utf8_lossy(&listed.stdout).to_string();
    assert!(listing.contains(created["prefix"].as_str().unwrap()));
    assert!(
        !listing.contains(secret) && !listing.contains("argon2"),
        "a listing never shows secrets"
    );

    let revoked = stdout_json(&codifier(
        &["keys", "revoke", created["prefix"].as_str().unwrap()],
        &env,
    ));
    assert!(revoked["revoked_at"].is_string());
    let unknown = codifier(&["keys", "revoke", "nosuchkey"], &env);
    assert!(!unknown.status.success());
    let duplicate = codifier(&["projects", "create", "--name", "web"], &env);
    assert!(String::from_utf8_lossy(&duplicate.stderr).contains("already exists"));
}

#[test]
fn with_no_database_url_an_sqlite_file_is_created_in_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().to_str().unwrap();
    let output = codifier(
        &["projects", "list"],
        &[("XDG_DATA_HOME", home), ("HOME", home)],
    );
    assert_eq!(stdout_json(&output), serde_json::json!([]));
    assert!(Path::new(home).join("codifier/codifier.db").exists());
}

#[test]
fn sigterm_closes_open_sse_streams_and_exits_zero_within_the_grace_period() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let addr_file = dir.path().join("addr");
    let token = "sigterm-test-operator-token";
    let mut child = Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &url)
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("CODIFIER_LOG", "warn")
        .env("CODIFIER_EMBEDDINGS", "none")
        .env("API_AUTH_TOKEN", token)
        .env("CODIFIER_SHUTDOWN_GRACE_SECONDS", "3")
        .spawn()
        .unwrap();
    for _ in 0..200 {
        if std::fs::read_to_string(&addr_file).is_ok_and(|a| !a.is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let address = std::fs::read_to_string(&addr_file).expect("the server announced its address");

    // A legacy SSE client holding its stream open.
    let mut sse = std::net::TcpStream::connect(address.trim()).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        sse,
        "GET /sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    )
    .unwrap();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&received).contains("event: endpoint") {
        let read = sse.read(&mut buffer).expect("the stream opened");
        assert!(read > 0, "the stream closed before its first event");
        received.extend_from_slice(&buffer[..read]);
    }

    let stopping = std::time::Instant::now();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // The server ends the stream itself: the client sees the end, not a hang.
    loop {
        match sse.read(&mut buffer) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(error) => panic!("the SSE stream was not closed on SIGTERM: {error}"),
        }
    }
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(8),
            "still running 8 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

#[test]
fn a_command_prints_only_its_result_and_points_at_the_command_line_for_unknown_projects() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let env = &[("DATABASE_URL", url.as_str())];
    let created = codifier(&["projects", "create", "--name", "quiet"], env);
    stdout_json(&created);
    assert!(
        created.stderr.is_empty(),
        "stderr: {}",
        String::from_utf8_lossy(&created.stderr)
    );

    for command in [
        vec!["keys", "create", "--project", "nope", "--role", "read"],
        vec!["keys", "list", "--project", "nope"],
        vec!["pack", "--project", "nope", "."],
    ] {
        let refused = codifier(&command, env);
        assert!(!refused.status.success(), "{command:?}");
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert!(
            stderr.contains("`codifier projects list`") && !stderr.contains("manage_projects"),
            "{command:?}: {stderr}"
        );
    }
}
