//! What one soak client calls next: a mix of single calls (text and hybrid searches, filter
//! reads, creates, updates, deletes, the guardrail tools) and episodes of several calls that
//! carry ids from one answer to the next (a playbook session started and advanced step by step
//! then abandoned, a plan made and its tasks moved on, the local repository packed and its
//! snapshot read). Deletes take this client's own memories first, then memories a search found
//! that this client owns by a hash of the id, so no two clients delete the same memory and the
//! project keeps its size.

use serde_json::{Value, json};
use uuid::Uuid;

use super::super::corpus;
use crate::domain::MemoryType;

/// One tool call: the tool, the name its latencies are tallied under, and its arguments.
pub struct Call {
    pub tool: &'static str,
    pub label: &'static str,
    pub arguments: Value,
}

/// An episode under way: what the next call of it is.
enum Episode {
    Idle,
    /// A playbook session at its `step`-th answer.
    Playbook {
        session: String,
        view: Value,
        answered: usize,
    },
    /// A plan's tasks (server-wide ids in plan order) and how far the episode is.
    Plan {
        plan: String,
        tasks: Vec<String>,
        step: usize,
    },
    /// A snapshot to read.
    Snapshot {
        id: String,
    },
}

/// Steps of a playbook episode answered before it is abandoned: the description, the statement
/// of work, the repositories (none, so the pack step is skipped) and the generated rules.
const PLAYBOOK_ANSWERS: usize = 4;

pub struct Mix {
    rng: corpus::Rng,
    queries: Vec<String>,
    project: Uuid,
    repo_url: String,
    client: usize,
    clients: usize,
    /// Memories this client owns (see [`Mix::keep`]): it alone updates and deletes them.
    mine: Vec<String>,
    written: u64,
    /// Differs between runs (and between the warm-up and the load), so no write repeats one
    /// already stored: the store refuses a memory with another's type, title and content.
    run: String,
    episode: Episode,
}

impl Mix {
    pub fn new(project: Uuid, repo_url: String, client: usize, clients: usize) -> Self {
        let seed = 0x50AC + client as u64;
        Self {
            rng: corpus::Rng::new(seed),
            queries: corpus::queries(64, seed),
            project,
            repo_url,
            client,
            clients,
            mine: Vec::new(),
            written: 0,
            run: Uuid::new_v4().simple().to_string()[..8].to_owned(),
            episode: Episode::Idle,
        }
    }

    /// The next call: the next step of the episode under way, or a new roll.
    pub fn next(&mut self) -> Call {
        let project = self.project;
        match std::mem::replace(&mut self.episode, Episode::Idle) {
            Episode::Playbook {
                session,
                view,
                answered,
            } => {
                self.episode = Episode::Playbook {
                    session: session.clone(),
                    view: view.clone(),
                    answered,
                };
                return if answered >= PLAYBOOK_ANSWERS {
                    call(
                        "advance_step",
                        "advance_step abandon",
                        json!({"project_id": project, "session_id": session, "abandon": true}),
                    )
                } else {
                    let current = &view["current"];
                    let key = current["input"]["key"].as_str().unwrap_or("input");
                    let value = match current["id"].as_str().unwrap_or_default() {
                        "description" => json!(format!(
                            "Soak project {} of client {}.",
                            self.written, self.client
                        )),
                        "repositories" => json!([]),
                        "generate-rules" => {
                            json!("# Rules\n\n## Errors\n- Errors carry context.\n")
                        }
                        _ => json!(""),
                    };
                    call(
                        "advance_step",
                        "advance_step",
                        json!({"project_id": project, "session_id": session, "step_id": current["id"], "input": {key: value}}),
                    )
                };
            }
            Episode::Plan { plan, tasks, step } => {
                let (task, status) = match step {
                    0 => (0, "in-progress"),
                    1 => (0, "completed"),
                    3 => (1, "in-progress"),
                    _ => (1, "completed"),
                };
                let next = if step == 2 {
                    call(
                        "next_tasks",
                        "next_tasks",
                        json!({"project_id": project, "plan_id": plan}),
                    )
                } else {
                    call(
                        "update_task",
                        "update_task",
                        json!({"project_id": project, "task_id": tasks[task], "status": status}),
                    )
                };
                if step < 4 {
                    self.episode = Episode::Plan {
                        plan,
                        tasks,
                        step: step + 1,
                    };
                }
                return next;
            }
            Episode::Snapshot { id } => {
                return call(
                    "read_snapshot",
                    "read_snapshot",
                    json!({"project_id": project, "snapshot_id": id, "page_bytes": 20000}),
                );
            }
            Episode::Idle => {}
        }
        let query = self.queries[self.rng.below(self.queries.len())].clone();
        let roll = self.rng.below(100);
        match roll {
            0..28 => call(
                "fetch_context",
                "search text",
                json!({"project_id": project, "query": query, "mode": "text", "limit": 10}),
            ),
            28..36 => call(
                "fetch_context",
                "search hybrid",
                json!({"project_id": project, "query": query, "mode": "hybrid", "limit": 10}),
            ),
            36..40 => call(
                "fetch_context",
                "filter read",
                json!({
                    "project_id": project,
                    "memory_type": MemoryType::KNOWLEDGE[self.rng.below(5)],
                    "tags": [corpus::TOPIC_TAGS[self.rng.below(corpus::TOPIC_TAGS.len())]],
                    "limit": 20,
                }),
            ),
            50..60 if !self.mine.is_empty() => {
                let id = self.mine[self.rng.below(self.mine.len())].clone();
                self.written += 1;
                call("update_memory", "update", self.memory(Some(id)))
            }
            60..78 if !self.mine.is_empty() => {
                let id = self.mine.swap_remove(self.rng.below(self.mine.len()));
                call(
                    "delete_memory",
                    "delete",
                    json!({"project_id": project, "id": id}),
                )
            }
            78..82 => call(
                "run_playbook",
                "run_playbook",
                json!({"project_id": project, "playbook_id": "initialize-project"}),
            ),
            82..85 => call(
                "plan_tasks",
                "plan_tasks",
                json!({
                    "project_id": project,
                    "title": format!("Soak plan {} of client {}", self.written, self.client),
                    "tasks": [
                        {"id": "schema", "title": "Design the schema", "priority": 2},
                        {"id": "api", "title": "Build the API", "depends_on": ["schema"]},
                        {"id": "docs", "title": "Document it", "depends_on": ["api"]},
                    ],
                }),
            ),
            85..87 => call(
                "pack_repo",
                "pack_repo",
                json!({"project_id": project, "url": self.repo_url, "top_files": 3}),
            ),
            87..91 => call(
                "watch_out",
                "watch_out",
                json!({"project_id": project, "stack": "rust, axum", "situation": query}),
            ),
            91..95 => call(
                "validate_code",
                "validate_code",
                json!({"project_id": project, "file_path": "src/lib.rs", "code": "pub fn add(a: u64, b: u64) -> u64 {\n    a + b\n}\n"}),
            ),
            95..97 => call(
                "remember",
                "remember",
                json!({"project_id": project, "decision": {"what": format!("Soak decision {}", self.written), "why": "to load the server"}}),
            ),
            97..100 => call(
                "load_context",
                "load_context",
                json!({"project_id": project}),
            ),
            _ => {
                self.written += 1;
                call("update_memory", "create", self.memory(None))
            }
        }
    }

    /// Takes what a successful call answered (its structured content): ids for the episode
    /// under way and memories this client may update and delete.
    pub fn answered(&mut self, call: &Call, result: &Value) {
        let text = |value: &Value| value.as_str().map(str::to_owned);
        match call.tool {
            "fetch_context" => {
                for memory in result["memories"].as_array().into_iter().flatten() {
                    if let Some(id) = text(&memory["id"]) {
                        self.keep(id);
                    }
                }
            }
            "update_memory" if result["outcome"] == "created" => {
                if let Some(id) = text(&result["memory"]["id"]) {
                    self.keep(id);
                }
            }
            "run_playbook" | "advance_step" => {
                for stored in result["stored"].as_array().into_iter().flatten() {
                    if let Some(id) = text(&stored["id"]) {
                        self.keep(id);
                    }
                }
                let answered = match &self.episode {
                    Episode::Playbook { answered, .. } => answered + 1,
                    _ => 0,
                };
                self.episode = match text(&result["session_id"]) {
                    Some(session)
                        if call.label != "advance_step abandon" && !result["current"].is_null() =>
                    {
                        Episode::Playbook {
                            session,
                            view: result.clone(),
                            answered,
                        }
                    }
                    _ => Episode::Idle,
                };
            }
            "plan_tasks" => {
                let tasks: Vec<String> = result["tasks"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|task| text(&task["task_id"]))
                    .collect();
                if let (Some(plan), true) = (text(&result["plan_id"]), tasks.len() >= 2) {
                    self.episode = Episode::Plan {
                        plan,
                        tasks,
                        step: 0,
                    };
                }
            }
            "pack_repo" => {
                if let Some(id) = text(&result["snapshot_id"]) {
                    self.episode = Episode::Snapshot { id };
                }
            }
            _ => {}
        }
    }

    /// After a failed call the episode under way is dropped, so one failure is one error.
    pub fn failed(&mut self) {
        self.episode = Episode::Idle;
    }

    /// Keeps `id` for updates and deletes when this client owns it (by a hash of the id, so
    /// whichever client created or found a memory, only one ever deletes it).
    fn keep(&mut self, id: String) {
        if self.owns(&id) && !self.mine.contains(&id) && self.mine.len() < 200 {
            self.mine.push(id);
        }
    }

    fn owns(&self, id: &str) -> bool {
        let hash = id.bytes().fold(0u64, |hash, byte| {
            hash.wrapping_mul(31).wrapping_add(u64::from(byte))
        });
        hash % self.clients as u64 == self.client as u64
    }

    /// A memory to write: a corpus text numbered past the seeded ones, new or over memory `id`.
    fn memory(&self, id: Option<String>) -> Value {
        let draft = corpus::memory(1_000_000_000 + self.client as u64 * 10_000_000 + self.written);
        let mut memory = json!({
            "project_id": self.project,
            "memory_type": draft.memory_type,
            "title": format!("{} ({}-{}-{})", draft.title, self.run, self.client, self.written),
            "content": draft.content,
            "tags": draft.tags,
        });
        if let (Some(id), Some(object)) = (id, memory.as_object_mut()) {
            object.insert("id".into(), Value::String(id));
        }
        memory
    }
}

fn call(tool: &'static str, label: &'static str, arguments: Value) -> Call {
    Call {
        tool,
        label,
        arguments,
    }
}
