use dispatch311_intake::{Application, IntakeConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = dispatch311_telemetry::init("dispatch311-intake")?;
    let config = IntakeConfig::from_env()?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
