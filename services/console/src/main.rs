use dispatch311_console::{Application, ConsoleConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // settings first: `--help` and a bad value need no telemetry
    let config = ConsoleConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-console")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
