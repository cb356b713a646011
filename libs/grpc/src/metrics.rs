//! The metrics endpoint every service serves for Prometheus to scrape: `GET
//! /metrics` on its own port (`DISPATCH311_METRICS_ADDR`), apart from the
//! gRPC port. It has no authentication (Prometheus scrapes plain HTTP), so
//! bind it where only the monitoring network reaches; it carries no SR
//! number, id, free text or anything personal. Also the gauges of what every
//! service has: its database pool.

use std::net::SocketAddr;

use anyhow::Context as _;
use axum::{Router, http::header, routing::get};
use opentelemetry::KeyValue;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Where the metrics endpoint listens.
#[derive(Debug, Clone, clap::Args)]
pub struct MetricsArgs {
    /// Where `GET /metrics` (Prometheus text format) is served, apart from
    /// the gRPC port and without authentication: bind it where only the
    /// monitoring network reaches. Unset: no endpoint (metrics still go over
    /// OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set).
    #[arg(
        long = "metrics-listen",
        env = "DISPATCH311_METRICS_ADDR",
        value_name = "DISPATCH311_METRICS_ADDR"
    )]
    pub metrics_addr: Option<SocketAddr>,
}

/// Binds the endpoint's listener (so a port in use fails the start).
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics endpoint DISPATCH311_METRICS_ADDR={addr}"))
}

/// Serves `/metrics` on `listener` until `stop`.
pub async fn serve(listener: TcpListener, stop: CancellationToken) -> anyhow::Result<()> {
    let address = listener.local_addr()?;
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    dispatch311_telemetry::metrics::CONTENT_TYPE,
                )],
                dispatch311_telemetry::metrics::render(),
            )
        }),
    );
    tracing::info!(%address, "serving metrics");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
        .context("metrics endpoint failed")
}

/// How often the pool is probed for the wait a new caller would have.
const POOL_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// `db.client.connection.count` (by state, idle or used) and
/// `db.client.connection.max` of the service's pool, read at each collection;
/// `db.client.connection.wait_time`, the time taken to get a connection,
/// probed every 5 s (the pool does not time its own callers: a probe that
/// waits long means the callers do too). Must be called inside the runtime.
pub fn observe_pool(pool: &PgPool, pool_name: &'static str) {
    let wait_time = dispatch311_telemetry::metrics::meter()
        .f64_histogram("db.client.connection.wait_time")
        .with_unit("s")
        .with_description("Time to get a connection from the database pool (sampled every 5 s)")
        .with_boundaries(dispatch311_telemetry::grpc::DURATION_BUCKETS.to_vec())
        .build();
    let probed = pool.clone();
    tokio::spawn(async move {
        let labels = [KeyValue::new("db.client.connection.pool.name", pool_name)];
        let mut ticks = tokio::time::interval(POOL_PROBE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !probed.is_closed() {
            ticks.tick().await;
            let started = std::time::Instant::now();
            // a failure (database down) is the pool's timeout: recorded too
            drop(probed.acquire().await);
            wait_time.record(started.elapsed().as_secs_f64(), &labels);
        }
    });
    let meter = dispatch311_telemetry::metrics::meter();
    let counted = pool.clone();
    meter
        .i64_observable_up_down_counter("db.client.connection.count")
        .with_unit("{connection}")
        .with_description("Connections of the database pool, by state")
        .with_callback(move |observer| {
            let size = i64::from(counted.size());
            let idle = counted.num_idle() as i64;
            for (state, value) in [("idle", idle), ("used", size - idle)] {
                observer.observe(
                    value,
                    &[
                        KeyValue::new("db.client.connection.pool.name", pool_name),
                        KeyValue::new("db.client.connection.state", state),
                    ],
                );
            }
        })
        .build();
    let max = i64::from(pool.options().get_max_connections());
    meter
        .i64_observable_up_down_counter("db.client.connection.max")
        .with_unit("{connection}")
        .with_description("Most connections the database pool opens")
        .with_callback(move |observer| {
            observer.observe(
                max,
                &[KeyValue::new("db.client.connection.pool.name", pool_name)],
            );
        })
        .build();
}
