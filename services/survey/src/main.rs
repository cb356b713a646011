use dispatch311_survey::{Application, SurveyConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = dispatch311_telemetry::init("dispatch311-survey")?;
    let app = Application::build(SurveyConfig::from_env()?).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
