//! `codifier connect`: the entry each client needs, printed or merged into a file on disk
//! without disturbing what else the file holds.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn connect(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codifier"))
        .arg("connect")
        .args(args)
        .env_remove("CODIFIER_API_KEY")
        .output()
        .expect("run codifier connect")
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

    let output = connect(&["claude-desktop", "--url", "http://localhost:8080/mcp/"]);
    ok(&output);
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let entry = &printed["mcpServers"]["codifier"];
    assert_eq!(entry["command"], "npx");
    let args: Vec<&str> = entry["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(args.contains(&"mcp-remote") && args.contains(&"http://localhost:8080/mcp"));
    assert_eq!(
        entry["env"]["CODIFIER_AUTH_HEADER"], "Bearer ${CODIFIER_API_KEY}",
        "without --key the key comes from the environment, not the file"
    );
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
}

#[test]
fn a_url_that_is_not_http_or_carries_credentials_is_refused() {
    for url in ["ftp://c.example", "c.example", "https://user:pw@c.example"] {
        let output = connect(&["cursor", "--url", url]);
        assert!(!output.status.success(), "{url} was accepted");
        assert!(String::from_utf8_lossy(&output.stderr).contains("--url"));
    }
}
