//! The consent page: who is asking (the client's name and site, where the code will go), an API
//! key (or the operator token) in a form field, then which project and role that key carries
//! and the role to grant (a key can narrow, never widen; nor can the grant exceed the `scope`
//! the client asked for). Approving stores a grant bound to the
//! key and sends the person back to the client with `code` and `state`.
//!
//! The key travels only in POST bodies (never a URL, never a log line). Forms are protected as
//! the console's are: the same-origin check ([`same_origin`]) and a CSRF token, here a
//! double-submit one (a random value in an `HttpOnly; SameSite=Strict` cookie on `/oauth` and in
//! the form, compared in constant time), since no session exists before consent. A wrong key
//! shows the form again with the error; the request's parameters ride along in hidden fields.
//! Wrong keys count against the client address as bearer keys do
//! ([`crate::http::auth::verify_typed_key`]): past the limit the page answers 429.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::context;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use super::authorize::{AuthorizationRequest, Checked, check, redirect_with};
use crate::auth::Identity;
use crate::domain::{ConsoleSubject, OAuthGrant, Role, now};
use crate::http::HttpState;
use crate::http::auth::{TypedKeyRefusal, client_address, retry_after_seconds, verify_typed_key};
use crate::http::console::session::{over_https, random_token, same_origin, token_cookie};

const CSRF_COOKIE: &str = "codifier_oauth_csrf";

#[derive(Deserialize)]
pub struct ConsentForm {
    #[serde(flatten)]
    request: AuthorizationRequest,
    #[serde(default)]
    key: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
}

/// What the page shows beyond the request.
#[derive(Default)]
struct View<'a> {
    notice: Option<&'a str>,
    /// The key, re-carried in a password field on the review step (never echoed elsewhere).
    key: Option<&'a str>,
    identity: Option<(&'a Identity, Option<String>)>,
    role: &'a str,
}

fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    token_cookie(headers, CSRF_COOKIE)
}

/// An HTML page with the console's look; the consent page may send the browser on to the
/// client's redirect URI, so its policy leaves `form-action` open.
fn html(status: StatusCode, template: &str, context: minijinja::Value) -> Response {
    let mut response = match crate::http::console::page(template, context) {
        Ok(response) => response,
        Err(error) => return error.into_response(),
    };
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    response
}

/// A page saying why the request cannot go on (nothing is sent to the client).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    html(
        status,
        "error.html",
        context! { title => "Authorization refused", status => status.as_u16(), message },
    )
}

fn render(
    state: &HttpState,
    headers: &HeaderMap,
    status: StatusCode,
    request: &AuthorizationRequest,
    checked: &Checked,
    view: View<'_>,
) -> Response {
    let csrf = csrf_cookie(headers).unwrap_or_else(random_token);
    let redirect_host = url::Url::parse(&checked.redirect_uri)
        .ok()
        .and_then(|url| url.host_str().map(str::to_owned))
        .unwrap_or_else(|| checked.redirect_uri.clone());
    let hidden: Vec<(String, String)> = match serde_json::to_value(request) {
        Ok(serde_json::Value::Object(fields)) => fields
            .into_iter()
            .filter_map(|(name, value)| value.as_str().map(|text| (name, text.to_owned())))
            .collect(),
        _ => Vec::new(),
    };
    let (who, project, key_role, roles) = match view.identity {
        Some((Identity::Key { prefix, role, .. }, project)) => {
            let roles: Vec<&str> = [Role::Read, Role::Write, Role::Admin]
                .into_iter()
                .filter(|allowed| allowed <= role && checked.scope.is_none_or(|s| *allowed <= s))
                .map(Role::as_str)
                .collect();
            (
                Some(format!("key {prefix}…")),
                project,
                Some(role.as_str()),
                roles,
            )
        }
        Some((_, _)) => (
            Some("the operator token".to_owned()),
            None,
            Some("operator"),
            vec![],
        ),
        None => (None, None, None, vec![]),
    };
    let mut response = html(
        status,
        "oauth_consent.html",
        context! {
            title => "Allow access",
            client => context! {
                name => checked.client.name.clone(),
                uri => checked.client.uri.clone(),
                id => checked.client.client_id.clone(),
                from_document => checked.client.from_document,
            },
            redirect_host,
            hidden,
            csrf => csrf.clone(),
            notice => view.notice,
            key => view.key,
            who,
            project,
            key_role,
            roles,
            scope => checked.scope.map(Role::as_str),
            role => view.role,
        },
    );
    let secure = if over_https(state, headers) {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{CSRF_COOKIE}={csrf}; Path=/oauth; HttpOnly; SameSite=Strict{secure}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The first page: the client, and a field for the key.
pub fn first_page(
    state: &HttpState,
    headers: &HeaderMap,
    request: &AuthorizationRequest,
    checked: &Checked,
) -> Response {
    render(
        state,
        headers,
        StatusCode::OK,
        request,
        checked,
        View::default(),
    )
}

/// `POST /oauth/authorize`: `action=review` shows what the key carries; `approve` issues the
/// code; `deny` tells the client so.
pub async fn submit(
    axum::extract::State(state): axum::extract::State<HttpState>,
    headers: HeaderMap,
    extensions: axum::http::Extensions,
    body: axum::body::Bytes,
) -> Response {
    if let Err(error) = same_origin(&headers) {
        return error.into_response();
    }
    let Ok(form) = serde_urlencoded::from_bytes::<ConsentForm>(&body) else {
        return error_page(StatusCode::BAD_REQUEST, "The form could not be read.");
    };
    let csrf_ok = csrf_cookie(&headers).is_some_and(|cookie| {
        cookie.len() == form.csrf.len() && bool::from(cookie.as_bytes().ct_eq(form.csrf.as_bytes()))
    });
    if !csrf_ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "This form carried no valid CSRF token: go back to the client and start the connection again.",
        );
    }
    let checked = match check(&state, &headers, &form.request).await {
        Ok(checked) => checked,
        Err(refusal) => return refusal.into_response(),
    };
    let back = |pairs: &mut Vec<(&str, String)>| {
        pairs.push(("iss", checked.issuer.clone()));
        if let Some(value) = &checked.state {
            pairs.push(("state", value.clone()));
        }
        let borrowed: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        redirect_with(&checked.redirect_uri, &borrowed)
    };
    if form.action == "deny" {
        return back(&mut vec![
            ("error", "access_denied".into()),
            ("error_description", "the person declined".into()),
        ]);
    }
    let page = |status, notice: &str, key: Option<&str>, identity| {
        let view = View {
            notice: Some(notice),
            key,
            identity,
            role: &form.role,
        };
        render(&state, &headers, status, &form.request, &checked, view)
    };
    let key = form.key.trim();
    if key.is_empty() {
        return page(
            StatusCode::BAD_REQUEST,
            "Paste an API key (cdf_…) or the operator token.",
            None,
            None,
        );
    }
    let client = client_address(&state, &headers, &extensions);
    let identity = match verify_typed_key(&state, client, key).await {
        Ok(identity) => identity,
        Err(TypedKeyRefusal::Failed(failure)) => {
            return page(StatusCode::UNAUTHORIZED, failure.message(), None, None);
        }
        Err(TypedKeyRefusal::Throttled(wait)) => {
            let seconds = retry_after_seconds(wait);
            let notice = format!(
                "Too many wrong keys came from this address: wait {seconds} seconds, then try again."
            );
            let mut response = page(StatusCode::TOO_MANY_REQUESTS, &notice, None, None);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            return response;
        }
    };
    let project = match &identity {
        Identity::Key { project_id, .. } => state
            .store
            .find_project(&project_id.to_string())
            .await
            .ok()
            .flatten()
            .map(|project| project.name),
        _ => None,
    };
    // The most this approval may grant: the key's role, and no more than the client asked for.
    let ceiling = |role: Role| checked.scope.map_or(role, |asked| asked.min(role));
    let chosen = match (&identity, form.role.as_str()) {
        (Identity::Key { role, .. }, "") => ceiling(*role),
        (Identity::Key { role, .. }, text) => match Role::parse(text) {
            Some(chosen) if chosen <= ceiling(*role) => chosen,
            Some(chosen) if chosen <= *role => {
                let notice = format!(
                    "The client asked for the `{}` scope: grant `{}` or less, not `{chosen}`.",
                    ceiling(*role),
                    ceiling(*role)
                );
                return page(
                    StatusCode::BAD_REQUEST,
                    &notice,
                    Some(key),
                    Some((&identity, project)),
                );
            }
            Some(chosen) => {
                let notice = format!(
                    "This key carries the `{role}` role: it can grant `{role}` or less, never `{chosen}`."
                );
                return page(
                    StatusCode::BAD_REQUEST,
                    &notice,
                    Some(key),
                    Some((&identity, project)),
                );
            }
            None => {
                return page(
                    StatusCode::BAD_REQUEST,
                    "Choose read, write or admin.",
                    Some(key),
                    Some((&identity, project)),
                );
            }
        },
        _ => match checked.scope {
            Some(asked) if asked < Role::Admin => {
                let notice = format!(
                    "The client asked for the `{asked}` scope, and the operator token cannot be narrowed: approve with an API key that carries `{asked}` (or more) instead."
                );
                return page(StatusCode::BAD_REQUEST, &notice, None, None);
            }
            _ => Role::Admin,
        },
    };
    if form.action != "approve" {
        let view = View {
            notice: None,
            key: Some(key),
            identity: Some((&identity, project)),
            role: chosen.as_str(),
        };
        return render(
            &state,
            &headers,
            StatusCode::OK,
            &form.request,
            &checked,
            view,
        );
    }
    let (subject, project_id) = match &identity {
        Identity::Key {
            id,
            prefix,
            project_id,
            ..
        } => (
            ConsoleSubject::Key {
                id: *id,
                prefix: prefix.clone(),
            },
            Some(*project_id),
        ),
        _ => match state.verifier.operator_fingerprint() {
            Some(fingerprint) => (ConsoleSubject::Operator { fingerprint }, None),
            None => {
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "No operator token is configured.",
                );
            }
        },
    };
    let code = crate::oauth::tokens::generate(crate::oauth::tokens::CODE_PREFIX);
    let created_at = now();
    let lifetime = state
        .oauth
        .as_ref()
        .map_or(60, |server| server.config.code.as_secs());
    let grant = OAuthGrant {
        id: uuid::Uuid::new_v4(),
        client_id: checked.client.client_id.clone(),
        subject,
        role: chosen,
        project_id,
        resource: checked.resource.clone(),
        redirect_uri: checked.redirect_uri.clone(),
        code_hash: crate::oauth::tokens::hash(&code),
        code_challenge: checked.challenge.clone(),
        code_expires_at: created_at + chrono::Duration::seconds(lifetime as i64),
        code_used_at: None,
        revoked_at: None,
        created_at,
    };
    if let Err(error) = state.store.create_oauth_grant(&grant).await {
        tracing::error!(%error, "storing an oauth grant failed");
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The approval could not be stored: try again.",
        );
    }
    tracing::info!(who = %identity.label(), client = %grant.client_id, role = %chosen, "oauth client approved");
    back(&mut vec![("code", code)])
}
