use dispatch311_dispatch::{Application, DispatchConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = dispatch311_telemetry::init("dispatch311-dispatch")?;
    let app = Application::build(DispatchConfig::from_env()?).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
