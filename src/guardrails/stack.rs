//! Which stack a skill or a sharp edge belongs to. Packs name a stack in three places — a
//! skill's `stack`, its `tags` and its `triggers` — and in many spellings (`Next.js`, `nextjs`,
//! `next.js app router`), so names are compared by their letters and digits only, and a trigger
//! counts when one of its words is the stack's name.

use serde::{Deserialize, Serialize};

/// How strongly a skill belongs to a stack: named in its `stack` beats a tag beats a trigger.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Membership {
    Trigger,
    Tag,
    Stack,
}

/// A name as compared: lowercase letters and digits only (`Next.js` → `nextjs`).
pub fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The stack names a caller sent, split on commas, normalized, without blanks or repeats.
pub fn parse_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names.into_iter().flat_map(|text| text.split(',')) {
        let name = normalize(name);
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// How strongly something with these `stack`, `tags` and `triggers` belongs to any of the
/// (normalized) stack `names`; `None` when it does not.
pub fn membership(
    names: &[String],
    stack: &[String],
    tags: &[String],
    triggers: &[String],
) -> Option<Membership> {
    let named = |list: &[String]| list.iter().any(|item| names.contains(&normalize(item)));
    if named(stack) {
        return Some(Membership::Stack);
    }
    if named(tags) {
        return Some(Membership::Tag);
    }
    let in_trigger = |trigger: &String| {
        names.contains(&normalize(trigger))
            || trigger
                .split_whitespace()
                .any(|word| names.contains(&normalize(word)))
    };
    triggers
        .iter()
        .any(in_trigger)
        .then_some(Membership::Trigger)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[&str]) -> Vec<String> {
        items.iter().map(|item| item.to_string()).collect()
    }

    #[test]
    fn names_compare_by_letters_and_digits_in_any_case() {
        assert_eq!(normalize("Next.js"), "nextjs");
        assert_eq!(
            parse_names(["React, next.js", " ", "react"]),
            ["react", "nextjs"]
        );
    }

    #[test]
    fn a_skill_belongs_through_its_stack_then_its_tags_then_a_word_of_a_trigger() {
        let names = parse_names(["nextjs"]);
        let none: Vec<String> = Vec::new();
        let stack = membership(&names, &list(&["Next.js"]), &none, &none);
        assert_eq!(stack, Some(Membership::Stack));
        let tag = membership(&names, &list(&["react"]), &list(&["NextJS"]), &none);
        assert_eq!(tag, Some(Membership::Tag));
        let trigger = membership(&names, &none, &none, &list(&["next.js app router"]));
        assert_eq!(trigger, Some(Membership::Trigger));
        let partial = membership(&names, &none, &none, &list(&["nextjsx migration"]));
        assert_eq!(partial, None, "a word must be the name, not contain it");
        assert!(Membership::Stack > Membership::Tag && Membership::Tag > Membership::Trigger);
    }
}
