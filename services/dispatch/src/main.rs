use dispatch311_dispatch::{Application, DispatchConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `probe`: a container health check of the service beside it
    if let Some(code) =
        dispatch311_grpc::probe::run_if_asked("DISPATCH311_DISPATCH_ADDR", "0.0.0.0:50053").await
    {
        std::process::exit(code);
    }
    // settings first: `--help` and a bad value need no telemetry
    let config = DispatchConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-dispatch")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
