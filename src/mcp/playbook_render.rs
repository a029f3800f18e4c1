//! Markdown renderings of playbook results: the outline as a checklist, the current step's
//! prompt (or the generate request, in full), and the exact next call.

use std::fmt::Write;

use crate::domain::SessionStatus;
use crate::mcp::tools::PlaybookSessionsOutput;
use crate::playbooks::view::{SessionView, StepState};

pub fn session(view: &SessionView) -> String {
    let mut out = String::new();
    let status = match view.status {
        SessionStatus::Active => "in progress",
        SessionStatus::Completed => "completed",
        SessionStatus::Abandoned => "abandoned",
    };
    let _ = writeln!(
        out,
        "## Playbook: {} ({status})\n\nSession `{}` · playbook `{}` v{}\n",
        view.playbook_name, view.session_id, view.playbook_id, view.playbook_version
    );
    if view.replayed {
        out.push_str("_This repeats the previous call: nothing was changed._\n\n");
    }
    for step in &view.outline {
        let (mark, suffix) = match step.state {
            StepState::Done => ("[x]", String::new()),
            StepState::Skipped => ("[-]", " (skipped)".to_owned()),
            StepState::Failed => ("[!]", " **← failed**".to_owned()),
            StepState::Current => ("[ ]", " **← current**".to_owned()),
            StepState::Pending => ("[ ]", String::new()),
        };
        let auto = if step.automatic {
            " _(runs on the server)_"
        } else {
            ""
        };
        let revised = match step.revisions {
            0 => String::new(),
            1 => " (revised)".to_owned(),
            n => format!(" (revised {n} times)"),
        };
        let again = if step.runs_again && step.state != StepState::Current {
            " **← runs again**"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "- {mark} {}. {}{auto}{revised}{suffix}{again}",
            step.number, step.title
        );
        for outcome in step
            .outcomes
            .iter()
            .flat_map(|o| o.as_array().into_iter().flatten())
        {
            let url = outcome["url"].as_str().unwrap_or_default();
            match outcome["error"].as_str() {
                Some(error) => {
                    let _ = writeln!(out, "    - not packed: {url}: {error}");
                }
                None => {
                    let _ = writeln!(out, "    - packed: {url}");
                }
            }
        }
    }
    out.push('\n');
    for notice in &view.notices {
        let _ = writeln!(out, "> {notice}");
    }
    if !view.notices.is_empty() {
        out.push('\n');
    }
    for memory in &view.stored {
        let _ = writeln!(
            out,
            "Stored **{}** ({}, `{}`){}",
            memory.title,
            memory.memory_type,
            memory.id,
            if matches!(memory.outcome, crate::domain::WriteOutcome::Unchanged) {
                ": the same content was already stored"
            } else {
                ""
            }
        );
    }
    if !view.stored.is_empty() {
        out.push('\n');
    }
    let Some(current) = &view.current else {
        if view.status == SessionStatus::Completed {
            out.push_str("Every step is done. The artifacts are stored as memories of the project (fetch_context).\n");
        }
        return out;
    };
    let _ = writeln!(out, "### Now: {}\n", current.title);
    if let Some(error) = &current.error {
        let _ = writeln!(
            out,
            "**This step failed:** {error}\n\nCall advance_step with an empty `input` to try again, with `skip: true` to go on without it, or answer an earlier step again (its `step_id` and `revise: true`).\n"
        );
    }
    match (&current.generate, &current.input) {
        (Some(request), _) => {
            let _ = writeln!(
                out,
                "Generate the artifact below with your model, then send it back with advance_step as `input.{}` ({} text).\n\nExpected: {}\n\n<generate-request>\n{}\n</generate-request>\n",
                request.send_back_under,
                format!("{:?}", request.format).to_lowercase(),
                request.expects,
                request.prompt.trim()
            );
        }
        (None, Some(input)) => {
            let _ = writeln!(
                out,
                "Ask the user:\n\n> {}\n\nThen call advance_step with `input.{}` ({}{}).\n",
                current.prompt.replace('\n', "\n> "),
                input.key,
                input.spec.kind.describe(),
                if input.spec.required {
                    ", required"
                } else {
                    ", optional: send `skip: true` or leave it empty to skip"
                }
            );
        }
        (None, None) => {
            let _ = writeln!(out, "{}\n", current.prompt);
        }
    }
    if let Some(call) = &view.next_call {
        let _ = writeln!(
            out,
            "Next call: `{}`",
            serde_json::to_string(&call["arguments"]).unwrap_or_default()
        );
    }
    out
}

pub fn sessions(output: &PlaybookSessionsOutput) -> String {
    if output.sessions.is_empty() {
        return "No playbook sessions in this project yet. Start one with run_playbook.\n".into();
    }
    let mut out = format!("## Playbook sessions ({})\n\n", output.sessions.len());
    for session in &output.sessions {
        let progress = match session.steps_total {
            Some(total) => format!("{}/{total} steps", session.steps_done.min(total)),
            None => "playbook no longer on this server".into(),
        };
        let _ = writeln!(
            out,
            "- `{}` **{}**: {}, {progress}{}, updated {}",
            session.session_id,
            session
                .playbook_name
                .as_deref()
                .unwrap_or(&session.playbook_id),
            session.status.as_str(),
            session
                .current_step
                .as_deref()
                .map(|step| format!(", at `{step}`"))
                .unwrap_or_default(),
            session.updated_at.to_rfc3339()
        );
    }
    out.push_str("\nResume one with run_playbook and its `session_id`.\n");
    out
}
