use dispatch311_dispatch::{Application, DispatchConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // settings first: `--help` and a bad value need no telemetry
    let config = DispatchConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-dispatch")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
