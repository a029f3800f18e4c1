//! Markdown renderings of the working-session tools' results (`load_context`, `remember`,
//! `watch_out`, `unstick`), for the person reading the conversation.

use std::fmt::Write;

use crate::domain::WriteOutcome;
use crate::domain::guardrail::IssueStatus;
use crate::guardrails::context::LoadedContext;
use crate::guardrails::edges::{EdgeSource, EdgeView};
use crate::guardrails::remember::{FoundBy, Part, Remembered};
use crate::guardrails::unstick::Unstuck;
use crate::guardrails::watch_out::WatchOut;
use crate::plural::count;

fn severity(edge_severity: Option<crate::domain::guardrail::Severity>) -> &'static str {
    edge_severity.map_or("unrated", |s| s.as_str())
}

/// One sharp edge: summary, where from, and (when `whole`) why and the fix.
fn edge_block(out: &mut String, view: &EdgeView, whole: bool) {
    let edge = &view.edge;
    let from = match (&view.source, &edge.skill) {
        (EdgeSource::Library, Some(skill)) => format!("skill `{skill}`"),
        (EdgeSource::Library, None) => "library".to_owned(),
        (EdgeSource::Project, _) => "this project".to_owned(),
    };
    let code = if view.matches_current_code {
        " — **matches your code**"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "### {} ({}, {from}){code}",
        edge.summary,
        severity(edge.severity)
    );
    if !edge.situation.is_empty() {
        let _ = writeln!(out, "- when: {}", edge.situation.trim());
    }
    if whole {
        if !edge.why.is_empty() {
            let _ = writeln!(out, "- why: {}", edge.why.trim());
        }
        if !edge.solution.is_empty() {
            let _ = writeln!(out, "- instead:\n\n{}\n", edge.solution.trim());
        }
    }
    if !edge.symptoms.is_empty() {
        let _ = writeln!(out, "- symptoms: {}", edge.symptoms.join("; "));
    }
    out.push('\n');
}

pub fn context(output: &LoadedContext) -> String {
    let mut out = String::new();
    match &output.project {
        Some(project) => {
            let _ = writeln!(
                out,
                "# Session context: **{}** (`{}`)\n",
                project.name, project.id
            );
            if !project.stack.is_empty() {
                let saved = if output.stack_saved {
                    " (saved now)"
                } else {
                    ""
                };
                let _ = writeln!(out, "Stack: {}{saved}\n", project.stack.join(", "));
            }
        }
        None => out.push_str("# No project chosen\n\n"),
    }
    for candidate in &output.candidates {
        let _ = writeln!(
            out,
            "- **{}** (`{}`), {} in common",
            candidate.name,
            candidate.id,
            count(candidate.shared_words, "word")
        );
    }
    for notice in &output.notices {
        let _ = writeln!(out, "_{notice}_\n");
    }
    if let Some(session) = &output.last_session {
        let _ = writeln!(
            out,
            "## Last session ({})\n\n{}\n",
            session.at.to_rfc3339(),
            session.summary
        );
        if !session.validated.is_empty() {
            let _ = writeln!(out, "Passed: {}\n", session.validated.join("; "));
        }
    }
    if !output.open_issues.is_empty() {
        let _ = writeln!(out, "## Open issues ({})\n", output.open_issues.len());
        for issue in &output.open_issues {
            let _ = writeln!(out, "- {} (`{}`)", issue.description, issue.id);
        }
        out.push('\n');
    }
    if !output.decisions.is_empty() {
        out.push_str("## Recent decisions\n\n");
        for decision in &output.decisions {
            let _ = writeln!(out, "- **{}**: {}", decision.what, decision.why);
        }
        out.push('\n');
    }
    if !output.skills.is_empty() {
        out.push_str("## Skills that fit\n\n");
        for skill in &output.skills {
            let _ = writeln!(
                out,
                "- **{}** (`{}`): {}",
                skill.name,
                skill.id,
                skill.description.trim()
            );
        }
        out.push('\n');
    }
    if !output.sharp_edges.is_empty() {
        let _ = writeln!(
            out,
            "## Sharp edges to mind ({})\n",
            output.sharp_edges.len()
        );
        for edge in &output.sharp_edges {
            edge_block(&mut out, edge, false);
        }
    }
    let _ = writeln!(out, "**Next:** {}", output.instruction);
    out
}

pub fn remembered(output: &Remembered) -> String {
    let mut out = format!(
        "Remembered {} in one transaction:\n\n",
        count(output.saved.len(), "part")
    );
    for saved in &output.saved {
        let part = match saved.part {
            Part::Decision => "decision",
            Part::Issue => "issue",
            Part::SharpEdge => "sharp edge",
            Part::SessionSummary => "session summary",
        };
        let how = match (saved.found_by, saved.status) {
            (Some(FoundBy::BestMatch), _) => " — the open issue that best matched your description",
            (Some(FoundBy::Id), _) => " — by its id",
            _ => "",
        };
        let status = match saved.status {
            Some(IssueStatus::Open) => ", now open",
            Some(IssueStatus::Resolved) => ", now resolved",
            None => "",
        };
        let outcome = match saved.outcome {
            WriteOutcome::Created => "saved",
            WriteOutcome::Updated => "updated",
            WriteOutcome::Unchanged => "already saved, unchanged",
        };
        let _ = writeln!(
            out,
            "- {part} **{}** (`{}`): {outcome}{status}{how}",
            saved.title, saved.id
        );
    }
    out
}

pub fn watch_out(output: &WatchOut) -> String {
    let mut out = String::new();
    if output.edges.is_empty() {
        let _ = writeln!(
            out,
            "No sharp edges are known for `{}`: no library skill names it in its stack, tags or triggers, and this project has none tagged with it.",
            output.stack.join(", ")
        );
        return out;
    }
    let _ = writeln!(
        out,
        "## Watch out: {} of {} for `{}`\n",
        output.edges.len(),
        count(output.considered, "sharp edge"),
        output.stack.join(", ")
    );
    if let Some(check) = &output.code_check {
        let _ = writeln!(
            out,
            "_Your code was checked against {}: {} matched{}._\n",
            count(check.patterns_run, "detection pattern"),
            check.matched,
            if check.over_budget > 0 {
                format!(", {} did not finish within its budget", check.over_budget)
            } else {
                String::new()
            }
        );
    }
    for edge in &output.edges {
        edge_block(&mut out, edge, true);
    }
    out
}

pub fn unstuck(output: &Unstuck) -> String {
    let mut out = String::new();
    let analyzed = &output.attempts_analyzed;
    let _ = writeln!(out, "## Diagnosis\n\n{}\n", output.diagnosis);
    let _ = writeln!(
        out,
        "{} analysed: {:.0}% alike ({:?}){}.\n",
        count(analyzed.count, "attempt"),
        analyzed.similarity * 100.0,
        analyzed.method,
        if analyzed.circular { ", circular" } else { "" }
    );
    if let Some(reason) = &output.reset_reason {
        let _ = writeln!(out, "**Start again.** {reason}\n");
    }
    if !output.known_patterns.is_empty() {
        out.push_str("## Known patterns\n\n");
        for known in &output.known_patterns {
            let symptom = known
                .matched_symptom
                .as_deref()
                .map(|s| format!(" (symptom: {s})"))
                .unwrap_or_default();
            let code = if known.matches_current_code {
                " — matches your code"
            } else {
                ""
            };
            let _ = writeln!(out, "- **{}**{symptom}{code}", known.title);
        }
        out.push('\n');
    }
    if !output.alternatives.is_empty() {
        out.push_str("## Alternatives\n\n");
        for (n, alternative) in output.alternatives.iter().enumerate() {
            let _ = writeln!(
                out,
                "{}. {} _({})_",
                n + 1,
                alternative.approach,
                alternative.source
            );
        }
    }
    out
}
