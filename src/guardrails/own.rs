//! A project's own guardrail memories as `update_memory` writes them: the `content` of a
//! `sharp_edge` or `validation` must be its record (with a pattern that compiles), and a
//! `skill` is never written there (skills come from `codifier skills import`).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::domain::MemoryType;
use crate::domain::guardrail::{SharpEdge, Validation};

/// Checks the content of a memory of `kind` a caller writes into a project; `Err` says which
/// field to fix.
pub fn check(kind: MemoryType, content: &Value) -> Result<(), String> {
    match kind {
        MemoryType::Skill => Err(
            "`memory_type` `skill` is not written with update_memory: skills come from `codifier skills import`, into the shared library. Write a `sharp_edge` or `validation` for this project instead".into(),
        ),
        MemoryType::SharpEdge => {
            let edge: SharpEdge = record(content, "sharp_edge", "{\"id\", \"summary\", \"severity\", \"situation\", \"why\", \"solution\", \"symptoms\", \"detection_pattern\"}")?;
            required("content.id", &edge.id)?;
            required("content.summary", &edge.summary)?;
            if let Some(pattern) = &edge.detection_pattern {
                compiles("content.detection_pattern", pattern)?;
            }
            Ok(())
        }
        MemoryType::Validation => {
            let check: Validation = record(content, "validation", "{\"id\", \"name\", \"severity\", \"kind\", \"patterns\", \"message\", \"fix_action\", \"applies_to\"}")?;
            required("content.id", &check.id)?;
            required("content.name", &check.name)?;
            required("content.message", &check.message)?;
            if check.kind.is_empty() || check.kind == "regex" {
                if check.patterns.is_empty() {
                    return Err("`content.patterns` is empty: send at least one regular expression (a match is a failure), or set `content.kind` to e.g. `checklist` for a check people read".into());
                }
                for (n, pattern) in check.patterns.iter().enumerate() {
                    compiles(&format!("content.patterns[{n}]"), pattern)?;
                }
            }
            for (n, glob) in check.applies_to.iter().enumerate() {
                globset::Glob::new(glob).map_err(|error| {
                    format!("`content.applies_to[{n}]` (`{glob}`) is not a path glob: {error}")
                })?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn record<T: DeserializeOwned>(content: &Value, kind: &str, shape: &str) -> Result<T, String> {
    if !content.is_object() {
        return Err(format!(
            "`content` of a `{kind}` must be an object with the fields {shape}"
        ));
    }
    serde_path_to_error::deserialize(content).map_err(|error| {
        format!(
            "`content.{}` is wrong for a `{kind}`: {}",
            error.path(),
            error.inner()
        )
    })
}

fn required(field: &str, value: &str) -> Result<(), String> {
    if value.trim().is_empty() {
        return Err(format!("`{field}` is missing or empty: send it"));
    }
    Ok(())
}

fn compiles(field: &str, pattern: &str) -> Result<(), String> {
    super::import::compile(pattern)
        .map(|_| ())
        .map_err(|error| {
            format!("`{field}` (`{pattern}`) is not a regular expression that compiles: {error}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_projects_sharp_edge_needs_a_summary_and_a_pattern_that_compiles() {
        let good = json!({"id": "e1", "summary": "s", "severity": "high",
            "detection_pattern": "fetch\\((?!.*timeout)"});
        let wrong_severity = check(MemoryType::SharpEdge, &good).unwrap_err();
        assert!(
            wrong_severity.contains("content.severity"),
            "{wrong_severity}"
        );
        let mut good = good;
        good["severity"] = json!("error");
        assert_eq!(check(MemoryType::SharpEdge, &good), Ok(()));
        good["detection_pattern"] = json!("(unclosed");
        let broken = check(MemoryType::SharpEdge, &good).unwrap_err();
        assert!(broken.contains("content.detection_pattern"), "{broken}");
        let bare = check(MemoryType::SharpEdge, &json!({"id": "e"})).unwrap_err();
        assert!(bare.contains("content.summary"), "{bare}");
        let text = check(MemoryType::SharpEdge, &json!("just text")).unwrap_err();
        assert!(text.contains("must be an object"), "{text}");
    }

    #[test]
    fn a_projects_validation_needs_patterns_that_compile_and_globs_unless_it_is_not_regex() {
        let check_of = |patterns: Value, kind: &str| {
            check(
                MemoryType::Validation,
                &json!({"id": "v", "name": "n", "message": "m",
                "kind": kind, "patterns": patterns, "applies_to": ["**/*.ts"]}),
            )
        };
        assert_eq!(check_of(json!(["console\\.log"]), "regex"), Ok(()));
        let broken = check_of(json!(["ok", "a{2,1}"]), "regex").unwrap_err();
        assert!(broken.contains("content.patterns[1]"), "{broken}");
        assert!(
            check_of(json!([]), "")
                .unwrap_err()
                .contains("content.patterns")
        );
        assert_eq!(check_of(json!([]), "checklist"), Ok(()));
    }

    #[test]
    fn a_skill_is_never_written_into_a_project() {
        let refused = check(MemoryType::Skill, &json!({"id": "s"})).unwrap_err();
        assert!(refused.contains("codifier skills import"), "{refused}");
    }
}
