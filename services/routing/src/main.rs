use dispatch311_routing::{Application, RoutingConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = dispatch311_telemetry::init("dispatch311-routing")?;
    let app = Application::build(RoutingConfig::from_env()?).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
