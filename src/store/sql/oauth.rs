//! The OAuth authorization server's control tables (read before any project is known):
//! clients, grants (one per authorization code) and tokens, found by the SHA-256 of a code or
//! token. Redeeming a code and rotating a refresh token are single transactions, so a code or a
//! refresh token used twice at once is issued once and the second use revokes the family.

use async_trait::async_trait;
use uuid::Uuid;

use super::{Backend, Conn, Id, Json, Sql, Time, Tx};
use crate::store::{
    ConsoleSubject, NewTokenPair, OAuthClient, OAuthGrant, OAuthStore, OAuthSwept, Redemption,
    Role, StoreError, StoreResult, now,
};

const GRANT_COLUMNS: &str = "id, client_id, key_id, key_prefix, operator_fingerprint, role, \
     project_id, resource, redirect_uri, code_hash, code_challenge, code_expires_at, \
     code_used_at, revoked_at, created_at";

/// [`GRANT_COLUMNS`] qualified by a table alias, for queries that join `oauth_grants`.
fn grant_columns_of(alias: &str) -> String {
    GRANT_COLUMNS
        .split(',')
        .map(|column| format!("{alias}.{}", column.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[derive(sqlx::FromRow)]
struct ClientRow {
    client_id: String,
    client_name: String,
    client_uri: Option<String>,
    redirect_uris: Json,
    created_at: Time,
}

#[derive(sqlx::FromRow)]
struct GrantRow {
    id: Id,
    client_id: String,
    key_id: Option<Id>,
    key_prefix: Option<String>,
    operator_fingerprint: Option<String>,
    role: String,
    project_id: Option<Id>,
    resource: String,
    redirect_uri: String,
    code_hash: String,
    code_challenge: String,
    code_expires_at: Time,
    code_used_at: Option<Time>,
    revoked_at: Option<Time>,
    created_at: Time,
}

impl GrantRow {
    fn into_grant(self) -> StoreResult<OAuthGrant> {
        let subject = match (self.key_id, self.key_prefix, self.operator_fingerprint) {
            (Some(id), Some(prefix), None) => ConsoleSubject::Key { id: id.0, prefix },
            (None, _, Some(fingerprint)) => ConsoleSubject::Operator { fingerprint },
            _ => return Err(StoreError::Corrupt("oauth grant subject".into())),
        };
        Ok(OAuthGrant {
            id: self.id.0,
            client_id: self.client_id,
            subject,
            role: Role::parse(&self.role)
                .ok_or_else(|| StoreError::Corrupt(format!("role {}", self.role)))?,
            project_id: self.project_id.map(|id| id.0),
            resource: self.resource,
            redirect_uri: self.redirect_uri,
            code_hash: self.code_hash,
            code_challenge: self.code_challenge,
            code_expires_at: self.code_expires_at.0,
            code_used_at: self.code_used_at.map(|time| time.0),
            revoked_at: self.revoked_at.map(|time| time.0),
            created_at: self.created_at.0,
        })
    }
}

#[derive(sqlx::FromRow)]
struct RefreshRow {
    grant_id: Id,
    expires_at: Time,
    used_at: Option<Time>,
}

#[derive(sqlx::FromRow)]
struct AccessRow {
    #[sqlx(flatten)]
    grant: GrantRow,
    expires_at: Time,
}

async fn insert_pair<B: Backend>(
    tx: &mut Tx<B>,
    grant: Uuid,
    tokens: &NewTokenPair,
) -> StoreResult<()> {
    let created = now();
    let sql = Sql::new(
        "INSERT INTO oauth_tokens (token_hash, grant_id, kind, expires_at, created_at) \
         VALUES ($1, $2, 'access', $3, $6), ($4, $2, 'refresh', $5, $6)",
    )
    .arg(&tokens.access_hash)
    .arg(grant)
    .arg(tokens.access_expires_at)
    .arg(&tokens.refresh_hash)
    .arg(tokens.refresh_expires_at)
    .arg(created);
    tx.execute(sql).await?;
    Ok(())
}

async fn revoke_grant<B: Backend>(tx: &mut Tx<B>, grant: Uuid) -> StoreResult<()> {
    let sql =
        Sql::new("UPDATE oauth_grants SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .arg(now())
            .arg(grant);
    tx.execute(sql).await?;
    Ok(())
}

async fn grant_by_id<B: Backend>(tx: &mut Tx<B>, grant: Uuid) -> StoreResult<Option<OAuthGrant>> {
    let sql = Sql::new(format!(
        "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE id = $1{}",
        B::LOCK_ROWS
    ))
    .arg(grant);
    tx.fetch_optional::<GrantRow>(sql)
        .await?
        .map(GrantRow::into_grant)
        .transpose()
}

#[async_trait]
impl<B: Backend> OAuthStore for B {
    async fn create_oauth_client(&self, client: &OAuthClient) -> StoreResult<()> {
        let sql = Sql::new(
            "INSERT INTO oauth_clients (client_id, client_name, client_uri, redirect_uris, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(&client.client_id)
        .arg(&client.client_name)
        .arg(&client.client_uri)
        .arg(serde_json::json!(client.redirect_uris))
        .arg(client.created_at);
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }

    async fn find_oauth_client(&self, client_id: &str) -> StoreResult<Option<OAuthClient>> {
        let sql = Sql::new(
            "SELECT client_id, client_name, client_uri, redirect_uris, created_at \
             FROM oauth_clients WHERE client_id = $1",
        )
        .arg(client_id);
        let row: Option<ClientRow> = self.connection().await?.fetch_optional(sql).await?;
        row.map(|row| {
            let redirect_uris = serde_json::from_value(row.redirect_uris.0)
                .map_err(|_| StoreError::Corrupt("oauth client redirect_uris".into()))?;
            Ok(OAuthClient {
                client_id: row.client_id,
                client_name: row.client_name,
                client_uri: row.client_uri,
                redirect_uris,
                created_at: row.created_at.0,
            })
        })
        .transpose()
    }

    async fn create_oauth_grant(&self, grant: &OAuthGrant) -> StoreResult<()> {
        let (key_id, key_prefix, fingerprint) = match &grant.subject {
            ConsoleSubject::Key { id, prefix } => (Some(*id), Some(prefix.as_str()), None),
            ConsoleSubject::Operator { fingerprint } => (None, None, Some(fingerprint.as_str())),
        };
        let sql = Sql::new(format!(
            "INSERT INTO oauth_grants ({GRANT_COLUMNS}) VALUES \
             ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ))
        .arg(grant.id)
        .arg(&grant.client_id)
        .arg(key_id)
        .arg(key_prefix)
        .arg(fingerprint)
        .arg(grant.role.as_str())
        .arg(grant.project_id)
        .arg(&grant.resource)
        .arg(&grant.redirect_uri)
        .arg(&grant.code_hash)
        .arg(&grant.code_challenge)
        .arg(grant.code_expires_at)
        .arg(grant.code_used_at)
        .arg(grant.revoked_at)
        .arg(grant.created_at);
        self.write_connection().await?.execute(sql).await?;
        Ok(())
    }

    async fn find_oauth_code(&self, code_hash: &str) -> StoreResult<Option<OAuthGrant>> {
        let sql = Sql::new(format!(
            "SELECT {GRANT_COLUMNS} FROM oauth_grants WHERE code_hash = $1"
        ))
        .arg(code_hash);
        let row: Option<GrantRow> = self.connection().await?.fetch_optional(sql).await?;
        row.map(GrantRow::into_grant).transpose()
    }

    async fn redeem_oauth_code(
        &self,
        grant: Uuid,
        tokens: &NewTokenPair,
    ) -> StoreResult<Redemption> {
        let mut tx = self.control().await?;
        let Some(mut found) = grant_by_id::<B>(&mut tx, grant).await? else {
            return Ok(Redemption::Invalid);
        };
        if found.code_used_at.is_some() {
            revoke_grant::<B>(&mut tx, grant).await?;
            B::commit(tx).await?;
            return Ok(Redemption::Reused);
        }
        if found.revoked_at.is_some() || found.code_expires_at <= now() {
            return Ok(Redemption::Invalid);
        }
        let used = now();
        let sql = Sql::new("UPDATE oauth_grants SET code_used_at = $1 WHERE id = $2")
            .arg(used)
            .arg(grant);
        tx.execute(sql).await?;
        insert_pair::<B>(&mut tx, grant, tokens).await?;
        B::commit(tx).await?;
        found.code_used_at = Some(used);
        Ok(Redemption::Issued(Box::new(found)))
    }

    async fn find_oauth_refresh(&self, refresh_hash: &str) -> StoreResult<Option<OAuthGrant>> {
        let columns = grant_columns_of("g");
        let sql = Sql::new(format!(
            "SELECT {columns} FROM oauth_tokens t JOIN oauth_grants g ON g.id = t.grant_id \
             WHERE t.token_hash = $1 AND t.kind = 'refresh'"
        ))
        .arg(refresh_hash);
        let row: Option<GrantRow> = self.connection().await?.fetch_optional(sql).await?;
        row.map(GrantRow::into_grant).transpose()
    }

    async fn rotate_oauth_refresh(
        &self,
        refresh_hash: &str,
        tokens: &NewTokenPair,
        narrow_to: Option<Role>,
    ) -> StoreResult<Redemption> {
        let mut tx = self.control().await?;
        let sql = Sql::new(format!(
            "SELECT grant_id, expires_at, used_at FROM oauth_tokens \
             WHERE token_hash = $1 AND kind = 'refresh'{}",
            B::LOCK_ROWS
        ))
        .arg(refresh_hash);
        let Some(refresh) = tx.fetch_optional::<RefreshRow>(sql).await? else {
            return Ok(Redemption::Invalid);
        };
        let grant_id = refresh.grant_id.0;
        let Some(mut grant) = grant_by_id::<B>(&mut tx, grant_id).await? else {
            return Ok(Redemption::Invalid);
        };
        if refresh.used_at.is_some() {
            revoke_grant::<B>(&mut tx, grant_id).await?;
            B::commit(tx).await?;
            return Ok(Redemption::Reused);
        }
        if grant.revoked_at.is_some() || refresh.expires_at.0 <= now() {
            return Ok(Redemption::Invalid);
        }
        let sql = Sql::new("UPDATE oauth_tokens SET used_at = $1 WHERE token_hash = $2")
            .arg(now())
            .arg(refresh_hash);
        tx.execute(sql).await?;
        if let Some(narrower) = narrow_to.filter(|role| *role < grant.role) {
            let sql = Sql::new("UPDATE oauth_grants SET role = $1 WHERE id = $2")
                .arg(narrower.as_str())
                .arg(grant_id);
            tx.execute(sql).await?;
            grant.role = narrower;
        }
        insert_pair::<B>(&mut tx, grant_id, tokens).await?;
        B::commit(tx).await?;
        Ok(Redemption::Issued(Box::new(grant)))
    }

    async fn find_oauth_access(
        &self,
        access_hash: &str,
    ) -> StoreResult<Option<(OAuthGrant, chrono::DateTime<chrono::Utc>)>> {
        let columns = grant_columns_of("g");
        let sql = Sql::new(format!(
            "SELECT {columns}, t.expires_at AS expires_at FROM oauth_tokens t \
             JOIN oauth_grants g ON g.id = t.grant_id \
             WHERE t.token_hash = $1 AND t.kind = 'access' AND t.expires_at > $2 \
             AND g.revoked_at IS NULL"
        ))
        .arg(access_hash)
        .arg(now());
        let row: Option<AccessRow> = self.connection().await?.fetch_optional(sql).await?;
        row.map(|row| Ok((row.grant.into_grant()?, row.expires_at.0)))
            .transpose()
    }

    async fn revoke_oauth_token(&self, token_hash: &str) -> StoreResult<bool> {
        let sql = Sql::new(
            "UPDATE oauth_grants SET revoked_at = $1 WHERE revoked_at IS NULL AND id IN \
             (SELECT grant_id FROM oauth_tokens WHERE token_hash = $2)",
        )
        .arg(now())
        .arg(token_hash);
        Ok(self.write_connection().await?.execute(sql).await? > 0)
    }

    async fn sweep_oauth(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        unused_before: chrono::DateTime<chrono::Utc>,
    ) -> StoreResult<OAuthSwept> {
        let mut connection = self.write_connection().await?;
        let tokens = connection
            .execute(
                Sql::new(
                    "DELETE FROM oauth_tokens WHERE expires_at <= $1 OR grant_id IN \
                     (SELECT id FROM oauth_grants WHERE revoked_at IS NOT NULL)",
                )
                .arg(at),
            )
            .await?;
        // A revoked grant goes with its tokens (they are refused anyway; a reused one is then
        // just unknown); a spent one once its code can no longer be redeemed and its last
        // token has ended.
        let grants = connection
            .execute(
                Sql::new(
                    "DELETE FROM oauth_grants WHERE revoked_at IS NOT NULL \
                     OR (code_expires_at <= $1 AND NOT EXISTS \
                     (SELECT 1 FROM oauth_tokens t WHERE t.grant_id = oauth_grants.id))",
                )
                .arg(at),
            )
            .await?;
        let clients = connection
            .execute(
                Sql::new(
                    "DELETE FROM oauth_clients WHERE created_at <= $1 AND NOT EXISTS \
                     (SELECT 1 FROM oauth_grants g WHERE g.client_id = oauth_clients.client_id)",
                )
                .arg(unused_before),
            )
            .await?;
        Ok(OAuthSwept {
            tokens,
            grants,
            clients,
        })
    }
}
