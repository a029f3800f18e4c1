//! Markdown for the plan tools and `project_state`.

use std::fmt::Write;

use crate::plans::report::PlanReport;
use crate::plans::state::StateView;
use crate::plans::tasks::{Outcome, TaskUpdated};
use crate::plans::{NextTasks, PlanCreated};
use crate::plural::count;
use crate::store::PlanTask;

fn task_line(out: &mut String, task: &PlanTask) {
    let depends = if task.spec.depends_on.is_empty() {
        String::new()
    } else {
        format!(", after {}", task.spec.depends_on.join(", "))
    };
    let _ = writeln!(
        out,
        "- `{}` {} — {} (priority {}{depends}; task_id `{}`)",
        task.spec.id,
        task.spec.title,
        task.status.as_str(),
        task.spec.priority,
        task.task_id
    );
}

pub(super) fn created(created: &PlanCreated) -> String {
    let verb = if created.created {
        "Created"
    } else {
        "Already created (same idempotency_key)"
    };
    let mut out = format!(
        "## {verb}: plan {}\n\nplan_id `{}`, {}\n\n",
        created.title,
        created.plan_id,
        count(created.tasks.len(), "task")
    );
    created
        .tasks
        .iter()
        .for_each(|task| task_line(&mut out, task));
    out
}

pub(super) fn next(next: &NextTasks) -> String {
    let mut out = format!("## Ready tasks of plan `{}`\n\n", next.plan_id);
    if next.ready.is_empty() {
        out.push_str("None ready now.\n");
    }
    next.ready.iter().for_each(|task| task_line(&mut out, task));
    let counts: Vec<String> = next
        .counts
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(status, n)| format!("{status}: {n}"))
        .collect();
    let _ = writeln!(out, "\nPlan: {}", counts.join(", "));
    out
}

pub(super) fn updated(answer: &TaskUpdated) -> String {
    let replayed = if answer.replayed {
        " (the stored answer of the first call with this idempotency_key)"
    } else {
        ""
    };
    let mut out = match answer.outcome {
        Outcome::Updated => format!(
            "## Task `{}` is {} (attempt {}){replayed}\n",
            answer.id,
            answer.status.as_str(),
            answer.attempt
        ),
        Outcome::Blocked => format!(
            "## Task `{}` is blocked: not started{replayed}\n\nWaiting for:\n",
            answer.id
        ),
        Outcome::NotDone => format!(
            "## Not done: task `{}` stays in progress{replayed}\n\nGuardrails that failed:\n",
            answer.id
        ),
    };
    for blocker in &answer.blocked_by {
        let _ = writeln!(
            out,
            "- `{}` {} ({})",
            blocker.id,
            blocker.title,
            blocker.status.as_str()
        );
    }
    if let Some(not_done) = &answer.not_done {
        for f in &not_done.findings {
            let skill = f.skill.as_deref().unwrap_or("project");
            let _ = writeln!(
                out,
                "- **{}** (`{}`, {skill}, {}) in {} line {:?}: {}",
                f.name,
                f.check,
                f.severity.as_str(),
                f.file_path,
                f.lines,
                f.message
            );
        }
        out.push_str("\nOptions:\n");
        for option in &not_done.options {
            let _ = writeln!(out, "- **{}**: {}", option.option, option.detail);
        }
    }
    if !answer.overridden.is_empty() {
        let checks: Vec<&str> = answer.overridden.iter().map(|f| f.check.as_str()).collect();
        let _ = writeln!(out, "\nOverridden (recorded): {}", checks.join(", "));
    }
    if let Some(checkpoint) = &answer.checkpoint {
        let _ = writeln!(out, "\nCheckpoint: `{checkpoint}`");
    }
    if let Some(unstick) = &answer.unstick {
        let diagnosis = unstick["diagnosis"].as_str().unwrap_or_default();
        let _ = writeln!(out, "\n### Failed three times: unstick\n{diagnosis}");
        for alternative in unstick["alternatives"].as_array().into_iter().flatten() {
            let approach = alternative["approach"].as_str().unwrap_or_default();
            let _ = writeln!(out, "- {approach}");
        }
    }
    out
}

pub(super) fn report(report: &PlanReport) -> String {
    let mut out = format!("## Plan {} (`{}`)\n\n", report.title, report.plan_id);
    for (status, ids) in &report.by_status {
        let _ = writeln!(out, "- {status}: {}", ids.join(", "));
    }
    if let Some(rate) = report.success_rate {
        let _ = writeln!(
            out,
            "\nSuccess rate: {:.0}% of the tasks that ended",
            rate * 100.0
        );
    }
    out.push_str("\n| task | status | attempts | failures | seconds | outputs |\n|---|---|---|---|---|---|\n");
    for task in &report.tasks {
        let outputs: Vec<&str> = task.outputs.iter().map(|o| o.path.as_str()).collect();
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} | {:.1} | {} |",
            task.id,
            task.status.as_str(),
            task.attempts,
            task.failures,
            task.seconds_in_progress,
            outputs.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "\nGuardrail blocks: {}; overrides: {}",
        report.guardrail_blocks.len(),
        report.guardrail_overrides.len()
    );
    for o in &report.guardrail_overrides {
        let reason = o.detail["reason"].as_str().unwrap_or_default();
        let _ = writeln!(out, "- `{}` overridden by {}: {reason}", o.id, o.actor);
    }
    let _ = writeln!(out, "\n### Events ({})", report.events.len());
    for event in &report.events {
        let _ = writeln!(
            out,
            "- {} {} by {} {}",
            event.created_at.format("%Y-%m-%d %H:%M:%S"),
            event.action,
            event.actor,
            event.detail
        );
    }
    out
}

pub(super) fn state(view: &StateView) -> String {
    let state = &view.state;
    let fields = &state.fields;
    let mut out = format!("## Project state (revision {})\n\n", state.revision);
    let phase = fields.phase.map(|p| format!("{p:?}").to_lowercase());
    for (name, value) in [
        ("phase", phase),
        ("current skill", fields.current_skill.clone()),
        ("checkpoint", fields.checkpoint.clone()),
    ] {
        let _ = writeln!(out, "- {name}: {}", value.as_deref().unwrap_or("—"));
    }
    if let Some(confidence) = &fields.confidence {
        let _ = writeln!(
            out,
            "- ready: {}; gaps: {}",
            confidence.ready,
            confidence.gaps.join(", ")
        );
    }
    for assumption in &fields.assumptions {
        let mark = if assumption.confirmed {
            "confirmed"
        } else {
            "unconfirmed"
        };
        let _ = writeln!(
            out,
            "- assumption `{}` ({mark}): {}",
            assumption.id, assumption.text
        );
    }
    if let Some(mcps) = &fields.mcps {
        let _ = writeln!(
            out,
            "- MCPs required: {}; available: {}; missing: {}",
            mcps.required.join(", "),
            mcps.available.join(", "),
            mcps.missing.join(", ")
        );
    }
    let _ = writeln!(out, "\n### Decisions ({})", view.decisions.len());
    for decision in &view.decisions {
        let _ = writeln!(out, "- {}: {}", decision.title, decision.content);
    }
    out
}
