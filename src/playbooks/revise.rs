//! Going back in a session: answering an earlier step again (`advance_step` with its `step_id`
//! and `revise: true`), and finding the later steps that read what it changed, so that they run
//! again. Also the check that keeps a session from being trapped by a bad repository URL: a step
//! whose answer feeds a `pack_repo` step has every URL checked (the packer's own rules) before
//! the answer is kept.

use std::collections::BTreeSet;

use super::run::Run;
use super::runner::{Advance, Caller, Engine};
use super::spec::{Action, Playbook, SkillName, Step};
use super::steps::automatic;
use super::steps::input::{self, Accepted};
use super::templates::{Templates, text_reads};
use crate::domain::{SessionStatus, StepStatus};
use crate::knowledge::KnowledgeError;

fn invalid(message: impl Into<String>) -> KnowledgeError {
    KnowledgeError::Invalid(message.into())
}

/// The collected keys a step reads: its arguments, its `skip_if_empty` key, and the variables
/// its prompt, memory title and template read.
pub(super) fn reads(step: &Step, templates: &Templates) -> BTreeSet<String> {
    let mut keys = text_reads(&step.prompt);
    keys.extend(step.skip_if_empty.iter().cloned());
    match &step.action {
        Action::SkillInvoke { args, .. } | Action::DataQuery { args, .. } => {
            keys.extend(args.values().cloned());
        }
        Action::Generate {
            template, memory, ..
        } => {
            keys.extend(templates.reads(template));
            keys.extend(text_reads(&memory.title));
        }
        Action::Store { memory, .. } => {
            keys.extend(memory.iter().flat_map(|memory| text_reads(&memory.title)));
        }
    }
    keys
}

/// The steps after `from` whose result derives from its answer: those the server runs or the
/// client's model generates that read its key, or the key of such a step, in order, each with
/// the changed key it reads. The user's own answers (`store` steps) never depend on another.
pub(super) fn dependents(
    playbook: &Playbook,
    templates: &Templates,
    from: usize,
) -> Vec<(usize, String)> {
    let mut changed = BTreeSet::from([playbook.steps[from].action.provides().to_owned()]);
    let mut found = Vec::new();
    for (index, step) in playbook.steps.iter().enumerate().skip(from + 1) {
        if matches!(step.action, Action::Store { .. }) {
            continue;
        }
        let reads = reads(step, templates);
        if let Some(key) = reads.intersection(&changed).next() {
            found.push((index, key.clone()));
            changed.insert(step.action.provides().to_owned());
        }
    }
    found
}

/// The earlier steps that take input and whose keys `step` reads: what to answer again when it
/// failed on what it was given.
pub(super) fn feeders<'p>(
    playbook: &'p Playbook,
    templates: &Templates,
    step: &Step,
) -> Vec<&'p Step> {
    let reads = reads(step, templates);
    playbook
        .steps
        .iter()
        .take_while(|earlier| earlier.id != step.id)
        .filter(|earlier| input::expected(earlier).is_some())
        .filter(|earlier| reads.contains(earlier.action.provides()))
        .collect()
}

/// How to answer the feeders of `step` again, for a message; empty when it has none.
pub(super) fn revise_hint(playbook: &Playbook, templates: &Templates, step: &Step) -> String {
    match feeders(playbook, templates, step).first() {
        Some(feeder) => format!(
            " To change what it was given, answer step `{}` ({}) again: advance_step with `step_id` `{}`, `revise: true` and the new `input.{}`.",
            feeder.id,
            feeder.title,
            feeder.id,
            feeder.action.provides()
        ),
        None => String::new(),
    }
}

/// Refuses an answer to step `index` that holds repository URLs a later `pack_repo` step could
/// not pack (a local path over HTTP, an internal address, an unknown scheme …): the same rules
/// as the `pack_repo` tool, checked before anything is kept.
pub(super) async fn check_urls(
    engine: &Engine,
    caller: &Caller<'_>,
    playbook: &Playbook,
    index: usize,
    accepted: &Accepted,
) -> Result<(), KnowledgeError> {
    let Some(value) = &accepted.value else {
        return Ok(());
    };
    let key = playbook.steps[index].action.provides();
    let feeds_pack = playbook.steps[index + 1..].iter().any(|step| {
        matches!(&step.action, Action::SkillInvoke { skill: SkillName::PackRepo, args, .. }
            if args.get("urls").map(String::as_str) == Some(key))
    });
    if !feeds_pack {
        return Ok(());
    }
    let urls = automatic::strings(Some(value));
    let mut refused = Vec::new();
    for url in &urls {
        if let Err(error) = engine.skills.check_url(caller.identity, url).await {
            refused.push(format!("`{url}`: {error}"));
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    Err(invalid(format!(
        "{} of the {} repository URLs in `input.{key}` cannot be packed, so nothing was kept. {}. Send `input.{key}` again with each of them fixed or left out.",
        refused.len(),
        urls.len(),
        refused.join("; ")
    )))
}

impl Run<'_> {
    /// Answers an earlier step again: keeps the new answer (its memory replaces the one the
    /// step stored before), marks every later step that reads what changed as pending again,
    /// goes back to the first of them, and runs on from there.
    pub(super) async fn revise(
        &mut self,
        advance: Advance,
        digest: String,
    ) -> Result<(), KnowledgeError> {
        if advance.skip {
            return Err(invalid(
                "`revise: true` answers a step again: send its new `input`, not `skip: true` (an empty input leaves an optional step empty)",
            ));
        }
        let playbook = self.playbook;
        let answered: Vec<String> = playbook
            .steps
            .iter()
            .take(self.session.current_step.max(0) as usize)
            .filter(|step| input::expected(step).is_some())
            .map(|step| format!("`{}`", step.id))
            .collect();
        let answered = if answered.is_empty() {
            "none yet".to_owned()
        } else {
            answered.join(", ")
        };
        let Some(wanted) = advance.step_id.as_deref() else {
            return Err(invalid(format!(
                "`revise: true` needs `step_id`: the earlier step to answer again ({answered})"
            )));
        };
        let Some(index) = playbook.step_index(wanted) else {
            return Err(invalid(format!(
                "`{wanted}` is not a step of this playbook: steps you can answer again: {answered}"
            )));
        };
        let step = &playbook.steps[index];
        let engine = self.engine;
        let templates = &engine.catalog.templates;
        if input::expected(step).is_none() {
            let feeders: Vec<String> = feeders(playbook, templates, step)
                .iter()
                .map(|feeder| format!("`{}`", feeder.id))
                .collect();
            return Err(invalid(format!(
                "step `{wanted}` runs on the server and takes no input: answer again the step it reads ({}) with `revise: true`, and it runs again",
                if feeders.is_empty() {
                    "it reads none".to_owned()
                } else {
                    feeders.join(", ")
                }
            )));
        }
        let current = self.session.current_step.max(0) as usize;
        if index > current {
            return Err(invalid(format!(
                "step `{wanted}` has not been reached yet: answer the current step first ({answered} can be answered again)"
            )));
        }
        let accepted = input::accept(step, &advance.input).map_err(invalid)?;
        check_urls(self.engine, &self.caller, playbook, index, &accepted).await?;
        let mut next = self.remember_call(&step.id, digest);
        let memories = self.collect(&mut next, step, accepted, None)?;
        if let Some(result) = next.step_results.get_mut(&step.id) {
            result.revisions += 1;
        }
        let mut again = Vec::new();
        for (index, key) in dependents(playbook, templates, index) {
            let dependent = &playbook.steps[index];
            if next.step_results.get(&dependent.id).is_none() {
                // Not reached yet: it will read the new answer when it runs.
                continue;
            }
            if let Some(data) = next.collected_data.as_object_mut() {
                data.remove(dependent.action.provides());
            }
            let note = format!(
                "runs again: it reads `{key}`, which changed when step `{}` was answered again",
                step.id
            );
            next.step_results
                .mark(&dependent.id, StepStatus::Pending, Some(&note), None)
                .runs_again = true;
            next.current_step = next.current_step.min(index as i32);
            again.push(dependent.title.clone());
        }
        if !again.is_empty() {
            next.status = SessionStatus::Active;
        }
        self.notices.push(if again.is_empty() {
            format!(
                "{}: answered again; no step that already ran reads it",
                step.title
            )
        } else {
            format!(
                "{}: answered again; these steps run again: {}",
                step.title,
                again.join(", ")
            )
        });
        self.commit(next, memories).await?;
        self.run_on(false).await
    }
}
