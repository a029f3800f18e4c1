//! Secrets every server on one database shares (a control table). The first server to ask for
//! one stores its candidate; every later ask, from any server, reads the stored value.

use async_trait::async_trait;

use super::{Backend, Conn, Sql};
use crate::store::{ServerSecretStore, StoreResult, now};

#[derive(sqlx::FromRow)]
struct SecretRow {
    value: String,
}

#[async_trait]
impl<B: Backend> ServerSecretStore for B {
    async fn server_secret(&self, name: &str, candidate: &str) -> StoreResult<String> {
        let insert = Sql::new(
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO NOTHING",
        )
        .arg(name)
        .arg(candidate)
        .arg(now());
        self.write_connection().await?.execute(insert).await?;
        let select = Sql::new("SELECT value FROM server_secrets WHERE name = $1").arg(name);
        let row: SecretRow = self.connection().await?.fetch_one(select).await?;
        Ok(row.value)
    }
}
