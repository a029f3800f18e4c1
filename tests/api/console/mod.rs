//! The web console over plain HTTP: its session cookie's flags, CSRF and role refusals, project
//! isolation (including a guessed memory id in the URL), revocation ending a session, sessions
//! surviving a restart and expiring, the key never reaching the log ([`access`]), and the forms
//! that change memories, keys and webhooks ([`changes`]), the Plans pages ([`plans`]), the
//! pages that only read ([`reading`]), and Guardrails, one playbook session, the Server page's
//! figures and the Projects page's counts ([`pages`]). The browser tests in tests/console drive the same pages
//! in Chromium.

mod access;
mod changes;
mod pages;
mod plans;
mod reading;

use codifier::domain::{Actor, MemoryDraft, MemoryType};
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use uuid::Uuid;

use crate::helpers::TestServer;

/// A form's fields as a request body.
pub(super) fn encode(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap()
}

/// A client that shows redirects instead of following them.
pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in browser, as far as the server can tell: the cookie and the page's CSRF token.
pub(super) struct Browser {
    pub(super) base: String,
    pub(super) cookie: String,
    pub(super) csrf: String,
}

/// The value of `name="csrf" value="…"` in a page.
pub(super) fn csrf_in(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    html[start..start + 64].to_owned()
}

pub(super) async fn sign_in_at(base: &str, key: &str) -> Browser {
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

pub(super) async fn sign_in(server: &TestServer, key: &str) -> Browser {
    sign_in_at(&server.url(""), key).await
}

impl Browser {
    pub(super) async fn get(&self, path: &str) -> (u16, String) {
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

    pub(super) async fn post(&self, path: &str, fields: &[(&str, &str)]) -> u16 {
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

pub(super) fn actor() -> Actor {
    Actor {
        label: "local".into(),
        tool: "test".into(),
    }
}

pub(super) async fn memory(server: &TestServer, project: Uuid, title: &str) -> Uuid {
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
