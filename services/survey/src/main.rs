use dispatch311_survey::{Application, SurveyConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // settings first: `--help` and a bad value need no telemetry
    let config = SurveyConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-survey")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
