//! Guardrails for coding agents, on top of the knowledge services: the shared skills library
//! and a project's own guardrail memories put to work.
//!
//! The library and a project's own: [`library`] (the library as memories of the reserved
//! project, its readers), [`import`] (`codifier skills import`), [`own`] (the checks a
//! project's own sharp edges and validations pass before they are stored).
//!
//! Checks on code: [`pattern`] (one pattern compiled once and matched within a backtracking
//! budget), [`needles`] (the literals that rule patterns out before they run), [`checks`] (a
//! project's compiled validations run on a file) and [`validate`] (the `validate_code` service
//! and its per-project cache); the telemetry of working sessions: [`telemetry`].
//!
//! The agent's working session:
//! - [`context`]: `load_context`, what a session starts with ([`recent`] reads what the last
//!   sessions left, [`skills_fit`] the skills that fit);
//! - [`watch_out`]: the sharp edges to mind before changing code;
//! - [`unstick`]: for attempts going round in circles ([`similarity`] measures them,
//!   [`unstick_advice`] finds known patterns, [`alternatives`] what to try instead);
//! - [`remember`]: what a session leaves for the next, in one transaction.
//!
//! For people: [`overview`] (what the console's Guardrails page shows).
//!
//! What they share: [`stack`] (which stack a skill belongs to: the one rule every tool uses),
//! [`index`] (the server's one in-memory copy of the library, its index and its compiled
//! checks, rebuilt when an import changes it) and [`edges`] (gathering and ranking sharp edges).

pub mod alternatives;
pub mod checks;
pub mod context;
pub mod edges;
pub mod import;
pub mod index;
pub mod library;
pub mod needles;
pub mod overview;
pub mod own;
pub mod pattern;
pub mod recent;
pub mod remember;
pub mod similarity;
pub mod skills_fit;
pub mod stack;
pub mod telemetry;
pub mod unstick;
pub mod unstick_advice;
pub mod validate;
pub mod watch_out;
