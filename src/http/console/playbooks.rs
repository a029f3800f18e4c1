//! The Playbook sessions pages: a project's sessions, most recently changed first (the 50
//! latest), each with its playbook, state, the step it waits at and how far it got — what
//! `playbook_sessions` lists — and one session's page: its outline with each step's state as
//! the runner records it, and the values it has collected so far. Both only read.

use axum::extract::{Path, State};
use axum::response::Response;
use minijinja::{Value, context};
use uuid::Uuid;

use super::session::Signed;
use super::{ConsoleError, render};
use crate::domain::Role;
use crate::http::HttpState;
use crate::knowledge::projects;
use crate::playbooks::view::SessionSummary;

/// The most sessions listed.
const LATEST: u32 = 50;
/// The most characters of one collected value shown (values are kept up to 100 KB).
const VALUE_CHARS: usize = 4_000;

fn time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn as_text<T: serde::Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
}

fn summary_row(session: &SessionSummary) -> Value {
    context! {
        id => session.session_id.to_string(),
        playbook => session.playbook_name.clone().unwrap_or_else(|| session.playbook_id.clone()),
        version => session.playbook_version.clone(),
        status => as_text(&session.status),
        current_step => session.current_step.clone(),
        steps_done => session.steps_done,
        steps_total => session.steps_total,
        created_at => time(&session.created_at),
        updated_at => time(&session.updated_at),
    }
}

pub async fn page(
    State(state): State<HttpState>,
    Path(project): Path<String>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let sessions = state.app.playbooks.sessions(&found, LATEST).await?;
    let rows: Vec<Value> = sessions.iter().map(summary_row).collect();
    render(
        "playbooks.html",
        &signed,
        Some(&found),
        context! { title => format!("Playbook sessions · {}", found.name), sessions => rows },
    )
}

/// A collected value as text (a string as it is, anything else as indented JSON), cut to
/// [`VALUE_CHARS`]; and how many characters were left off.
fn value_text(value: &serde_json::Value) -> (String, usize) {
    let text = match value {
        serde_json::Value::String(text) => text.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    };
    let total = text.chars().count();
    if total <= VALUE_CHARS {
        return (text, 0);
    }
    (
        text.chars().take(VALUE_CHARS).collect(),
        total - VALUE_CHARS,
    )
}

pub async fn session(
    State(state): State<HttpState>,
    Path((project, id)): Path<(String, String)>,
    signed: Signed,
) -> Result<Response, ConsoleError> {
    let found = projects::resolve(&state.store, &signed.identity, &project, Role::Read).await?;
    let id = Uuid::parse_str(id.trim()).map_err(|_| {
        ConsoleError::NotFound(format!(
            "`{id}` is not a session id: open a session from the project's playbook sessions"
        ))
    })?;
    let detail = state.app.playbooks.session(&found, id).await?;
    let steps: Vec<Value> = detail
        .outline
        .iter()
        .map(|step| {
            context! {
                number => step.number,
                id => step.id.clone(),
                title => step.title.clone(),
                action => step.action.clone(),
                state => as_text(&step.state),
                automatic => step.automatic,
                memory_id => step.memory_id.clone(),
                note => step.note.clone(),
                revisions => step.revisions,
                runs_again => step.runs_again,
            }
        })
        .collect();
    let collected: Vec<Value> = detail
        .collected
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .map(|(key, value)| {
                    let (text, left_off) = value_text(value);
                    context! { key => key.clone(), text, left_off }
                })
                .collect()
        })
        .unwrap_or_default();
    let summary = summary_row(&detail.summary);
    render(
        "playbook_session.html",
        &signed,
        Some(&found),
        context! {
            title => format!("{} · Playbook session · {}", detail.summary.playbook_name.clone().unwrap_or_else(|| detail.summary.playbook_id.clone()), found.name),
            session => summary,
            steps,
            collected,
        },
    )
}
