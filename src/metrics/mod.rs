//! Prometheus metrics for `/metrics`: tool calls by name and outcome with latency histograms,
//! open MCP sessions by transport, store operation latency, Athena sidecar restarts and the
//! embedding backlog, and guardrail events by kind. One registry per process ([`global`]);
//! rendering follows the Prometheus text exposition format 0.0.4. No labels come from callers'
//! input, so cardinality is bounded by the set of tools, store operations and event kinds.

mod figures;
mod store;

pub use figures::{Figures, Timed};
pub use store::MeteredStore;

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

/// A latency histogram: cumulative bucket counts are derived when rendering.
#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    overflow: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        match BUCKETS.iter().position(|bound| seconds <= *bound) {
            Some(i) => self.counts[i] += 1,
            None => self.overflow += 1,
        }
        self.sum += seconds;
    }

    fn count(&self) -> u64 {
        self.counts.iter().sum::<u64>() + self.overflow
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels},le=\"+Inf\"}} {}",
            self.count()
        );
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count());
    }
}

/// The transports a session can arrive on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    StreamableHttp,
    Sse,
    Stdio,
}

impl Transport {
    const ALL: [Transport; 3] = [Transport::StreamableHttp, Transport::Sse, Transport::Stdio];

    fn label(self) -> &'static str {
        match self {
            Transport::StreamableHttp => "streamable_http",
            Transport::Sse => "sse",
            Transport::Stdio => "stdio",
        }
    }
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    tools: Mutex<BTreeMap<(&'static str, &'static str), Histogram>>,
    store: Mutex<BTreeMap<&'static str, (Histogram, u64)>>,
    sessions: [AtomicI64; 3],
    sidecar_restarts: AtomicU64,
    argon2_verifications: AtomicU64,
    allocator_trims: AtomicU64,
    /// Memories waiting for a vector, per project, as the embedding worker last counted them.
    embedding_backlog: Mutex<HashMap<uuid::Uuid, u64>>,
    /// Guardrail events recorded, by kind (a fixed set of names, never caller input).
    guardrail_events: Mutex<BTreeMap<&'static str, u64>>,
}

static GLOBAL: LazyLock<Metrics> = LazyLock::new(Metrics::default);

/// The registry of this process.
pub fn global() -> &'static Metrics {
    &GLOBAL
}

/// Holds one open session in the gauge of its transport until dropped.
pub struct SessionGauge(Transport);

impl Drop for SessionGauge {
    fn drop(&mut self) {
        global().sessions[self.0 as usize].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Records one finished tool call; `outcome` is `ok`, `tool_error` or `protocol_error`.
    pub fn tool_call(&self, tool: &'static str, outcome: &'static str, took: Duration) {
        let mut tools = self.tools.lock().unwrap_or_else(|e| e.into_inner());
        tools
            .entry((tool, outcome))
            .or_default()
            .observe(took.as_secs_f64());
    }

    /// Records one store operation and whether it failed.
    pub fn store_call(&self, operation: &'static str, took: Duration, failed: bool) {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let (histogram, errors) = store.entry(operation).or_default();
        histogram.observe(took.as_secs_f64());
        *errors += u64::from(failed);
    }

    /// Counts a session as open until the returned guard is dropped.
    pub fn session_opened(&self, transport: Transport) -> Arc<SessionGauge> {
        self.sessions[transport as usize].fetch_add(1, Ordering::Relaxed);
        Arc::new(SessionGauge(transport))
    }

    /// Counts one argon2 check of a presented API key (run once per key and process).
    pub fn argon2_verification(&self) {
        self.argon2_verifications.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one time the server gave its free memory back after going idle.
    pub fn allocator_trimmed(&self) {
        self.allocator_trims.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sidecar_restarted(&self) {
        self.sidecar_restarts.fetch_add(1, Ordering::Relaxed);
    }

    /// Memories of `project` waiting for a vector of the configured model (set by the
    /// embedding worker as it goes; the gauge is the sum over projects).
    pub fn set_embedding_backlog(&self, project: uuid::Uuid, waiting: u64) {
        let mut backlog = self
            .embedding_backlog
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if waiting == 0 {
            backlog.remove(&project);
        } else {
            backlog.insert(project, waiting);
        }
    }

    /// Counts one recorded guardrail event of `kind` (`session_start`, `guardrail_block`, …).
    pub fn guardrail_event(&self, kind: &'static str) {
        let mut events = self
            .guardrail_events
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *events.entry(kind).or_default() += 1;
    }

    /// The whole registry in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        {
            let tools = self.tools.lock().unwrap_or_else(|e| e.into_inner()).clone();
            out.push_str("# HELP codifier_tool_calls_total MCP tool calls by tool and outcome.\n");
            out.push_str("# TYPE codifier_tool_calls_total counter\n");
            for ((tool, outcome), histogram) in &tools {
                let _ = writeln!(
                    out,
                    "codifier_tool_calls_total{{tool=\"{tool}\",outcome=\"{outcome}\"}} {}",
                    histogram.count()
                );
            }
            out.push_str(
                "# HELP codifier_tool_call_duration_seconds Time to answer a tool call.\n",
            );
            out.push_str("# TYPE codifier_tool_call_duration_seconds histogram\n");
            for ((tool, outcome), histogram) in &tools {
                let labels = format!("tool=\"{tool}\",outcome=\"{outcome}\"");
                histogram.render(&mut out, "codifier_tool_call_duration_seconds", &labels);
            }
        }
        out.push_str("# HELP codifier_active_sessions Open MCP sessions by transport.\n");
        out.push_str("# TYPE codifier_active_sessions gauge\n");
        for transport in Transport::ALL {
            let _ = writeln!(
                out,
                "codifier_active_sessions{{transport=\"{}\"}} {}",
                transport.label(),
                self.sessions[transport as usize].load(Ordering::Relaxed)
            );
        }
        {
            let store = self.store.lock().unwrap_or_else(|e| e.into_inner()).clone();
            out.push_str(
                "# HELP codifier_store_operation_duration_seconds Time a store operation took.\n",
            );
            out.push_str("# TYPE codifier_store_operation_duration_seconds histogram\n");
            for (operation, (histogram, _)) in &store {
                let labels = format!("operation=\"{operation}\"");
                histogram.render(
                    &mut out,
                    "codifier_store_operation_duration_seconds",
                    &labels,
                );
            }
            out.push_str("# HELP codifier_store_errors_total Store operations that failed.\n");
            out.push_str("# TYPE codifier_store_errors_total counter\n");
            for (operation, (_, errors)) in &store {
                let _ = writeln!(
                    out,
                    "codifier_store_errors_total{{operation=\"{operation}\"}} {errors}"
                );
            }
        }
        out.push_str("# HELP codifier_sidecar_restarts_total Times the Athena sidecar was (re)started after a failure.\n");
        out.push_str("# TYPE codifier_sidecar_restarts_total counter\n");
        let _ = writeln!(
            out,
            "codifier_sidecar_restarts_total {}",
            self.sidecar_restarts.load(Ordering::Relaxed)
        );
        out.push_str("# HELP codifier_api_key_argon2_verifications_total Argon2 checks of presented API keys (once per key and process; a wrong secret under an unproven prefix costs one too).\n");
        out.push_str("# TYPE codifier_api_key_argon2_verifications_total counter\n");
        let _ = writeln!(
            out,
            "codifier_api_key_argon2_verifications_total {}",
            self.argon2_verifications.load(Ordering::Relaxed)
        );
        out.push_str("# HELP codifier_allocator_trims_total Times the server gave its free memory back to the system after requests stopped.\n");
        out.push_str("# TYPE codifier_allocator_trims_total counter\n");
        let _ = writeln!(
            out,
            "codifier_allocator_trims_total {}",
            self.allocator_trims.load(Ordering::Relaxed)
        );
        let heap = crate::allocator::heap_usage();
        for (name, help, bytes) in [
            (
                "codifier_sqlite_heap_bytes",
                "Memory SQLite has allocated, all connections together.",
                heap.sqlite,
            ),
            (
                "codifier_sqlite_page_cache_bytes",
                "Of SQLite's memory, the connections' page caches beyond their first 20 pages each.",
                heap.sqlite_page_cache,
            ),
            (
                "codifier_malloc_in_use_bytes",
                "Memory malloc has handed out and not had back (glibc; 0 elsewhere).",
                heap.malloc_in_use,
            ),
            (
                "codifier_malloc_held_bytes",
                "Memory malloc holds from the system, in use or free in its arenas (glibc; 0 elsewhere).",
                heap.malloc_held,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {bytes}"
            );
        }
        out.push_str("# HELP codifier_embedding_backlog Memories waiting for a vector of the configured model.\n");
        out.push_str("# TYPE codifier_embedding_backlog gauge\n");
        let _ = writeln!(
            out,
            "codifier_embedding_backlog {}",
            self.embedding_backlog
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .sum::<u64>()
        );
        out.push_str("# HELP codifier_guardrail_events_total Guardrail events recorded (sessions, blocks, overrides, sharp edges surfaced, escape hatches), by kind.\n");
        out.push_str("# TYPE codifier_guardrail_events_total counter\n");
        let events = self
            .guardrail_events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for (kind, count) in &events {
            let _ = writeln!(
                out,
                "codifier_guardrail_events_total{{kind=\"{kind}\"}} {count}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_count_everything() {
        let mut histogram = Histogram::default();
        for seconds in [0.0005, 0.003, 0.003, 20.0] {
            histogram.observe(seconds);
        }
        let mut out = String::new();
        histogram.render(&mut out, "x", "a=\"b\"");
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.001\"} 1\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"0.005\"} 3\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"10\"} 3\n"));
        assert!(out.contains("x_bucket{a=\"b\",le=\"+Inf\"} 4\n"));
        assert!(out.contains("x_count{a=\"b\"} 4\n"));
    }
}
