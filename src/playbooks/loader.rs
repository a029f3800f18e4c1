//! Loading and validating playbooks. Every mistake is reported with the file, the step and the
//! reason: an unknown action, template, skill or operation; a missing field; a field the action
//! does not take; duplicate step ids or keys; and a template variable no earlier step supplies.
//!
//! Collected-data keys make that last check decidable: each step provides exactly one key (its
//! `collect`, or a generate step's `output`), and a step may only read the keys of steps before
//! it plus the built-in context (`project`, `playbook`, `memories`, `collected`).

use std::collections::{BTreeMap, BTreeSet};

use super::PlaybookError;
use super::spec::*;
use super::templates::{BUILTIN_VARIABLES, Templates, text_variables};
use crate::domain::MemoryType;

/// Parses and validates one playbook file's text. `file` names it in errors.
pub fn parse(file: &str, text: &str, templates: &Templates) -> Result<Playbook, PlaybookError> {
    let fail = |step: Option<&str>, reason: String| PlaybookError::Invalid {
        file: file.to_owned(),
        step: step.map(str::to_owned),
        reason,
    };
    // Read once within the alias budget first: the typed parse below expands aliases without one.
    if let Err(error @ crate::yaml::YamlError::TooLarge { .. }) =
        crate::yaml::to_json(text, crate::yaml::Limits::DEFAULT)
    {
        return Err(fail(None, error.to_string()));
    }
    let raw: RawPlaybook = serde_norway::from_str(text)
        .map_err(|error| fail(None, format!("not a valid playbook YAML document: {error}")))?;
    if let Some(field) = raw.unknown.keys().next() {
        return Err(fail(
            None,
            format!(
                "unknown field `{field}` (a playbook has id, name, role, description, version, steps)"
            ),
        ));
    }
    let missing = |field: &str| fail(None, format!("missing field `{field}`"));
    let id = raw.id.ok_or_else(|| missing("id"))?;
    if !is_slug(&id) {
        return Err(fail(
            None,
            format!("`id` is `{id}`: use lowercase letters, digits and hyphens"),
        ));
    }
    let name = raw.name.ok_or_else(|| missing("name"))?;
    let role = match raw.role.ok_or_else(|| missing("role"))?.as_str() {
        "developer" => PlaybookRole::Developer,
        "researcher" => PlaybookRole::Researcher,
        other => {
            return Err(fail(
                None,
                format!("unknown role `{other}` (expected developer or researcher)"),
            ));
        }
    };
    let description = raw.description.ok_or_else(|| missing("description"))?;
    let version = match raw.version.ok_or_else(|| missing("version"))? {
        serde_norway::Value::String(text) => text,
        serde_norway::Value::Number(number) => number.to_string(),
        _ => return Err(fail(None, "`version` must be a string or a number".into())),
    };
    let raw_steps = raw.steps.ok_or_else(|| missing("steps"))?;
    if raw_steps.is_empty() {
        return Err(fail(
            None,
            "`steps` is empty: a playbook needs at least one step".into(),
        ));
    }

    let mut available: BTreeSet<String> = BUILTIN_VARIABLES
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    let mut ids = BTreeSet::new();
    let mut steps = Vec::with_capacity(raw_steps.len());
    for (index, raw) in raw_steps.into_iter().enumerate() {
        let label = raw.id.clone().unwrap_or_else(|| format!("#{}", index + 1));
        let step =
            parse_step(raw, templates, &available).map_err(|reason| fail(Some(&label), reason))?;
        if !ids.insert(step.id.clone()) {
            return Err(fail(
                Some(&step.id),
                format!(
                    "duplicate step id `{}`: every step needs its own id",
                    step.id
                ),
            ));
        }
        let key = step.action.provides().to_owned();
        if !available.insert(key.clone()) {
            return Err(fail(
                Some(&step.id),
                format!(
                    "the key `{key}` is already provided by an earlier step or is built in: choose another name"
                ),
            ));
        }
        steps.push(step);
    }
    Ok(Playbook {
        id,
        name,
        role,
        description,
        version,
        steps,
        source: file.to_owned(),
    })
}

fn is_slug(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_key(text: &str) -> bool {
    let mut chars = text.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks that every variable a template text reads is available.
fn check_text(field: &str, text: &str, available: &BTreeSet<String>) -> Result<(), String> {
    let variables =
        text_variables(text).map_err(|error| format!("`{field}` does not parse: {error}"))?;
    unknown_variable(field, &variables, available)
}

fn unknown_variable(
    what: &str,
    variables: &BTreeSet<String>,
    available: &BTreeSet<String>,
) -> Result<(), String> {
    match variables.iter().find(|name| !available.contains(*name)) {
        Some(name) => Err(format!(
            "{what} reads the template variable `{name}`, which no earlier step supplies (available: {})",
            available.iter().cloned().collect::<Vec<_>>().join(", ")
        )),
        None => Ok(()),
    }
}

fn memory_type(text: &str) -> Result<MemoryType, String> {
    MemoryType::parse(text).ok_or_else(|| {
        let names: Vec<&str> = MemoryType::ALL.iter().map(|kind| kind.as_str()).collect();
        format!("`store_as` is `{text}`: use one of {}", names.join(", "))
    })
}

/// Checks a step's `args`: each parameter is one the capability takes and names an available key.
fn check_args(
    args: &BTreeMap<String, String>,
    params: &[(&str, bool)],
    what: &str,
    available: &BTreeSet<String>,
) -> Result<(), String> {
    for (param, key) in args {
        if !params.iter().any(|(name, _)| name == param) {
            let names: Vec<&str> = params.iter().map(|(name, _)| *name).collect();
            return Err(format!(
                "{what} takes no argument `{param}` (it takes {})",
                names.join(", ")
            ));
        }
        if !available.contains(key) {
            return Err(format!(
                "argument `{param}` reads the key `{key}`, which no earlier step supplies"
            ));
        }
    }
    match params
        .iter()
        .find(|(name, required)| *required && !args.contains_key(*name))
    {
        Some((name, _)) => Err(format!("missing field `args.{name}` ({what} needs it)")),
        None => Ok(()),
    }
}

fn parse_step(
    raw: RawStep,
    templates: &Templates,
    available: &BTreeSet<String>,
) -> Result<Step, String> {
    if let Some(field) = raw.unknown.keys().next() {
        return Err(format!("unknown field `{field}`"));
    }
    let missing = |field: &str| format!("missing field `{field}`");
    let id = raw.id.clone().ok_or_else(|| missing("id"))?;
    if !is_slug(&id) {
        return Err(format!(
            "step id `{id}`: use lowercase letters, digits and hyphens"
        ));
    }
    let title = raw.title.clone().ok_or_else(|| missing("title"))?;
    let prompt = raw.prompt.clone().ok_or_else(|| missing("prompt"))?;
    check_text("the prompt", &prompt, available)?;
    if let Some(key) = &raw.skip_if_empty
        && !available.contains(key)
    {
        return Err(format!(
            "`skip_if_empty` names the key `{key}`, which no earlier step supplies"
        ));
    }
    let action_name = raw.action.clone().ok_or_else(|| missing("action"))?;
    if let Some(prefill) = &raw.prefill {
        if action_name != "store" {
            return Err(format!(
                "`prefill` applies to a `store` step only (this one is `{action_name}`)"
            ));
        }
        check_text("`prefill`", prefill, available)?;
    }
    // Fields each action takes; any other field set is a mistake worth naming.
    let allowed: &[&str] = match action_name.as_str() {
        "store" => &["collect", "input", "store_as", "memory_title"],
        "skill-invoke" => &["skill", "args", "collect"],
        "generate" => &[
            "template",
            "output",
            "expects",
            "format",
            "store_as",
            "memory_title",
            "context_types",
        ],
        "data-query" => &["query_operation", "args", "collect"],
        other => {
            return Err(format!(
                "unknown action `{other}` (expected store, skill-invoke, generate or data-query)"
            ));
        }
    };
    let set_fields = [
        ("collect", raw.collect.is_some()),
        ("input", raw.input.is_some()),
        ("store_as", raw.store_as.is_some()),
        ("memory_title", raw.memory_title.is_some()),
        ("skill", raw.skill.is_some()),
        ("args", !raw.args.is_empty()),
        ("template", raw.template.is_some()),
        ("output", raw.output.is_some()),
        ("expects", raw.expects.is_some()),
        ("format", raw.format.is_some()),
        ("context_types", raw.context_types.is_some()),
        ("query_operation", raw.query_operation.is_some()),
    ];
    if let Some((field, _)) = set_fields
        .iter()
        .find(|(field, set)| *set && !allowed.contains(field))
    {
        return Err(format!(
            "the field `{field}` does not apply to a `{action_name}` step (it takes {})",
            allowed.join(", ")
        ));
    }
    let key = |field: &str, value: Option<String>| -> Result<String, String> {
        let key = value.ok_or_else(|| missing(field))?;
        if !is_key(&key) {
            return Err(format!(
                "`{field}` is `{key}`: use lowercase letters, digits and underscores (it becomes a template variable)"
            ));
        }
        Ok(key)
    };
    let memory_title = |available: &BTreeSet<String>| -> Result<String, String> {
        let text = raw.memory_title.clone().unwrap_or_else(|| title.clone());
        check_text("`memory_title`", &text, available)?;
        Ok(text)
    };
    let action = match action_name.as_str() {
        "store" => {
            let input = raw.input.unwrap_or_default();
            let kind = match input.kind.as_deref() {
                None => InputKind::Text,
                Some(text) => InputKind::parse(text).ok_or_else(|| {
                    format!("`input.type` is `{text}`: use text, text-list or object")
                })?,
            };
            let memory = match raw.store_as.as_deref() {
                Some(kind) => Some(MemorySpec {
                    memory_type: memory_type(kind)?,
                    title: memory_title(available)?,
                }),
                None => None,
            };
            Action::Store {
                collect: key("collect", raw.collect)?,
                input: InputSpec {
                    kind,
                    required: input.required.unwrap_or(true),
                    description: input.description,
                },
                memory,
            }
        }
        "skill-invoke" => {
            let name = raw.skill.ok_or_else(|| missing("skill"))?;
            let skill = SkillName::parse(&name)
                .ok_or_else(|| format!("unknown skill `{name}` (expected pack_repo)"))?;
            check_args(
                &raw.args,
                skill.params(),
                &format!("skill `{name}`"),
                available,
            )?;
            Action::SkillInvoke {
                skill,
                args: raw.args,
                collect: key("collect", raw.collect)?,
            }
        }
        "generate" => {
            let template = raw.template.ok_or_else(|| missing("template"))?;
            if !templates.contains(&template) {
                return Err(format!(
                    "unknown template `{template}` (known: {})",
                    templates.names().collect::<Vec<_>>().join(", ")
                ));
            }
            unknown_variable(
                &format!("the template `{template}`"),
                &templates.variables(&template),
                available,
            )?;
            let format = match raw.format.as_deref() {
                None => ArtifactFormat::Markdown,
                Some(text) => ArtifactFormat::parse(text)
                    .ok_or_else(|| format!("`format` is `{text}`: use markdown or yaml"))?,
            };
            let context_types = match raw.context_types {
                None => MemoryType::ALL.to_vec(),
                Some(names) => names
                    .iter()
                    .map(|name| memory_type(name))
                    .collect::<Result<_, _>>()?,
            };
            Action::Generate {
                template,
                output: key("output", raw.output)?,
                expects: raw.expects.ok_or_else(|| missing("expects"))?,
                format,
                memory: MemorySpec {
                    memory_type: memory_type(&raw.store_as.ok_or_else(|| missing("store_as"))?)?,
                    title: memory_title(available)?,
                },
                context_types,
            }
        }
        _ => {
            let name = raw
                .query_operation
                .ok_or_else(|| missing("query_operation"))?;
            let operation = QueryOperation::parse(&name).ok_or_else(|| {
                format!(
                    "unknown query_operation `{name}` (expected list-tables, describe-tables or execute-query)"
                )
            })?;
            check_args(
                &raw.args,
                operation.params(),
                &format!("`{name}`"),
                available,
            )?;
            Action::DataQuery {
                operation,
                args: raw.args,
                collect: key("collect", raw.collect)?,
            }
        }
    };
    Ok(Step {
        id,
        title,
        prompt,
        skip_if_empty: raw.skip_if_empty,
        prefill: raw.prefill,
        action,
    })
}
