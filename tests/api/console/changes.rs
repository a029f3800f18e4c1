//! Forms that change things: editing a memory, creating and revoking a key.

use std::time::Duration;

use codifier::domain::{MemoryType, Role};
use reqwest::header::COOKIE;

use super::{actor, client, encode, memory, sign_in};
use crate::helpers::{Backend, OPERATOR_TOKEN, TestServer, text_draft};

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
async fn a_write_key_edits_a_memory_and_the_old_version_becomes_a_revision() {
    let server = TestServer::start(Backend::Sqlite).await;
    let project = server.project("edits").await;
    let key = server.key(project.id, Role::Write).await;
    let draft = text_draft(MemoryType::Rule, "Review", "two reviewers");
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

#[tokio::test]
async fn an_admin_manages_webhooks_and_reads_their_delivery_log_from_the_console() {
    let server = TestServer::start_with(Backend::Sqlite, |config| {
        config.events.allow_private = true;
    })
    .await;
    let project = server.project("hooks").await;
    let writer = sign_in(&server, &server.key(project.id, Role::Write).await).await;
    let page = format!("/console/projects/{}/webhooks", project.id);
    assert_eq!(writer.get(&page).await.0, 403, "webhooks are for admins");
    let admin = sign_in(&server, &server.key(project.id, Role::Admin).await).await;
    // Nothing listens on port 9 here: each delivery attempt is refused and logged.
    let url = "http://127.0.0.1:9/hook";
    let created = client()
        .post(server.url(&page))
        .header(COOKIE, &admin.cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(encode(&[
            ("csrf", &admin.csrf),
            ("url", url),
            ("event_types", ""),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let html = created.text().await.unwrap();
    assert!(html.contains("signing secret"), "{html}");
    let webhook = server
        .store
        .list_webhooks(project.id)
        .await
        .unwrap()
        .remove(0);
    let (_, listed) = admin.get(&page).await;
    // minijinja escapes `/` in HTML, so the host stands for the URL.
    assert!(listed.contains("127.0.0.1:9") && !listed.contains("created-secret"));
    memory(&server, project.id, "an event to deliver").await;
    let mut log = String::new();
    for _ in 0..100 {
        log = admin.get(&page).await.1;
        if log.contains("Latest delivery attempts") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(log.contains("Latest delivery attempts"), "{log}");
    let delete = format!("{page}/{}/delete", webhook.id);
    assert_eq!(writer.post(&delete, &[("csrf", &writer.csrf)]).await, 403);
    assert_eq!(admin.post(&delete, &[("csrf", &admin.csrf)]).await, 303);
    assert!(
        server
            .store
            .list_webhooks(project.id)
            .await
            .unwrap()
            .is_empty()
    );
}
