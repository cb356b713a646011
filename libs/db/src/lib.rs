//! PostgreSQL access shared by the services: one pool per service, bound to
//! the service's own schema, and that schema's migrations applied at start.
//!
//! Each service owns one schema (`intake`, `routing`, `dispatch`, `survey`)
//! and sets `search_path` to it on every connection, so its queries name
//! tables unqualified and cannot reach another service's tables by accident.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::{
    ConnectOptions, Connection, PgConnection, PgPool,
    migrate::Migrator,
    postgres::{PgConnectOptions, PgPoolOptions},
};

/// Database settings of one service.
#[derive(Debug, Clone)]
pub struct DbConfig {
    /// e.g. `postgres://postgres@127.0.0.1:5432/dispatch311`
    pub url: String,
    /// The service's schema; a plain lowercase identifier.
    pub schema: &'static str,
    pub max_connections: u32,
}

/// The database settings every service takes, from flags or the environment.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// The PostgreSQL database the service keeps its schema in.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Connections in the service's pool.
    #[arg(
        long = "db-max-connections",
        env = "DISPATCH311_DB_MAX_CONNECTIONS",
        value_name = "DISPATCH311_DB_MAX_CONNECTIONS",
        default_value_t = 16,
        value_parser = clap::value_parser!(u32).range(1..=1_000)
    )]
    pub max_connections: u32,
}

impl DbArgs {
    /// The settings of the service that owns `schema`.
    pub fn config(&self, schema: &'static str) -> DbConfig {
        DbConfig {
            url: self.database_url.clone(),
            schema,
            max_connections: self.max_connections,
        }
    }
}

pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/dispatch311";

/// Creates the schema if needed and returns a pool whose connections use it.
pub async fn connect(config: &DbConfig) -> anyhow::Result<PgPool> {
    anyhow::ensure!(
        !config.schema.is_empty()
            && config
                .schema
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_'),
        "schema name must be a lowercase identifier: {}",
        config.schema
    );
    let options: PgConnectOptions = config
        .url
        .parse()
        .context("DATABASE_URL is not a PostgreSQL url")?;
    let options = options
        .options([("search_path", config.schema)])
        .log_statements(tracing::log::LevelFilter::Trace);

    // the schema must exist before a connection can use it as search_path
    let mut conn = PgConnection::connect_with(&options)
        .await
        .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(&config.url)))?;
    create_schema(&mut conn, config.schema).await?;
    conn.close().await?;

    let pool = PgPoolOptions::new()
        .max_connections(config.max_connections)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    Ok(pool)
}

/// Creates `schema` unless it exists. Replicas starting at once take turns
/// (a transaction's advisory lock): two concurrent `CREATE SCHEMA IF NOT
/// EXISTS` can fail on the catalog's unique index. A schema the operator
/// made beforehand is left alone, so the role then needs no CREATE right on
/// the database.
async fn create_schema(conn: &mut PgConnection, schema: &str) -> anyhow::Result<()> {
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
            .bind(schema)
            .fetch_one(&mut *conn)
            .await?;
    if exists {
        return Ok(());
    }
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('dispatch311 schema ' || $1))")
        .bind(schema)
        .execute(&mut *tx)
        .await?;
    let create = format!("CREATE SCHEMA IF NOT EXISTS {schema}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(create))
        .execute(&mut *tx)
        .await
        .with_context(|| format!("cannot create schema {schema}"))?;
    tx.commit().await?;
    Ok(())
}

/// Applies the service's migrations (sqlx keeps its bookkeeping table in the
/// service schema; an advisory lock makes concurrent replicas safe).
pub async fn migrate(pool: &PgPool, migrator: &Migrator) -> anyhow::Result<()> {
    migrator
        .run(pool)
        .await
        .context("database migration failed")?;
    Ok(())
}

/// True when the error means the database could not be reached or is going
/// away and will be back (the caller answers UNAVAILABLE with a retry delay,
/// never INTERNAL, which a careful client treats as final): no connection,
/// and PostgreSQL's own shutdown, crash-recovery and connection-failure
/// errors — SQLSTATE class 57P (57P01 "terminating connection due to
/// administrator command" during a restart, 57P02 crash shutdown, 57P03
/// "the database system is starting up"), class 08 (connection exceptions)
/// and 53300 (too many connections).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| is_unavailable_sqlstate(&code)),
        _ => false,
    }
}

/// The SQLSTATEs [`is_unavailable`] counts as "down for now".
pub fn is_unavailable_sqlstate(code: &str) -> bool {
    code.starts_with("57P") || code.starts_with("08") || code == "53300"
}

/// The CLIENT span of one SQL statement, named `<operation> <table>` after
/// OpenTelemetry's database conventions: `db.system`, `db.operation.name` and
/// `db.collection.name`, never the statement's parameters (they hold
/// addresses and descriptions). Wrap the statement's future in it:
/// `.fetch_one(pool).instrument(dispatch311_db::statement_span("SELECT", "jobs"))`.
/// Its duration includes the wait for a pooled connection.
///
/// A statement outside any span (a poller's idle tick) gets no span: it would
/// be a trace of its own every few seconds, explaining nothing.
pub fn statement_span(operation: &'static str, table: &'static str) -> tracing::Span {
    if !dispatch311_telemetry::detail_spans() || tracing::Span::current().is_none() {
        return tracing::Span::none();
    }
    tracing::info_span!(
        "db",
        otel.name = %format_args!("{operation} {table}"),
        otel.kind = "client",
        db.system = "postgresql",
        db.operation.name = operation,
        db.collection.name = table,
    )
}

/// The url without its password, for error messages and logs.
pub fn redact(url: &str) -> String {
    match url.parse::<PgConnectOptions>() {
        Ok(o) => format!(
            "{}:{}/{}",
            o.get_host(),
            o.get_port(),
            o.get_database().unwrap_or("")
        ),
        Err(_) => "<invalid url>".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restarts_crash_recovery_and_lost_connections_are_unavailable() {
        for code in [
            "57P01", "57P02", "57P03", "08006", "08001", "08P01", "53300",
        ] {
            assert!(is_unavailable_sqlstate(code), "{code}");
        }
        for code in ["23505", "40001", "42P01", "22P02", "57014"] {
            // 57014 is a cancelled statement (a timeout of ours), not a restart
            assert_eq!(
                is_unavailable_sqlstate(code),
                code.starts_with("57P"),
                "{code}"
            );
        }
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
    }
}

/// Fresh databases for tests: each test gets its own, so tests run in parallel.
pub mod testing {
    use super::*;

    /// The server tests use: `DISPATCH311_TEST_DATABASE_URL`, else `DATABASE_URL`,
    /// else the local development server (any database on it).
    pub fn admin_url() -> String {
        std::env::var("DISPATCH311_TEST_DATABASE_URL")
            .or_else(|_| std::env::var("DATABASE_URL"))
            .unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_string())
    }

    /// Creates an empty database named `d311_test_<random>` and returns its url.
    pub async fn create_database() -> anyhow::Result<String> {
        create_database_on(&admin_url()).await
    }

    /// [`create_database`] on the server of `admin_url` (e.g. a server of a
    /// test's own).
    pub async fn create_database_on(admin_url: &str) -> anyhow::Result<String> {
        let admin: PgConnectOptions = admin_url.parse()?;
        let admin = admin.database("postgres");
        let mut conn = PgConnection::connect_with(&admin)
            .await
            .context("test PostgreSQL is not reachable")?;
        let name = format!("d311_test_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await?;
        conn.close().await?;
        let url = admin.database(&name).to_url_lossy();
        Ok(url.to_string())
    }

    /// Drops a database made by `create_database`, disconnecting its clients.
    pub async fn drop_database(url: &str) -> anyhow::Result<()> {
        let options: PgConnectOptions = url.parse()?;
        let name = options.get_database().unwrap_or_default().to_string();
        anyhow::ensure!(name.starts_with("d311_test_"), "refusing to drop {name}");
        let mut conn = PgConnection::connect_with(&options.database("postgres")).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(&mut conn)
        .await?;
        conn.close().await?;
        Ok(())
    }
}
