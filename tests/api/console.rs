//! The web console over plain HTTP: its session cookie's flags, CSRF and role refusals, project
//! isolation (including a guessed memory id in the URL), revocation ending a session, sessions
//! surviving a restart, and the key never reaching the log. The browser tests in tests/console
//! drive the same pages in Chromium.

use std::process::{Command, Stdio};
use std::time::Duration;

use codifier::domain::{Actor, MemoryDraft, MemoryType, Role};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use uuid::Uuid;

use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, backends};

/// A form's fields as a request body.
fn encode(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

/// A client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in browser, as far as the server can tell: the cookie and the page's CSRF token.
struct Browser {
    base: String,
    cookie: String,
    csrf: String,
}

/// The value of `name="csrf" value="…"` in a page.
fn csrf_in(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[start..start + 64].to_owned()
}

async fn sign_in_at(base: &str, key: &str) -> Browser {
    let response = client()
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("key", key)]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        303,
        "signing in redirects to the console"
    );
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    let mut browser = Browser {
        base: base.to_owned(),
        cookie,
        csrf: String::new(),
    };
    let (status, html) = browser.get("/console").await;
    assert_eq!(status, 200, "{html}");
    browser.csrf = csrf_in(&html);
    browser
}

async fn sign_in(server: &TestServer, key: &str) -> Browser {
    sign_in_at(&server.url(""), key).await
}

impl Browser {
    async fn get(&self, path: &str) -> (u16, String) {
        let response = client()
            .get(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(LOCATION)
            .map(|l| l.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        (status, location.unwrap_or(body))
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> u16 {
        client()
            .post(format!("{}{path}", self.base))
            .header(COOKIE, &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(encode(fields))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn actor() -> Actor {
    Actor {
        label: "local".into(),
        tool: "test".into(),
    }
}

async fn memory(server: &TestServer, project: Uuid, title: &str) -> Uuid {
    let draft = MemoryDraft {
        memory_type: MemoryType::Learning,
        title: title.into(),
        content: serde_json::Value::String(format!("what we learnt about {title}")),
        category: None,
        description: None,
        confidence: 1.0,
        tags: vec!["console".into()],
        source_role: None,
    };
    let (memory, _) = server
        .store
        .create_memory(project, &actor(), &draft)
        .await
        .unwrap();
    memory.id
}

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
    let prefix = codifier::auth::keys::prefix_of(&key).unwrap();
    server.store.revoke_api_key(&actor(), prefix).await.unwrap();
    // The test server trusts a checked key for 1 s (CODIFIER_KEY_CACHE_SECONDS).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, location) = browser.get("/console").await;
    assert_eq!(status, 303);
    assert_eq!(location, "/console/sign-in?ended=1");
    let (status, _) = browser.get("/console").await;
    assert_eq!(status, 303, "the session is gone for good");
}

#[tokio::test]
async fn an_admin_creates_a_key_shown_once_and_revokes_it_from_the_console() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("keys").await;
    let browser = sign_in(&server, OPERATOR_TOKEN).await;
    let created = client()
        .post(server.url(&format!("/console/projects/{}/keys", project.id)))
        .header(COOKIE, &browser.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("csrf", browser.csrf.as_str()),
            ("role", "read"),
            ("label", "ci"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let html = created.text().await.unwrap();
    let start = html.find("value=\"cdf_").expect("the new key is shown") + 7;
    let new_key = &html[start..start + 55];
    let reader = sign_in(&server, new_key).await;
    assert_eq!(reader.get("/console").await.0, 200);
    let keys = server.store.list_api_keys(Some(project.id)).await.unwrap();
    let (_, listed) = browser
        .get(&format!("/console/projects/{}/keys", project.id))
        .await;
    assert!(!listed.contains(new_key), "the key is shown only once");
    assert!(listed.contains(&keys[0].prefix));
    let revoke = format!(
        "/console/projects/{}/keys/{}/revoke",
        project.id, keys[0].id
    );
    assert_eq!(browser.post(&revoke, &[("csrf", &browser.csrf)]).await, 303);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(reader.get("/console").await.0, 303);
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

#[tokio::test]
async fn the_key_used_to_sign_in_to_the_console_never_reaches_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let database = format!("sqlite://{}", dir.path().join("c.db").display());
    let run = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_codifier"))
            .args(args)
            .env("DATABASE_URL", &database)
            .env("CODIFIER_EMBEDDINGS", "none")
            .output()
            .unwrap();
        assert!(output.status.success());
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    run(&["projects", "create", "--name", "logs"]);
    let created = run(&["keys", "create", "--project", "logs", "--role", "write"]);
    let key = created["key"].as_str().unwrap().to_owned();
    let addr_file = dir.path().join("addr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_codifier"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &database)
        .env("CODIFIER_EMBEDDINGS", "none")
        .env("CODIFIER_ADDR_FILE", &addr_file)
        .env("CODIFIER_LOG", "trace")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    let wrong = format!("{}x", &key[..key.len() - 1]);
    let refused = client()
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[("key", wrong.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
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
async fn a_write_key_edits_a_memory_and_the_old_version_becomes_a_revision() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("edits").await;
    let key = server.key(project.id, Role::Write).await;
    let draft = MemoryDraft {
        memory_type: MemoryType::Rule,
        title: "Review".into(),
        content: serde_json::json!({ "text": "two reviewers" }),
        category: None,
        description: None,
        confidence: 1.0,
        tags: vec![],
        source_role: None,
    };
    let (written, _) = server
        .store
        .create_memory(project.id, &actor(), &draft)
        .await
        .unwrap();
    let browser = sign_in(&server, &key).await;
    let page = format!("/console/projects/{}/memories/{}", project.id, written.id);
    let (status, form) = browser.get(&format!("{page}/edit")).await;
    assert_eq!(status, 200);
    assert!(form.contains(">two reviewers</textarea>"), "{form}");
    let fields = [
        ("csrf", browser.csrf.as_str()),
        ("title", "Review <rules>"),
        ("memory_type", "rule"),
        ("tags", "process, review"),
        ("description", ""),
        ("content", "three reviewers"),
        ("content_kind", "text"),
    ];
    assert_eq!(browser.post(&format!("{page}/edit"), &fields).await, 303);
    let edited = server
        .store
        .get_memory(project.id, written.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(edited.title, "Review <rules>");
    assert_eq!(
        edited.content,
        serde_json::json!({ "text": "three reviewers" })
    );
    assert_eq!(edited.tags, vec!["process", "review"]);
    let (_, html) = browser.get(&page).await;
    assert!(html.contains("Review &lt;rules&gt;"), "titles are escaped");
    assert!(html.contains("Restore revision 1"));
    let history = server
        .store
        .memory_history(project.id, written.id)
        .await
        .unwrap();
    assert_eq!(history[0].memory.content["text"], "two reviewers");
    assert_eq!(history[0].tool.as_deref(), Some("console"));
}
