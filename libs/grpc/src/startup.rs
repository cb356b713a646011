//! How every service starts and stops, written once: its database
//! (connected, its migrations applied), the shared queue, bearer-token
//! checks, TLS and the listener ([`Foundations::start`]); then its API served
//! with its background workers until it is told to stop or a worker fails
//! ([`Server::serve`]). A service's `app.rs` only adds what is its own.

use std::{future::Future, net::SocketAddr};

use dispatch311_db::DbConfig;
use dispatch311_queue::{JobQueue, QueueConfig};
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::{Workers, tls::TlsConfig, workers::serve_with_workers};

/// The settings of the parts every service has.
pub struct Foundations<'a> {
    /// The service's database and schema.
    pub db: &'a DbConfig,
    /// The service's migrations, applied before anything else runs.
    pub migrations: &'static Migrator,
    pub queue: &'a QueueConfig,
    pub auth: &'a dispatch311_auth::AuthConfig,
    /// Mutual TLS for the server, `None` for plain gRPC on loopback.
    pub tls: Option<&'a TlsConfig>,
    /// Where to listen; port 0 picks a free port.
    pub listen_addr: SocketAddr,
    /// Where to serve `/metrics`, if anywhere (see [`crate::metrics`]).
    pub metrics_addr: Option<SocketAddr>,
}

/// What [`Foundations::start`] made ready.
pub struct Started {
    pub pool: PgPool,
    pub queue: JobQueue,
    pub server: Server,
}

impl Foundations<'_> {
    /// Connects and migrates the database, connects the queue, loads the
    /// token verifier and binds the listener; fails, saying which, when one
    /// of them cannot be had.
    pub async fn start(self) -> anyhow::Result<Started> {
        let pool = database(self.db, self.migrations).await?;
        crate::metrics::observe_pool(&pool, self.db.schema);
        let queue = JobQueue::connect(self.queue.clone()).await?;
        let auth = self.auth.layer()?;
        let listener = TcpListener::bind(self.listen_addr).await?;
        let metrics = match self.metrics_addr {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        Ok(Started {
            pool,
            queue,
            server: Server {
                listener,
                metrics,
                auth,
                tls: self.tls.cloned(),
            },
        })
    }
}

/// The service's database, connected, with its migrations applied (also for
/// a service's command-line tasks, which need no queue or listener).
pub async fn database(db: &DbConfig, migrations: &'static Migrator) -> anyhow::Result<PgPool> {
    let pool = dispatch311_db::connect(db).await?;
    dispatch311_db::migrate(&pool, migrations).await?;
    Ok(pool)
}

/// A service's gRPC API: its routes and the names of the services they
/// serve (for health and reflection).
pub struct Api {
    pub routes: Routes,
    pub names: Vec<&'static str>,
}

/// The bound listener and what serving on it needs.
pub struct Server {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    auth: dispatch311_auth::AuthLayer,
    tls: Option<TlsConfig>,
}

impl Server {
    /// The port bound (the one picked when the settings said 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// Serves `api` until `shutdown` resolves or a worker fails, then stops
    /// the workers; either failure is the result.
    /// The metrics endpoint's port, when there is one.
    pub fn metrics_port(&self) -> Option<u16> {
        let listener = self.metrics.as_ref()?;
        listener.local_addr().ok().map(|a| a.port())
    }

    pub async fn serve(
        self,
        api: Api,
        mut workers: Workers,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(listener) = self.metrics {
            workers.spawn(
                "metrics endpoint",
                crate::metrics::serve(listener, workers.stop_token()),
            );
        }
        serve_with_workers(
            self.listener,
            api.routes,
            &api.names,
            self.auth,
            self.tls,
            shutdown,
            workers,
        )
        .await
    }
}
