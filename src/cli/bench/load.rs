//! The load generator: concurrent rmcp clients calling `fetch_context` over Streamable HTTP for
//! a fixed time, and latency statistics over what they measured.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rmcp::model::{CallToolRequestParams, JsonObject};
use rmcp::service::RunningService;
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{RoleClient, ServiceExt};
use serde_json::Value;

pub type Client = RunningService<RoleClient, ()>;

/// Opens `count` MCP sessions to `url` with the bearer `token`.
pub async fn connect(url: &str, token: &str, count: usize) -> anyhow::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(count);
    for _ in 0..count {
        let config =
            StreamableHttpClientTransportConfig::with_uri(url.to_owned()).auth_header(token);
        let client = ()
            .serve(StreamableHttpClientTransport::from_config(config))
            .await
            .context("the MCP handshake with the benchmark server failed")?;
        clients.push(client);
    }
    Ok(clients)
}

/// What the clients measured in one run.
#[derive(Debug, Default)]
pub struct Measured {
    /// Whole-call latencies of successful calls, in ms.
    pub total: Vec<f64>,
    /// The same minus the query embedding time the tool reported (hybrid only), in ms.
    pub without_embedding: Vec<f64>,
    /// Query embedding times the tool reported, in ms.
    pub embedding: Vec<f64>,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// CPU time this process (server, store and clients alike) spent per successful call, in
    /// ms; `None` where /proc is missing.
    pub cpu_per_call: Option<f64>,
}

/// The CPU time (user + system) this process has used so far, in seconds (Linux /proc).
fn process_cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which may hold spaces) and its closing parenthesis.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // Linux reports these in USER_HZ, 100 per second on every architecture it supports.
    Some(ticks / 100.0)
}

/// Every client calls `fetch_context` with the argument sets in turn until `duration` is over.
/// With a `mode`, a result whose search ran in another mode counts as an error.
pub async fn drive(
    clients: &[Client],
    calls: &Arc<Vec<JsonObject>>,
    duration: Duration,
    mode: Option<&'static str>,
) -> Measured {
    let started = Instant::now();
    let cpu_before = process_cpu_secs();
    let deadline = started + duration;
    let tasks: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(index, client)| {
            let (peer, calls) = (client.peer().clone(), calls.clone());
            let stride = clients.len();
            tokio::spawn(async move {
                let mut measured = Measured::default();
                let mut next = index;
                while Instant::now() < deadline {
                    let arguments = calls[next % calls.len()].clone();
                    next += stride;
                    let call = Instant::now();
                    let result = peer
                        .call_tool(
                            CallToolRequestParams::new("fetch_context").with_arguments(arguments),
                        )
                        .await;
                    let ms = call.elapsed().as_secs_f64() * 1000.0;
                    let failure = match &result {
                        Err(error) => Some(format!("protocol error: {error}")),
                        Ok(result) if result.is_error == Some(true) => Some(format!(
                            "tool error: {}",
                            result
                                .content
                                .first()
                                .and_then(|c| c.as_text())
                                .map(|t| t.text.as_str())
                                .unwrap_or("")
                        )),
                        Ok(result) => {
                            let search = result
                                .structured_content
                                .as_ref()
                                .and_then(|s| s.get("search"));
                            let ran = search.and_then(|s| s.get("mode")).and_then(Value::as_str);
                            let embed = search
                                .and_then(|s| s.get("query_embedding_ms"))
                                .and_then(Value::as_f64);
                            if mode.is_some() && ran != mode {
                                Some(format!("ran in mode {ran:?}, not {mode:?}"))
                            } else {
                                measured.total.push(ms);
                                if let Some(embed) = embed {
                                    measured.embedding.push(embed);
                                    measured.without_embedding.push(ms - embed);
                                }
                                None
                            }
                        }
                    };
                    if let Some(failure) = failure {
                        measured.errors += 1;
                        measured.first_error.get_or_insert(failure);
                    }
                }
                measured
            })
        })
        .collect();
    let mut all = Measured::default();
    for task in tasks {
        match task.await {
            Ok(part) => {
                all.total.extend(part.total);
                all.without_embedding.extend(part.without_embedding);
                all.embedding.extend(part.embedding);
                all.errors += part.errors;
                if all.first_error.is_none() {
                    all.first_error = part.first_error;
                }
            }
            Err(error) => {
                all.errors += 1;
                all.first_error
                    .get_or_insert(format!("client task failed: {error}"));
            }
        }
    }
    all.elapsed = started.elapsed();
    all.cpu_per_call = cpu_before
        .zip(process_cpu_secs())
        .filter(|_| !all.total.is_empty())
        .map(|(before, after)| (after - before) * 1000.0 / all.total.len() as f64);
    all
}

/// The `p`-th percentile (0–100) by nearest rank; NaN for no samples.
pub fn percentile(samples: &mut [f64], p: f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * samples.len() as f64).ceil() as usize;
    samples[rank.clamp(1, samples.len()) - 1]
}

/// One line of the results table.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: String,
    pub calls: usize,
    pub per_second: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub errors: u64,
}

impl Row {
    pub fn new(name: &str, samples: &[f64], elapsed: Duration, errors: u64) -> Self {
        let mut samples = samples.to_vec();
        Row {
            name: name.to_owned(),
            calls: samples.len(),
            per_second: samples.len() as f64 / elapsed.as_secs_f64(),
            p50: percentile(&mut samples, 50.0),
            p95: percentile(&mut samples, 95.0),
            p99: percentile(&mut samples, 99.0),
            errors,
        }
    }
}

/// The results table, as printed.
pub fn table(rows: &[Row]) -> String {
    let mut out = format!(
        "| {:<34} | {:>7} | {:>8} | {:>8} | {:>8} | {:>8} | {:>6} |\n|{}|{}|{}|{}|{}|{}|{}|\n",
        "scenario",
        "calls",
        "calls/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "errors",
        "-".repeat(36),
        "-".repeat(9),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(10),
        "-".repeat(8)
    );
    for row in rows {
        out.push_str(&format!(
            "| {:<34} | {:>7} | {:>8.1} | {:>8.2} | {:>8.2} | {:>8.2} | {:>6} |\n",
            row.name, row.calls, row.per_second, row.p50, row.p95, row.p99, row.errors
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut samples: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(percentile(&mut samples, 50.0), 50.0);
        assert_eq!(percentile(&mut samples, 99.0), 99.0);
        assert_eq!(percentile(&mut samples, 100.0), 100.0);
        assert!(percentile(&mut [], 50.0).is_nan());
    }

    #[test]
    fn the_process_cpu_time_grows_with_work() {
        let before = process_cpu_secs().expect("/proc/self/stat is readable on Linux");
        // Spin until the process has used 50 ms more CPU; on a busy machine that may take
        // longer than 50 ms of wall time, so the deadline is generous.
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut x = 0u64;
        let mut now = before;
        while now < before + 0.05 && Instant::now() < deadline {
            for _ in 0..100_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
            now = process_cpu_secs().expect("/proc/self/stat is readable on Linux");
        }
        assert!(now >= before + 0.05, "{before} s -> {now} s of CPU in 30 s");
    }
}
