//! Checking what the client sends for a step: the user's answer to a `store` step, or the
//! artifact of a `generate` step. A mismatch is an error that says what to send; nothing is kept.

use serde_json::{Map, Value};

use super::fence::strip_fence;
use crate::knowledge::MAX_CONTENT_BYTES;
use crate::playbooks::spec::{Action, ArtifactFormat, InputKind, InputSpec, Step};

/// What a step accepted: the value to keep under its key (`None` when an optional step was left
/// empty) and the text a memory of it would hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub value: Option<Value>,
    pub text: String,
}

/// The key a step takes its input under and what it expects there (`None`: it takes none).
pub fn expected(step: &Step) -> Option<(&str, InputSpec)> {
    match &step.action {
        Action::Store { collect, input, .. } => Some((collect, input.clone())),
        Action::Generate { output, .. } => Some((
            output,
            InputSpec {
                kind: InputKind::Text,
                required: true,
                description: Some("the generated artifact".into()),
            },
        )),
        _ => None,
    }
}

/// Checks `input` against what `step` takes.
pub fn accept(step: &Step, input: &Map<String, Value>) -> Result<Accepted, String> {
    let Some((key, spec)) = expected(step) else {
        if let Some(extra) = input.keys().next() {
            return Err(format!(
                "step `{}` runs on the server and takes no input (you sent `{extra}`): send an empty `input` to run it again, or `skip: true` to go on without it",
                step.id
            ));
        }
        return Ok(Accepted {
            value: None,
            text: String::new(),
        });
    };
    if let Some(extra) = input.keys().find(|name| name.as_str() != key) {
        return Err(format!(
            "step `{}` takes `input.{key}` ({}), not `{extra}`: send {{\"{key}\": …}}",
            step.id,
            spec.kind.describe()
        ));
    }
    let value = input.get(key).filter(|value| !is_empty(value));
    let Some(value) = value else {
        if spec.required {
            return Err(format!(
                "step `{}` needs `input.{key}` ({}): {}",
                step.id,
                spec.kind.describe(),
                step.title
            ));
        }
        return Ok(Accepted {
            value: None,
            text: String::new(),
        });
    };
    if value.to_string().len() > MAX_CONTENT_BYTES {
        return Err(format!(
            "`input.{key}` is larger than {} KiB: send something shorter",
            MAX_CONTENT_BYTES / 1024
        ));
    }
    let format = match &step.action {
        Action::Generate {
            format, expects, ..
        } => Some((*format, expects.trim())),
        _ => None,
    };
    match (spec.kind, value, format) {
        (InputKind::Text, Value::String(text), Some((format, expects))) => {
            artifact(key, strip_fence(text), format, expects)
        }
        (InputKind::Text, Value::String(text), None) => Ok(Accepted {
            value: Some(Value::String(text.trim().to_owned())),
            text: text.trim().to_owned(),
        }),
        (InputKind::TextList, Value::Array(items), _)
            if items.iter().all(|item| item.is_string()) =>
        {
            let items: Vec<String> = items
                .iter()
                .filter_map(|item| item.as_str())
                .map(|item| item.trim().to_owned())
                .filter(|item| !item.is_empty())
                .collect();
            let text = items
                .iter()
                .map(|item| format!("- {item}"))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Accepted {
                value: Some(Value::from(items)),
                text,
            })
        }
        (InputKind::Object, Value::Object(_), _) => Ok(Accepted {
            value: Some(value.clone()),
            text: serde_json::to_string_pretty(value).unwrap_or_default(),
        }),
        (kind, other, _) => Err(format!(
            "`input.{key}` must be {} for step `{}`, not {}: e.g. {}",
            kind.describe(),
            step.id,
            json_kind(other),
            example(key, kind)
        )),
    }
}

/// Checks a generated artifact (one surrounding code fence already taken off): Markdown is kept
/// as it is; YAML must parse to a list or a mapping, else the error shows the shape to send.
fn artifact(
    key: &str,
    text: &str,
    format: ArtifactFormat,
    expects: &str,
) -> Result<Accepted, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err(format!(
            "`input.{key}` holds only an empty code fence: send the artifact itself ({expects})"
        ));
    }
    if format == ArtifactFormat::Markdown {
        return Ok(Accepted {
            value: Some(Value::String(text.to_owned())),
            text: text.to_owned(),
        });
    }
    let what_to_send = format!(
        "send the artifact as YAML text (a single ```yaml fence around it is fine, nothing else around it), shaped as the request asks: {expects}"
    );
    let parsed = match crate::yaml::to_json(text, crate::yaml::Limits::DEFAULT) {
        Ok(parsed) => parsed,
        Err(error @ crate::yaml::YamlError::TooLarge { .. }) => {
            return Err(format!("`input.{key}` cannot be read: {error}"));
        }
        Err(error) => {
            return Err(format!(
                "`input.{key}` is not valid YAML ({error}): {what_to_send}"
            ));
        }
    };
    if !(parsed.is_array() || parsed.is_object()) {
        return Err(format!(
            "`input.{key}` is YAML but {}, not a list or a mapping: {what_to_send}",
            json_kind(&parsed)
        ));
    }
    Ok(Accepted {
        value: Some(parsed),
        text: text.to_owned(),
    })
}

/// Whether a collected value counts as empty (for `skip_if_empty` and optional inputs).
pub fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(text) => text.trim().is_empty(),
        Value::Array(items) => items.is_empty(),
        Value::Object(map) => map.is_empty(),
        _ => false,
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn example(key: &str, kind: InputKind) -> String {
    match kind {
        InputKind::Text => format!("{{\"{key}\": \"…\"}}"),
        InputKind::TextList => format!("{{\"{key}\": [\"…\", \"…\"]}}"),
        InputKind::Object => format!("{{\"{key}\": {{…}}}}"),
    }
}
