//! `find_skills`: the shared skills library, read by any key — ranked skills for a query, a
//! stack or tags, or one whole skill with its sharp edges and validations.

use std::fmt::Write;

use rmcp::model::{CallToolResult, JsonObject};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, tool, tool_router};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{input_schema, output_schema};
use crate::domain::Role;
use crate::domain::guardrail::{LIBRARY_PROJECT, Skill};
use crate::guardrails::library::{self, FoundSkill, SkillQuery};
use crate::knowledge::KnowledgeError;
use crate::mcp::CodifierServer;

/// The most skills one call returns.
const MAX_SKILLS: u32 = 50;

/// Arguments of `find_skills`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindSkillsParams {
    /// What the work is about, in words: skills are ranked by meaning and words against it.
    pub query: Option<String>,
    /// A stack name (e.g. `react`, `postgres`): only skills whose stack, tags or triggers hold it.
    pub stack: Option<String>,
    /// Tags a skill must all carry (its stack, tags or triggers, any case).
    #[serde(default)]
    pub tags: Vec<String>,
    /// A skill's id: returns that whole skill (identity, patterns, anti-patterns, handoffs,
    /// its sharp edges and validations) instead of a list.
    pub id: Option<String>,
    /// How many skills to list, 1 to 50 (default 10).
    #[schemars(range(min = 1, max = 50))]
    pub limit: Option<u32>,
}

/// A skill in a list.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SkillSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub layer: Option<String>,
    pub stack: Vec<String>,
    pub tags: Vec<String>,
    pub triggers: Vec<String>,
    /// The fused search score (meaning and words), when a query ranked it.
    pub score: Option<f64>,
}

/// A whole skill, with its sharp edges and validations.
#[derive(Debug, Serialize, JsonSchema)]
pub struct SkillDetail {
    #[serde(flatten)]
    pub summary: SkillSummary,
    pub version: Option<String>,
    pub owns: Vec<String>,
    pub pairs_with: Vec<String>,
    pub requires: Vec<String>,
    /// Who the skill is, as the pack wrote it (text or a map).
    pub identity: Value,
    pub patterns: Vec<Value>,
    pub anti_patterns: Vec<Value>,
    pub handoffs: Vec<Value>,
    pub collaboration: Value,
    /// Its sharp edges, most severe first (fields: id, summary, severity, situation, why,
    /// solution, symptoms, detection_pattern).
    pub sharp_edges: Vec<Value>,
    /// Its validations, most severe first (fields: id, name, severity, kind, patterns,
    /// message, fix_action, applies_to).
    pub validations: Vec<Value>,
}

/// The structured result of `find_skills`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FindSkillsOutput {
    /// The skills found, best first (empty when `id` was asked).
    pub skills: Vec<SkillSummary>,
    /// The whole skill `id` names.
    pub skill: Option<SkillDetail>,
}

fn summary(skill: &Skill, score: Option<f64>) -> SkillSummary {
    SkillSummary {
        id: skill.id.clone(),
        name: skill.name.clone(),
        description: skill.description.clone(),
        layer: skill.layer.clone(),
        stack: skill.stack.clone(),
        tags: skill.tags.clone(),
        triggers: skill.triggers.clone(),
        score,
    }
}

#[tool_router(router = guardrail_library_tools, vis = "pub(crate)")]
impl CodifierServer {
    /// Find skills in the shared skills library (read-only, any key): ranked by meaning and
    /// words against `query`, kept to a `stack` (its stack, tags or triggers) and `tags`; or,
    /// with `id`, one whole skill: identity, patterns, anti-patterns, handoffs, and its sharp
    /// edges and validations.
    #[tool(
        name = "find_skills",
        input_schema = input_schema::<FindSkillsParams>(),
        output_schema = output_schema::<FindSkillsOutput>(),
        annotations(
            title = "Find skills",
            read_only_hint = true,
            destructive_hint = false,
            idempotent_hint = true,
            open_world_hint = false
        )
    )]
    pub async fn find_skills(
        &self,
        arguments: JsonObject,
        ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        let action = |params: FindSkillsParams, identity: crate::auth::Identity| async move {
            identity.authorize(LIBRARY_PROJECT, "the skills library", Role::Read)?;
            let knowledge = &self.app.knowledge;
            if let Some(id) = params
                .id
                .as_deref()
                .map(str::trim)
                .filter(|id| !id.is_empty())
            {
                let found = library::skill(&knowledge.store, id).await?.ok_or_else(|| {
                    KnowledgeError::NotFound(format!(
                        "the skills library has no skill `{id}`: call find_skills without `id` to see the skills' ids"
                    ))
                })?;
                let skill = found.record;
                let edges = library::sharp_edges(&knowledge.store, &skill.id).await?;
                let checks = library::validations(&knowledge.store, &skill.id).await?;
                let detail = SkillDetail {
                    summary: summary(&skill, None),
                    version: skill.version.clone(),
                    owns: skill.owns.clone(),
                    pairs_with: skill.pairs_with.clone(),
                    requires: skill.requires.clone(),
                    identity: skill.identity.clone(),
                    patterns: skill.patterns.clone(),
                    anti_patterns: skill.anti_patterns.clone(),
                    handoffs: skill.handoffs.clone(),
                    collaboration: skill.collaboration.clone(),
                    sharp_edges: edges.iter().map(|e| e.memory.content.clone()).collect(),
                    validations: checks.iter().map(|v| v.memory.content.clone()).collect(),
                };
                return Ok(FindSkillsOutput {
                    skills: Vec::new(),
                    skill: Some(detail),
                });
            }
            let limit = params.limit.unwrap_or(10);
            if !(1..=MAX_SKILLS).contains(&limit) {
                return Err(KnowledgeError::Invalid(format!(
                    "`limit` is {limit}: send a number from 1 to {MAX_SKILLS}"
                )));
            }
            let wanted = SkillQuery {
                query: params.query,
                stacks: params.stack.into_iter().collect(),
                tags: params.tags,
                limit,
            };
            let found = library::find_skills(knowledge, &wanted).await?;
            Ok(FindSkillsOutput {
                skills: found
                    .iter()
                    .map(|FoundSkill { item, score }| summary(&item.record, *score))
                    .collect(),
                skill: None,
            })
        };
        self.run_tool("find_skills", arguments, &ctx, action, render)
            .await
    }
}

fn render(output: &FindSkillsOutput) -> String {
    let mut out = String::new();
    if let Some(detail) = &output.skill {
        let s = &detail.summary;
        let _ = writeln!(out, "## {} (`{}`)\n\n{}\n", s.name, s.id, s.description);
        if !s.stack.is_empty() {
            let _ = writeln!(out, "Stack: {}", s.stack.join(", "));
        }
        if !s.triggers.is_empty() {
            let _ = writeln!(out, "Triggers: {}", s.triggers.join(", "));
        }
        for (heading, items) in [
            ("Patterns", &detail.patterns),
            ("Anti-patterns", &detail.anti_patterns),
            ("Handoffs", &detail.handoffs),
        ] {
            if items.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n### {heading}");
            for item in items {
                let _ = writeln!(out, "- {}", one_line(item));
            }
        }
        let _ = writeln!(out, "\n### Sharp edges ({})", detail.sharp_edges.len());
        for edge in &detail.sharp_edges {
            let _ = writeln!(
                out,
                "- [{}] **{}**: {}",
                field(edge, "severity"),
                field(edge, "summary"),
                field(edge, "solution")
            );
        }
        let _ = writeln!(out, "\n### Validations ({})", detail.validations.len());
        for check in &detail.validations {
            let _ = writeln!(
                out,
                "- [{}] `{}` {}: {}",
                field(check, "severity"),
                field(check, "id"),
                field(check, "name"),
                field(check, "message")
            );
        }
        return out;
    }
    if output.skills.is_empty() {
        return "No skill in the library matches. Try other words, another stack, or no filter; the operator fills the library with `codifier skills import`.".into();
    }
    let _ = writeln!(out, "## Skills ({})\n", output.skills.len());
    for skill in &output.skills {
        let _ = write!(
            out,
            "- **{}** (`{}`): {}",
            skill.name, skill.id, skill.description
        );
        if !skill.stack.is_empty() {
            let _ = write!(out, " — stack: {}", skill.stack.join(", "));
        }
        out.push('\n');
    }
    out.push_str(
        "\nCall find_skills with `id` for a whole skill, its sharp edges and validations.",
    );
    out
}

fn field(value: &Value, name: &str) -> String {
    match value.get(name) {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

/// A pattern, anti-pattern or handoff on one line: its name (or `to`) and what it says.
fn one_line(item: &Value) -> String {
    let Some(map) = item.as_object() else {
        return field(&serde_json::json!({ "v": item }), "v");
    };
    let head = ["name", "to", "skill", "id"]
        .iter()
        .find_map(|key| map.get(*key).and_then(Value::as_str))
        .unwrap_or("-");
    let body = ["description", "when", "why", "context", "trigger"]
        .iter()
        .find_map(|key| map.get(*key).and_then(Value::as_str))
        .unwrap_or("");
    let body: String = body
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .take(200)
        .collect();
    if body.is_empty() {
        format!("**{head}**")
    } else {
        format!("**{head}**: {body}")
    }
}
