//! Postgres only: row-level security confines a scoped transaction to its project, for
//! memories, their search terms and tags, and the audit log.

use codifier::store::postgres::PgStore;
use codifier::store::*;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use super::fixtures::{Ctx, draft};
use crate::helpers::Backend;

store_cases!(postgres only: row_level_security_confines_a_scoped_transaction_to_its_project);

const MEMORIES: &str = "SELECT count(*) FROM memories";
const MEMORIES_OF: &str = "SELECT count(*) FROM memories WHERE project_id = $1";
const AUDIT: &str = "SELECT count(*) FROM audit_log";
const TERMS_OF: &str = "SELECT count(*) FROM memory_terms WHERE project_id = $1";
const TAGS_OF: &str = "SELECT count(*) FROM memory_tags WHERE project_id = $1";
const AUDIT_OF: &str = "SELECT count(*) FROM audit_log WHERE project_id = $1";

/// A count, with `project` bound to `$1` when given.
async fn count(db: &mut PgConnection, sql: &str, project: Option<Uuid>) -> i64 {
    let query = sqlx::query_scalar(sql);
    let query = if let Some(p) = project {
        query.bind(p)
    } else {
        query
    };
    query.fetch_one(db).await.expect(sql)
}

async fn text(db: &mut PgConnection, sql: &str) -> String {
    sqlx::query_scalar(sql).fetch_one(db).await.expect(sql)
}

async fn row_level_security_confines_a_scoped_transaction_to_its_project(backend: Backend) {
    let t = Ctx::new(backend).await;
    let pg = PgStore::connect(&t.db.url).await.expect("connect");
    pg.migrate().await.expect("migrate");
    let (a, b) = (t.p, t.project("b").await);
    for (p, n) in [(a, 0), (a, 1), (b, 0), (b, 1), (b, 2)] {
        t.create(p, &draft(&format!("m{n}"), &["shared"])).await;
    }
    let admin = PgConnection::connect(&t.db.url).await;
    let admin = &mut admin.expect("connect");
    let su = text(admin, "SHOW is_superuser").await;
    assert_eq!(su, "on", "TEST_DATABASE_URL names a superuser");
    let every = count(admin, MEMORIES, None).await;
    assert_eq!(every, 5, "outside a scope every row is visible");
    let (of_a, audit) = (
        count(admin, AUDIT_OF, Some(a)).await,
        count(admin, AUDIT, None).await,
    );
    assert!(of_a >= 3 && of_a < audit, "A and B both have entries");

    let mut tx = pg.scoped(a).await.expect("scope A");
    let user = text(&mut tx, "SELECT current_user::text").await;
    assert_eq!(user, "codifier_tenant", "the scope runs as the tenant role");
    let rows = count(&mut tx, MEMORIES, None).await;
    assert_eq!(rows, 2, "no filter, only A's memories");
    let of_b = count(&mut tx, MEMORIES_OF, Some(b)).await;
    assert_eq!(of_b, 0, "B's memories are invisible in A");
    let terms_of_b = count(&mut tx, TERMS_OF, Some(b)).await;
    assert_eq!(terms_of_b, 0, "B's search terms are invisible in A");
    assert!(
        count(admin, TERMS_OF, Some(b)).await > 0,
        "B has search terms"
    );
    let tags_of_b = count(&mut tx, TAGS_OF, Some(b)).await;
    assert_eq!(tags_of_b, 0, "B's tags are invisible in A");
    assert_eq!(
        count(admin, TAGS_OF, Some(b)).await,
        3,
        "B's tags are indexed"
    );
    let audit = count(&mut tx, AUDIT, None).await;
    assert_eq!(audit, of_a, "no filter, only A's audit entries");
    let hijack = "UPDATE memories SET title = 'x' WHERE project_id = $1";
    let hijack = sqlx::query(hijack).bind(b).execute(&mut *tx).await;
    let hijacked = hijack.expect("update").rows_affected();
    assert_eq!(hijacked, 0, "B's rows cannot be updated from A");
    let insert = |project: Uuid| {
        let sql = "INSERT INTO memories (id, project_id, memory_type, title, content, \
            content_hash, created_at, updated_at) \
            VALUES ($1, $2, 'rule', 'smuggled', '{}', $3, now(), now())";
        let id = Uuid::new_v4();
        sqlx::query(sql).bind(id).bind(project).bind(id.to_string())
    };
    insert(a).execute(&mut *tx).await.expect("A's own row");
    let smuggled = insert(b).execute(&mut *tx).await;
    let smuggled = smuggled.expect_err("RLS WITH CHECK refuses B's row");
    let code = smuggled.as_database_error().and_then(|e| e.code());
    assert_eq!(code.as_deref(), Some("42501"), "RLS refused: {smuggled}");
    drop(tx);

    let mut tx = pg.scoped(b).await.expect("scope B");
    let titles = "SELECT string_agg(title, ',' ORDER BY title) FROM memories";
    let titles = text(&mut tx, titles).await;
    assert_eq!(titles, "m0,m1,m2", "B's rows, untouched");
    drop(tx);

    let role = sqlx::query("SET ROLE codifier_tenant")
        .execute(&mut *admin)
        .await;
    role.expect("set role");
    for sql in [MEMORIES, AUDIT] {
        let rows = count(admin, sql, None).await;
        assert_eq!(rows, 0, "the tenant role, no project: {sql}");
    }
}
