//! Guardrails for coding agents, on top of the knowledge services: the shared skills library
//! and a project's own guardrail memories put to work. This module owns running checks on code
//! ([`pattern`]: one pattern compiled once and matched within a backtracking budget;
//! [`needles`]: the literals that rule patterns out before they run;
//! [`checks`]: a project's compiled validations run on a file; [`validate`]: the
//! `validate_code` service and its per-project cache) and the telemetry of working sessions
//! ([`telemetry`]).

pub mod checks;
pub mod needles;
pub mod pattern;
pub mod telemetry;
pub mod validate;
