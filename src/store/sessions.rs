//! Playbook sessions as the store keeps them: the records live in [`crate::domain::session`];
//! the backends use its helpers through this path.

pub use crate::domain::session::{PlaybookSession, SessionStatus, StepMemory};
pub(crate) use crate::domain::session::{note_memory, set_collected};
