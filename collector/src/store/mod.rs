//! Storage: ClickHouse, reached through the `clickhouse` crate in both deployments.
//!
//! - **embedded** (default): the ClickHouse engine runs in this process (chDB) behind a
//!   ClickHouse-HTTP front on a loopback port ([`tern_chdb`]); the client talks to it
//!   exactly as to a server.
//! - **server**: `storage.clickhouse.url`.
//!
//! [`writer`] moves the write-ahead log into the tables; [`schema`] holds the migrations.

pub mod schema;
pub mod writer;

use std::sync::Arc;
use std::time::Duration;

use clickhouse::{Client, Compression};

use crate::model::rows::Rows;
use crate::server::config::Config;

/// A stalled store must not stall the writer forever: past these, the insert fails and
/// is retried like any other failure.
const INSERT_SEND_TIMEOUT: Duration = Duration::from_secs(30);
const INSERT_END_TIMEOUT: Duration = Duration::from_secs(120);

/// What can go wrong talking to the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot start the embedded ClickHouse engine: {0}")]
    Embedded(String),
    #[error("clickhouse: {0}")]
    ClickHouse(#[from] clickhouse::error::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration {
        version: u32,
        name: &'static str,
        source: clickhouse::error::Error,
    },
}

/// A connection to Tern's tables. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    client: Client,
    database: String,
    /// Where the store answers ClickHouse HTTP (the embedded front, or the server URL).
    url: String,
    /// The embedded engine's front; it stops when the last clone of the store is dropped.
    _front: Option<Arc<tern_chdb::Front>>,
}

impl Store {
    /// Opens the store the configuration names: starts the embedded engine and its front
    /// when no server URL is configured. Does not touch the schema (see [`Store::migrate`]).
    pub async fn open(config: &Config) -> Result<Store, StoreError> {
        match &config.storage.clickhouse {
            Some(ch) => {
                let client = Client::default()
                    .with_url(&ch.url)
                    .with_user(&ch.user)
                    .with_password(&ch.password);
                Ok(Store::with_client(
                    client,
                    &ch.database,
                    ch.url.clone(),
                    None,
                ))
            }
            None => {
                let front = start_embedded(config).await?;
                let url = front.url();
                // Loopback: compression would only cost CPU on both ends.
                let client = Client::default()
                    .with_url(&url)
                    .with_compression(Compression::None);
                Ok(Store::with_client(
                    client,
                    "tern",
                    url,
                    Some(Arc::new(front)),
                ))
            }
        }
    }

    fn with_client(
        client: Client,
        database: &str,
        url: String,
        front: Option<Arc<tern_chdb::Front>>,
    ) -> Store {
        Store {
            client: client.with_database(database),
            database: database.to_string(),
            url,
            _front: front,
        }
    }

    /// The client, with Tern's database selected.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    /// The ClickHouse HTTP URL of this store (for the embedded engine, its loopback front).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// True when the store answers a trivial query.
    pub async fn is_up(&self) -> bool {
        tokio::time::timeout(
            Duration::from_secs(5),
            self.client.query("SELECT 1").fetch_one::<u8>(),
        )
        .await
        .is_ok_and(|r| r.is_ok())
    }

    /// Creates the database and applies every migration not applied yet, in order.
    pub async fn migrate(
        &self,
        ttl_days: u32,
        rollup_ttl_days: u32,
    ) -> Result<Vec<u32>, StoreError> {
        let db = &self.database;
        // The database may not exist yet: run this one without selecting it.
        self.client
            .clone()
            .with_database("default")
            .query(&format!("CREATE DATABASE IF NOT EXISTS {db}"))
            .execute()
            .await?;
        self.client
            .query(&format!(
                "CREATE TABLE IF NOT EXISTS {db}.schema_migrations \
                 (version UInt32, name String, applied_at DateTime DEFAULT now()) \
                 ENGINE = MergeTree ORDER BY version"
            ))
            .execute()
            .await?;
        let applied: Vec<u32> = self
            .client
            .query(&format!("SELECT version FROM {db}.schema_migrations"))
            .fetch_all()
            .await?;
        let mut newly = Vec::new();
        for m in schema::MIGRATIONS {
            if applied.contains(&m.version) {
                continue;
            }
            for s in m.statements {
                let sql = schema::render(s, db, ttl_days, rollup_ttl_days);
                self.client.query(&sql).execute().await.map_err(|source| {
                    StoreError::Migration {
                        version: m.version,
                        name: m.name,
                        source,
                    }
                })?;
            }
            self.client
                .query(&format!(
                    "INSERT INTO {db}.schema_migrations (version, name) VALUES (?, ?)"
                ))
                .bind(m.version)
                .bind(m.name)
                .execute()
                .await?;
            newly.push(m.version);
        }
        Ok(newly)
    }

    /// Inserts one batch. `token` identifies the batch: a retried insert of the same batch
    /// with the same token is deduplicated by ClickHouse, so a retry after a half-failed
    /// attempt does not double rows.
    pub async fn insert(&self, rows: &Rows, token: &str) -> Result<(), StoreError> {
        // What is referenced goes in before what refers to it: once a transaction is
        // visible, its spans, resource and SQL texts are too.
        self.insert_table("resources", &rows.resources, token)
            .await?;
        self.insert_table("sql_fingerprints", &rows.fingerprints, token)
            .await?;
        self.insert_table("spans", &rows.spans, token).await?;
        self.insert_table("transactions", &rows.transactions, token)
            .await?;
        Ok(())
    }

    async fn insert_table<T>(&self, table: &str, rows: &[T], token: &str) -> Result<(), StoreError>
    where
        T: clickhouse::RowOwned + clickhouse::RowWrite,
    {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self
            .client
            .insert::<T>(table)
            .await?
            .with_setting("insert_deduplication_token", format!("{token}-{table}"))
            .with_setting("deduplicate_blocks_in_dependent_materialized_views", "1")
            .with_timeouts(Some(INSERT_SEND_TIMEOUT), Some(INSERT_END_TIMEOUT));
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await?;
        Ok(())
    }
}

/// Starts the embedded engine under the data directory and its ClickHouse-HTTP front.
async fn start_embedded(config: &Config) -> Result<tern_chdb::Front, StoreError> {
    let mut options = tern_chdb::EngineOptions::new(config.embedded_dir());
    options.lib = config.storage.embedded.lib.clone();
    let engine = tokio::task::spawn_blocking(move || tern_chdb::Engine::open_with(options))
        .await
        .map_err(|e| StoreError::Embedded(e.to_string()))?
        .map_err(|e| StoreError::Embedded(e.to_string()))?;
    let front_config = tern_chdb::FrontConfig {
        listen: config.storage.embedded.http_listen,
        ..Default::default()
    };
    tern_chdb::Front::bind(engine, front_config)
        .await
        .map_err(|e| {
            StoreError::Embedded(format!(
                "cannot listen on {}: {e}",
                config.storage.embedded.http_listen
            ))
        })
}
