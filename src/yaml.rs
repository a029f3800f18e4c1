//! Reading YAML written by others (skill packs, artifacts a client sends to a playbook step)
//! into JSON within a budget.
//!
//! YAML aliases repeat a node wherever they are written, and a parser expands them: a 15 KB file
//! of one anchored list of a thousand items and a thousand aliases to it is a million values,
//! about a gigabyte once parsed, and it grows with the square of the file's size (serde_norway
//! only caps the number of alias jumps at 100 per event of the file). So the JSON is built here,
//! node by node as the parser hands them over, aliases expanded included, and the parse stops
//! with [`YamlError::TooLarge`] as soon as the document grows past its [`Limits`].

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};
use serde_json::{Map, Value};

/// How large a parsed document may grow (aliases expanded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Values of any kind (scalars, lists, maps; each map key counts too).
    pub nodes: usize,
    /// Bytes of text (strings and map keys) in all.
    pub text_bytes: usize,
}

impl Limits {
    /// Ample for any real file (the largest file of a 1,800-file skill pack is 100 KB, a few
    /// thousand values), small enough that a parsed document stays under about 100 MB.
    pub const DEFAULT: Limits = Limits {
        nodes: 500_000,
        text_bytes: 16 << 20,
    };
}

/// Why YAML text could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum YamlError {
    #[error("{0}")]
    Invalid(String),
    #[error(
        "the document is too large once its aliases are expanded (over {nodes} values or \
         {text_bytes} bytes of text): write the repeated parts out, or use fewer aliases"
    )]
    TooLarge { nodes: usize, text_bytes: usize },
}

/// Parses YAML text into JSON. An empty document (or one of comments only) is `Null`; map keys
/// that are not text (numbers, booleans) become text; tags are dropped (`!tag x` reads as `x`);
/// numbers too large for JSON are `Null`.
pub fn to_json(text: &str, limits: Limits) -> Result<Value, YamlError> {
    let budget = Budget {
        limits,
        nodes: Cell::new(0),
        text_bytes: Cell::new(0),
        exceeded: Cell::new(false),
    };
    let deserializer = serde_norway::Deserializer::from_str(text);
    match (Node(&budget)).deserialize(deserializer) {
        Ok(value) => Ok(value),
        Err(_) if budget.exceeded.get() => Err(YamlError::TooLarge {
            nodes: limits.nodes,
            text_bytes: limits.text_bytes,
        }),
        Err(error) => Err(YamlError::Invalid(error.to_string())),
    }
}

struct Budget {
    limits: Limits,
    nodes: Cell<usize>,
    text_bytes: Cell<usize>,
    exceeded: Cell<bool>,
}

impl Budget {
    fn spend<E: serde::de::Error>(&self, text_bytes: usize) -> Result<(), E> {
        self.nodes.set(self.nodes.get() + 1);
        self.text_bytes
            .set(self.text_bytes.get().saturating_add(text_bytes));
        if self.nodes.get() > self.limits.nodes || self.text_bytes.get() > self.limits.text_bytes {
            self.exceeded.set(true);
            return Err(E::custom("the document is too large"));
        }
        Ok(())
    }
}

/// One value of the document, read against the budget.
#[derive(Clone, Copy)]
struct Node<'a>(&'a Budget);

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("any YAML value")
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.0.spend(0)?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.0.spend(v.len())?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.0.spend(0)?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        self.0.spend(0)?;
        let mut fields = Map::new();
        while let Some(key) = map.next_key_seed(self)? {
            let key = match key {
                Value::String(text) => text,
                other => other.to_string(),
            };
            let value = map.next_value_seed(self)?;
            fields.insert(key, value);
        }
        Ok(Value::Object(fields))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Value, A::Error> {
        let (_tag, contents) = data.variant::<String>()?;
        contents.newtype_variant_seed(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use serde_json::json;

    use super::*;

    fn parse(text: &str) -> Result<Value, YamlError> {
        to_json(text, Limits::DEFAULT)
    }

    #[test]
    fn yaml_reads_as_json_with_text_keys_and_tags_dropped() {
        assert_eq!(parse("").unwrap(), Value::Null);
        assert_eq!(parse("# only a comment\n").unwrap(), Value::Null);
        let value = parse("1: one\ntrue: yes\nlist: [a, 2, 1.5, ~]\ntagged: !x [1]\n").unwrap();
        assert_eq!(
            value,
            json!({"1": "one", "true": "yes", "list": ["a", 2, 1.5, null], "tagged": [1]})
        );
        assert_eq!(
            parse("a: &x [1]\nb: *x\n").unwrap(),
            json!({"a": [1], "b": [1]})
        );
        assert!(matches!(parse("a: [unclosed"), Err(YamlError::Invalid(_))));
    }

    #[test]
    fn a_file_whose_aliases_expand_to_millions_of_values_is_refused_quickly() {
        // 15 KB: one anchored list of 3,000 items and 3,000 aliases to it, nine million values.
        let text = format!(
            "a: &a [{}]\nb: [{}]\n",
            vec!["x"; 3000].join(","),
            vec!["*a"; 3000].join(",")
        );
        let started = Instant::now();
        let error = parse(&text).unwrap_err();
        assert!(matches!(error, YamlError::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("fewer aliases"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn aliases_of_a_long_text_count_its_bytes_each_time() {
        let long = "y".repeat(100_000);
        let text = format!("a: &a {long}\nb: [{}]\n", vec!["*a"; 200].join(","));
        assert!(matches!(parse(&text), Err(YamlError::TooLarge { .. })));
        let few = format!("a: &a {long}\nb: [*a, *a]\n");
        assert!(parse(&few).is_ok());
    }
}
