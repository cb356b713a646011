//! The chaos run: two replicas of every service on a PostgreSQL and a Redis
//! of the run's own, real 311 requests filed at a steady rate, jobs worked to
//! their close and surveys answered, while a fault schedule kills every
//! process again and again, restarts Redis empty and PostgreSQL (fast and
//! immediate), resets, blackholes and delays their connections (through a
//! TCP fault proxy in front of each), and pauses dispatch until a backlog
//! builds. After a final drain, a total-queue check in the
//! style of Jepsen's: what was acknowledged against what happened — lost,
//! duplicated, dead — printed as a table. See `make chaos`.

pub mod check;
pub mod servers;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use dispatch311_auth::Role;
use dispatch311_proto::intake::v1::Complainant;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::nyc311;
use crate::suite::{CHECKPOINTS_FOLDER, Replica, Service, Suite, SuiteOptions};
use check::Report;
use servers::{FaultProxy, NetworkFault, PrivatePostgres, PrivateRedis};
use workload::Endpoints;

/// The shape of a run.
#[derive(Debug, Clone)]
pub struct ChaosOptions {
    /// How long faults are injected (the backlog phase and the drain come after).
    pub fault_seconds: u64,
    /// How long dispatch is paused while requests keep coming.
    pub pause_seconds: u64,
    /// Requests filed per second.
    pub rate: f64,
    /// kill -9 of each service's processes (both replicas, in turn).
    pub kills_per_service: usize,
    pub redis_restarts: usize,
    pub postgres_restarts: usize,
    /// Intervals of reset, blackholed or delayed connections (PostgreSQL and
    /// Redis in turn, each kind in turn).
    pub network_faults: usize,
    /// Jobs worked at once.
    pub workers: usize,
    /// How long the drain may take before the run is failed.
    pub drain_timeout: Duration,
    /// Seed of the fault order and pauses.
    pub seed: u64,
    /// The 311 export whose rows are filed.
    pub data: PathBuf,
}

impl ChaosOptions {
    /// `make chaos`: a few minutes, every fault many times, a backlog of
    /// tens of thousands.
    pub fn full(seed: u64) -> Self {
        Self {
            fault_seconds: 180,
            pause_seconds: 150,
            rate: 150.0,
            kills_per_service: 10,
            redis_restarts: 3,
            postgres_restarts: 4,
            network_faults: 12,
            workers: 16,
            drain_timeout: Duration::from_secs(600),
            seed,
            data: default_data(),
        }
    }

    /// The version `make test` runs: every kind of fault, in about two minutes.
    pub fn short(seed: u64) -> Self {
        Self {
            fault_seconds: 60,
            pause_seconds: 10,
            rate: 20.0,
            kills_per_service: 2,
            redis_restarts: 1,
            postgres_restarts: 2,
            network_faults: 6,
            workers: 4,
            drain_timeout: Duration::from_secs(240),
            seed,
            data: default_data(),
        }
    }
}

fn default_data() -> PathBuf {
    nyc311::data_dir()
        .join("nyc311")
        .join("service-requests-2023-02-28.csv")
}

/// One fault of the schedule.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill(Service, usize),
    RedisRestart,
    PostgresRestart(&'static str),
    Network(Target, NetworkFault),
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Postgres,
    Redis,
}

impl Fault {
    fn name(&self) -> String {
        match self {
            Fault::Kill(service, _) => format!("kill -9 {}", service.name()),
            Fault::RedisRestart => "Redis killed, restarted empty".into(),
            Fault::PostgresRestart(mode) => format!("PostgreSQL restart ({mode})"),
            Fault::Network(target, fault) => format!("{target:?} connections {fault:?}"),
        }
    }
}

/// The processes of the run: the suite's own (replica 0) and a second
/// replica of each service (replica 1), restarted on the same ports.
struct Processes {
    suite: Suite,
    replicas: BTreeMap<&'static str, (Service, u16, Option<Replica>)>,
}

impl Processes {
    async fn kill_and_restart(
        &mut self,
        service: Service,
        which: usize,
        pause: Duration,
    ) -> anyhow::Result<()> {
        if which == 0 {
            self.suite.kill(service)?;
            tokio::time::sleep(pause).await;
            self.suite.restart(service).await
        } else {
            let (_, port, replica) = self
                .replicas
                .get_mut(service.name())
                .context("every service has a replica")?;
            drop(replica.take());
            tokio::time::sleep(pause).await;
            let port = *port;
            let started = self.suite.spawn_replica_at(service, port).await?;
            self.replicas.get_mut(service.name()).unwrap().2 = Some(started);
            Ok(())
        }
    }

    fn pids(&self, service: Service) -> Vec<u32> {
        let mut pids: Vec<u32> = self.suite.pid(service).into_iter().collect();
        if let Some((_, _, Some(replica))) = self.replicas.get(service.name()) {
            pids.push(replica.pid());
        }
        pids
    }

    fn urls(&self, service: Service) -> Vec<String> {
        let mut urls = vec![self.suite.url(service)];
        if let Some((_, _, Some(replica))) = self.replicas.get(service.name()) {
            urls.push(replica.url.clone());
        }
        urls
    }
}

/// Runs the chaos run and returns its figures (printing progress on stderr).
pub async fn run(options: ChaosOptions) -> anyhow::Result<Report> {
    let work_dir = std::env::temp_dir()
        .join("dispatch311-chaos")
        .join(uuid::Uuid::new_v4().simple().to_string());
    std::fs::create_dir_all(&work_dir)?;
    let _work_dir = RemovedOnDrop(work_dir.clone());
    let postgres = PrivatePostgres::start(&work_dir)?;
    let mut redis = PrivateRedis::start().await?;
    // the services reach both servers through fault proxies; the run's own
    // checks go straight to them
    let mut proxies = if FaultProxy::available() {
        Some((
            FaultProxy::start("postgres", postgres.port, &work_dir).await?,
            FaultProxy::start("redis", redis.port, &work_dir).await?,
        ))
    } else {
        eprintln!(
            "chaos: the fault command is missing (deploy/ensure-chaos-tools.sh installs it): no connection faults"
        );
        None
    };
    let (postgres_port, redis_port) = proxies
        .as_ref()
        .map_or((postgres.port, redis.port), |(postgres, redis)| {
            (postgres.port, redis.port)
        });
    progress(&format!(
        "PostgreSQL on {} (services through {postgres_port}), Redis on {} (through {redis_port}); starting two replicas of every service",
        postgres.port, redis.port
    ));

    let suite = Suite::start(SuiteOptions {
        postgres_admin_url: Some(postgres.admin_url_on(postgres_port)),
        redis_url: Some(format!("redis://127.0.0.1:{redis_port}")),
        env: vec![
            ("RUST_LOG".into(), "warn".into()),
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
            // what Redis lost is published again soon
            ("DISPATCH311_RECONCILE_AFTER_SECS".into(), "10".into()),
            ("DISPATCH311_TIMER_RECONCILE_SECS".into(), "10".into()),
            // a killed consumer's jobs are claimed by the other replica soon
            ("DISPATCH311_QUEUE_CLAIM_IDLE_MS".into(), "5000".into()),
            ("DISPATCH311_DB_MAX_CONNECTIONS".into(), "12".into()),
        ],
        ..SuiteOptions::default()
    })
    .await?;
    let mut processes = Processes {
        suite,
        replicas: BTreeMap::new(),
    };
    for service in Service::ALL {
        let replica = processes.suite.spawn_replica(service).await?;
        processes
            .replicas
            .insert(service.name(), (service, replica.port, Some(replica)));
    }
    let pool = sqlx::PgPool::connect(&processes.suite.database_url.replace(
        &format!(":{postgres_port}/"),
        &format!(":{}/", postgres.port),
    ))
    .await?;
    let endpoints = Endpoints {
        intake: processes.urls(Service::Intake),
        dispatch: processes.urls(Service::Dispatch),
        survey: processes.urls(Service::Survey),
        tokens: processes.suite.tokens().clone(),
    };

    // the real rows, each a request of its own; every fourth complainant
    // leaves contact details and agrees to a survey
    let run_id = uuid::Uuid::new_v4().simple().to_string();
    // without the city's export (it is never in the repository), complaints
    // of the suite's own at places around Midtown, said loudly
    let rows = nyc311::read_requests(&options.data).unwrap_or_else(|error| {
        progress(&format!(
            "no 311 export ({error:#}): filing made-up hydrant complaints instead of real rows"
        ));
        Vec::new()
    });
    let fileable: Vec<_> = rows
        .iter()
        .filter(|row| row.why_not_fileable().is_none())
        .collect();
    let wanted =
        (options.rate * (options.fault_seconds + options.pause_seconds + 30) as f64) as usize;
    let requests: Vec<_> = (0..wanted)
        .map(|n| {
            let request_id = format!("chaos-{run_id}-{n}");
            let mut request = match fileable.get(n % fileable.len().max(1)) {
                Some(row) => row.to_create_request(&request_id),
                None => {
                    let mut request = crate::cad::complaint(
                        "Illegal Parking",
                        "Blocked Hydrant",
                        crate::cad::offset(crate::cad::EMPIRE_STATE, (n % 500) as f64 * 7.0, 0.0),
                    );
                    request.request_id = request_id;
                    request
                }
            };
            if n % 4 == 0 {
                request.complainant = Some(Complainant {
                    name: "Chaos Complainant".into(),
                    phone: String::new(),
                    email: format!("chaos-{n}@example.org"),
                    consent_to_contact: true,
                });
            } else if fileable.is_empty() {
                request.complainant = None;
            }
            request
        })
        .collect();

    let stop_filing = CancellationToken::new();
    let stop_working = CancellationToken::new();
    let started = Instant::now();
    let give_up_at = started
        + Duration::from_secs(options.fault_seconds + options.pause_seconds)
        + options.drain_timeout;
    let filer = tokio::spawn(workload::file(
        endpoints.clone(),
        requests,
        options.rate,
        stop_filing.clone(),
        give_up_at,
    ));
    let worker = tokio::spawn(workload::work(
        endpoints.clone(),
        pool.clone(),
        options.workers,
        stop_working.clone(),
    ));
    let answerer = tokio::spawn(workload::answer_surveys(
        endpoints.clone(),
        stop_working.clone(),
    ));

    // the fault schedule, spread evenly over the fault phase in a seeded order
    let mut schedule = Vec::new();
    for service in Service::ALL {
        for n in 0..options.kills_per_service {
            schedule.push(Fault::Kill(service, n % 2));
        }
    }
    schedule.extend((0..options.redis_restarts).map(|_| Fault::RedisRestart));
    schedule.extend(
        (0..options.postgres_restarts)
            .map(|n| Fault::PostgresRestart(if n % 2 == 0 { "fast" } else { "immediate" })),
    );
    if proxies.is_some() {
        schedule.extend((0..options.network_faults).map(|n| {
            let target = if n % 2 == 0 {
                Target::Postgres
            } else {
                Target::Redis
            };
            let fault = [
                NetworkFault::Reset,
                NetworkFault::Blackhole,
                NetworkFault::Delay,
            ][(n / 2) % 3];
            Fault::Network(target, fault)
        }));
    }
    let mut random = fastrand::Rng::with_seed(options.seed);
    random.shuffle(&mut schedule);
    let spacing = Duration::from_secs(options.fault_seconds).div_f64(schedule.len().max(1) as f64);
    let mut report = Report {
        seconds: options.fault_seconds + options.pause_seconds,
        ..Report::default()
    };
    for (n, fault) in schedule.iter().enumerate() {
        tokio::time::sleep_until(started + spacing.mul_f64(n as f64)).await;
        progress(&format!(
            "fault {}/{}: {}",
            n + 1,
            schedule.len(),
            fault.name()
        ));
        let pause = Duration::from_millis(random.u64(200..3_000));
        match *fault {
            Fault::Kill(service, which) => {
                processes.kill_and_restart(service, which, pause).await?;
            }
            Fault::RedisRestart => redis.kill_and_restart(pause).await?,
            Fault::PostgresRestart(mode) => postgres.restart(mode)?,
            Fault::Network(target, fault) => {
                let (postgres_proxy, redis_proxy) =
                    proxies.as_mut().expect("scheduled only with proxies");
                let proxy = match target {
                    Target::Postgres => postgres_proxy,
                    Target::Redis => redis_proxy,
                };
                proxy.inject(Some(fault)).await?;
                tokio::time::sleep(Duration::from_millis(random.u64(1_000..5_000))).await;
                proxy.inject(None).await?;
            }
        }
        *report.faults.entry(fault.name()).or_default() += 1;
    }
    tokio::time::sleep_until(started + Duration::from_secs(options.fault_seconds)).await;

    // dispatch paused while requests keep coming: a backlog, then its release
    progress(&format!("pausing dispatch for {} s", options.pause_seconds));
    let paused = processes.pids(Service::Dispatch);
    signal(&paused, "-STOP")?;
    let pause_ends = Instant::now() + Duration::from_secs(options.pause_seconds);
    while Instant::now() < pause_ends {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let backlog = dispatch_backlog(&redis.url()).await.unwrap_or(0);
        report.largest_backlog = report.largest_backlog.max(backlog);
    }
    signal(&paused, "-CONT")?;
    *report
        .faults
        .entry("dispatch paused (s)".into())
        .or_default() += options.pause_seconds;
    let last_fault = Instant::now();
    progress(&format!(
        "dispatch released with {} jobs waiting; draining",
        report.largest_backlog
    ));

    // the final drain: no new requests; every accepted one through, every
    // queue empty
    stop_filing.cancel();
    let filing = filer.await??;
    let acknowledged: Vec<String> = filing.acknowledged.keys().cloned().collect();
    let drain_deadline = Instant::now() + options.drain_timeout;
    loop {
        let (_, _, unrouted) =
            check::losses(&pool, &acknowledged)
                .await
                .unwrap_or((0, 0, u64::MAX));
        let busy = busy_queues(&redis.url()).await.unwrap_or(u64::MAX);
        if unrouted == 0 && busy == 0 {
            report.drain = Some(last_fault.elapsed());
            break;
        }
        if Instant::now() > drain_deadline {
            progress(&format!(
                "did not drain: {unrouted} requests not through, {busy} jobs in the queues"
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop_working.cancel();
    let working = worker.await??;
    let answering = answerer.await??;
    // the effects of the last closes and answers settle too
    let settle_deadline = Instant::now() + Duration::from_secs(60);
    while busy_queues(&redis.url()).await.unwrap_or(u64::MAX) != 0
        && Instant::now() < settle_deadline
    {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    report.acknowledged = acknowledged.len() as u64;
    report.refused = filing.refused;
    report.abandoned = filing.abandoned;
    report.retries = filing.retries;
    report.closes = working.closes;
    report.answers = answering.answered;
    report.not_fixed = answering.not_fixed;
    let (present, absent, unrouted) = check::losses(&pool, &acknowledged).await?;
    report.present_in_intake = present;
    report.lost_absent = absent;
    report.lost_unrouted = unrouted;
    report.duplicates = check::duplicates(&pool).await?;
    report.dead_letters = dead_letters(&redis.url()).await?;
    let (intact, text) = verify_log(&processes.suite).await?;
    report.chain_failures = u64::from(!intact);
    report.chain_report = text;
    if !working.step_errors.is_empty() {
        progress(&format!(
            "lifecycle steps refused or failed (re-read and carried on): {:?}",
            working.step_errors
        ));
    }

    pool.close().await;
    drop(processes);
    if let Some((postgres_proxy, redis_proxy)) = &proxies {
        report.proxy_effects = [
            ("PostgreSQL", postgres_proxy.effects()),
            ("Redis", redis_proxy.effects()),
        ]
        .into_iter()
        .flat_map(|(server, effects)| {
            effects
                .into_iter()
                .map(move |(effect, count)| (format!("{server}: {effect}"), count))
        })
        .collect();
    }
    drop(proxies);
    drop(redis);
    drop(postgres);
    Ok(report)
}

/// The run's folder, removed however the run ends.
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn progress(message: &str) {
    eprintln!("chaos: {message}");
}

fn signal(pids: &[u32], signal: &str) -> anyhow::Result<()> {
    for pid in pids {
        std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()?;
    }
    Ok(())
}

async fn redis_connection(url: &str) -> anyhow::Result<redis::aio::MultiplexedConnection> {
    Ok(redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await?)
}

/// Entries in the streams of the run's Redis whose keys match `pattern`
/// (it holds this run only): a stream keeps its jobs until they are
/// settled, so this counts jobs waiting and in flight.
async fn stream_entries(url: &str, pattern: &str) -> anyhow::Result<u64> {
    let mut connection = redis_connection(url).await?;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query_async(&mut connection)
        .await?;
    let mut total = 0;
    for key in keys {
        let length: u64 = redis::cmd("XLEN")
            .arg(&key)
            .query_async(&mut connection)
            .await?;
        total += length;
    }
    Ok(total)
}

/// Jobs waiting in the dispatch queue.
async fn dispatch_backlog(url: &str) -> anyhow::Result<u64> {
    stream_entries(url, "*dispatch311:{dispatch}:stream").await
}

/// Jobs in any queue's stream (scheduled timers in the delayed sets are
/// not work left).
async fn busy_queues(url: &str) -> anyhow::Result<u64> {
    stream_entries(url, "*dispatch311:{*}:stream").await
}

async fn dead_letters(url: &str) -> anyhow::Result<u64> {
    stream_entries(url, "*dispatch311:{*}:dead").await
}

/// The auditor's own check of the whole event log (`dispatch311-cli verify-log`).
async fn verify_log(suite: &Suite) -> anyhow::Result<(bool, String)> {
    let vkey = suite.event_log_verifier_key()?;
    let checkpoints = suite.log_dir.join(CHECKPOINTS_FOLDER);
    let output = suite
        .run_cli(
            Role::Auditor,
            &[
                "verify-log",
                "--vkey",
                &vkey,
                "--checkpoints",
                &checkpoints.display().to_string(),
            ],
        )
        .await?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}
