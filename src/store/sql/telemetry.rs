//! Guardrail telemetry: a tenant table written one batch of events per transaction and counted
//! by kind, subject and severity over a time window. Events are themselves a log, so writing
//! them leaves no audit entry.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Access, Backend, Conn, Sql, Time};
use crate::domain::guardrail::Severity;
use crate::store::{
    GuardrailEventCount, GuardrailEventKind, NewGuardrailEvent, StoreError, StoreResult,
    TelemetryStore, now,
};

#[derive(sqlx::FromRow)]
struct CountRow {
    kind: String,
    subject: String,
    severity: Option<String>,
    count: i64,
    last_at: Time,
}

impl CountRow {
    fn into_count(self) -> StoreResult<GuardrailEventCount> {
        let kind = GuardrailEventKind::parse(&self.kind)
            .ok_or_else(|| StoreError::Corrupt(format!("guardrail event kind {}", self.kind)))?;
        let severity = match self.severity {
            Some(text) => Some(
                Severity::parse(&text)
                    .ok_or_else(|| StoreError::Corrupt(format!("guardrail severity {text}")))?,
            ),
            None => None,
        };
        Ok(GuardrailEventCount {
            kind,
            subject: self.subject,
            severity,
            count: u64::try_from(self.count).unwrap_or(0),
            last_at: self.last_at.0,
        })
    }
}

#[async_trait]
impl<B: Backend> TelemetryStore for B {
    async fn record_guardrail_events(
        &self,
        project: Uuid,
        events: &[NewGuardrailEvent],
    ) -> StoreResult<()> {
        if events.is_empty() {
            return Ok(());
        }
        let mut tx = self.tenant(project, Access::Write).await?;
        let at = now();
        for event in events {
            let sql = Sql::new(
                "INSERT INTO guardrail_events \
                 (project_id, kind, tool, key_id, subject, severity, detail, at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            )
            .arg(project)
            .arg(event.kind.as_str())
            .arg(&event.tool)
            .arg(event.key_id)
            .arg(&event.subject)
            .arg(event.severity.map(|severity| severity.as_str()))
            .arg(&event.detail)
            .arg(at);
            tx.execute(sql).await?;
        }
        B::commit(tx).await
    }

    async fn guardrail_event_counts(
        &self,
        project: Uuid,
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<GuardrailEventCount>> {
        let mut tx = self.tenant(project, Access::Read).await?;
        let sql = Sql::new(
            "SELECT kind, subject, severity, count(*) AS count, max(at) AS last_at \
             FROM guardrail_events WHERE project_id = $1 AND at >= $2 \
             GROUP BY kind, subject, severity ORDER BY count DESC, kind, subject",
        )
        .arg(project)
        .arg(since);
        let rows: Vec<CountRow> = tx.fetch_all(sql).await?;
        rows.into_iter().map(CountRow::into_count).collect()
    }
}
