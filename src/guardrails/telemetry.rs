//! Telemetry of working sessions: recording guardrail events for a project (in the store and in
//! the process's Prometheus counters) and reading them back as the stats `guardrail_stats`
//! shows: blocks by check and severity, escape-hatch triggers by pattern, and totals by kind.

use std::collections::BTreeMap;

use chrono::{Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::auth::Identity;
use crate::domain::guardrail::Severity;
use crate::store::{
    GuardrailEventCount, GuardrailEventKind, NewGuardrailEvent, Store, StoreResult,
};

/// The longest window stats look back over, in days.
pub const MAX_DAYS: u32 = 365;

/// An event about `subject`, by the caller `identity` through `tool`.
pub fn event(
    kind: GuardrailEventKind,
    tool: &str,
    identity: &Identity,
    subject: &str,
    severity: Option<Severity>,
    detail: Value,
) -> NewGuardrailEvent {
    let key_id = match identity {
        Identity::Key { id, .. } => Some(*id),
        Identity::Operator | Identity::Local => None,
    };
    NewGuardrailEvent {
        kind,
        tool: tool.to_owned(),
        key_id,
        subject: subject.to_owned(),
        severity,
        detail,
    }
}

/// Records `events` in `project` (one transaction) and counts them for `/metrics`.
pub async fn record(
    store: &dyn Store,
    project: Uuid,
    events: &[NewGuardrailEvent],
) -> StoreResult<()> {
    store.record_guardrail_events(project, events).await?;
    for event in events {
        crate::metrics::global().guardrail_event(event.kind.as_str());
    }
    Ok(())
}

/// How often one check blocked code.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct BlockCount {
    pub check: String,
    pub severity: Option<Severity>,
    pub count: u64,
}

/// How often one pattern of going in circles was caught.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct TriggerCount {
    pub pattern: String,
    pub count: u64,
}

/// A project's guardrail events over the last `days` days.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GuardrailStats {
    pub days: u32,
    /// Events of each kind (every kind, zero included).
    pub totals: BTreeMap<GuardrailEventKind, u64>,
    /// Blocks by check and severity, most frequent first.
    pub blocks: Vec<BlockCount>,
    /// Escape-hatch triggers by pattern, most frequent first.
    pub escape_hatch_triggers: Vec<TriggerCount>,
}

/// The stats of `project` over the last `days` days (1 to [`MAX_DAYS`]).
pub async fn stats(store: &dyn Store, project: Uuid, days: u32) -> StoreResult<GuardrailStats> {
    let days = days.clamp(1, MAX_DAYS);
    let since = Utc::now() - Duration::days(i64::from(days));
    let counts = store.guardrail_event_counts(project, since).await?;
    Ok(summarize(days, &counts))
}

fn summarize(days: u32, counts: &[GuardrailEventCount]) -> GuardrailStats {
    let mut totals: BTreeMap<_, u64> = GuardrailEventKind::ALL.iter().map(|k| (*k, 0)).collect();
    let mut blocks = Vec::new();
    let mut triggers: BTreeMap<&str, u64> = BTreeMap::new();
    for count in counts {
        *totals.entry(count.kind).or_default() += count.count;
        match count.kind {
            GuardrailEventKind::GuardrailBlock => blocks.push(BlockCount {
                check: count.subject.clone(),
                severity: count.severity,
                count: count.count,
            }),
            GuardrailEventKind::EscapeHatchTrigger => {
                *triggers.entry(&count.subject).or_default() += count.count;
            }
            _ => {}
        }
    }
    blocks.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.check.cmp(&b.check)));
    let mut escape_hatch_triggers: Vec<_> = triggers
        .into_iter()
        .map(|(pattern, count)| TriggerCount {
            pattern: pattern.to_owned(),
            count,
        })
        .collect();
    escape_hatch_triggers.sort_by(|a, b| b.count.cmp(&a.count));
    GuardrailStats {
        days,
        totals,
        blocks,
        escape_hatch_triggers,
    }
}
