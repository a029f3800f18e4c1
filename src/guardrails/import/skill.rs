//! A skill folder's `skill.yaml` (and `collaboration.yaml`) as a [`Skill`]: the id from `id`,
//! `skill_id` or the folder's name, the lists however the pack writes them, and the blocks
//! (identity, patterns, anti-patterns, handoffs, collaboration) kept as written.

use serde_json::Value;

use super::fields::{entries, scalar, text, texts};
use crate::domain::guardrail::Skill;

/// The skill a parsed `skill.yaml` describes, or why it cannot be used. `folder` is the skill
/// folder's name, the id of last resort.
pub fn skill(document: &Value, folder: &str, collaboration: Value) -> Result<Skill, String> {
    let Some(fields) = document.as_object() else {
        return Err(match document {
            Value::Null => "the file is empty".to_owned(),
            _ => "the file is not a map of fields".to_owned(),
        });
    };
    let id = text(fields, &["id", "skill_id", "skill"]).unwrap_or_else(|| folder.to_owned());
    if !usable_id(&id) {
        return Err(format!(
            "the skill id `{id}` is not a usable id (letters, digits, `-`, `_`, `.`)"
        ));
    }
    let name = text(fields, &["name", "display_name", "title"]).unwrap_or_else(|| id.clone());
    let mut requires = texts(fields, &["requires"]);
    requires.extend(texts(fields, &["requires_skills"]));
    Ok(Skill {
        name,
        version: fields.get("version").and_then(scalar),
        layer: fields.get("layer").and_then(scalar),
        description: text(fields, &["description", "summary"]).unwrap_or_default(),
        owns: texts(fields, &["owns"]),
        stack: texts(fields, &["stack", "technologies"]),
        pairs_with: texts(fields, &["pairs_with"]),
        requires,
        tags: texts(fields, &["tags"]),
        triggers: texts(fields, &["triggers"]),
        identity: fields.get("identity").cloned().unwrap_or(Value::Null),
        patterns: entries(fields.get("patterns")),
        anti_patterns: entries(fields.get("anti_patterns").or(fields.get("anti-patterns"))),
        handoffs: entries(fields.get("handoffs")),
        collaboration,
        id,
    })
}

/// Whether an id from a pack is short, one line and made of ordinary characters.
pub fn usable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 200
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | ' '))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_skill_takes_its_id_from_skill_id_or_the_folder_and_reads_map_shaped_lists() {
        let document = json!({
            "skill_id": "web-forms", "name": "Web forms", "layer": 2, "version": 1.5,
            "stack": {"frameworks": ["React", {"name": "Vue"}], "file_patterns": ["*.tsx"]},
            "triggers": {"keywords": ["form", "input"]},
            "patterns": {"controlled": {"when": "always"}},
            "requires_skills": ["html"],
        });
        let skill = skill(&document, "folder", Value::Null).unwrap();
        assert_eq!(
            (skill.id.as_str(), skill.name.as_str()),
            ("web-forms", "Web forms")
        );
        assert_eq!(
            (skill.layer.as_deref(), skill.version.as_deref()),
            (Some("2"), Some("1.5"))
        );
        assert_eq!(skill.stack, ["React", "Vue"]);
        assert_eq!(skill.triggers, ["form", "input"]);
        assert_eq!(skill.requires, ["html"]);
        assert_eq!(
            skill.patterns,
            [json!({"name": "controlled", "when": "always"})]
        );
        let bare = super::skill(&json!({"description": "d"}), "from-folder", Value::Null);
        assert_eq!(bare.unwrap().id, "from-folder");
    }

    #[test]
    fn an_empty_or_listed_skill_file_or_an_odd_id_is_refused_with_the_reason() {
        let empty = skill(&Value::Null, "f", Value::Null).unwrap_err();
        assert_eq!(empty, "the file is empty");
        assert!(
            skill(&json!(["a"]), "f", Value::Null)
                .unwrap_err()
                .contains("not a map")
        );
        let odd = skill(&json!({"id": "a\nb"}), "f", Value::Null).unwrap_err();
        assert!(odd.contains("not a usable id"), "{odd}");
    }
}
