//! Web console sign-ins: a control table (read before any project is known), one statement a
//! call. Rows are found by the SHA-256 of the session token; expired rows are never returned.

use async_trait::async_trait;

use super::{Backend, Conn, Id, Sql, Time};
use crate::store::{
    ConsoleSession, ConsoleSessionStore, ConsoleSubject, Role, StoreError, StoreResult, now,
};

const COLUMNS: &str = "token_hash, key_id, key_prefix, operator_fingerprint, role, project_id, \
                       csrf_token, created_at, expires_at";

#[derive(sqlx::FromRow)]
struct ConsoleSessionRow {
    token_hash: String,
    key_id: Option<Id>,
    key_prefix: Option<String>,
    operator_fingerprint: Option<String>,
    role: String,
    project_id: Option<Id>,
    csrf_token: String,
    created_at: Time,
    expires_at: Time,
}

impl ConsoleSessionRow {
    fn into_session(self) -> StoreResult<ConsoleSession> {
        let subject = match (self.key_id, self.key_prefix, self.operator_fingerprint) {
            (Some(id), Some(prefix), None) => ConsoleSubject::Key { id: id.0, prefix },
            (None, _, Some(fingerprint)) => ConsoleSubject::Operator { fingerprint },
            _ => return Err(StoreError::Corrupt("console session subject".into())),
        };
        Ok(ConsoleSession {
            token_hash: self.token_hash,
            subject,
            role: Role::parse(&self.role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {}", self.role)))?,
            project_id: self.project_id.map(|id| id.0),
            csrf_token: self.csrf_token,
            created_at: self.created_at.0,
            expires_at: self.expires_at.0,
        })
    }
}

#[async_trait]
impl<B: Backend> ConsoleSessionStore for B {
    async fn create_console_session(&self, session: &ConsoleSession) -> StoreResult<()> {
        let (key_id, key_prefix, fingerprint) = match &session.subject {
            ConsoleSubject::Key { id, prefix } => (Some(*id), Some(prefix.as_str()), None),
            ConsoleSubject::Operator { fingerprint } => (None, None, Some(fingerprint.as_str())),
        };
        let sql = Sql::new(format!(
            "INSERT INTO console_sessions ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .arg(&session.token_hash)
        .arg(key_id)
        .arg(key_prefix)
        .arg(fingerprint)
        .arg(session.role.as_str())
        .arg(session.project_id)
        .arg(&session.csrf_token)
        .arg(session.created_at)
        .arg(session.expires_at);
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }

    async fn find_console_session(&self, token_hash: &str) -> StoreResult<Option<ConsoleSession>> {
        let sql = Sql::new(format!(
            "SELECT {COLUMNS} FROM console_sessions WHERE token_hash = $1 AND expires_at > $2"
        ))
        .arg(token_hash)
        .arg(now());
        let row: Option<ConsoleSessionRow> = self.connection().await?.fetch_optional(sql).await?;
        row.map(ConsoleSessionRow::into_session).transpose()
    }

    async fn delete_console_session(&self, token_hash: &str) -> StoreResult<()> {
        let sql = Sql::new("DELETE FROM console_sessions WHERE token_hash = $1").arg(token_hash);
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }

    async fn delete_expired_console_sessions(&self) -> StoreResult<u64> {
        let sql = Sql::new("DELETE FROM console_sessions WHERE expires_at <= $1").arg(now());
        self.write_connection().await?.execute(sql).await
    }
}
