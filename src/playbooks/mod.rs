//! Playbooks: guided, resumable workflows defined in YAML.
//!
//! - [`spec`]: the format (what a playbook file holds) and its validated form.
//! - [`loader`]: parsing and validation, with file, step and reason in every error.
//! - [`templates`]: the generator templates (minijinja), embedded and overridable.
//! - [`catalog`]: the playbooks and templates this server offers (embedded plus a directory).
//! - [`runner`]: the engine over stored sessions: start, resume, advance, list, record.
//! - `run`: one call's work on one session (the state machine itself); in `run/`, what an
//!   accepted answer changes, the steps the server runs alone, and the reply.
//! - `revise`: answering an earlier step again, the later steps that then run again, and the
//!   repository URLs checked when a step that feeds a pack is answered.
//! - [`steps`]: what each kind of step does, and the [`steps::Skills`] / [`steps::DataQuery`] /
//!   [`steps::Sampler`] seams the app wires to the packer, the Athena sidecar and MCP sampling.
//! - [`view`]: what every runner call returns: the whole outline and the current prompt.

pub mod catalog;
pub mod loader;
#[cfg(test)]
mod loader_tests;
mod revise;
mod run;
pub mod runner;
#[cfg(test)]
mod runner_tests;
pub mod spec;
pub mod steps;
pub mod templates;
pub mod view;

pub use catalog::Catalog;
pub use runner::{Advance, Engine, Start};

/// What can go wrong loading playbooks and templates.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// A file breaks the format; `step` names the step when the mistake is in one.
    #[error("{file}{}: {reason}", step.as_ref().map(|s| format!(", step `{s}`")).unwrap_or_default())]
    Invalid {
        file: String,
        step: Option<String>,
        reason: String,
    },
    #[error("cannot read {path}: {reason}")]
    Io { path: String, reason: String },
}
