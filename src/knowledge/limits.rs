//! Field limits and the checks that enforce them, so bad input is refused with a message that
//! names the field and what to send instead, before anything is written.

use serde_json::Value;

use super::KnowledgeError;

pub const MAX_NAME_CHARS: usize = 200;
pub const MAX_TITLE_CHARS: usize = 500;
pub const MAX_SHORT_TEXT_CHARS: usize = 2_000;
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG_CHARS: usize = 100;
pub const MAX_QUERY_CHARS: usize = 1_000;
pub const MAX_LIMIT: u32 = 100;
pub const DEFAULT_LIMIT: u32 = 20;

fn invalid(message: String) -> KnowledgeError {
    KnowledgeError::Invalid(message)
}

/// A required text field: trimmed, not empty, at most `max` characters.
pub fn required_text(field: &str, value: &str, max: usize) -> Result<String, KnowledgeError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(invalid(format!(
            "`{field}` is empty: send a non-empty string"
        )));
    }
    optional_text(field, Some(trimmed), max).map(|text| text.unwrap_or_default())
}

/// An optional text field: blank becomes absent; at most `max` characters.
pub fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, KnowledgeError> {
    let Some(text) = value.map(str::trim).filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    let chars = text.chars().count();
    if chars > max {
        return Err(invalid(format!(
            "`{field}` is {chars} characters long: send at most {max}"
        )));
    }
    Ok(Some(text.to_owned()))
}

/// Memory content: a JSON object of bounded size that says something (not `{}`, not a blank
/// `text` alone).
pub fn content(value: &Value) -> Result<(), KnowledgeError> {
    let Some(object) = value.as_object() else {
        return Err(invalid(
            "`content` must be a string or a JSON object, e.g. {\"text\": \"...\"}".to_owned(),
        ));
    };
    let blank_text = object.len() == 1
        && object
            .get("text")
            .and_then(Value::as_str)
            .is_some_and(|text| text.trim().is_empty());
    if object.is_empty() || blank_text {
        return Err(invalid(
            "`content` is empty: send the memory's text (a string), or a JSON object such as {\"text\": \"...\"}".to_owned(),
        ));
    }
    let bytes = serde_json::to_vec(value)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if bytes > MAX_CONTENT_BYTES {
        return Err(invalid(format!(
            "`content` is {bytes} bytes as JSON: send at most {MAX_CONTENT_BYTES} bytes, or split it into several memories"
        )));
    }
    Ok(())
}

/// Tags: trimmed, de-duplicated, bounded in number and length, order kept.
pub fn tags(values: &[String]) -> Result<Vec<String>, KnowledgeError> {
    let mut tags: Vec<String> = Vec::new();
    for value in values {
        let tag = required_text("tags[]", value, MAX_TAG_CHARS)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(invalid(format!(
            "`tags` has {} entries: send at most {MAX_TAGS}",
            tags.len()
        )));
    }
    Ok(tags)
}

/// Confidence between 0 and 1 inclusive.
pub fn confidence(value: Option<f64>) -> Result<f64, KnowledgeError> {
    match value {
        None => Ok(1.0),
        Some(value) if (0.0..=1.0).contains(&value) => Ok(value),
        Some(value) => Err(invalid(format!(
            "`confidence` is {value}: send a number from 0 to 1"
        ))),
    }
}

/// A page size from 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
pub fn limit(value: Option<i64>) -> Result<u32, KnowledgeError> {
    match value {
        None => Ok(DEFAULT_LIMIT),
        Some(value) if (1..=i64::from(MAX_LIMIT)).contains(&value) => Ok(value as u32),
        Some(value) => Err(invalid(format!(
            "`limit` is {value}: send a number from 1 to {MAX_LIMIT}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blank_required_text_is_refused_with_the_field_name() {
        let error = required_text("title", "   ", 10).unwrap_err().to_string();
        assert!(error.contains("`title`"), "{error}");
    }

    #[test]
    fn text_longer_than_the_limit_is_refused() {
        assert!(required_text("title", "abcdef", 5).is_err());
        assert_eq!(required_text("title", " abcde ", 5).unwrap(), "abcde");
    }

    #[test]
    fn content_must_be_an_object_of_bounded_size() {
        assert!(content(&json!("text")).is_err());
        assert!(content(&json!({"text": "x".repeat(MAX_CONTENT_BYTES)})).is_err());
        assert!(content(&json!({"text": "ok"})).is_ok());
    }

    #[test]
    fn empty_content_is_refused() {
        assert!(content(&json!({})).is_err());
        assert!(content(&json!({"text": "  "})).is_err());
        assert!(content(&json!({"steps": []})).is_ok());
    }

    #[test]
    fn tags_are_trimmed_and_deduplicated() {
        let tags = tags(&[" a ".into(), "b".into(), "a".into()]).unwrap();
        assert_eq!(tags, vec!["a", "b"]);
    }

    #[test]
    fn limit_outside_one_to_a_hundred_is_refused() {
        assert!(limit(Some(0)).is_err());
        assert!(limit(Some(101)).is_err());
        assert_eq!(limit(None).unwrap(), 20);
    }

    #[test]
    fn confidence_defaults_to_one_and_stays_within_bounds() {
        assert_eq!(confidence(None).unwrap(), 1.0);
        assert!(confidence(Some(1.5)).is_err());
    }
}
