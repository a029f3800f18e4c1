//! `validate_code` (check code against the library's and the project's validations) and
//! `guardrail_stats` (a project's guardrail telemetry over a window).

use std::fmt::Write;

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::Deserialize;

use super::{input_schema, output_schema};
use crate::domain::Role;
use crate::guardrails::telemetry::{self, GuardrailStats};
use crate::guardrails::validate::{self, CheckFailure, Request, ValidationReport};
use crate::knowledge::projects;
use crate::mcp::CodifierServer;

/// Arguments of `validate_code`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ValidateCodeParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// The file's text.
    pub code: String,
    /// The file's path relative to the repository root (e.g. `src/app.ts`): it decides which
    /// checks apply.
    pub file_path: String,
    /// Only checks tagged with one of these: a skill's tag or stack (e.g. `security`, `react`)
    /// or a severity (`critical`, `error`, `warning`, `info`).
    #[serde(default)]
    pub check_types: Vec<String>,
    /// Only the library checks of these skill ids (the project's own checks always run).
    #[serde(default)]
    pub skills: Vec<String>,
}

/// Arguments of `guardrail_stats`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GuardrailStatsParams {
    /// The project's id or name; may be left out after `manage_projects switch`.
    pub project_id: Option<String>,
    /// How many days back to count, 1 to 365 (default 30).
    #[schemars(range(min = 1, max = 365))]
    pub days: Option<u32>,
}

#[tool_router(router = guardrail_validate_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Check a file against the team's guardrails before calling a task done: runs the
    /// validations (the skills library's and the project's own) whose `applies_to` globs match
    /// `file_path`. `passed` is false when a critical or error check fails; every failure
    /// names its check, skill, 1-based line and a fix.
    #[tool(
        name = "validate_code",
        input_schema = input_schema::<ValidateCodeParams>(),
        output_schema = output_schema::<ValidationReport>(),
        annotations(
            title = "Validate code",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn validate_code(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: ValidateCodeParams, identity| async move {
            let named = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let project = projects::resolve(&self.store, &identity, &named, Role::Read).await?;
            let request = Request {
                code: params.code,
                file_path: params.file_path,
                check_types: params.check_types,
                skills: params.skills,
            };
            let validator = &self.app.validator;
            validate::validate(
                validator,
                &self.app.library,
                self.store.as_ref(),
                &identity,
                project.id,
                request,
            )
            .await
        };
        self.run_tool("validate_code", arguments, ctx, action, render_report)
            .await
    }

    /// Count a project's guardrail events over the last `days` days: blocks by check and
    /// severity, escape-hatch triggers by pattern, and every kind's total.
    #[tool(
        name = "guardrail_stats",
        input_schema = input_schema::<GuardrailStatsParams>(),
        output_schema = output_schema::<GuardrailStats>(),
        annotations(
            title = "Guardrail stats",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn guardrail_stats(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let ctx = &ctx;
        let action = |params: GuardrailStatsParams, identity| async move {
            let named = self
                .project_for(ctx, &identity, params.project_id.as_deref())
                .await?;
            let project = projects::resolve(&self.store, &identity, &named, Role::Read).await?;
            let days = params.days.unwrap_or(30);
            if !(1..=telemetry::MAX_DAYS).contains(&days) {
                return Err(crate::knowledge::KnowledgeError::Invalid(format!(
                    "`days` is {days}: send a number of days from 1 to {}",
                    telemetry::MAX_DAYS
                )));
            }
            Ok(telemetry::stats(self.store.as_ref(), project.id, days).await?)
        };
        self.run_tool("guardrail_stats", arguments, ctx, action, render_stats)
            .await
    }
}

fn render_report(report: &ValidationReport) -> String {
    let mut out = format!("## {}\n", report.summary);
    for (heading, failures) in [
        ("Critical", &report.critical),
        ("Errors", &report.errors),
        ("Warnings", &report.warnings),
        ("Info", &report.info),
    ] {
        if failures.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {heading}");
        for failure in failures {
            render_failure(&mut out, failure);
        }
    }
    if !report.unfinished.is_empty() {
        out.push_str("\n### Did not finish within their budget (neither passed nor failed)\n");
        for check in &report.unfinished {
            let skill = check.skill.as_deref().unwrap_or("project");
            let _ = writeln!(
                out,
                "- `{}` ({skill}, {})",
                check.check,
                check.severity.as_str()
            );
        }
    }
    if !report.skipped_checks.is_empty() {
        out.push_str("\n### The project's checks that cannot run\n");
        for skipped in &report.skipped_checks {
            let _ = writeln!(out, "- `{}`: {}", skipped.check, skipped.reason);
        }
    }
    out
}

fn render_failure(out: &mut String, failure: &CheckFailure) {
    let skill = failure.skill.as_deref().unwrap_or("project");
    let lines: Vec<String> = failure.lines.iter().map(ToString::to_string).collect();
    let _ = writeln!(
        out,
        "- line {}: **{}** (`{}`, {skill}): {}",
        lines.join(", "),
        failure.name,
        failure.check,
        failure.message
    );
    if let Some(fix) = &failure.fix_suggestion {
        let _ = writeln!(out, "  - fix: {fix}");
    }
}

fn render_stats(stats: &GuardrailStats) -> String {
    let mut out = format!("## Guardrail events in the last {} days\n\n", stats.days);
    for (kind, count) in &stats.totals {
        let _ = writeln!(out, "- {}: {count}", kind.as_str());
    }
    out.push_str("\n### Blocks by check\n");
    if stats.blocks.is_empty() {
        out.push_str("None.\n");
    }
    for block in &stats.blocks {
        let severity = block.severity.map_or("unknown", |s| s.as_str());
        let _ = writeln!(out, "- `{}` ({severity}): {}", block.check, block.count);
    }
    out.push_str("\n### Escape-hatch triggers by pattern\n");
    if stats.escape_hatch_triggers.is_empty() {
        out.push_str("None.\n");
    }
    for trigger in &stats.escape_hatch_triggers {
        let _ = writeln!(out, "- {}: {}", trigger.pattern, trigger.count);
    }
    out
}
