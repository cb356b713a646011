use dispatch311_routing::{Application, RoutingConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `probe`: a container health check of the service beside it
    if let Some(code) =
        dispatch311_grpc::probe::run_if_asked("DISPATCH311_ROUTING_ADDR", "0.0.0.0:50052").await
    {
        std::process::exit(code);
    }
    // settings first: `--help` and a bad value need no telemetry
    let config = RoutingConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-routing")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
