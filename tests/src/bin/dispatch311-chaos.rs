//! `make chaos`: faults against two replicas of every service while real
//! requests are filed and worked, then the total-queue check (see
//! `dispatch311_tests::chaos`). Exits 1 when anything was lost, duplicated,
//! dead-lettered or left undrained, or a hash chain fails.

use anyhow::{Context as _, bail};
use dispatch311_tests::chaos::{ChaosOptions, run};

const USAGE: &str = "\
usage: dispatch311-chaos [--short] [--seconds S] [--pause P] [--rate R] [--seed N]

Runs two replicas of every service (the binaries beside this one) on a PostgreSQL
and a Redis of its own on loopback, files real 311 requests at R per second, works
jobs to their close and answers surveys, while for S seconds it kills every process
in turn, restarts Redis empty and PostgreSQL, and resets, blackholes and delays
their connections (the fault TCP proxy); then pauses dispatch for P seconds to build a
backlog, releases it, drains, and prints what was acknowledged against what happened.

  --short      the CI version: every kind of fault in about two minutes
  --seconds S  fault phase (default 180; short 60)
  --pause P    dispatch paused (default 150; short 10)
  --rate R     requests per second (default 150; short 20)
  --seed N     order of the faults (default: from the clock; printed)";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut short = false;
    let mut seconds = None;
    let mut pause = None;
    let mut rate = None;
    let mut seed = None;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n\n{USAGE}"))
        };
        match arg.as_str() {
            "--short" => short = true,
            "--seconds" => seconds = Some(value("--seconds")?.parse::<u64>()?),
            "--pause" => pause = Some(value("--pause")?.parse::<u64>()?),
            "--rate" => rate = Some(value("--rate")?.parse::<f64>()?),
            "--seed" => seed = Some(value("--seed")?.parse::<u64>()?),
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    });
    let mut options = if short {
        ChaosOptions::short(seed)
    } else {
        ChaosOptions::full(seed)
    };
    if let Some(seconds) = seconds {
        options.fault_seconds = seconds;
    }
    if let Some(pause) = pause {
        options.pause_seconds = pause;
    }
    if let Some(rate) = rate {
        anyhow::ensure!(rate > 0.0, "--rate must be positive");
        options.rate = rate;
    }
    eprintln!("chaos: seed {seed}");
    // interrupted, the run is dropped: its processes are killed, its servers
    // and its fault proxies stopped
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let report = tokio::select! {
        report = run(options) => report?,
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
        _ = terminate.recv() => bail!("terminated"),
    };
    print!("{}", report.table());
    if report.chain_failures > 0 {
        println!("\nverify-log:\n{}", report.chain_report);
    }
    if !report.passed() {
        std::process::exit(1);
    }
    Ok(())
}
