//! Throughput benchmark of a running dispatch311 suite.
//!
//! Files real 311 requests (the city's half-day export, cycled, each with its
//! own idempotency key) at a fixed concurrency and prints creates per second,
//! the create latency, and how long a police request takes from intake to its
//! precinct's dispatch queue. For scale it measures, in the same run and
//! against the same servers, what PostgreSQL and Redis do alone at the same
//! concurrency: single-row INSERT commits per second and XADDs per second.
//!
//! It only talks to servers on this machine and stops by itself within
//! `--max-seconds`. Start the suite first (`make run`), then `make bench`.

use std::{
    collections::BTreeMap,
    future::Future,
    net::IpAddr,
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

mod lifecycle;
mod open311;

use anyhow::{Context as _, bail};
use dispatch311_auth::Role;
use dispatch311_proto::routing::v1::{
    ExplainRouteRequest, RouteOutcome, routing_service_client::RoutingServiceClient,
};
use dispatch311_proto::{
    Timestamp,
    common::v1::{GeoPoint, ServiceRequestStatus},
    dispatch::v1::{GetJobRequest, get_job_request},
    intake::v1::{
        CreateServiceRequestRequest, GetServiceRequestRequest, get_service_request_request,
        intake_service_client::IntakeServiceClient,
    },
};
use dispatch311_tests::{
    acting::Dispatch,
    nyc311::{self, CsvRequest},
    suite::{AuthChannel, Tokens},
};
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use prost::Message as _;
use tokio::time::{Instant, sleep, timeout, timeout_at};
use tonic::transport::{Channel, Endpoint};

const USAGE: &str = "\
usage: dispatch311-bench [--rate R] [--rate-seconds T] [--requests N] [--concurrency C]
                         [--max-seconds S] [--data FILE]

Files real 311 requests against a running dispatch311 suite twice: first at a fixed
arrival rate of R per second for T seconds (does the suite keep that pace, and how
long does each create take when it arrives on schedule?), then N of them at
concurrency C (how many per second can it take?). Compares the create rate with raw
PostgreSQL commits and Redis XADDs at concurrency C. Stops within S seconds whatever
happens.

  --rate R          requests per second of the fixed-rate phase, 0 to skip it
                    (default 1000; env DISPATCH311_BENCH_RATE)
  --rate-seconds T  how long the fixed-rate phase lasts (default 10; env DISPATCH311_BENCH_RATE_SECONDS)
  --requests N      requests to file at concurrency C (default 20000; env DISPATCH311_BENCH_REQUESTS)
  --concurrency C   requests in flight (default 32; env DISPATCH311_BENCH_CONCURRENCY)
  --max-seconds S   time bound of the whole run (default 150; env DISPATCH311_BENCH_MAX_SECONDS)
  --lifecycles L    full dispatch lifecycles to run on the queued jobs afterwards, 0 for none
                    (default 3000; env DISPATCH311_BENCH_LIFECYCLES)
  --units-per-precinct U   patrol units registered per precinct for them (default 8)
  --data FILE       311 export to replay (default <data dir>/nyc311/service-requests-2023-02-28.csv)

servers (loopback only):
  DISPATCH311_INTAKE_URL    default http://127.0.0.1:50051
  DISPATCH311_ROUTING_URL   default http://127.0.0.1:50052
  DISPATCH311_DISPATCH_URL  default http://127.0.0.1:50053
  DATABASE_URL              default postgres://postgres@127.0.0.1:5432/dispatch311
  REDIS_URL                 default redis://127.0.0.1:6379";

/// At most every how many created requests that routing dispatches one is
/// followed to the dispatch queue; following all of them would load dispatch
/// with polls.
const SAMPLE_EVERY: u64 = 20;
/// Enough samples for a stable p99 without loading dispatch with polls: when
/// few requests are dispatched (a small precinct map), more of them are followed.
const SAMPLES_WANTED: u64 = 300;
/// How long a sampled request may take to reach the queue before it counts as
/// not queued.
const SAMPLE_PATIENCE: Duration = Duration::from_secs(30);
const SAMPLE_POLL_INTERVAL: Duration = Duration::from_millis(200);
/// Every how many unanswered polls intake is asked whether the request went
/// somewhere other than a dispatch queue (referred, triage…).
const STATUS_CHECK_EVERY: u32 = 5;
const CHANNELS: usize = 4;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Latencies are recorded in microseconds, up to an hour.
const HISTOGRAM_MAX_MICROS: u64 = 3_600_000_000;
/// Creates the fixed-rate phase lets run at once before it stops starting
/// more on schedule: far above what a suite keeping the pace needs (rate ×
/// latency), low enough that a stalled suite does not pile up connections.
const FIXED_RATE_MAX_IN_FLIGHT: usize = 1_024;

#[derive(Debug, Clone, PartialEq)]
struct Config {
    /// Requests per second of the fixed-rate phase; 0 skips it.
    rate: u64,
    rate_seconds: u64,
    requests: u64,
    /// Job lifecycles to run on the dispatch path after the creates; 0 skips it.
    lifecycles: u64,
    units_per_precinct: usize,
    concurrency: usize,
    max_seconds: u64,
    data_file: PathBuf,
    intake_url: String,
    routing_url: String,
    dispatch_url: String,
    database_url: String,
    redis_url: String,
}

impl Config {
    /// `Ok(None)` when help was asked for.
    fn parse(
        args: &[String],
        env: impl Fn(&str) -> Option<String>,
    ) -> anyhow::Result<Option<Config>> {
        let number = |name: &str, text: &str| -> anyhow::Result<u64> {
            text.trim()
                .parse()
                .with_context(|| format!("{name} must be a whole number, got {text:?}"))
        };
        let env_number = |var: &str, default: u64| -> anyhow::Result<u64> {
            env(var)
                .filter(|v| !v.is_empty())
                .map_or(Ok(default), |v| number(var, &v))
        };
        let mut rate = env_number("DISPATCH311_BENCH_RATE", 1_000)?;
        let mut rate_seconds = env_number("DISPATCH311_BENCH_RATE_SECONDS", 10)?;
        let mut requests = env_number("DISPATCH311_BENCH_REQUESTS", 20_000)?;
        let mut concurrency = env_number("DISPATCH311_BENCH_CONCURRENCY", 32)?;
        let mut max_seconds = env_number("DISPATCH311_BENCH_MAX_SECONDS", 150)?;
        let mut lifecycles = env_number("DISPATCH311_BENCH_LIFECYCLES", 3_000)?;
        let mut units_per_precinct = env_number("DISPATCH311_BENCH_UNITS_PER_PRECINCT", 8)?;
        let mut data_file = nyc311::data_dir().join(nyc311::HALF_DAY_FILE);

        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let (flag, inline_value) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_string())),
                None => (arg.as_str(), None),
            };
            if flag == "--help" || flag == "-h" {
                return Ok(None);
            }
            let mut value = || {
                inline_value
                    .clone()
                    .or_else(|| args.next().cloned())
                    .with_context(|| format!("{flag} needs a value"))
            };
            match flag {
                "--rate" => rate = number(flag, &value()?)?,
                "--rate-seconds" => rate_seconds = number(flag, &value()?)?,
                "--requests" => requests = number(flag, &value()?)?,
                "--concurrency" => concurrency = number(flag, &value()?)?,
                "--max-seconds" => max_seconds = number(flag, &value()?)?,
                "--lifecycles" => lifecycles = number(flag, &value()?)?,
                "--units-per-precinct" => units_per_precinct = number(flag, &value()?)?,
                "--data" => data_file = PathBuf::from(value()?),
                other => bail!("unknown argument {other:?}\n\n{USAGE}"),
            }
        }
        if !(1..=10_000_000).contains(&requests) {
            bail!("--requests must be between 1 and 10000000");
        }
        if rate > 100_000 {
            bail!("--rate must be between 0 (no fixed-rate phase) and 100000");
        }
        if !(1..=600).contains(&rate_seconds) {
            bail!("--rate-seconds must be between 1 and 600");
        }
        if !(1..=1_024).contains(&concurrency) {
            bail!("--concurrency must be between 1 and 1024");
        }
        if !(1..=100).contains(&units_per_precinct) {
            bail!("--units-per-precinct must be between 1 and 100");
        }
        if !(5..=3_600).contains(&max_seconds) {
            bail!("--max-seconds must be between 5 and 3600");
        }

        let url = |var: &str, default: &str| {
            env(var)
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let config = Config {
            rate,
            rate_seconds,
            requests,
            lifecycles,
            units_per_precinct: units_per_precinct as usize,
            concurrency: concurrency as usize,
            max_seconds,
            data_file,
            intake_url: url("DISPATCH311_INTAKE_URL", "http://127.0.0.1:50051"),
            routing_url: url("DISPATCH311_ROUTING_URL", "http://127.0.0.1:50052"),
            dispatch_url: url("DISPATCH311_DISPATCH_URL", "http://127.0.0.1:50053"),
            database_url: url(
                "DATABASE_URL",
                "postgres://postgres@127.0.0.1:5432/dispatch311",
            ),
            redis_url: url("REDIS_URL", "redis://127.0.0.1:6379"),
        };
        for (var, value) in [
            ("DISPATCH311_INTAKE_URL", &config.intake_url),
            ("DISPATCH311_ROUTING_URL", &config.routing_url),
            ("DISPATCH311_DISPATCH_URL", &config.dispatch_url),
            ("DATABASE_URL", &config.database_url),
            ("REDIS_URL", &config.redis_url),
        ] {
            ensure_loopback(var, value)?;
        }
        Ok(Some(config))
    }
}

/// A load generator aimed at someone else's servers is an attack: refuse
/// anything that is not this machine.
fn ensure_loopback(var: &str, url: &str) -> anyhow::Result<()> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("{var} is not a url: {url:?}");
    };
    // unix sockets are local by construction
    if scheme.contains("unix") {
        return Ok(());
    }
    let authority = &rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host_port)| host_port);
    let host = match host_port.strip_prefix('[') {
        Some(bracketed) => bracketed
            .split_once(']')
            .map_or(bracketed, |(host, _)| host),
        None => host_port.split(':').next().unwrap_or_default(),
    };
    let host = if host.is_empty() && scheme.starts_with("postgres") {
        // libpq style: the host in the query, or the default unix socket
        let query = rest.split_once('?').map_or("", |(_, query)| query);
        let query_host = query
            .split('&')
            .find_map(|pair| pair.strip_prefix("host="))
            .unwrap_or("/");
        if query_host.starts_with('/') {
            return Ok(());
        }
        query_host
    } else {
        host
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        bail!(
            "{var} points at {host:?}: the benchmark only runs against servers on this machine (127.0.0.1, ::1, localhost)"
        );
    }
    Ok(())
}

/// What a closed loop of operations achieved.
struct LoopStats {
    ok: u64,
    /// Failures by kind (a gRPC code, a database error…), with one message.
    errors: BTreeMap<String, (u64, String)>,
    /// Operations still running when the phase's deadline came.
    cut_at_deadline: u64,
    /// Fixed rate only: operations not started when due because too many
    /// were still running (their latency still counts from when they were due).
    held_back: u64,
    elapsed: Duration,
    /// Latency of the successful operations, in microseconds.
    latency: Histogram<u64>,
}

impl LoopStats {
    fn new() -> Self {
        Self {
            ok: 0,
            errors: BTreeMap::new(),
            cut_at_deadline: 0,
            held_back: 0,
            elapsed: Duration::ZERO,
            latency: new_histogram(),
        }
    }

    /// Counts one finished operation and, when it succeeded, its latency.
    fn record(&mut self, latency: Duration, outcome: Result<(), (String, String)>) {
        match outcome {
            Ok(()) => {
                self.ok += 1;
                self.latency.saturating_record(latency.as_micros() as u64);
            }
            Err((kind, message)) => self.errors.entry(kind).or_insert((0, message)).0 += 1,
        }
    }

    fn merge(&mut self, other: LoopStats) {
        self.ok += other.ok;
        self.cut_at_deadline += other.cut_at_deadline;
        self.held_back += other.held_back;
        self.latency
            .add(&other.latency)
            .expect("histograms share their bounds");
        for (kind, (count, message)) in other.errors {
            self.errors.entry(kind).or_insert((0, message)).0 += count;
        }
    }

    fn per_second(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn error_count(&self) -> u64 {
        self.errors.values().map(|(count, _)| count).sum()
    }
}

fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_MICROS, 3).expect("valid histogram bounds")
}

/// Runs `operation(0..total)` with `concurrency` operations in flight until
/// all are done or `deadline` passes. An operation fails with (kind, message).
async fn closed_loop<F, Fut>(
    concurrency: usize,
    total: u64,
    deadline: Instant,
    operation: F,
) -> LoopStats
where
    F: Fn(u64) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<(), (String, String)>> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let next = next.clone();
        let operation = operation.clone();
        workers.push(tokio::spawn(async move {
            let mut stats = LoopStats::new();
            loop {
                if Instant::now() >= deadline {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                if index >= total {
                    break;
                }
                let began = Instant::now();
                match timeout_at(deadline, operation(index)).await {
                    Err(_) => {
                        stats.cut_at_deadline += 1;
                        break;
                    }
                    Ok(outcome) => stats.record(began.elapsed(), outcome),
                }
            }
            stats
        }));
    }

    let mut total_stats = LoopStats::new();
    for worker in workers {
        let stats = match worker.await {
            Ok(stats) => stats,
            Err(error) => {
                total_stats
                    .errors
                    .entry("worker panicked".into())
                    .or_insert((0, error.to_string()))
                    .0 += 1;
                continue;
            }
        };
        total_stats.merge(stats);
    }
    total_stats.elapsed = started.elapsed();
    total_stats
}

/// Starts `operation(i)` when it is due, at `start + i / rate`, whether or
/// not earlier ones have finished (an open loop: arrivals do not slow down
/// when the servers do), until `total` are started or `deadline` passes.
/// Latency counts from when an operation was due, not from when it could
/// start, so a server that falls behind shows in the percentiles instead of
/// quietly lowering the load (no coordinated omission). At most
/// `max_in_flight` run at once; the ones held back are counted.
async fn fixed_rate<F, Fut>(
    rate: u64,
    total: u64,
    max_in_flight: usize,
    deadline: Instant,
    operation: F,
) -> LoopStats
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Result<(), (String, String)>> + Send + 'static,
{
    let in_flight = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let mut running = tokio::task::JoinSet::new();
    let mut stats = LoopStats::new();
    let started = Instant::now();
    let settle = |stats: &mut LoopStats, finished| match finished {
        Ok(Ok((latency, outcome))) => stats.record(latency, outcome),
        Ok(Err(_)) => stats.cut_at_deadline += 1,
        Err(error) => stats.record(
            Duration::ZERO,
            Err(("operation panicked".into(), format!("{error}"))),
        ),
    };
    for index in 0..total {
        let due = started + Duration::from_secs_f64(index as f64 / rate.max(1) as f64);
        if due >= deadline {
            break;
        }
        tokio::time::sleep_until(due).await;
        let permit = match in_flight.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                stats.held_back += 1;
                match timeout_at(deadline, in_flight.clone().acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => break,
                }
            }
        };
        let operation = operation(index);
        running.spawn(async move {
            let outcome = timeout_at(deadline, operation).await;
            drop(permit);
            outcome.map(|outcome| (due.elapsed(), outcome))
        });
        while let Some(finished) = running.try_join_next() {
            settle(&mut stats, finished);
        }
    }
    while let Some(finished) = running.join_next().await {
        settle(&mut stats, finished);
    }
    stats.elapsed = started.elapsed();
    stats
}

/// A phase's outcome: its figures, or why it could not run.
type PhaseResult = Result<LoopStats, String>;

/// Raw PostgreSQL: autocommit single-row INSERTs into a scratch table shaped
/// like a small request row (a unique idempotency key, a type, a point), so
/// every operation pays one commit. The table is dropped afterwards.
async fn raw_postgres(
    config: &Config,
    rows: &Arc<Vec<CsvRequest>>,
    run_id: &str,
    deadline: Instant,
) -> PhaseResult {
    use sqlx::{AssertSqlSafe, postgres::PgPoolOptions};

    let pool = timeout_at(
        deadline,
        PgPoolOptions::new()
            .max_connections(config.concurrency as u32)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect(&config.database_url),
    )
    .await
    .map_err(|_| "connecting timed out".to_string())?
    .map_err(|error| format!("cannot connect: {error}"))?;

    // the run id is [0-9a-f] only: safe to put in an identifier
    let table = format!("bench_raw.inserts_{run_id}");
    // two runs may race to create the schema; the loser's error is harmless
    let _ = sqlx::raw_sql("CREATE SCHEMA IF NOT EXISTS bench_raw")
        .execute(&pool)
        .await;
    let create = format!(
        "CREATE TABLE {table} (id bigserial PRIMARY KEY, request_id text NOT NULL UNIQUE, \
         complaint_type text NOT NULL, latitude double precision, longitude double precision, \
         created_at timestamptz NOT NULL DEFAULT now())"
    );
    if let Err(error) = sqlx::raw_sql(AssertSqlSafe(create)).execute(&pool).await {
        pool.close().await;
        return Err(format!("cannot create {table}: {error}"));
    }

    // open every connection before the clock starts
    let warm = futures::future::join_all((0..config.concurrency).map(|_| pool.acquire())).await;
    drop(warm);

    let insert: Arc<str> =
        format!("INSERT INTO {table} (request_id, complaint_type, latitude, longitude) VALUES ($1, $2, $3, $4)").into();
    let stats = {
        let pool = pool.clone();
        let rows = rows.clone();
        let run_id = run_id.to_string();
        closed_loop(
            config.concurrency,
            config.requests,
            deadline,
            move |index| {
                let pool = pool.clone();
                let insert = insert.clone();
                let row = &rows[index as usize % rows.len()];
                let request_id = format!("bench-{run_id}-{index}");
                let complaint_type = row.complaint_type.clone();
                let (latitude, longitude) = (row.latitude, row.longitude);
                async move {
                    sqlx::query(AssertSqlSafe(insert))
                        .bind(request_id)
                        .bind(complaint_type)
                        .bind(latitude)
                        .bind(longitude)
                        .execute(&pool)
                        .await
                        .map(drop)
                        .map_err(|error| (database_error_kind(&error), error.to_string()))
                }
            },
        )
        .await
    };

    let drop_table = format!("DROP TABLE IF EXISTS {table}");
    let cleanup = async {
        sqlx::raw_sql(AssertSqlSafe(drop_table))
            .execute(&pool)
            .await?;
        // RESTRICT: another run's table keeps the schema alive
        let _ = sqlx::raw_sql("DROP SCHEMA IF EXISTS bench_raw RESTRICT")
            .execute(&pool)
            .await;
        Ok::<_, sqlx::Error>(())
    };
    match timeout(CONNECT_TIMEOUT, cleanup).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => eprintln!("warning: could not drop scratch table {table}: {error}"),
        Err(_) => eprintln!("warning: could not drop scratch table {table}: timed out"),
    }
    pool.close().await;
    Ok(stats)
}

fn database_error_kind(error: &sqlx::Error) -> String {
    match error {
        sqlx::Error::Database(db) => format!("database {}", db.code().unwrap_or_default()),
        sqlx::Error::PoolTimedOut => "pool timed out".into(),
        sqlx::Error::Io(_) => "i/o".into(),
        _ => "other".into(),
    }
}

/// Raw Redis: XADDs of a request-sized payload (the encoded create request)
/// to a scratch stream on a few multiplexed connections, the way the suite's
/// queue talks to Redis. The stream is deleted afterwards.
async fn raw_redis(
    config: &Config,
    rows: &Arc<Vec<CsvRequest>>,
    run_id: &str,
    deadline: Instant,
) -> PhaseResult {
    let client = redis::Client::open(config.redis_url.as_str())
        .map_err(|error| format!("bad REDIS_URL: {error}"))?;
    let mut connections = Vec::new();
    for _ in 0..CHANNELS.min(config.concurrency) {
        let connection = timeout_at(deadline, client.get_multiplexed_async_connection())
            .await
            .map_err(|_| "connecting timed out".to_string())?
            .map_err(|error| format!("cannot connect: {error}"))?;
        connections.push(connection);
    }
    // hash-tagged like the suite's stream keys, so a cluster keeps it on one slot
    let key = format!("bench_raw:{{{run_id}}}:xadd");
    let payloads: Arc<Vec<Vec<u8>>> = Arc::new(
        rows.iter()
            .take(1_000)
            .map(|row| row.to_create_request("bench-payload").encode_to_vec())
            .collect(),
    );

    let stats = {
        let connections = Arc::new(connections.clone());
        let key = key.clone();
        closed_loop(
            config.concurrency,
            config.requests,
            deadline,
            move |index| {
                let mut connection = connections[index as usize % connections.len()].clone();
                let payloads = payloads.clone();
                let key = key.clone();
                async move {
                    let payload = &payloads[index as usize % payloads.len()];
                    redis::cmd("XADD")
                        .arg(&key)
                        .arg("*")
                        .arg("payload")
                        .arg(payload.as_slice())
                        .query_async::<String>(&mut connection)
                        .await
                        .map(drop)
                        .map_err(|error| (format!("redis {:?}", error.kind()), error.to_string()))
                }
            },
        )
        .await
    };

    let mut connection = connections[0].clone();
    match timeout(
        CONNECT_TIMEOUT,
        redis::cmd("DEL")
            .arg(&key)
            .query_async::<i64>(&mut connection),
    )
    .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => eprintln!("warning: could not delete scratch stream {key}: {error}"),
        Err(_) => eprintln!("warning: could not delete scratch stream {key}: timed out"),
    }
    Ok(stats)
}

/// A created police request followed to its precinct's dispatch queue.
struct Sample {
    sr_number: String,
    created_at: Timestamp,
}

/// Where the sampled requests ended up.
#[derive(Default)]
struct QueueLatency {
    /// queued_at - created_at of the dispatch job, in microseconds.
    latency: Option<Histogram<u64>>,
    queued: u64,
    /// Requests routed somewhere else than a dispatch queue, by status.
    elsewhere: BTreeMap<String, u64>,
    not_queued_in_time: u64,
}

enum SampleOutcome {
    Queued(Duration),
    Elsewhere(String),
    NotQueuedInTime,
}

async fn follow_sample(
    mut dispatch: Dispatch,
    mut intake: IntakeServiceClient<AuthChannel>,
    sample: Sample,
    give_up_at: Instant,
) -> SampleOutcome {
    let mut polls = 0u32;
    loop {
        sleep(SAMPLE_POLL_INTERVAL).await;
        if Instant::now() >= give_up_at {
            return SampleOutcome::NotQueuedInTime;
        }
        polls += 1;
        let request = GetJobRequest {
            key: Some(get_job_request::Key::SrNumber(sample.sr_number.clone())),
        };
        if let Ok(Ok(response)) = timeout_at(give_up_at, dispatch.get_job(request)).await
            && let Some(job) = response.into_inner().job
            && let Some(queued_at) = job.queued_at
        {
            // a report of an incident already open is linked to that job (the
            // rows repeat from one phase to the next): the job was queued
            // before the report existed, so there is no latency to measure
            if job.sr_number != sample.sr_number {
                return SampleOutcome::Elsewhere("LINKED to an open job".into());
            }
            return SampleOutcome::Queued(between(&sample.created_at, &queued_at));
        }
        if !polls.is_multiple_of(STATUS_CHECK_EVERY) {
            continue;
        }
        let request = GetServiceRequestRequest {
            key: Some(get_service_request_request::Key::SrNumber(
                sample.sr_number.clone(),
            )),
        };
        let Ok(Ok(response)) = timeout_at(give_up_at, intake.get_service_request(request)).await
        else {
            continue;
        };
        let status = response
            .into_inner()
            .service_request
            .map(|sr| sr.status())
            .unwrap_or_default();
        use ServiceRequestStatus as S;
        if matches!(
            status,
            S::Referred | S::NeedsTriage | S::Duplicate | S::Cancelled
        ) {
            return SampleOutcome::Elsewhere(
                dispatch311_domain::status::status_name(status).to_string(),
            );
        }
    }
}

/// `later - earlier`, zero if the clocks disagree.
fn between(earlier: &Timestamp, later: &Timestamp) -> Duration {
    let nanos = |t: &Timestamp| i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanos);
    Duration::from_nanos(u64::try_from((nanos(later) - nanos(earlier)).max(0)).unwrap_or(u64::MAX))
}

async fn connect(url: &str) -> anyhow::Result<Channel> {
    Endpoint::from_shared(url.to_string())
        .with_context(|| format!("invalid url {url:?}"))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}: is the suite running? (make run)"))
}

/// Clients of the suite, connected before anything is measured so a suite
/// that is not running is reported at once.
struct SuiteClients {
    /// A few HTTP/2 connections, as a busy integrator would hold.
    intake: Vec<IntakeServiceClient<AuthChannel>>,
    routing: RoutingServiceClient<AuthChannel>,
    dispatch: Dispatch,
}

impl SuiteClients {
    /// Every call carries a token signed with the development key
    /// (`DISPATCH311_AUTH_SIGNING_KEY`, set by deploy/bench.sh).
    async fn connect(config: &Config) -> anyhow::Result<Self> {
        let tokens = Tokens::new(dispatch311_auth::signer_from_env()?);
        let mut intake = Vec::new();
        for _ in 0..CHANNELS.min(config.concurrency) {
            intake.push(IntakeServiceClient::new(
                tokens
                    .bearer(Role::Integrator, "bench-311-app")?
                    .wrap(connect(&config.intake_url).await?),
            ));
        }
        let routing = RoutingServiceClient::new(
            tokens
                .bearer(Role::Supervisor, "bench-supervisor")?
                .wrap(connect(&config.routing_url).await?),
        );
        let dispatch = Dispatch::new(connect(&config.dispatch_url).await?, tokens)?;
        Ok(Self {
            intake,
            routing,
            dispatch,
        })
    }
}

/// Which rows routing would put in a dispatch queue, asked with its dry run
/// (ExplainRoute) so the queue latency is sampled only from requests that get
/// there, whatever precinct map and rules the suite runs with.
async fn dispatched_rows(
    routing: &RoutingServiceClient<AuthChannel>,
    rows: &[CsvRequest],
    concurrency: usize,
    deadline: Instant,
) -> Result<Vec<Option<String>>, String> {
    let explained = futures::stream::iter(rows.iter().map(|row| {
        let mut routing = routing.clone();
        let request = ExplainRouteRequest {
            complaint_type: row.complaint_type.clone(),
            descriptor: row.descriptor.clone(),
            location: row.coordinates().map(|(latitude, longitude)| GeoPoint {
                latitude,
                longitude,
            }),
            has_street_address: !row.incident_address.is_empty(),
        };
        async move {
            let response = timeout_at(deadline, routing.explain_route(request))
                .await
                .map_err(|_| "timed out".to_string())?
                .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
            let decision = response.into_inner().decision;
            Ok::<_, String>(
                decision
                    .filter(|d| d.outcome() == RouteOutcome::Dispatch)
                    .map(|d| d.precinct),
            )
        }
    }))
    .buffered(concurrency)
    .collect::<Vec<_>>()
    .await;
    explained.into_iter().collect()
}

/// How the creates of a phase arrive.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// `rate` a second for `seconds`, each on schedule.
    FixedRate { rate: u64, seconds: u64 },
    /// `requests` in all, `concurrency` at a time.
    Closed { requests: u64, concurrency: usize },
}

impl Load {
    fn requests(self) -> u64 {
        match self {
            Load::FixedRate { rate, seconds } => rate * seconds,
            Load::Closed { requests, .. } => requests,
        }
    }

    fn name(self) -> String {
        match self {
            Load::FixedRate { rate, .. } => format!("CreateServiceRequest {rate}/s"),
            Load::Closed { concurrency, .. } => format!("CreateServiceRequest c={concurrency}"),
        }
    }
}

/// Files the phase's requests (idempotency keys `bench-<run>-<phase>-<i>`)
/// and follows a sample of the police ones to their dispatch queue.
#[allow(clippy::too_many_arguments)]
async fn creates(
    load: Load,
    clients: &SuiteClients,
    rows: &Arc<Vec<CsvRequest>>,
    dispatched: Arc<Vec<bool>>,
    sample_every: u64,
    request_id_prefix: &str,
    creates_deadline: Instant,
    samples_deadline: Instant,
) -> (LoopStats, QueueLatency) {
    let intake_clients = clients.intake.clone();
    let dispatch = clients.dispatch.clone();
    let status_intake = intake_clients[0].clone();

    let followed = Arc::new(Mutex::new(QueueLatency::default()));
    let followers = Arc::new(Mutex::new(tokio::task::JoinSet::new()));
    let dispatched_created = Arc::new(AtomicU64::new(0));

    let create = {
        let intake_clients = Arc::new(intake_clients);
        let rows = rows.clone();
        let request_id_prefix = request_id_prefix.to_string();
        let followed = followed.clone();
        let followers = followers.clone();
        move |index: u64| {
            let mut intake = intake_clients[index as usize % intake_clients.len()].clone();
            let row = &rows[index as usize % rows.len()];
            let request: CreateServiceRequestRequest =
                row.to_create_request(&format!("{request_id_prefix}-{index}"));
            let followable = dispatched[index as usize % dispatched.len()];
            let dispatched_created = dispatched_created.clone();
            let followed = followed.clone();
            let followers = followers.clone();
            let dispatch = dispatch.clone();
            let status_intake = status_intake.clone();
            async move {
                let response = intake
                    .create_service_request(request)
                    .await
                    .map_err(|status| {
                        (format!("{:?}", status.code()), status.message().to_string())
                    })?;
                if !followable
                    || !dispatched_created
                        .fetch_add(1, Ordering::Relaxed)
                        .is_multiple_of(sample_every)
                {
                    return Ok(());
                }
                let Some(sr) = response.into_inner().service_request else {
                    return Ok(());
                };
                let Some(created_at) = sr.created_at else {
                    return Ok(());
                };
                let sample = Sample {
                    sr_number: sr.sr_number,
                    created_at,
                };
                let give_up_at = (Instant::now() + SAMPLE_PATIENCE).min(samples_deadline);
                followers.lock().expect("followers lock").spawn(async move {
                    let outcome = follow_sample(dispatch, status_intake, sample, give_up_at).await;
                    let mut followed = followed.lock().expect("followed lock");
                    match outcome {
                        SampleOutcome::Queued(latency) => {
                            followed.queued += 1;
                            followed
                                .latency
                                .get_or_insert_with(new_histogram)
                                .saturating_record(latency.as_micros() as u64);
                        }
                        SampleOutcome::Elsewhere(status) => {
                            *followed.elsewhere.entry(status).or_default() += 1
                        }
                        SampleOutcome::NotQueuedInTime => followed.not_queued_in_time += 1,
                    }
                });
                Ok(())
            }
        }
    };
    let stats = match load {
        Load::FixedRate { rate, .. } => {
            fixed_rate(
                rate,
                load.requests(),
                FIXED_RATE_MAX_IN_FLIGHT,
                creates_deadline,
                create,
            )
            .await
        }
        Load::Closed {
            requests,
            concurrency,
        } => closed_loop(concurrency, requests, creates_deadline, create).await,
    };

    // every follower gives up by samples_deadline by itself
    let mut followers = std::mem::take(&mut *followers.lock().expect("followers lock"));
    while followers.join_next().await.is_some() {}
    let followed = std::mem::take(&mut *followed.lock().expect("followed lock"));
    (stats, followed)
}

fn millis(micros: u64) -> String {
    format!("{:.1}", micros as f64 / 1_000.0)
}

fn print_phase(name: &str, result: &PhaseResult) {
    match result {
        Err(why) => println!("{name:<28} not measured: {why}"),
        Ok(stats) => {
            let h = &stats.latency;
            let (p50, p90, p99, max) = if h.is_empty() {
                (
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                    "-".to_string(),
                )
            } else {
                (
                    millis(h.value_at_quantile(0.50)),
                    millis(h.value_at_quantile(0.90)),
                    millis(h.value_at_quantile(0.99)),
                    millis(h.max()),
                )
            };
            println!(
                "{name:<28} {:>8} {:>7} {:>8.2} {:>10.0} {:>8} {:>8} {:>8} {:>8}",
                stats.ok,
                stats.error_count(),
                stats.elapsed.as_secs_f64(),
                stats.per_second(),
                p50,
                p90,
                p99,
                max
            );
        }
    }
}

fn print_errors(name: &str, result: &PhaseResult) {
    let Ok(stats) = result else { return };
    if stats.cut_at_deadline > 0 {
        println!(
            "{name}: {} operations still running at the time bound were cut",
            stats.cut_at_deadline
        );
    }
    if stats.held_back > 0 {
        println!(
            "{name}: {} operations started late, {FIXED_RATE_MAX_IN_FLIGHT} already running: the suite did not keep the pace",
            stats.held_back
        );
    }
    if stats.errors.is_empty() {
        return;
    }
    println!("{name} errors:");
    for (kind, (count, message)) in &stats.errors {
        let message: String = message.chars().take(120).collect();
        println!("  {kind:<24} {count:>8}   e.g. {message}");
    }
}

/// Where a phase's sampled police requests went, and how long the queued
/// ones took from intake to their precinct's queue.
fn print_queue_latency(phase: &str, followed: &QueueLatency) {
    let sampled =
        followed.queued + followed.not_queued_in_time + followed.elsewhere.values().sum::<u64>();
    match &followed.latency {
        Some(h) => println!(
            "intake -> dispatch queue ({phase}): p50 {} ms, p99 {} ms, max {} ms  (job queued_at - create created_at; {} of {sampled} sampled requests queued)",
            millis(h.value_at_quantile(0.50)),
            millis(h.value_at_quantile(0.99)),
            millis(h.max()),
            followed.queued
        ),
        None => println!(
            "intake -> dispatch queue ({phase}): no sampled request reached a dispatch queue ({sampled} sampled)"
        ),
    }
    if !followed.elsewhere.is_empty() {
        let elsewhere: Vec<String> = followed
            .elsewhere
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect();
        println!(
            "  sampled requests not dispatched: {}",
            elsewhere.join(", ")
        );
    }
    if followed.not_queued_in_time > 0 {
        println!(
            "  sampled requests not queued in time: {}",
            followed.not_queued_in_time
        );
    }
}

fn ratio(ours: &PhaseResult, raw: &PhaseResult) -> String {
    match (ours, raw) {
        (Ok(ours), Ok(raw)) if raw.per_second() > 0.0 => {
            format!("{:.3}", ours.per_second() / raw.per_second())
        }
        _ => "n/a".to_string(),
    }
}

async fn run(config: Config) -> anyhow::Result<bool> {
    let started = Instant::now();
    let bound = Duration::from_secs(config.max_seconds);
    let hard_deadline = started + bound;
    // time kept for cleanup and printing, and for queued samples to show up
    let reserve = (bound / 20).max(Duration::from_secs(2));
    let drain = (bound * 3 / 20).clamp(Duration::from_secs(2), SAMPLE_PATIENCE);

    let file = nyc311::read_rows(&config.data_file)?;
    let read = file.requests.len();
    let rows: Vec<CsvRequest> = file
        .requests
        .into_iter()
        .filter(|row| row.why_not_fileable().is_none())
        .collect();
    if rows.is_empty() {
        bail!(
            "no row of {} can be filed with intake",
            config.data_file.display()
        );
    }
    let rows = Arc::new(rows);
    // hex only: it ends up in a table name
    let run_id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();

    println!(
        "dispatch311-bench run {run_id}: {}{} requests at concurrency {}, bound {} s",
        if config.rate > 0 {
            format!(
                "{} requests/s for {} s, then ",
                config.rate, config.rate_seconds
            )
        } else {
            String::new()
        },
        config.requests,
        config.concurrency,
        config.max_seconds
    );
    println!(
        "rows: {} fileable of {read} read ({} rejected by the reader) from {}",
        rows.len(),
        file.rejected.len(),
        config.data_file.display()
    );
    println!(
        "intake {}, routing {}, dispatch {}, redis {}",
        config.intake_url, config.routing_url, config.dispatch_url, config.redis_url
    );
    let clients = timeout_at(hard_deadline, SuiteClients::connect(&config))
        .await
        .context("connecting to the suite timed out")??;

    let explain_deadline = (Instant::now() + bound / 10).min(hard_deadline);
    let dispatched = match dispatched_rows(
        &clients.routing,
        &rows,
        config.concurrency,
        explain_deadline,
    )
    .await
    {
        Ok(dispatched) => dispatched,
        Err(why) => {
            // without the dry run, police rows with a point are the best guess
            println!(
                "routing could not explain the rows ({why}); sampling police rows with coordinates"
            );
            rows.iter()
                .map(|row| (row.is_nypd() && row.coordinates().is_some()).then(String::new))
                .collect()
        }
    };
    let precincts: Vec<String> = dispatched
        .iter()
        .flatten()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let dispatched: Vec<bool> = dispatched.iter().map(Option::is_some).collect();
    let dispatched_count = dispatched.iter().filter(|d| **d).count() as u64;
    // about SAMPLES_WANTED followed per phase, at most 1 in SAMPLE_EVERY
    let sample_every = |load: Load| {
        let expected_dispatched = load.requests() * dispatched_count / rows.len() as u64;
        (expected_dispatched / SAMPLES_WANTED).clamp(1, SAMPLE_EVERY)
    };
    println!(
        "routing dispatches {dispatched_count} of the {} rows to a precinct queue (ExplainRoute); about {SAMPLES_WANTED} of those followed to the queue in each phase",
        rows.len()
    );
    println!();

    // raw baselines first, while the suite is idle
    let postgres_deadline = (Instant::now() + bound * 3 / 20).min(hard_deadline);
    let postgres = raw_postgres(&config, &rows, &run_id, postgres_deadline).await;
    let redis_deadline = (Instant::now() + bound / 10).min(hard_deadline);
    let redis = raw_redis(&config, &rows, &run_id, redis_deadline).await;

    // the dispatch path gets a quarter of the run after the creates
    let lifecycle_budget = if config.lifecycles > 0 {
        bound / 4
    } else {
        Duration::ZERO
    };
    // the Open311 gateway's creates, when `make bench` runs it (its URL and a key)
    let gateway = std::env::var("DISPATCH311_OPEN311_URL")
        .ok()
        .zip(std::env::var("DISPATCH311_OPEN311_API_KEY").ok())
        .filter(|(url, key)| !url.is_empty() && !key.is_empty());
    let gateway_budget = if gateway.is_some() {
        bound / 8
    } else {
        Duration::ZERO
    };
    let samples_deadline = hard_deadline - reserve - lifecycle_budget - gateway_budget;
    let creates_deadline = samples_deadline - drain;
    if Instant::now() >= creates_deadline {
        bail!(
            "no time left to file requests within {} s",
            config.max_seconds
        );
    }
    let dispatched = Arc::new(dispatched);

    // the fixed rate first, on an idle suite; it returns once its samples are
    // queued, so the pipeline has caught up before the closed loop starts
    let fixed = if config.rate > 0 {
        let load = Load::FixedRate {
            rate: config.rate,
            seconds: config.rate_seconds,
        };
        let deadline = (Instant::now() + Duration::from_secs(config.rate_seconds) + drain)
            .min(creates_deadline);
        let (created, followed) = creates(
            load,
            &clients,
            &rows,
            dispatched.clone(),
            sample_every(load),
            &format!("bench-{run_id}-rate"),
            deadline,
            (deadline + drain).min(samples_deadline),
        )
        .await;
        Some((load, Ok(created), followed))
    } else {
        None
    };
    let load = Load::Closed {
        requests: config.requests,
        concurrency: config.concurrency,
    };
    let (created, followed) = creates(
        load,
        &clients,
        &rows,
        dispatched,
        sample_every(load),
        &format!("bench-{run_id}"),
        creates_deadline,
        samples_deadline,
    )
    .await;
    let closed: (Load, PhaseResult, QueueLatency) = (load, Ok(created), followed);
    let through_gateway: Option<PhaseResult> = match &gateway {
        Some((url, key)) => {
            let deadline = (Instant::now() + gateway_budget).min(hard_deadline - reserve);
            Some(
                open311::creates(
                    url,
                    key,
                    &rows,
                    config.concurrency,
                    config.requests,
                    &run_id,
                    deadline,
                )
                .await
                .map_err(|error| format!("{error:#}")),
            )
        }
        None => None,
    };
    let phases: Vec<&(Load, PhaseResult, QueueLatency)> = fixed.iter().chain([&closed]).collect();
    let any_created = phases
        .iter()
        .any(|(_, created, _)| created.as_ref().is_ok_and(|stats| stats.ok > 0));

    println!(
        "{:<28} {:>8} {:>7} {:>8} {:>10} {:>8} {:>8} {:>8} {:>8}",
        "operation", "ok", "errors", "seconds", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    print_phase("raw PostgreSQL INSERT", &postgres);
    print_phase("raw Redis XADD", &redis);
    for (load, created, _) in &phases {
        print_phase(&load.name(), created);
    }
    if let Some(gateway) = &through_gateway {
        print_phase(&format!("Open311 POST c={}", config.concurrency), gateway);
    }
    if fixed.is_some() {
        println!(
            "  (at {}/s: latency from when each request was due, so falling behind the rate counts)",
            config.rate
        );
    }
    println!();
    for (load, _, followed) in &phases {
        print_queue_latency(&load.name(), followed);
    }
    println!();

    let (_, created, _) = &closed;
    println!(
        "creates/s at c={} ÷ raw PostgreSQL INSERT commits/s   {}",
        config.concurrency,
        ratio(created, &postgres)
    );
    println!(
        "creates/s at c={} ÷ raw Redis XADD/s                  {}",
        config.concurrency,
        ratio(created, &redis)
    );
    if let Some(gateway) = &through_gateway {
        println!(
            "Open311 POSTs/s at c={} ÷ gRPC creates/s              {}",
            config.concurrency,
            ratio(gateway, created)
        );
    }
    println!();
    print_errors("raw PostgreSQL INSERT", &postgres);
    if let Some(gateway) = &through_gateway {
        print_errors("Open311 POST", gateway);
    }
    print_errors("raw Redis XADD", &redis);
    for (load, created, _) in &phases {
        print_errors(&load.name(), created);
    }

    if config.lifecycles > 0 && !precincts.is_empty() {
        println!();
        let figures = lifecycle::run(
            clients.dispatch.clone(),
            precincts,
            config.units_per_precinct,
            config.concurrency,
            config.lifecycles,
            &run_id,
            hard_deadline - reserve,
        )
        .await;
        match figures {
            Ok(figures) => lifecycle::print(&figures),
            Err(why) => println!("dispatch path not measured: {why:#}"),
        }
    }
    println!("finished in {:.1} s", started.elapsed().as_secs_f64());
    Ok(any_created)
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match Config::parse(&args, |var| std::env::var(var).ok()) {
        Ok(Some(config)) => config,
        Ok(None) => {
            println!("{USAGE}");
            return std::process::ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("dispatch311-bench: {error:#}");
            return std::process::ExitCode::from(2);
        }
    };
    // a safety net over the phases' own deadlines: never outlive the bound by much
    let bound = Duration::from_secs(config.max_seconds) + Duration::from_secs(10);
    match timeout(bound, run(config)).await {
        Ok(Ok(true)) => std::process::ExitCode::SUCCESS,
        Ok(Ok(false)) => {
            eprintln!("dispatch311-bench: no request was created");
            std::process::ExitCode::FAILURE
        }
        Ok(Err(error)) => {
            eprintln!("dispatch311-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("dispatch311-bench: stopped at the time bound");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Option<Config>> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::parse(&args, |var| env.get(var).cloned())
    }

    #[test]
    fn defaults_and_flags() {
        let config = parse(&[], &[]).unwrap().unwrap();
        assert_eq!(
            (config.requests, config.concurrency, config.max_seconds),
            (20_000, 32, 150)
        );
        assert_eq!((config.rate, config.rate_seconds), (1_000, 10));
        assert_eq!(config.intake_url, "http://127.0.0.1:50051");

        let config = parse(
            &[
                "--requests",
                "2000",
                "--concurrency=8",
                "--max-seconds",
                "30",
            ],
            &[("DISPATCH311_BENCH_REQUESTS", "5")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (config.requests, config.concurrency, config.max_seconds),
            (2_000, 8, 30)
        );

        let config = parse(&[], &[("DISPATCH311_BENCH_CONCURRENCY", "4")])
            .unwrap()
            .unwrap();
        assert_eq!(config.concurrency, 4);
        assert!(parse(&["--help"], &[]).unwrap().is_none());
        assert!(parse(&["--requests"], &[]).is_err());
        assert!(parse(&["--requests", "0"], &[]).is_err());
        assert!(parse(&["--frobnicate"], &[]).is_err());
        let config = parse(&["--rate", "0"], &[]).unwrap().unwrap();
        assert_eq!(config.rate, 0, "0 skips the fixed-rate phase");
        assert!(parse(&["--rate-seconds", "0"], &[]).is_err());
    }

    #[test]
    fn refuses_servers_off_this_machine() {
        for url in [
            "http://127.0.0.1:50051",
            "http://localhost:50051",
            "http://[::1]:50051",
            "postgres://postgres@127.0.0.1:5432/dispatch311",
            "postgres://postgres:secret@localhost/dispatch311",
            "postgres:///dispatch311?host=/var/run/postgresql",
            "redis://127.0.0.1:6379",
            "redis+unix:///tmp/redis.sock",
        ] {
            assert!(ensure_loopback("URL", url).is_ok(), "{url}");
        }
        for url in [
            "http://10.0.0.5:50051",
            "http://intake.example.com:50051",
            "postgres://postgres@db.example.com:5432/dispatch311",
            "postgres://u@127.0.0.1.example.com/x",
            "postgres:///dispatch311?host=db.example.com",
            "redis://:pw@192.168.1.2:6379",
            "not a url",
        ] {
            assert!(ensure_loopback("URL", url).is_err(), "{url}");
        }
    }

    #[tokio::test]
    async fn a_fixed_rate_counts_the_wait_of_requests_held_back() {
        // one at a time, 20 ms each, but due every millisecond: the suite
        // "falls behind" and the later ones wait for the earlier ones
        let stats = fixed_rate(
            1_000,
            10,
            1,
            Instant::now() + Duration::from_secs(30),
            |_| async {
                sleep(Duration::from_millis(20)).await;
                Ok(())
            },
        )
        .await;
        assert_eq!((stats.ok, stats.error_count()), (10, 0));
        assert!(stats.held_back >= 8, "held back {}", stats.held_back);
        // the tenth was due at 9 ms and finished after 10 × 20 ms
        assert!(
            stats.latency.max() >= 150_000,
            "max latency {} µs",
            stats.latency.max()
        );

        let stats = fixed_rate(
            1_000,
            10,
            16,
            Instant::now() + Duration::from_secs(30),
            |index| async move {
                if index == 3 {
                    Err(("Unavailable".into(), "down".into()))
                } else {
                    Ok(())
                }
            },
        )
        .await;
        assert_eq!((stats.ok, stats.error_count(), stats.held_back), (9, 1, 0));
    }

    #[test]
    fn measures_between_server_timestamps() {
        let created = Timestamp {
            seconds: 10,
            nanos: 900_000_000,
        };
        let queued = Timestamp {
            seconds: 11,
            nanos: 100_000_000,
        };
        assert_eq!(between(&created, &queued), Duration::from_millis(200));
        assert_eq!(between(&queued, &created), Duration::ZERO);
    }
}
