use dispatch311_survey::{Application, SurveyConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `probe`: a container health check of the service beside it
    if let Some(code) =
        dispatch311_grpc::probe::run_if_asked("DISPATCH311_SURVEY_ADDR", "0.0.0.0:50054").await
    {
        std::process::exit(code);
    }
    // settings first: `--help` and a bad value need no telemetry
    let config = SurveyConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-survey")?;
    let app = Application::build(config).await?;
    app.run_until_stopped(dispatch311_grpc::shutdown_signal())
        .await
}
