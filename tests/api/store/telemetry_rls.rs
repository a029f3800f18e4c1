//! Postgres only: row-level security confines guardrail events to their project, for reads and
//! writes, whatever the statement asks for.

use codifier::domain::guardrail::Severity;
use codifier::store::postgres::PgStore;
use codifier::store::*;

use super::fixtures::Ctx;
use super::telemetry::block;
use crate::helpers::Backend;

store_cases!(postgres only: row_level_security_hides_another_projects_guardrail_events);

async fn row_level_security_hides_another_projects_guardrail_events(backend: Backend) {
    let t = Ctx::new(backend).await;
    let pg = PgStore::connect(&t.db.url).await.expect("connect");
    let (a, b) = (t.p, t.project("b").await);
    t.s.record_guardrail_events(a, &[block("mine", Severity::Error)])
        .await
        .expect("a");
    let theirs = [block("theirs", Severity::Error), block("x", Severity::Info)];
    t.s.record_guardrail_events(b, &theirs).await.expect("b");
    let mut tx = pg.scoped(a).await.expect("scope A");
    let all: i64 = sqlx::query_scalar("SELECT count(*) FROM guardrail_events")
        .fetch_one(&mut *tx)
        .await
        .expect("count");
    assert_eq!(all, 1, "no filter, only A's events");
    let forged = "INSERT INTO guardrail_events (project_id, kind, tool, subject, detail, at) \
                  VALUES ($1, 'guardrail_block', 'x', 'forged', '{}', now())";
    let forged = sqlx::query(forged).bind(b).execute(&mut *tx).await;
    assert!(forged.is_err(), "A cannot write B's events");
}
