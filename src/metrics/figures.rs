//! The registry's key figures as values (not Prometheus text), for people to read on the
//! console's Server page: calls and failures per tool with their mean and an upper bound on
//! their 95th percentile (the bucket it falls in), store operations likewise, open sessions,
//! sidecar restarts, key checks, the embedding backlog and guardrail events.

use std::sync::atomic::Ordering;

use super::{BUCKETS, Histogram, Metrics, Transport};

/// One tool or store operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Timed {
    pub name: String,
    pub calls: u64,
    pub failures: u64,
    pub mean_ms: f64,
    /// The upper bound of the bucket the 95th percentile falls in, in ms (`None`: over 10 s).
    pub p95_under_ms: Option<f64>,
}

/// What the process has counted since it started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    pub tools: Vec<Timed>,
    pub store: Vec<Timed>,
    /// Open MCP sessions by transport.
    pub sessions: Vec<(&'static str, i64)>,
    pub sidecar_restarts: u64,
    pub argon2_verifications: u64,
    pub embedding_backlog: u64,
    pub guardrail_events: Vec<(&'static str, u64)>,
}

impl Histogram {
    fn mean_ms(&self) -> f64 {
        match self.count() {
            0 => 0.0,
            count => self.sum * 1000.0 / count as f64,
        }
    }

    /// The upper bound of the bucket holding quantile `q`, in ms.
    fn quantile_bound_ms(&self, q: f64) -> Option<f64> {
        let wanted = (self.count() as f64 * q).ceil().max(1.0) as u64;
        let mut cumulative = 0;
        for (bound, count) in BUCKETS.iter().zip(self.counts) {
            cumulative += count;
            if cumulative >= wanted {
                return Some(bound * 1000.0);
            }
        }
        None
    }
}

impl Metrics {
    /// The figures as they stand.
    pub fn figures(&self) -> Figures {
        let mut tools: Vec<Timed> = Vec::new();
        {
            let by_outcome = self.tools.lock().unwrap_or_else(|e| e.into_inner());
            let mut merged: std::collections::BTreeMap<&str, (Histogram, u64)> = Default::default();
            for ((tool, outcome), histogram) in by_outcome.iter() {
                let (all, failures) = merged.entry(*tool).or_default();
                for (sum, count) in all.counts.iter_mut().zip(histogram.counts) {
                    *sum += count;
                }
                all.overflow += histogram.overflow;
                all.sum += histogram.sum;
                if *outcome != "ok" {
                    *failures += histogram.count();
                }
            }
            for (name, (histogram, failures)) in merged {
                tools.push(timed(name, &histogram, failures));
            }
        }
        let store = self
            .store
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(name, (histogram, errors))| timed(name, histogram, *errors))
            .collect();
        Figures {
            tools,
            store,
            sessions: Transport::ALL
                .iter()
                .map(|t| {
                    (
                        t.label(),
                        self.sessions[*t as usize].load(Ordering::Relaxed),
                    )
                })
                .collect(),
            sidecar_restarts: self.sidecar_restarts.load(Ordering::Relaxed),
            argon2_verifications: self.argon2_verifications.load(Ordering::Relaxed),
            embedding_backlog: self
                .embedding_backlog
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .values()
                .sum(),
            guardrail_events: self
                .guardrail_events
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .map(|(kind, count)| (*kind, *count))
                .collect(),
        }
    }
}

fn timed(name: &str, histogram: &Histogram, failures: u64) -> Timed {
    Timed {
        name: name.to_owned(),
        calls: histogram.count(),
        failures,
        mean_ms: histogram.mean_ms(),
        p95_under_ms: histogram.quantile_bound_ms(0.95),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_tools_figures_add_its_outcomes_and_bound_its_95th_percentile() {
        let metrics = Metrics::default();
        for _ in 0..19 {
            metrics.tool_call("fetch_context", "ok", Duration::from_millis(2));
        }
        metrics.tool_call("fetch_context", "tool_error", Duration::from_millis(40));
        metrics.store_call("get_memory", Duration::from_millis(1), true);
        let figures = metrics.figures();
        let tool = &figures.tools[0];
        assert_eq!(
            (tool.name.as_str(), tool.calls, tool.failures),
            ("fetch_context", 20, 1)
        );
        assert_eq!(tool.p95_under_ms, Some(2.5));
        assert!((tool.mean_ms - 3.9).abs() < 1e-9, "{}", tool.mean_ms);
        assert_eq!(figures.store[0].failures, 1);
        assert_eq!(figures.store[0].p95_under_ms, Some(1.0));
    }

    #[test]
    fn a_percentile_past_the_last_bucket_has_no_bound() {
        let metrics = Metrics::default();
        metrics.tool_call("pack_repo", "ok", Duration::from_secs(30));
        assert_eq!(metrics.figures().tools[0].p95_under_ms, None);
    }
}
