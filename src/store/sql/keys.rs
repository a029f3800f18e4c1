//! API keys: a control table (no project confines it); creating and revoking one is audited in
//! its project.

use async_trait::async_trait;
use uuid::Uuid;

use super::audit::audit;
use super::{Backend, Conn, Id, Sql, Time};
use crate::store::{
    Actor, ApiKey, ApiKeySecret, KeyStore, NewApiKey, Role, StoreError, StoreResult, now,
};

const KEY_COLUMNS: &str =
    "id, project_id, prefix, key_hash, role, label, created_at, last_used_at, revoked_at";

#[derive(sqlx::FromRow)]
struct KeyRow {
    id: Id,
    project_id: Id,
    prefix: String,
    key_hash: String,
    role: String,
    label: Option<String>,
    created_at: Time,
    last_used_at: Option<Time>,
    revoked_at: Option<Time>,
}

impl KeyRow {
    fn into_secret(self) -> StoreResult<ApiKeySecret> {
        Ok(ApiKeySecret {
            key: ApiKey {
                id: self.id.0,
                project_id: self.project_id.0,
                prefix: self.prefix,
                role: Role::parse(&self.role)
                    .ok_or_else(|| StoreError::Corrupt(format!("role {}", self.role)))?,
                label: self.label,
                created_at: self.created_at.0,
                last_used_at: self.last_used_at.map(|time| time.0),
                revoked_at: self.revoked_at.map(|time| time.0),
            },
            hash: self.key_hash,
        })
    }
}

#[async_trait]
impl<B: Backend> KeyStore for B {
    async fn create_api_key(&self, actor: &Actor, key: &NewApiKey) -> StoreResult<ApiKey> {
        let mut tx = self.control().await?;
        let sql = Sql::new(format!(
            "INSERT INTO api_keys (id, project_id, prefix, key_hash, role, label, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {KEY_COLUMNS}"
        ))
        .arg(Uuid::new_v4())
        .arg(key.project_id)
        .arg(&key.prefix)
        .arg(&key.hash)
        .arg(key.role.as_str())
        .arg(&key.label)
        .arg(now());
        let created = tx.fetch_one::<KeyRow>(sql).await?.into_secret()?.key;
        B::enter_project(&mut tx, key.project_id).await?;
        let detail =
            serde_json::json!({ "prefix": key.prefix, "role": key.role, "label": key.label });
        let target = created.id.to_string();
        audit(
            &mut *tx,
            key.project_id,
            actor,
            "api_key.create",
            &target,
            detail,
        )
        .await?;
        B::commit(tx).await?;
        Ok(created)
    }

    async fn list_api_keys(&self, project: Option<Uuid>) -> StoreResult<Vec<ApiKey>> {
        let sql = Sql::new(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE ($1 IS NULL OR project_id = $1) \
             ORDER BY created_at"
        ))
        .arg(project);
        let rows: Vec<KeyRow> = self.connection().await?.fetch_all(sql).await?;
        rows.into_iter()
            .map(|row| row.into_secret().map(|secret| secret.key))
            .collect()
    }

    async fn revoke_api_key(&self, actor: &Actor, id_or_prefix: &str) -> StoreResult<ApiKey> {
        let mut tx = self.control().await?;
        let sql = Sql::new(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1 OR prefix = $2{}",
            B::LOCK_ROWS
        ))
        .arg(Uuid::parse_str(id_or_prefix).ok())
        .arg(id_or_prefix);
        let mut key = tx
            .fetch_optional::<KeyRow>(sql)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("API key {id_or_prefix}")))?
            .into_secret()?
            .key;
        if key.revoked_at.is_none() {
            let at = now();
            let sql = Sql::new("UPDATE api_keys SET revoked_at = $1 WHERE id = $2")
                .arg(at)
                .arg(key.id);
            tx.execute(sql).await?;
            B::enter_project(&mut tx, key.project_id).await?;
            let detail = serde_json::json!({ "prefix": key.prefix });
            let target = key.id.to_string();
            audit(
                &mut *tx,
                key.project_id,
                actor,
                "api_key.revoke",
                &target,
                detail,
            )
            .await?;
            key.revoked_at = Some(at);
        }
        B::commit(tx).await?;
        Ok(key)
    }

    async fn find_api_key(&self, prefix: &str) -> StoreResult<Option<ApiKeySecret>> {
        let sql = Sql::new(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE prefix = $1"
        ))
        .arg(prefix);
        let row: Option<KeyRow> = self.connection().await?.fetch_optional(sql).await?;
        row.map(KeyRow::into_secret).transpose()
    }

    async fn touch_api_key(&self, id: Uuid) -> StoreResult<()> {
        let sql = Sql::new("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .arg(now())
            .arg(id);
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }
}
