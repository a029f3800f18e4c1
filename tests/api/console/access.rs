//! Who gets in and what they reach: cookie flags, CSRF, roles, project isolation, revocation,
//! restarts, expiry and logs.

use std::process::{Command, Stdio};
use std::time::Duration;

use codifier::domain::Role;
use reqwest::header::{LOCATION, SET_COOKIE};

use super::{Browser, client, encode, memory, sign_in, sign_in_at};
use crate::helpers::{Backend, TestServer, backends};

#[tokio::test]
async fn the_console_session_cookie_is_http_only_strict_scoped_and_secure_behind_https() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("flags").await;
        let key = server.key(project.id, Role::Read).await;
        for (proto, secure) in [(None, false), (Some("https"), true)] {
            let mut request = client()
                .post(server.url("/console/sign-in"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(encode(&[("key", key.as_str())]));
            if let Some(proto) = proto {
                request = request.header("x-forwarded-proto", proto);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), 303);
            let cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
            for flag in [
                "HttpOnly",
                "SameSite=Strict",
                "Path=/console",
                "Max-Age=43200",
            ] {
                assert!(cookie.contains(flag), "{flag} missing in {cookie}");
            }
            assert_eq!(cookie.contains("; Secure"), secure, "{cookie}");
            assert!(!cookie.contains(&key), "the cookie never carries the key");
        }
        let wrong = client()
            .post(server.url("/console/sign-in"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(&[("key", "cdf_not_a_key")]))
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 401);
        assert!(wrong.headers().get(SET_COOKIE).is_none());
    }
}

#[tokio::test]
async fn a_console_form_without_its_csrf_token_is_refused_and_changes_nothing() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("csrf").await;
        let key = server.key(project.id, Role::Write).await;
        let id = memory(&server, project.id, "kept").await;
        let browser = sign_in(&server, &key).await;
        let delete = format!("/console/projects/{}/memories/{id}/delete", project.id);
        assert_eq!(browser.post(&delete, &[]).await, 403, "no token");
        let forged = "0".repeat(64);
        assert_eq!(browser.post(&delete, &[("csrf", &forged)]).await, 403);
        assert!(
            server
                .store
                .get_memory(project.id, id)
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(browser.post(&delete, &[("csrf", &browser.csrf)]).await, 303);
        assert!(
            server
                .store
                .get_memory(project.id, id)
                .await
                .unwrap()
                .is_none()
        );
        let signed_out = Browser {
            cookie: String::new(),
            ..browser
        };
        assert_eq!(
            signed_out.post(&delete, &[("csrf", &forged)]).await,
            401,
            "a form without a session is refused, not redirected"
        );
    }
}

#[tokio::test]
async fn a_key_for_one_project_never_sees_another_through_the_console() {
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let (mine, theirs) = (server.project("mine").await, server.project("theirs").await);
        let key = server.key(mine.id, Role::Admin).await;
        let secret = memory(&server, theirs.id, "their secret").await;
        let browser = sign_in(&server, &key).await;
        let (_, projects) = browser.get("/console").await;
        assert!(projects.contains("mine") && !projects.contains("theirs"));
        for path in [
            format!("/console/projects/{}/memories", theirs.id),
            format!("/console/projects/theirs/memories/{secret}"),
            format!("/console/projects/{}/keys", theirs.id),
            format!("/console/projects/{}/events", theirs.id),
        ] {
            let (status, body) = browser.get(&path).await;
            assert_eq!(status, 403, "{path}");
            assert!(!body.contains("their secret"));
        }
        // A guessed id under the key's own project is simply not there.
        let (status, body) = browser
            .get(&format!("/console/projects/{}/memories/{secret}", mine.id))
            .await;
        assert_eq!(status, 404, "{body}");
        assert!(!body.contains("their secret"));
        let delete = format!("/console/projects/{}/memories/{secret}/delete", mine.id);
        assert_eq!(browser.post(&delete, &[("csrf", &browser.csrf)]).await, 404);
        let delete = format!("/console/projects/{}/memories/{secret}/delete", theirs.id);
        assert_eq!(browser.post(&delete, &[("csrf", &browser.csrf)]).await, 403);
        assert!(
            server
                .store
                .get_memory(theirs.id, secret)
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn a_read_key_sees_no_edit_controls_and_its_forged_posts_are_refused() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("reader").await;
    let key = server.key(project.id, Role::Read).await;
    let id = memory(&server, project.id, "look only").await;
    let browser = sign_in(&server, &key).await;
    let page = format!("/console/projects/{}/memories/{id}", project.id);
    let (status, html) = browser.get(&page).await;
    assert_eq!(status, 200);
    assert!(html.contains("look only"));
    for control in ["/edit\"", "/delete\"", "/restore\"", "/keys\""] {
        assert!(!html.contains(control), "{control} shown to a read key");
    }
    assert_eq!(browser.get(&format!("{page}/edit")).await.0, 403);
    let fields = [
        ("csrf", browser.csrf.as_str()),
        ("title", "changed"),
        ("memory_type", "learning"),
        ("content", "changed"),
    ];
    assert_eq!(browser.post(&format!("{page}/edit"), &fields).await, 403);
    assert_eq!(
        browser
            .post(&format!("{page}/delete"), &[("csrf", &browser.csrf)])
            .await,
        403
    );
    let keys = format!("/console/projects/{}/keys", project.id);
    assert_eq!(browser.get(&keys).await.0, 403);
    let create = [("csrf", browser.csrf.as_str()), ("role", "admin")];
    assert_eq!(browser.post(&keys, &create).await, 403);
    let kept = server
        .store
        .get_memory(project.id, id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.title, "look only");
    assert_eq!(browser.get("/console/server").await.0, 403);
}

#[tokio::test]
async fn revoking_a_key_ends_its_console_session_within_the_key_cache_window() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("revoked").await;
    let key = server.key(project.id, Role::Write).await;
    let browser = sign_in(&server, &key).await;
    server.revoke(&key).await;
    // The test server trusts a checked key for 1 s (CODIFIER_KEY_CACHE_SECONDS).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, location) = browser.get("/console").await;
    assert_eq!(status, 303);
    assert_eq!(location, "/console/sign-in?ended=1");
    let (status, _) = browser.get("/console").await;
    assert_eq!(status, 303, "the session is gone for good");
}

#[tokio::test]
async fn a_console_session_survives_a_server_restart() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("restart").await;
    let key = server.key(project.id, Role::Read).await;
    let browser = sign_in(&server, &key).await;
    let (database, address) = (server.database.clone(), server.address);
    server.stop().await;
    let again = TestServer::start_on(database, address).await;
    let (status, html) = browser.get("/console").await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("restart"));
    again.stop().await;
}

#[tokio::test]
async fn a_browser_asking_for_the_root_is_sent_to_the_console_and_other_clients_are_not() {
    let server = TestServer::start(Backend::Sqlite).await;
    let browser = client()
        .get(server.url("/"))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), 303);
    assert_eq!(browser.headers()[LOCATION], "/console");
    let other = client().get(server.url("/")).send().await.unwrap();
    assert_eq!(other.status(), 404);
    let signed_out = client().get(server.url("/console")).send().await.unwrap();
    assert_eq!(signed_out.headers()[LOCATION], "/console/sign-in");
}

/// A child process killed when dropped.
struct KilledOnDrop(Option<std::process::Child>);

impl Drop for KilledOnDrop {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test]
async fn the_key_used_to_sign_in_to_the_console_never_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("c.db").display());
    let run = |args: &[&str]| crate::helpers::codifier_json(&database, args);
    run(&["projects", "create", "--name", "logs"]);
    let created = run(&["keys", "create", "--project", "logs", "--role", "write"]);
    let key = created["key"].as_str().unwrap().to_owned();
    let addr_file = dir.path().join("addr");
    let child = Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &database)
        .env("CODIFIER_EMBEDDINGS", "none")
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("CODIFIER_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stopped however the test ends, so a failed assertion leaves no server behind.
    let mut server = KilledOnDrop(Some(child));
    let mut address = String::new();
    for _ in 0..200 {
        address = std::fs::read_to_string(&addr_file).unwrap_or_default();
        if !address.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let base = format!("http://{address}");
    let browser = sign_in_at(&base, &key).await;
    let (status, _) = browser
        .get("/console/projects/logs/memories?q=anything")
        .await;
    assert_eq!(status, 200);
    // Another last character: a key that already ends in `x` would otherwise stay right.
    let last = if key.ends_with('x') { 'y' } else { 'x' };
    let wrong = format!("{}{last}", &key[..key.len() - 1]);
    let refused = client()
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("key", wrong.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let mut child = server.0.take().unwrap();
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(logs.contains("console sign-in"), "{logs}");
    assert!(!logs.contains(&key), "the key never reaches the logs");
    assert!(!logs.contains(&wrong), "nor does a wrong one");
    let token = browser.cookie.split('=').nth(1).unwrap();
    assert!(!logs.contains(token), "nor the session token");
}

#[tokio::test]
async fn an_expired_console_session_is_never_found_and_is_swept() {
    use codifier::domain::{ConsoleSession, ConsoleSubject, now};
    for backend in backends() {
        let server = TestServer::start(backend).await;
        let project = server.project("expiry").await;
        let key = server.key(project.id, Role::Read).await;
        let keys = server.store.list_api_keys(Some(project.id)).await.unwrap();
        let session = |hash: &str, hours: i64| ConsoleSession {
            token_hash: hash.into(),
            subject: ConsoleSubject::Key {
                id: keys[0].id,
                prefix: keys[0].prefix.clone(),
            },
            role: Role::Read,
            project_id: Some(project.id),
            csrf_token: "c".repeat(64),
            created_at: now() - chrono::Duration::hours(13),
            expires_at: now() + chrono::Duration::hours(hours),
        };
        let store = &server.store;
        let (old, live) = (session("old", -1), session("live", 1));
        store.create_console_session(&old).await.unwrap();
        store.create_console_session(&live).await.unwrap();
        assert!(store.find_console_session("old").await.unwrap().is_none());
        assert_eq!(
            store.find_console_session("live").await.unwrap(),
            Some(live)
        );
        assert_eq!(store.delete_expired_console_sessions().await.unwrap(), 1);
        // Signing in sweeps expired sessions too; the live one stays.
        sign_in(&server, &key).await;
        assert!(store.find_console_session("live").await.unwrap().is_some());
    }
}
