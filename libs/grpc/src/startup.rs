//! How every service starts and stops, written once: its database
//! (connected, its migrations applied), the shared queue, bearer-token
//! checks, TLS and the listener ([`Foundations::start`]); then its API served
//! with its background workers until it is told to stop or a worker fails
//! ([`Server::serve`]). A service's `app.rs` only adds what is its own.

use std::{future::Future, net::SocketAddr};

use anyhow::Context as _;
use dispatch311_db::{DbArgs, DbConfig};
use dispatch311_queue::{JobQueue, QueueArgs, QueueConfig};
use sqlx::{PgPool, migrate::Migrator};
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::{
    Workers,
    metrics::MetricsArgs,
    tls::{TlsArgs, TlsConfig},
    workers::serve_with_workers,
};

/// The settings every service takes, from flags or the environment: its
/// database, the queue, token checks, TLS and the metrics endpoint. Each
/// service flattens these into its own settings beside its listen address.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub queue: QueueArgs,
    #[command(flatten)]
    pub auth: dispatch311_auth::AuthArgs,
    #[command(flatten)]
    pub tls: TlsArgs,
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Where grpc.health.v1 alone is also served, in plaintext, even with
    /// mutual TLS on: for the kubelet's native gRPC probes, which present no
    /// client certificate. Unset: health only on the API's port.
    #[arg(
        long = "health-listen",
        env = "DISPATCH311_HEALTH_ADDR",
        value_name = "DISPATCH311_HEALTH_ADDR"
    )]
    pub health_addr: Option<SocketAddr>,
}

impl ServiceArgs {
    /// The settings, checked, for the service that owns `schema`.
    pub fn settings(&self, schema: &'static str) -> anyhow::Result<ServiceSettings> {
        Ok(ServiceSettings {
            db: self.db.config(schema),
            queue: self.queue.config()?,
            auth: self.auth.config()?,
            tls: self.tls.config()?,
            metrics_addr: self.metrics.metrics_addr,
            health_addr: self.health_addr,
        })
    }
}

/// What [`ServiceArgs`] says, checked.
#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// The service's database and schema.
    pub db: DbConfig,
    pub queue: QueueConfig,
    pub auth: dispatch311_auth::AuthConfig,
    /// Mutual TLS on the server and the clients, `None` for plain gRPC on loopback.
    pub tls: Option<TlsConfig>,
    /// Where to serve `/metrics`, if anywhere (see [`crate::metrics`]).
    pub metrics_addr: Option<SocketAddr>,
    /// Where to serve health alone, in plaintext, if anywhere.
    pub health_addr: Option<SocketAddr>,
}

impl ServiceSettings {
    /// The service's own database URL, when it has one, instead of the
    /// shared `DATABASE_URL` (an empty one counts as none).
    pub fn with_database_url(mut self, own: Option<String>) -> Self {
        if let Some(url) = own.filter(|url| !url.trim().is_empty()) {
            self.db.url = url;
        }
        self
    }
}

/// The settings of the parts every service has.
pub struct Foundations<'a> {
    pub settings: &'a ServiceSettings,
    /// The service's migrations, applied before anything else runs.
    pub migrations: &'static Migrator,
    /// Where to listen; port 0 picks a free port.
    pub listen_addr: SocketAddr,
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
        let settings = self.settings;
        let pool = database(&settings.db, self.migrations).await?;
        crate::metrics::observe_pool(&pool, settings.db.schema);
        let queue = JobQueue::connect(settings.queue.clone()).await?;
        let auth = settings.auth.layer()?;
        let listener = TcpListener::bind(self.listen_addr).await?;
        let metrics = match settings.metrics_addr {
            Some(addr) => Some(crate::metrics::bind(addr).await?),
            None => None,
        };
        let health =
            match settings.health_addr {
                Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
                    format!("cannot listen on {addr} (DISPATCH311_HEALTH_ADDR)")
                })?),
                None => None,
            };
        Ok(Started {
            pool,
            queue,
            server: Server {
                listener,
                metrics,
                health,
                auth,
                tls: settings.tls.clone(),
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
    health: Option<TcpListener>,
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
        let server = crate::GrpcServer::with_routes(api.routes, &api.names, self.auth)
            .with_tls(self.tls)
            .with_health_listener(self.health);
        serve_with_workers(self.listener, server, shutdown, workers).await
    }
}
