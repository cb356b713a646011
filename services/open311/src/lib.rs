//! dispatch311's Open311 GeoReport v2 gateway: a stateless REST server in
//! front of intake and routing, so any conforming 311 app or CRM files and
//! follows requests without writing gRPC. Each API key maps to an
//! integrator; the gateway calls intake with a token of that integrator's,
//! so every rule of intake's holds (an integrator sees only what it filed).
//!
//! Layout: `config` (settings), `keys` (API keys, hashed), `tokens` (the
//! tokens it calls with), `catalog` (services from routing's rules),
//! `render` (one answer, XML or JSON), `errors` (the `<errors>` answers and
//! gRPC statuses in them), `api` (the methods: `services`, `filing`,
//! `reading`; the routes are at the end of this file).

mod api;
mod catalog;
mod config;
mod errors;
pub mod keys;
mod render;
mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::{Router, extract::DefaultBodyLimit, middleware, routing::get};
use dispatch311_grpc::client::connect_lazy;
use dispatch311_proto::{
    intake::v1::intake_service_client::IntakeServiceClient,
    routing::v1::routing_service_client::RoutingServiceClient,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use catalog::code_of;
pub use config::{GatewayArgs, GatewayConfig};

/// The largest POST: ten photos of intake's largest size, and the form.
const BODY_LIMIT: usize = 10 * (dispatch311_photos::MAX_PHOTO_BYTES + 64 * 1024);

/// A gateway bound to its port, ready to serve.
pub struct Application {
    listener: TcpListener,
    metrics: Option<TcpListener>,
    gateway: Arc<api::Gateway>,
}

impl Application {
    pub async fn build(config: GatewayConfig) -> anyhow::Result<Self> {
        let (listener, metrics) = dispatch311_web::bind(
            "DISPATCH311_OPEN311_ADDR",
            config.listen_addr,
            config.metrics_addr,
        )
        .await?;
        let intake =
            IntakeServiceClient::new(connect_lazy(&config.intake_url, config.tls.as_ref())?)
                .max_encoding_message_size(dispatch311_photos::MAX_PHOTO_BYTES + 64 * 1024);
        let routing =
            RoutingServiceClient::new(connect_lazy(&config.routing_url, config.tls.as_ref())?);
        let gateway = Arc::new(api::Gateway {
            intake,
            catalog: catalog::Catalog::new(routing.clone()),
            routing,
            keys: config.api_keys,
            tokens: tokens::Tokens::new(config.signer),
            jurisdiction: config.jurisdiction,
            public_url: config.public_url,
            contact: config.contact,
            key_service: config.key_service,
        });
        Ok(Self {
            listener,
            metrics,
            gateway,
        })
    }

    /// Where the gateway listens (useful with port 0).
    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serves until `shutdown` resolves (or a background worker fails),
    /// then lets requests in flight finish.
    pub async fn run_until_stopped(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        dispatch311_web::serve(
            "open311 gateway",
            self.listener,
            self.metrics,
            router(self.gateway),
            shutdown,
            CancellationToken::new(),
        )
        .await
    }
}

/// Every method, behind the per-request trace and metrics.
fn router(gateway: Arc<api::Gateway>) -> Router {
    Router::new()
        .route("/discovery.xml", get(api::discovery_xml))
        .route("/discovery.json", get(api::discovery_json))
        .route("/services.xml", get(api::services_xml))
        .route("/services.json", get(api::services_json))
        .route("/services/{file}", get(api::service_definition))
        .route(
            "/requests.xml",
            get(api::get_requests_xml).post(api::post_requests_xml),
        )
        .route(
            "/requests.json",
            get(api::get_requests_json).post(api::post_requests_json),
        )
        .route("/requests/{file}", get(api::get_request))
        .route("/tokens/{file}", get(api::get_token))
        .route("/openapi.json", get(api::openapi))
        .route("/healthz", get(|| async { "ok" }))
        .route_layer(middleware::from_fn(dispatch311_web::measured))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(dispatch311_web::traced))
        .with_state(gateway)
}
