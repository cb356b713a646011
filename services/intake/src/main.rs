use dispatch311_intake::{Application, IntakeConfig, rekey};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _telemetry = dispatch311_telemetry::init("dispatch311-intake")?;
    let config = IntakeConfig::from_env()?;
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.split_first() {
        None => {
            let app = Application::build(config).await?;
            app.run_until_stopped(dispatch311_grpc::shutdown_signal())
                .await
        }
        Some((command, options)) if command == "rekey" => {
            let batch_size = rekey::parse_args(options)?;
            let report = rekey::run(&config, batch_size).await?;
            println!(
                "re-encrypted {} complainant contacts and {} descriptions under key {} ({} batches)",
                report.resealed, report.descriptions, report.key_id, report.batches
            );
            Ok(())
        }
        Some((command, _)) => anyhow::bail!(
            "unknown command {command}: run without arguments to serve, or `rekey` to re-seal contacts under the current key"
        ),
    }
}
