use dispatch311_routing::{Application, RoutingConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // settings first: `--help` and a bad value need no telemetry
    let config = RoutingConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-routing")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
