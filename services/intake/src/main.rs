use dispatch311_intake::{Application, IntakeCommand, IntakeConfig, rekey};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // `probe`: a container health check of the service beside it
    if let Some(code) =
        dispatch311_grpc::probe::run_if_asked("DISPATCH311_INTAKE_ADDR", "0.0.0.0:50051").await
    {
        std::process::exit(code);
    }
    // settings first: `--help` and a bad value need no telemetry
    let (command, config) = IntakeConfig::load()?;
    let _telemetry = dispatch311_telemetry::init("dispatch311-intake")?;
    match command {
        None => {
            let app = Application::build(config).await?;
            app.run_until_stopped(dispatch311_grpc::shutdown_signal())
                .await
        }
        Some(IntakeCommand::Rekey { batch_size }) => {
            let report = rekey::run(&config, batch_size).await?;
            println!(
                "re-encrypted {} complainant contacts and {} descriptions under key {} ({} batches)",
                report.resealed, report.descriptions, report.key_id, report.batches
            );
            Ok(())
        }
    }
}
