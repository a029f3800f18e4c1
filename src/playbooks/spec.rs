//! The playbook format: the YAML a playbook file holds ([`RawPlaybook`], every field optional so
//! the loader can name what is missing) and the validated form the runner executes ([`Playbook`]).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::domain::MemoryType;

/// A playbook file as written, before validation.
#[derive(Debug, Deserialize)]
pub struct RawPlaybook {
    pub id: Option<String>,
    pub name: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub version: Option<serde_norway::Value>,
    pub steps: Option<Vec<RawStep>>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_norway::Value>,
}

/// A step as written, before validation.
#[derive(Debug, Default, Deserialize)]
pub struct RawStep {
    pub id: Option<String>,
    pub title: Option<String>,
    pub prompt: Option<String>,
    pub action: Option<String>,
    pub collect: Option<String>,
    pub input: Option<RawInput>,
    pub store_as: Option<String>,
    pub memory_title: Option<String>,
    pub skill: Option<String>,
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    pub template: Option<String>,
    pub output: Option<String>,
    pub expects: Option<String>,
    pub format: Option<String>,
    pub context_types: Option<Vec<String>>,
    pub query_operation: Option<String>,
    pub skip_if_empty: Option<String>,
    pub prefill: Option<String>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, serde_norway::Value>,
}

/// What a step expects from the user, as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub required: Option<bool>,
    pub description: Option<String>,
}

/// Who a playbook is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlaybookRole {
    Developer,
    Researcher,
}

/// A validated playbook: a linear list of steps.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub id: String,
    pub name: String,
    pub role: PlaybookRole,
    pub description: String,
    pub version: String,
    pub steps: Vec<Step>,
    /// Where it was loaded from (`embedded:…` or a file path), for messages.
    pub source: String,
}

impl Playbook {
    pub fn step_index(&self, id: &str) -> Option<usize> {
        self.steps.iter().position(|step| step.id == id)
    }
}

/// A validated step.
#[derive(Debug, Clone)]
pub struct Step {
    pub id: String,
    pub title: String,
    /// A template over the session's collected data.
    pub prompt: String,
    /// Skip this step when the collected value under this key is missing or empty.
    pub skip_if_empty: Option<String>,
    /// For a `store` step: a template over the session's context (e.g. `{{ project.name }}`).
    /// When it renders to something, the server answers the step with it and goes on; the user
    /// can still change it by answering the step again (`revise: true`).
    pub prefill: Option<String>,
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Takes the user's input, keeps it under `collect`, and stores it as a memory when `memory` is set.
    Store {
        collect: String,
        input: InputSpec,
        memory: Option<MemorySpec>,
    },
    /// Runs a server capability with arguments taken from collected data; keeps its results under `collect`.
    SkillInvoke {
        skill: SkillName,
        args: BTreeMap<String, String>,
        collect: String,
    },
    /// Renders `template` into a request for the client's LLM; the artifact sent back under
    /// `output` is kept under that key and stored as a memory.
    Generate {
        template: String,
        output: String,
        expects: String,
        format: ArtifactFormat,
        memory: MemorySpec,
        context_types: Vec<MemoryType>,
    },
    /// Asks the data warehouse; results (capped) are kept under `collect`.
    DataQuery {
        operation: QueryOperation,
        args: BTreeMap<String, String>,
        collect: String,
    },
}

impl Action {
    /// The name written in YAML.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Store { .. } => "store",
            Action::SkillInvoke { .. } => "skill-invoke",
            Action::Generate { .. } => "generate",
            Action::DataQuery { .. } => "data-query",
        }
    }

    /// The collected-data key this step provides to later steps.
    pub fn provides(&self) -> &str {
        match self {
            Action::Store { collect, .. }
            | Action::SkillInvoke { collect, .. }
            | Action::DataQuery { collect, .. } => collect,
            Action::Generate { output, .. } => output,
        }
    }

    /// Whether the server can run this step without the user or the client's LLM.
    pub fn runs_alone(&self) -> bool {
        matches!(self, Action::SkillInvoke { .. } | Action::DataQuery { .. })
    }
}

/// The kinds of value a step takes from the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// One piece of text.
    Text,
    /// A list of pieces of text.
    TextList,
    /// A JSON object.
    Object,
}

impl InputKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "text" => Some(InputKind::Text),
            "text-list" => Some(InputKind::TextList),
            "object" => Some(InputKind::Object),
            _ => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            InputKind::Text => "a string",
            InputKind::TextList => "a list of strings",
            InputKind::Object => "a JSON object",
        }
    }
}

/// What a step expects from the user.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct InputSpec {
    #[serde(rename = "type")]
    pub kind: InputKind,
    pub required: bool,
    pub description: Option<String>,
}

/// The memory a step's result becomes.
#[derive(Debug, Clone)]
pub struct MemorySpec {
    pub memory_type: MemoryType,
    /// A template over the session's collected data; the step's title when not set.
    pub title: String,
}

/// The shape of a generated artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactFormat {
    /// Markdown text, kept as it is.
    Markdown,
    /// YAML, parsed so later steps can read its fields.
    Yaml,
}

impl ArtifactFormat {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "markdown" => Some(ArtifactFormat::Markdown),
            "yaml" => Some(ArtifactFormat::Yaml),
            _ => None,
        }
    }
}

/// The server capabilities a `skill-invoke` step can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkillName {
    /// Pack repositories (`args.urls`: a key holding URLs) into versioned snapshots.
    PackRepo,
}

impl SkillName {
    pub fn parse(text: &str) -> Option<Self> {
        (text == "pack_repo").then_some(SkillName::PackRepo)
    }

    /// The argument names the skill takes, and whether each is required.
    pub fn params(self) -> &'static [(&'static str, bool)] {
        match self {
            SkillName::PackRepo => &[("urls", true), ("version_label", false)],
        }
    }
}

/// The operations a `data-query` step can run through the Athena sidecar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum QueryOperation {
    ListTables,
    DescribeTables,
    ExecuteQuery,
}

impl QueryOperation {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "list-tables" => Some(QueryOperation::ListTables),
            "describe-tables" => Some(QueryOperation::DescribeTables),
            "execute-query" => Some(QueryOperation::ExecuteQuery),
            _ => None,
        }
    }

    /// The argument names the operation takes, and whether each is required.
    pub fn params(self) -> &'static [(&'static str, bool)] {
        match self {
            QueryOperation::ListTables => &[("database", false)],
            QueryOperation::DescribeTables => &[("table_names", true), ("database", false)],
            QueryOperation::ExecuteQuery => &[("queries", true), ("database", false)],
        }
    }
}
