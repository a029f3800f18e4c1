//! Playbook sessions as the store keeps them: the records live in [`crate::domain::session`];
//! the backends use its helpers through this path.

pub(crate) use crate::domain::session::set_collected;
pub use crate::domain::session::{
    PlaybookSession, SessionStatus, StepMemory, StepResult, StepResults, StepStatus,
};
