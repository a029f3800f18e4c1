//! What each kind of step does. User-facing steps (`store`, and the artifact of `generate`) are
//! checked in [`input`]; steps the server runs alone go through small seams the app wires to the
//! real capabilities: [`Skills`] (the repository packer), [`DataQuery`] (the Athena sidecar) and
//! [`Sampler`] (the client's model, over MCP sampling).

pub mod automatic;
pub mod capabilities;
pub mod fence;
pub mod generate;
pub mod input;

pub use capabilities::{
    DataQuery, MAX_RESULT_BYTES, NoDataSource, NoSkills, PackRequest, PackedRepository, Sampler,
    Skills, cap_result,
};
