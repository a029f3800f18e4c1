//! Rendering: the embedded templates (autoescaped HTML), the stylesheet and script, the headers
//! every console response carries (no caching, no framing, no script from elsewhere), and the
//! page chrome (who is signed in, the project in view, what they may do).

use std::sync::OnceLock;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value, context};

use super::ConsoleError;
use super::session::Signed;
use crate::auth::Identity;
use crate::domain::{Project, Role};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("error.html", include_str!("templates/error.html")),
    ("sign_in.html", include_str!("templates/sign_in.html")),
    ("projects.html", include_str!("templates/projects.html")),
    ("memories.html", include_str!("templates/memories.html")),
    ("memory.html", include_str!("templates/memory.html")),
    (
        "memory_edit.html",
        include_str!("templates/memory_edit.html"),
    ),
    ("keys.html", include_str!("templates/keys.html")),
    ("server.html", include_str!("templates/server.html")),
    ("events.html", include_str!("templates/events.html")),
    ("webhooks.html", include_str!("templates/webhooks.html")),
    ("playbooks.html", include_str!("templates/playbooks.html")),
    (
        "playbook_session.html",
        include_str!("templates/playbook_session.html"),
    ),
    ("snapshots.html", include_str!("templates/snapshots.html")),
    ("snapshot.html", include_str!("templates/snapshot.html")),
    (
        "oauth_consent.html",
        include_str!("templates/oauth_consent.html"),
    ),
    ("plans.html", include_str!("templates/plans.html")),
    ("plan.html", include_str!("templates/plan.html")),
    ("guardrails.html", include_str!("templates/guardrails.html")),
];

const STYLESHEET: &str = include_str!("templates/console.css");
const SCRIPT: &str = include_str!("templates/console.js");

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        for (name, source) in TEMPLATES {
            environment
                .add_template(name, source)
                .unwrap_or_else(|error| panic!("console template {name}: {error}"));
        }
        environment
    })
}

/// Headers every console response carries.
fn harden(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Not `no-referrer`: with it, browsers send `Origin: null` on form posts, and the
    // same-origin check (session::same_origin) must see the real origin.
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
}

/// Renders template `name` as a 200 HTML page.
pub fn page(name: &str, context: Value) -> Result<Response, ConsoleError> {
    let html = environment()
        .get_template(name)
        .and_then(|template| template.render(context))
        .map_err(|error| ConsoleError::internal("rendering a console page", error))?;
    let mut response = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    harden(&mut response);
    Ok(response)
}

/// Renders a page for a signed-in user: `context` plus `me` (who, role, CSRF token) and
/// `project` (the one in view, with what the user may do there).
pub fn render(
    name: &str,
    signed: &Signed,
    project: Option<&Project>,
    context: Value,
) -> Result<Response, ConsoleError> {
    let identity = &signed.identity;
    let may =
        |needed: Role| project.is_some_and(|p| identity.authorize(p.id, &p.name, needed).is_ok());
    let role = match identity {
        Identity::Key { role, .. } => role.as_str(),
        _ => "operator",
    };
    let chrome = context! {
        me => context! {
            label => identity.label(),
            role,
            operator => identity.is_operator(),
            csrf => signed.session.csrf_token.clone(),
        },
        project => project.map(|p| context! {
            id => p.id.to_string(),
            name => p.name.clone(),
            can_write => may(Role::Write),
            is_admin => may(Role::Admin),
        }),
    };
    page(name, context! { ..chrome, ..context })
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    harden(&mut response);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    response
}

pub async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_template_parses() {
        for (name, _) in TEMPLATES {
            assert!(environment().get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn text_put_into_a_page_is_escaped() {
        let html = environment()
            .get_template("error.html")
            .and_then(|t| {
                t.render(context! { title => "t", status => 400, message => "<script>x</script>" })
            })
            .expect("renders");
        assert!(html.contains("&lt;script&gt;x"), "{html}");
        assert!(!html.contains("<script>x"));
    }
}
