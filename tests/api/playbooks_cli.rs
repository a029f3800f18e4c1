//! `codifier playbooks validate` and `codifier playbooks list`, through the binary.

use std::process::{Command, Output};

use serde_json::Value;

fn codifier(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_codifier"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("API_AUTH_TOKEN")
        .env_remove("CODIFIER_PLAYBOOKS_DIR")
        .env_remove("CODIFIER_TEMPLATES_DIR")
        .env("CODIFIER_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run codifier")
}

#[test]
fn validate_accepts_each_shipped_playbook_and_prints_its_outline() {
    for file in [
        "initialize-project",
        "brownfield-onboard",
        "research-and-analyze",
    ] {
        let path = format!("{}/playbooks/{file}.yaml", env!("CARGO_MANIFEST_DIR"));
        let output = codifier(&["playbooks", "validate", &path], &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{file}: {stderr}");
        let outline: Value = serde_json::from_slice(&output.stdout).expect("JSON");
        assert_eq!(outline["id"], file);
        assert!(stderr.contains("is a valid playbook"), "{stderr}");
    }
}

#[test]
fn validate_names_the_file_the_step_and_the_reason_of_a_mistake() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "id: broken\nname: Broken\nrole: developer\ndescription: x\nversion: 1\nsteps:\n  - id: first\n    title: First\n    prompt: Go.\n    action: teleport\n",
    )
    .unwrap();
    let output = codifier(&["playbooks", "validate", path.to_str().unwrap()], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("broken.yaml, step `first`: unknown action `teleport`"),
        "{stderr}"
    );
}

#[test]
fn list_shows_the_shipped_playbooks_and_a_configured_directory_adds_and_overrides() {
    let output = codifier(&["playbooks", "list"], &[]);
    let all: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "brownfield-onboard",
            "initialize-project",
            "research-and-analyze"
        ]
    );

    let dir = tempfile::tempdir().unwrap();
    let extra = "id: extra\nname: Extra\nrole: researcher\ndescription: x\nversion: 2\nsteps:\n  - id: ask\n    title: Ask\n    prompt: Go.\n    action: store\n    collect: answer\n";
    std::fs::write(dir.path().join("extra.yaml"), extra).unwrap();
    let replaced = extra.replace("id: extra", "id: initialize-project");
    std::fs::write(dir.path().join("init.yaml"), replaced).unwrap();
    let output = codifier(
        &["playbooks", "list"],
        &[("CODIFIER_PLAYBOOKS_DIR", dir.path().to_str().unwrap())],
    );
    let all: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let ids: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "brownfield-onboard",
            "extra",
            "initialize-project",
            "research-and-analyze"
        ]
    );
    let init = all
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "initialize-project")
        .unwrap();
    assert_eq!(
        init["steps"].as_array().unwrap().len(),
        1,
        "the directory's version wins"
    );
}

#[test]
fn a_broken_playbook_directory_stops_the_server_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "id: bad\n").unwrap();
    let db = format!("sqlite://{}", dir.path().join("c.db").display());
    let output = codifier(
        &["serve", "--listen", "127.0.0.1:0"],
        &[
            ("CODIFIER_PLAYBOOKS_DIR", dir.path().to_str().unwrap()),
            ("DATABASE_URL", &db),
        ],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.yaml: missing field `name`"),
        "{stderr}"
    );
}
