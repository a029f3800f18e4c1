//! Generated inputs: text from hostile fragments, mutations of real files, and JSON values.

use proptest::prelude::*;
use proptest::sample::{Index, select};
use serde_json::Value;

const SQL: &[&str] = &[
    "SELECT",
    "select",
    "*",
    "FROM",
    "t",
    "WHERE",
    "(",
    ")",
    "1",
    "'x'",
    "''",
    ";",
    "DROP TABLE t",
    "UNION ALL",
    "--",
    "/*",
    "*/",
    "WITH",
    "AS",
    "JOIN",
    "INSERT INTO",
    "COPY",
    "pg_read_file",
    "$$",
    ",",
    "\"",
    "`",
    "[",
    "]",
    "CAST",
    "::",
    "LIMIT",
    "-9223372036854775809",
    "1e999",
    "\u{0}",
    "\u{feff}",
    "é",
    "INTO OUTFILE",
    "LATERAL",
    "VALUES",
    "ARRAY[",
    "ORDER BY",
    "\\",
];

const YAML: &[&str] = &[
    "\n",
    "  ",
    "- ",
    ": ",
    "id: x\n",
    "steps:\n",
    "&a ",
    "*a",
    "!!binary ",
    "? ",
    "{",
    "}",
    "[",
    "]",
    "|\n",
    ">-\n",
    "\"",
    "'",
    "#",
    "---\n",
    "...\n",
    "!tag ",
    "{{ x }}",
    "{% for %}",
    "\t",
    "%YAML 1.2\n",
    "<<: *a\n",
    "\u{0}",
    "\u{2028}",
    "-1e999",
    "0x",
    "~",
    "null",
    "type: generate\n",
    "template: t.md.j2\n",
    "prompt: \"{{\"\n",
    "when: \"\"\n",
];

const HEADER: &[&str] = &[
    "Bearer",
    "bearer",
    "Basic",
    " ",
    "  ",
    "\t",
    "cdf",
    "_",
    "cdf_",
    "abcdefghij",
    "0123456789",
    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "${CODIFIER_KEY}",
    "${",
    "}",
    "é",
    "\u{0}",
    "test-operator-token-0123456789",
    "=",
    ",",
    "\"",
];

/// Text made of `fragments` and arbitrary characters.
fn fragments(pool: &'static [&'static str], max: usize) -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => select(pool).prop_map(str::to_owned),
        1 => any::<String>().prop_map(|s| s.chars().take(12).collect::<String>()),
    ];
    proptest::collection::vec(piece, 0..max).prop_map(|pieces| pieces.concat())
}

pub fn sql() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        fragments(SQL, 40).prop_map(|text| text.replace(';', " ; ")),
        fragments(SQL, 40),
    ]
}

pub fn header() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), fragments(HEADER, 8)]
}

/// One edit of a text: at a position, delete some bytes, insert a fragment, or repeat a slice.
#[derive(Debug, Clone)]
pub enum Edit {
    Delete(Index, u8),
    Insert(Index, String),
    Repeat(Index, u8, u8),
}

pub fn edits(max: usize) -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<Index>(), any::<u8>()).prop_map(|(at, n)| Edit::Delete(at, n)),
        (any::<Index>(), fragments(YAML, 3)).prop_map(|(at, s)| Edit::Insert(at, s)),
        (any::<Index>(), any::<u8>(), 0u8..50).prop_map(|(at, n, k)| Edit::Repeat(at, n, k)),
    ];
    proptest::collection::vec(edit, 0..max)
}

/// `text` with `edits` applied (positions snap to character boundaries).
pub fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut text = text.to_owned();
    let boundary = |text: &str, at: &Index| {
        let mut at = at.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    for edit in edits {
        match edit {
            Edit::Delete(at, n) => {
                let start = boundary(&text, at);
                let mut end = (start + usize::from(*n)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.replace_range(start..end, "");
            }
            Edit::Insert(at, piece) => {
                let at = boundary(&text, at);
                text.insert_str(at, piece);
            }
            Edit::Repeat(at, n, times) => {
                let start = boundary(&text, at);
                let mut end = (start + usize::from(*n)).min(text.len());
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let slice = text[start..end].repeat(usize::from(*times));
                text.insert_str(end, &slice);
            }
        }
    }
    text
}

/// A YAML text: arbitrary, fragments, or a mutation of one of `bases`.
pub fn yaml(bases: Vec<String>) -> impl Strategy<Value = (usize, Vec<Edit>, String)> {
    let count = bases.len();
    prop_oneof![
        (0..count, edits(8), Just(String::new())),
        (Just(usize::MAX), Just(Vec::new()), fragments(YAML, 60)),
        (Just(usize::MAX), Just(Vec::new()), any::<String>()),
    ]
}

/// The text a [`yaml`] value stands for.
pub fn yaml_text(bases: &[String], value: &(usize, Vec<Edit>, String)) -> String {
    match bases.get(value.0) {
        Some(base) => mutate(base, &value.1),
        None => value.2.clone(),
    }
}

const KEYS: &[&str] = &[
    "a",
    "id",
    "name",
    "query",
    "project",
    "limit",
    "content",
    "tags",
    "type",
    "text",
    "",
    "__proto__",
    "sql",
    "steps",
];

/// Arbitrary JSON, nested a few levels.
pub fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(Value::from(u64::MAX)),
        select(
            &[
                "",
                "x",
                "p",
                "main",
                "00000000-0000-0000-0000-000000000000",
                "😀",
                "\u{0}",
                "..",
                "{{",
                "*"
            ][..]
        )
        .prop_map(Value::from),
        any::<String>().prop_map(|s| Value::from(s.chars().take(40).collect::<String>())),
        (0usize..3).prop_map(|n| Value::from("y".repeat(10usize.pow(n as u32 + 2)))),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(select(KEYS).prop_map(str::to_owned), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}
