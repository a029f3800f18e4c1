//! The loader's checks: each mistake is named with its file, its step and the reason.

use super::PlaybookError;
use super::catalog::Catalog;
use super::loader::parse;
use super::spec::Action;
use super::templates::Templates;

const GOOD: &str = r#"
id: demo
name: Demo
role: developer
description: A small playbook.
version: 1
steps:
  - id: ask
    title: Ask
    action: store
    collect: rules
    prompt: What is it?
  - id: write-rules
    title: Rules
    action: generate
    template: evals-from-rules
    output: evals
    expects: YAML
    store_as: document
    prompt: "Evals for {{ rules }}"
"#;

fn error_of(text: &str) -> (String, Option<String>, String) {
    let templates = Templates::load(None).unwrap();
    match parse("demo.yaml", text, &templates).unwrap_err() {
        PlaybookError::Invalid { file, step, reason } => (file, step, reason),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn the_three_shipped_playbooks_load_and_validate() {
    let catalog = Catalog::embedded().unwrap();
    let ids: Vec<&str> = catalog.playbooks().map(|p| p.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "brownfield-onboard",
            "initialize-project",
            "research-and-analyze"
        ]
    );
    let init = catalog.get("initialize-project").unwrap();
    let order: Vec<&str> = init.steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        order,
        [
            "project-name",
            "description",
            "statement-of-work",
            "repositories",
            "pack-repositories",
            "generate-rules",
            "generate-evals",
            "generate-requirements",
            "generate-roadmap"
        ]
    );
    let pack = &init.steps[4];
    assert!(matches!(pack.action, Action::SkillInvoke { .. }));
    assert_eq!(pack.skip_if_empty.as_deref(), Some("repository_urls"));
}

#[test]
fn a_valid_playbook_parses_and_a_numeric_version_becomes_text() {
    let templates = Templates::load(None).unwrap();
    let playbook = parse("demo.yaml", GOOD, &templates).unwrap();
    assert_eq!(playbook.version, "1");
    assert_eq!(playbook.steps.len(), 2);
}

#[test]
fn an_unknown_action_is_named_with_file_and_step() {
    let (file, step, reason) = error_of(&GOOD.replace("action: store", "action: stash"));
    assert_eq!(file, "demo.yaml");
    assert_eq!(step.as_deref(), Some("ask"));
    assert!(reason.contains("unknown action `stash`"), "{reason}");
}

#[test]
fn an_unknown_template_is_named_with_file_and_step() {
    let (_, step, reason) = error_of(&GOOD.replace("template: evals-from-rules", "template: nope"));
    assert_eq!(step.as_deref(), Some("write-rules"));
    assert!(reason.contains("unknown template `nope`"), "{reason}");
}

#[test]
fn a_missing_field_is_named_with_file_and_step() {
    let (_, step, reason) = error_of(&GOOD.replace("    collect: rules\n", ""));
    assert_eq!(step.as_deref(), Some("ask"));
    assert_eq!(reason, "missing field `collect`");
    let (_, step, reason) = error_of(&GOOD.replace("role: developer\n", ""));
    assert_eq!(step, None);
    assert_eq!(reason, "missing field `role`");
}

#[test]
fn a_template_variable_no_earlier_step_supplies_is_refused() {
    let (_, step, reason) = error_of(&GOOD.replace("{{ rules }}", "{{ later }}"));
    assert_eq!(step.as_deref(), Some("write-rules"));
    assert!(
        reason.contains("`later`") && reason.contains("no earlier step"),
        "{reason}"
    );
    // The template itself reads `rules`: collect something else and the template is refused.
    let (_, step, reason) = error_of(
        &GOOD
            .replace("{{ rules }}", "x")
            .replace("collect: rules", "collect: answer"),
    );
    assert_eq!(step.as_deref(), Some("write-rules"));
    assert!(
        reason.contains("the template `evals-from-rules` reads the template variable `rules`"),
        "{reason}"
    );
    // A step cannot read its own key either: the prompt of `ask` reading `rules`.
    let (_, step, reason) = error_of(&GOOD.replace("What is it?", "'{{ rules }}'"));
    assert_eq!(step.as_deref(), Some("ask"));
    assert!(reason.contains("`rules`"), "{reason}");
}

#[test]
fn duplicate_step_ids_are_refused() {
    let (_, step, reason) = error_of(&GOOD.replace("id: write-rules", "id: ask"));
    assert_eq!(step.as_deref(), Some("ask"));
    assert!(reason.contains("duplicate step id `ask`"), "{reason}");
}

#[test]
fn a_field_that_does_not_apply_to_the_action_is_refused() {
    let (_, step, reason) = error_of(&GOOD.replace(
        "    collect: rules\n",
        "    collect: rules\n    template: rules-from-context\n",
    ));
    assert_eq!(step.as_deref(), Some("ask"));
    assert!(
        reason.contains("`template` does not apply to a `store` step"),
        "{reason}"
    );
}

#[test]
fn a_skill_argument_must_name_an_earlier_key() {
    let text = GOOD.replace(
        "  - id: write-rules",
        "  - id: pack\n    title: Pack\n    action: skill-invoke\n    skill: pack_repo\n    args: { urls: nowhere }\n    collect: packed\n    prompt: Packing.\n  - id: write-rules",
    );
    let (_, step, reason) = error_of(&text);
    assert_eq!(step.as_deref(), Some("pack"));
    assert!(reason.contains("`nowhere`"), "{reason}");
}

#[test]
fn prefill_is_taken_on_a_store_step_only_and_may_read_only_what_is_available() {
    let on_generate = GOOD.replace(
        "    prompt: \"Evals for {{ rules }}\"",
        "    prompt: \"Evals for {{ rules }}\"\n    prefill: x",
    );
    let (_, step, reason) = error_of(&on_generate);
    assert_eq!(step.as_deref(), Some("write-rules"));
    assert!(
        reason.contains("`prefill` applies to a `store` step only"),
        "{reason}"
    );
    let unknown = GOOD.replace(
        "    prompt: What is it?",
        "    prompt: What is it?\n    prefill: \"{{ later }}\"",
    );
    let (_, step, reason) = error_of(&unknown);
    assert_eq!(step.as_deref(), Some("ask"));
    assert!(reason.contains("`later`"), "{reason}");
    let good = GOOD.replace(
        "    prompt: What is it?",
        "    prompt: What is it?\n    prefill: \"{{ project.name }}\"",
    );
    let templates = Templates::load(None).unwrap();
    let playbook = parse("demo.yaml", &good, &templates).unwrap();
    assert_eq!(
        playbook.steps[0].prefill.as_deref(),
        Some("{{ project.name }}")
    );
}
