//! Guardrail telemetry: events recorded in a project are counted by kind, subject and severity
//! over a window, in that project only (`telemetry_rls.rs`: row-level security on Postgres).

use chrono::{Duration, Utc};
use codifier::domain::guardrail::Severity;
use codifier::store::*;
use serde_json::json;
use uuid::Uuid;

use super::fixtures::Ctx;
use crate::helpers::Backend;

store_cases!(
    events_are_counted_by_kind_subject_and_severity_in_their_own_project,
    a_window_that_starts_after_the_events_counts_none
);

pub(super) fn event(
    kind: GuardrailEventKind,
    subject: &str,
    severity: Option<Severity>,
) -> NewGuardrailEvent {
    NewGuardrailEvent {
        kind,
        tool: "validate_code".into(),
        key_id: Some(Uuid::new_v4()),
        subject: subject.into(),
        severity,
        detail: json!({ "file_path": "src/app.ts" }),
    }
}

pub(super) fn block(check: &str, severity: Severity) -> NewGuardrailEvent {
    event(GuardrailEventKind::GuardrailBlock, check, Some(severity))
}

type Row<'a> = (&'static str, &'a str, Option<Severity>, u64);

/// (kind, subject, severity, count) of each count, in the store's order.
fn rows(counts: &[GuardrailEventCount]) -> Vec<Row<'_>> {
    fn row(c: &GuardrailEventCount) -> Row<'_> {
        (c.kind.as_str(), c.subject.as_str(), c.severity, c.count)
    }
    counts.iter().map(row).collect()
}

async fn events_are_counted_by_kind_subject_and_severity_in_their_own_project(b: Backend) {
    let t = Ctx::new(b).await;
    let (a, other) = (t.p, t.project("b").await);
    let start = event(GuardrailEventKind::SessionStart, "", None);
    let hatch = event(GuardrailEventKind::EscapeHatchTrigger, "circular", None);
    let batch = [
        start.clone(),
        block("no-eval", Severity::Critical),
        block("no-eval", Severity::Critical),
        block("no-any", Severity::Error),
        hatch,
    ];
    t.s.record_guardrail_events(a, &batch)
        .await
        .expect("record");
    t.s.record_guardrail_events(a, &[block("no-eval", Severity::Critical)])
        .await
        .expect("record");
    t.s.record_guardrail_events(a, &[]).await.expect("nothing");
    let in_b = [block("secret-check", Severity::Error), start];
    t.s.record_guardrail_events(other, &in_b).await.expect("b");
    let since = Utc::now() - Duration::days(1);
    let counts = t.s.guardrail_event_counts(a, since).await.expect("counts");
    let critical = Some(Severity::Critical);
    let want = vec![
        ("guardrail_block", "no-eval", critical, 3),
        ("escape_hatch_trigger", "circular", None, 1),
        ("guardrail_block", "no-any", Some(Severity::Error), 1),
        ("session_start", "", None, 1),
    ];
    assert_eq!(rows(&counts), want, "{b:?}: most frequent first");
    let recent = counts.iter().all(|c| c.last_at > since);
    assert!(recent, "{b:?}: last_at is when they were recorded");
    let of_b = t.s.guardrail_event_counts(other, since).await.expect("b");
    let want_b = vec![
        ("guardrail_block", "secret-check", Some(Severity::Error), 1),
        ("session_start", "", None, 1),
    ];
    assert_eq!(rows(&of_b), want_b, "{b:?}: B counts only its own");
}

async fn a_window_that_starts_after_the_events_counts_none(b: Backend) {
    let t = Ctx::new(b).await;
    let batch = [block("no-eval", Severity::Warning)];
    t.s.record_guardrail_events(t.p, &batch)
        .await
        .expect("record");
    let later = Utc::now() + Duration::seconds(5);
    let counts =
        t.s.guardrail_event_counts(t.p, later)
            .await
            .expect("counts");
    assert!(counts.is_empty(), "{b:?}: {counts:?}");
}
