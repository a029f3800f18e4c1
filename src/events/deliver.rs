//! The webhook deliverer: a background task that works through the outbox in rounds. One
//! transaction records the last round's attempts and leases the next due deliveries; they are
//! posted signed and concurrently over one HTTP client. It wakes on every commit of this
//! process and visits only the projects known to have deliveries waiting (see [`Watched`]). A
//! delivery that fails is due again after an exponential backoff with jitter, up to
//! [`EventsConfig::max_attempts`]; a 410 Gone disables its webhook. Leases make two servers on
//! one database skip each other's rows, and a lease that ran out (its server died
//! mid-delivery) lets another take the delivery: at least once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use rand::Rng;
use serde::Serialize;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{EventsConfig, sign, target};
use crate::domain::{AttemptOutcome, LeasedDelivery, NextStep};
use crate::store::Store;

/// Deliveries leased at once from one project, per round.
const BATCH: u32 = 64;
/// Deliveries in flight at once.
const IN_FLIGHT: usize = 32;
/// Every this many poll intervals (and at start) the deliverer asks every project whether it
/// has deliveries waiting, to find those queued by another server or before a restart; in
/// between it visits only the projects it knows to have some.
const RESCAN_POLLS: u32 = 20;

/// The header naming the event type.
pub const EVENT_HEADER: &str = "codifier-event";
/// The header carrying the delivery id (the same for every attempt: the receiver's idempotency key).
pub const DELIVERY_HEADER: &str = "codifier-delivery";
/// The header carrying the signature `t=<unix>,v1=<hex>`.
pub const SIGNATURE_HEADER: &str = "codifier-signature";

/// The body of a delivery.
#[derive(Serialize)]
struct Payload<'a> {
    id: i64,
    #[serde(rename = "type")]
    kind: &'a str,
    project_id: uuid::Uuid,
    sequence: i64,
    time: chrono::DateTime<Utc>,
    data: &'a serde_json::Value,
}

/// The projects a deliverer visits on each pass.
struct Watched {
    /// Projects with deliveries waiting (as of the last rescan) or queued here since.
    projects: HashSet<Uuid>,
    /// Projects queued here since the last rescan.
    hinted: HashSet<Uuid>,
    queued: super::signal::Queued,
    rescan_at: Option<Instant>,
}

impl Watched {
    fn new() -> Self {
        Self {
            projects: HashSet::new(),
            hinted: HashSet::new(),
            queued: super::signal::Queued::register(),
            rescan_at: None,
        }
    }
}

/// Sends the outbox's deliveries.
#[derive(Clone)]
pub struct Deliverer {
    store: Arc<dyn Store>,
    config: EventsConfig,
    client: reqwest::Client,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, config: EventsConfig) -> Self {
        let client = target::client(config.timeout, config.allow_private);
        Self {
            store,
            config,
            client,
        }
    }

    /// Starts delivering in the background until `shutdown`.
    pub fn spawn(self, shutdown: CancellationToken) {
        tokio::spawn(self.run(shutdown));
    }

    /// Delivers whatever is due, then waits for a commit here or the poll interval, until
    /// `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut wake = super::signal::subscribe();
        let mut watched = Watched::new();
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            match self.pass(&mut watched).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "webhook deliveries paused; retrying shortly"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = wake.changed() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
    }

    /// One pass: rounds until nothing is due in the projects known to have deliveries
    /// waiting. Each round sends what the last one leased, concurrently (up to [`IN_FLIGHT`]
    /// requests at once), then records those attempts and leases the next batch of every
    /// project (up to [`BATCH`] each) in one transaction. The projects are looked at again
    /// before each round, so that one which had its first delivery queued during a long pass
    /// is not left waiting for its end. Returns how many attempts it made.
    async fn pass(&self, watched: &mut Watched) -> anyhow::Result<usize> {
        let (mut made, mut attempts) = (0, Vec::new());
        loop {
            if let Err(error) = self.refresh(watched).await {
                // The attempts made are still recorded; the rescan is tried again next round.
                tracing::warn!(%error, "could not list the projects with webhook deliveries");
            }
            let projects: Vec<Uuid> = watched.projects.iter().copied().collect();
            let leased = self
                .store
                .settle_and_lease(&attempts, &projects, self.config.lease, BATCH)
                .await?;
            if leased.is_empty() {
                return Ok(made);
            }
            made += leased.len();
            attempts = futures::stream::iter(leased)
                .map(|delivery| async move {
                    let outcome = self.attempt(&delivery).await;
                    (delivery, outcome)
                })
                .buffer_unordered(IN_FLIGHT)
                .collect()
                .await;
        }
    }

    /// Adds the projects queued here since the last look, and asks every project again when
    /// the rescan is due.
    async fn refresh(&self, watched: &mut Watched) -> anyhow::Result<()> {
        let hinted = watched.queued.take();
        watched.projects.extend(hinted.iter().copied());
        watched.hinted.extend(hinted);
        if watched.rescan_at.is_some_and(|at| Instant::now() < at) {
            return Ok(());
        }
        let mut found = HashSet::new();
        for project in self.store.list_projects().await? {
            if self.store.has_pending_deliveries(project.id).await? {
                found.insert(project.id);
            }
        }
        // A project named since the last rescan stays: its transaction may not have committed
        // when the rescan looked.
        found.extend(watched.hinted.drain());
        watched.projects = found;
        watched.rescan_at = Some(Instant::now() + self.config.poll * RESCAN_POLLS);
        Ok(())
    }

    /// Posts one delivery and says what comes next.
    pub async fn attempt(&self, delivery: &LeasedDelivery) -> AttemptOutcome {
        let started = Instant::now();
        let sent = self.post(delivery).await;
        let duration_ms = started.elapsed().as_millis() as i64;
        let attempt = delivery.attempts + 1;
        let (status_code, error) = match sent {
            Ok(status) => (Some(i32::from(status)), None),
            Err(error) => (None, Some(error)),
        };
        let next = match status_code {
            Some(code) if (200..300).contains(&code) => NextStep::Delivered,
            Some(410) => NextStep::Disable("the receiver answered 410 Gone".into()),
            _ if attempt >= self.config.max_attempts => NextStep::GiveUp,
            _ => NextStep::RetryAt(Utc::now() + backoff(self.config.backoff, attempt)),
        };
        if next != NextStep::Delivered {
            tracing::info!(webhook = %delivery.webhook_id, event = delivery.event.id, attempt, status = ?status_code, error = error.as_deref().unwrap_or(""), "webhook delivery failed");
        }
        AttemptOutcome {
            status_code,
            duration_ms,
            error,
            next,
        }
    }

    /// The POST itself; the receiver's status, or why there was none.
    async fn post(&self, delivery: &LeasedDelivery) -> Result<u16, String> {
        let url = target::parse_url(&delivery.url).map_err(|r| r.0)?;
        if !self.config.allow_private {
            target::check_literal(&url).map_err(|r| r.0)?;
        }
        let event = &delivery.event;
        let body = serde_json::to_vec(&Payload {
            id: event.id,
            kind: &event.kind,
            project_id: event.project_id,
            sequence: event.sequence,
            time: event.time,
            data: &event.data,
        })
        .map_err(|e| e.to_string())?;
        let signature = sign::signature_header(&delivery.secret, Utc::now().timestamp(), &body);
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(EVENT_HEADER, &event.kind)
            .header(DELIVERY_HEADER, delivery.delivery_id().to_string())
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await
            .map_err(describe)?;
        Ok(response.status().as_u16())
    }
}

/// The wait after failed attempt `attempt` (1-based): `base` doubled per earlier failure, times
/// a random factor between 0.5 and 1.5 so receivers that come back are not hit all at once.
pub fn backoff(base: Duration, attempt: i32) -> chrono::Duration {
    let doubled = base.saturating_mul(1u32 << attempt.clamp(1, 20).saturating_sub(1));
    let jittered = doubled.mul_f64(rand::thread_rng().gen_range(0.5..1.5));
    chrono::Duration::from_std(jittered).unwrap_or(chrono::TimeDelta::MAX)
}

/// A transport error as one line, with its causes (which name a refused address).
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = if error.is_timeout() {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_within_half_and_one_and_a_half() {
        let base = Duration::from_secs(10);
        for attempt in 1..=5 {
            let expected = 10.0 * f64::from(1u32 << (attempt - 1));
            let wait = backoff(base, attempt).num_milliseconds() as f64 / 1000.0;
            assert!(
                wait >= expected * 0.5 && wait <= expected * 1.5,
                "{attempt}: {wait}"
            );
        }
    }
}
