//! One sharp edge or validation of a pack as a record, or the reason it cannot be used. Field
//! names vary between packs (`title` for `summary`, `fix` for `fix_action`, `file_glob` and
//! `match` for `applies_to` and `pattern`, …); patterns are compiled here (and a validation's
//! own `test_cases` run), so nothing that reaches the library fails later.

use serde_json::{Map, Value};

use super::fields::{strings, text, texts};
use super::skill::usable_id;
use crate::domain::guardrail::{Severity, SharpEdge, Validation};
use crate::guardrails::pattern::Pattern;

/// Why an item (or a whole file) was not imported: a short key to count by, and the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: &'static str,
    pub detail: String,
}

fn refuse(reason: &'static str, detail: impl Into<String>) -> Refusal {
    Refusal {
        reason,
        detail: detail.into(),
    }
}

/// Compiles a pattern with the engine checks run on (lookaround allowed, a backtracking
/// budget per search).
pub fn compile(pattern: &str) -> Result<Pattern, String> {
    Pattern::compile(pattern).map_err(|error| error.0)
}

/// An item's id, which must be there and be ordinary text.
pub fn item_id(fields: &Map<String, Value>) -> Result<String, Refusal> {
    let id = text(fields, &["id"]).ok_or_else(|| refuse("no_id", "it has no `id`"))?;
    if !usable_id(&id) {
        return Err(refuse(
            "bad_id",
            format!("the id `{id}` is not a usable id"),
        ));
    }
    Ok(id)
}

fn severity(fields: &Map<String, Value>) -> Result<Option<Severity>, Refusal> {
    match text(fields, &["severity", "level"]) {
        None => Ok(None),
        Some(written) => Severity::parse(&written).map(Some).ok_or_else(|| {
            refuse(
                "unknown_severity",
                format!(
                    "severity `{written}` is not one of critical, error, warning, info, high, medium, low"
                ),
            )
        }),
    }
}

/// A sharp edge of skill `skill`, and a note when its detection pattern had to be dropped (the
/// edge is kept: its advice stands without it).
pub fn sharp_edge(item: &Value, skill: &str) -> Result<(SharpEdge, Option<Refusal>), Refusal> {
    let fields = item
        .as_object()
        .ok_or_else(|| refuse("not_a_map", "the item is not a map of fields"))?;
    let id = item_id(fields)?;
    let summary = text(fields, &["summary", "title", "gotcha", "name", "problem"])
        .ok_or_else(|| refuse("no_summary", "it has no `summary` or `title`"))?;
    let severity = severity(fields)?;
    let (detection_pattern, dropped) = detection(fields);
    let edge = SharpEdge {
        skill: Some(skill.to_owned()),
        id,
        summary,
        severity,
        situation: text(fields, &["situation", "description", "problem", "gotcha"])
            .unwrap_or_default(),
        why: text(
            fields,
            &[
                "why",
                "why_happens",
                "why_it_happens",
                "cause",
                "root_cause",
                "why_dangerous",
            ],
        )
        .unwrap_or_default(),
        solution: text(
            fields,
            &[
                "solution",
                "fix",
                "right_way",
                "recommendation",
                "prevention",
            ],
        )
        .unwrap_or_default(),
        symptoms: texts(fields, &["symptoms", "symptom", "red_flags"]),
        detection_pattern,
    };
    Ok((edge, dropped))
}

/// The edge's detection patterns (one text, a list, `{pattern: …}` maps) joined into one
/// alternation; those that do not compile are left out and named in the note.
fn detection(fields: &Map<String, Value>) -> (Option<String>, Option<Refusal>) {
    let Some(written) = ["detection_pattern", "detection_patterns", "detection_regex"]
        .iter()
        .find_map(|name| fields.get(*name).filter(|value| !value.is_null()))
    else {
        return (None, None);
    };
    let candidates: Vec<String> = match written {
        Value::Object(map) => map
            .get("pattern")
            .or(map.get("regex"))
            .map(strings)
            .unwrap_or_default(),
        Value::Array(items) => items
            .iter()
            .flat_map(|item| match item {
                Value::Object(map) => map
                    .get("pattern")
                    .or(map.get("regex"))
                    .map(strings)
                    .unwrap_or_default(),
                other => strings(other),
            })
            .collect(),
        other => strings(other),
    };
    if candidates.is_empty() {
        let note = refuse(
            "detection_not_regex",
            "its detection is not a regular expression",
        );
        return (None, Some(note));
    }
    let (mut kept, mut broken) = (Vec::new(), Vec::new());
    for pattern in candidates {
        match compile(&pattern) {
            Ok(_) => kept.push(pattern),
            Err(error) => broken.push(format!("`{pattern}`: {error}")),
        }
    }
    let note = (!broken.is_empty()).then(|| {
        refuse(
            "detection_does_not_compile",
            format!("dropped {}", broken.join("; ")),
        )
    });
    let joined = match kept.len() {
        0 => None,
        1 => kept.pop(),
        _ => Some(
            kept.iter()
                .map(|p| format!("(?:{p})"))
                .collect::<Vec<_>>()
                .join("|"),
        ),
    };
    (joined, note)
}

/// Fields that make a check conditional on more than its pattern, which the record cannot
/// express: running the pattern alone would flag code the check means to allow.
const CONDITIONS: [&str; 9] = [
    "exclude",
    "excludes",
    "exclude_pattern",
    "exclude_patterns",
    "exceptions",
    "negative_pattern",
    "anti_pattern",
    "context_pattern",
    "context_match",
];

/// A validation of skill `skill`: only checks that run a regular expression are usable.
pub fn validation(item: &Value, skill: &str) -> Result<Validation, Refusal> {
    let fields = item
        .as_object()
        .ok_or_else(|| refuse("not_a_map", "the item is not a map of fields"))?;
    let id = item_id(fields)?;
    let nested = fields.get("pattern").and_then(Value::as_object);
    let kind = text(fields, &["type", "check_type"]).unwrap_or_else(|| "regex".into());
    if !matches!(kind.to_ascii_lowercase().as_str(), "regex" | "pattern") {
        return Err(refuse(
            "not_regex",
            format!("its type is `{kind}`, not a regex check"),
        ));
    }
    let inverted = fields.get("inverse").and_then(Value::as_bool) == Some(true)
        || [Some(fields), nested]
            .into_iter()
            .flatten()
            .filter_map(|f| text(f, &["match"]))
            .any(|m| m.starts_with("absent"));
    if inverted {
        return Err(refuse(
            "inverted",
            "it fails when a pattern is absent, which a validation cannot express",
        ));
    }
    let conditions: Vec<&str> = CONDITIONS
        .into_iter()
        .filter(|name| fields.contains_key(*name) || nested.is_some_and(|n| n.contains_key(*name)))
        .collect();
    if !conditions.is_empty() {
        return Err(refuse(
            "conditional",
            format!(
                "it is conditional on `{}`, which a validation cannot express",
                conditions.join("`, `")
            ),
        ));
    }
    let severity = severity(fields)?;
    let patterns = patterns(fields, nested)?;
    let mut applies_to = texts(
        fields,
        &["applies_to", "file_glob", "file_patterns", "file_pattern"],
    );
    if applies_to.is_empty() {
        applies_to = nested
            .map(|n| texts(n, &["file_glob", "applies_to"]))
            .unwrap_or_default();
    }
    for glob in &applies_to {
        globset::Glob::new(glob).map_err(|error| {
            refuse(
                "bad_glob",
                format!("the path glob `{glob}` does not compile: {error}"),
            )
        })?;
    }
    let compiled = patterns
        .iter()
        .map(|pattern| {
            compile(pattern).map_err(|error| {
                refuse(
                    "does_not_compile",
                    format!("pattern `{pattern}` does not compile: {error}"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    run_test_cases(fields.get("test_cases"), &compiled)?;
    let name = text(fields, &["name", "title"]).unwrap_or_else(|| id.clone());
    Ok(Validation {
        skill: Some(skill.to_owned()),
        message: text(fields, &["message", "description"]).unwrap_or_else(|| name.clone()),
        fix_action: text(
            fields,
            &[
                "fix_action",
                "fix",
                "fix_hint",
                "fix_suggestion",
                "fix_guidance",
                "fix_template",
            ],
        ),
        id,
        name,
        severity,
        kind: "regex".into(),
        patterns,
        applies_to,
    })
}

/// The patterns of a check: `pattern` (one, a list, or `{match | regex, flags}`), `patterns`
/// (texts or `{regex | pattern}` maps), `regex`, or `match` when it holds a pattern rather
/// than `present`.
fn patterns(
    fields: &Map<String, Value>,
    nested: Option<&Map<String, Value>>,
) -> Result<Vec<String>, Refusal> {
    let mut found = Vec::new();
    if let Some(nested) = nested {
        let flags = text(nested, &["flags"]).unwrap_or_default();
        let flags: String = flags.chars().filter(|c| "imsx".contains(*c)).collect();
        for pattern in texts(nested, &["match", "regex", "pattern"]) {
            found.push(if flags.is_empty() {
                pattern
            } else {
                format!("(?{flags}){pattern}")
            });
        }
    } else if let Some(Value::Array(items)) = fields.get("patterns") {
        for item in items {
            match item {
                Value::Object(map) => found.extend(text(map, &["regex", "pattern"])),
                other => found.extend(strings(other)),
            }
        }
    } else {
        found = texts(fields, &["pattern", "regex"]);
        if found.is_empty()
            && let Some(written) = text(fields, &["match"]).filter(|m| m != "present")
        {
            found.push(written);
        }
    }
    found.retain(|pattern| !pattern.trim().is_empty());
    if found.is_empty() {
        return Err(refuse("no_pattern", "it has no pattern to run"));
    }
    Ok(found)
}

/// Runs a check's own `test_cases` (`should_match`, `should_not_match`): a check that fails its
/// own examples would fail good code or miss bad code, so it is not imported.
fn run_test_cases(cases: Option<&Value>, compiled: &[Pattern]) -> Result<(), Refusal> {
    let Some(cases) = cases.and_then(Value::as_object) else {
        return Ok(());
    };
    let matches = |sample: &str| -> Result<bool, Refusal> {
        for regex in compiled {
            match regex.is_match(sample) {
                Ok(true) => return Ok(true),
                Ok(false) => {}
                Err(error) => {
                    return Err(refuse(
                        "fails_test_case",
                        format!("a pattern cannot decide test case `{sample}`: {error}"),
                    ));
                }
            }
        }
        Ok(false)
    };
    for (field, want) in [("should_match", true), ("should_not_match", false)] {
        for sample in cases.get(field).map(strings).unwrap_or_default() {
            if matches(&sample)? != want {
                let verb = if want { "match" } else { "not match" };
                return Err(refuse(
                    "fails_test_case",
                    format!("its patterns fail their own test case: `{sample}` should {verb}"),
                ));
            }
        }
    }
    Ok(())
}
