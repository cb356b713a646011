use dispatch311_open311::{Application, GatewayConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // settings first: `--help` and a bad value need no telemetry
    let config = GatewayConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-open311")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
