//! Serving a service's gRPC API with what every dispatch311 server needs,
//! wired once: grpc.health.v1 (for Kubernetes' native gRPC probes), server
//! reflection (for grpcurl and the like), a server span per call that joins
//! the caller's trace, authentication and the policy table on every RPC
//! (`dispatch311_auth::AuthLayer`), optional mutual TLS ([`crate::tls`]),
//! and a graceful shutdown that reports NOT_SERVING and lets in-flight calls
//! finish.

use std::{convert::Infallible, future::Future, time::Duration};

use anyhow::Context as _;
use dispatch311_auth::AuthLayer;
use dispatch311_telemetry::grpc::{GrpcStatusLayer, server_span};
use tokio::{net::TcpListener, sync::oneshot};
use tonic::{
    body::Body,
    server::NamedService,
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::tls::TlsConfig;

/// How long in-flight calls may run after shutdown starts before their
/// connections are closed. Long-lived streams (a health `Watch`, a dispatch
/// feed) would otherwise hold shutdown forever; this stays below Kubernetes'
/// default 30 s termination grace period.
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(20);

/// The gRPC services of one binary, served with health, reflection, tracing,
/// authentication and graceful shutdown. Health reports each added service (and the server
/// as a whole, `""`) SERVING until shutdown starts.
///
/// ```no_run
/// # use dispatch311_proto::intake::v1::intake_service_server::{IntakeService, IntakeServiceServer};
/// # async fn run(
/// #     api: impl IntakeService,
/// #     auth_config: &dispatch311_auth::AuthConfig,
/// # ) -> anyhow::Result<()> {
/// use dispatch311_grpc::{GrpcServer, shutdown_signal};
///
/// let auth = auth_config.layer()?;
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:50051").await?;
/// GrpcServer::new(auth)
///     .add_service(IntakeServiceServer::new(api))
///     .serve(listener, shutdown_signal())
///     .await
/// # }
/// ```
#[derive(Debug)]
pub struct GrpcServer {
    routes: Routes,
    served: Vec<&'static str>,
    drain_timeout: Duration,
    auth: AuthLayer,
    tls: Option<TlsConfig>,
    /// Where grpc.health.v1 alone is also served, in plaintext.
    health_listener: Option<TcpListener>,
}

impl GrpcServer {
    /// Every RPC goes through `auth`: there is no unauthenticated server.
    pub fn new(auth: AuthLayer) -> Self {
        Self {
            routes: Routes::default(),
            served: Vec::new(),
            drain_timeout: DEFAULT_DRAIN_TIMEOUT,
            auth,
            tls: None,
            health_listener: None,
        }
    }

    /// A server of `routes` built elsewhere; `served` names the services
    /// health reports.
    pub fn with_routes(routes: Routes, served: &[&'static str], auth: AuthLayer) -> Self {
        Self {
            routes,
            served: served.to_vec(),
            ..Self::new(auth)
        }
    }

    /// Also serves grpc.health.v1, and nothing else, on `listener` in
    /// plaintext even when the API is mutual TLS: the kubelet's native gRPC
    /// probes cannot present a client certificate. Health says nothing a
    /// caller could use: whether the service serves.
    pub fn with_health_listener(mut self, listener: Option<TcpListener>) -> Self {
        self.health_listener = listener;
        self
    }

    /// Serves over mutual TLS (see [`crate::tls`]) instead of plain HTTP/2.
    pub fn with_tls(mut self, tls: Option<TlsConfig>) -> Self {
        self.tls = tls;
        self
    }

    /// Adds a generated tonic server (`XxxServiceServer::new(api)`).
    pub fn add_service<S>(mut self, service: S) -> Self
    where
        S: tonic::codegen::Service<
                http::Request<Body>,
                Response = http::Response<Body>,
                Error = Infallible,
            > + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
    {
        self.served.push(S::NAME);
        self.routes = self.routes.add_service(service);
        self
    }

    /// Replaces [`DEFAULT_DRAIN_TIMEOUT`].
    pub fn with_drain_timeout(mut self, drain_timeout: Duration) -> Self {
        self.drain_timeout = drain_timeout;
        self
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting
    /// connections, reports NOT_SERVING, and returns once in-flight calls have
    /// finished (or the drain timeout has passed).
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<()> {
        let address = listener
            .local_addr()
            .context("reading the listener's address")?;
        let (health, health_service) = tonic_health::server::health_reporter();
        for name in self.served.iter().copied().chain([""]) {
            health
                .set_service_status(name, ServingStatus::Serving)
                .await;
        }

        // the same reporter's answers, alone and in plaintext, for probes
        let health_only = match self.health_listener {
            Some(listener) => {
                let address = listener
                    .local_addr()
                    .context("reading the health listener's address")?;
                tracing::info!(%address, "serving grpc health alone, in plaintext, for probes");
                let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
                let server = Server::builder()
                    .add_service(health_service.clone())
                    .serve_with_incoming(incoming);
                Some(tokio::spawn(server))
            }
            None => None,
        };
        // stopped with the API, whichever way that ends
        let _health_only = health_only.map(AbortOnDrop);

        let routes = self
            .routes
            .add_service(health_service)
            .add_service(reflection().build_v1().context("building reflection v1")?)
            .add_service(
                reflection()
                    .build_v1alpha()
                    .context("building reflection v1alpha")?,
            );

        let (drain_started, drain_started_rx) = oneshot::channel();
        let served = self.served.clone();
        let signal = async move {
            shutdown.await;
            tracing::info!("shutting down: finishing in-flight calls");
            for name in served.iter().copied().chain([""]) {
                health
                    .set_service_status(name, ServingStatus::NotServing)
                    .await;
            }
            let _ = drain_started.send(());
        };
        let drain_deadline = async move {
            if drain_started_rx.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(self.drain_timeout).await;
        };

        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let mut builder = Server::builder();
        if let Some(tls) = &self.tls {
            builder = builder
                .tls_config(tls.server())
                .context("the TLS certificate, key or CA (DISPATCH311_TLS_*) is not usable")?;
        }
        let server = builder
            .trace_fn(server_span)
            .layer(GrpcStatusLayer::default())
            // inside the status layer, so refusals are recorded on the span too
            .layer(self.auth)
            .add_routes(routes)
            .serve_with_incoming_shutdown(incoming, signal);

        tracing::info!(%address, services = ?self.served, mutual_tls = self.tls.is_some(), "serving grpc");
        tokio::select! {
            served = server => served.context("grpc server failed")?,
            () = drain_deadline => tracing::warn!(
                drain_timeout_ms = self.drain_timeout.as_millis() as u64,
                "calls still open after the drain timeout, closing them"
            ),
        }
        tracing::info!("grpc server stopped");
        Ok(())
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Serves `routes` as [`GrpcServer::serve`] does, for callers that build
/// [`Routes`] themselves; `served` names the services health reports
/// (`IntakeServiceServer::<Api>::NAME`); `tls` turns on mutual TLS.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    served: &[&'static str],
    auth: AuthLayer,
    tls: Option<TlsConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    GrpcServer::with_routes(routes, served, auth)
        .with_tls(tls)
        .serve(listener, shutdown)
        .await
}

/// Reflection over every dispatch311 API and the health API.
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(dispatch311_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Resolves when the process is asked to stop: SIGTERM (Kubernetes, docker
/// stop) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
        "SIGINT"
    };
    let terminate = async {
        #[cfg(unix)]
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut terminate) => {
                terminate.recv().await;
                return "SIGTERM";
            }
            Err(error) => tracing::warn!(%error, "cannot listen for SIGTERM"),
        }
        std::future::pending::<&str>().await
    };
    let signal = tokio::select! {
        signal = interrupt => signal,
        signal = terminate => signal,
    };
    tracing::info!(signal, "shutdown requested");
}
