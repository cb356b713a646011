//! The dispatch path: full job lifecycles (assign → acknowledge → en route →
//! on scene → close) on the jobs the create phase queued, worked by a
//! realistic number of units per precinct, each unit one job at a time as a
//! patrol car would. Prints lifecycles per second and each RPC's latency.

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use dispatch311_proto::{
    common::v1::{GeoPoint, ResolutionCode},
    dispatch::v1::{
        AcknowledgeJobRequest, Actor, AssignJobRequest, CloseJobRequest, ListQueueRequest,
        RegisterUnitRequest, ReportEnRouteRequest, ReportOnSceneRequest, ReportUnitStatusRequest,
        Role, UnitStatus,
    },
};
use dispatch311_tests::acting::Dispatch;
use hdrhistogram::Histogram;
use tokio::{
    sync::Semaphore,
    time::{Instant, timeout_at},
};

use super::{millis, new_histogram};

/// The RPCs of one lifecycle, in order.
const STEPS: [&str; 5] = [
    "AssignJob",
    "AcknowledgeJob",
    "ReportEnRoute",
    "ReportOnScene",
    "CloseJob",
];

/// A queued job to work.
struct QueuedJob {
    job_id: String,
    location: GeoPoint,
}

/// What the phase measured.
pub struct LifecycleFigures {
    pub jobs_found: usize,
    pub units: usize,
    pub completed: u64,
    pub elapsed: Duration,
    pub latency: BTreeMap<&'static str, Histogram<u64>>,
    pub errors: BTreeMap<String, (u64, String)>,
}

/// Works up to `limit` queued jobs of `precincts` with `units_per_precinct`
/// units each and at most `concurrency` lifecycles in flight, until done or
/// `deadline`.
pub async fn run(
    dispatch: Dispatch,
    precincts: Vec<String>,
    units_per_precinct: usize,
    concurrency: usize,
    limit: u64,
    run_id: &str,
    deadline: Instant,
) -> anyhow::Result<LifecycleFigures> {
    // the jobs waiting in each precinct's queue
    let mut queues: HashMap<String, VecDeque<QueuedJob>> = HashMap::new();
    let mut found = 0usize;
    for precinct in &precincts {
        let mut token = String::new();
        loop {
            let page = dispatch
                .clone()
                .list_queue(ListQueueRequest {
                    precinct: precinct.clone(),
                    page_size: 1000,
                    page_token: token,
                })
                .await?
                .into_inner();
            for job in page.jobs {
                if (found as u64) < limit
                    && let Some(location) = job.location
                {
                    queues
                        .entry(precinct.clone())
                        .or_default()
                        .push_back(QueuedJob {
                            job_id: job.job_id,
                            location,
                        });
                    found += 1;
                }
            }
            if page.next_page_token.is_empty() || found as u64 >= limit {
                break;
            }
            token = page.next_page_token;
        }
    }

    // units, standing at their precinct's first incident
    let dispatcher = Actor {
        id: format!("bench-dispatcher-{run_id}"),
        role: Role::Dispatcher as i32,
    };
    let mut units = Vec::new();
    for (precinct, jobs) in &queues {
        let Some(first) = jobs.front() else { continue };
        for n in 0..units_per_precinct {
            let officer = format!("bench-{run_id}-{precinct}-{n}");
            let unit = dispatch
                .clone()
                .register_unit(RegisterUnitRequest {
                    actor: Some(dispatcher.clone()),
                    call_sign: format!("B{run_id}-{precinct}-{n}"),
                    precinct: precinct.clone(),
                    officer_ids: vec![officer.clone()],
                    position: Some(first.location),
                })
                .await?
                .into_inner()
                .unit
                .ok_or_else(|| anyhow::anyhow!("RegisterUnit returned no unit"))?;
            dispatch
                .clone()
                .report_unit_status(ReportUnitStatusRequest {
                    actor: Some(Actor {
                        id: officer.clone(),
                        role: Role::Officer as i32,
                    }),
                    unit_id: unit.unit_id.clone(),
                    status: UnitStatus::Available as i32,
                    position: Some(first.location),
                })
                .await?;
            units.push((precinct.clone(), unit.unit_id, officer));
        }
    }

    let queues: Arc<HashMap<String, Mutex<VecDeque<QueuedJob>>>> = Arc::new(
        queues
            .into_iter()
            .map(|(p, q)| (p, Mutex::new(q)))
            .collect(),
    );
    let in_flight = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut workers = Vec::new();
    let unit_count = units.len();
    for (precinct, unit_id, officer) in units {
        let queues = queues.clone();
        let in_flight = in_flight.clone();
        let dispatch = dispatch.clone();
        let dispatcher = dispatcher.clone();
        workers.push(tokio::spawn(async move {
            let mut figures = WorkerFigures::default();
            loop {
                let next = queues[&precinct].lock().expect("queue lock").pop_front();
                let Some(job) = next else { break };
                let Ok(_permit) = in_flight.acquire().await else {
                    break;
                };
                let officer = Actor {
                    id: officer.clone(),
                    role: Role::Officer as i32,
                };
                match timeout_at(
                    deadline,
                    lifecycle(dispatch.clone(), &dispatcher, &officer, &unit_id, &job),
                )
                .await
                {
                    Err(_) => break,
                    Ok(Ok(steps)) => {
                        figures.completed += 1;
                        for (step, micros) in STEPS.iter().zip(steps) {
                            figures
                                .latency
                                .entry(step)
                                .or_insert_with(new_histogram)
                                .saturating_record(micros);
                        }
                    }
                    Ok(Err((kind, message))) => {
                        figures.errors.entry(kind).or_insert((0, message)).0 += 1;
                    }
                }
            }
            figures
        }));
    }
    let mut total = LifecycleFigures {
        jobs_found: found,
        units: unit_count,
        completed: 0,
        elapsed: Duration::ZERO,
        latency: BTreeMap::new(),
        errors: BTreeMap::new(),
    };
    for worker in workers {
        let figures = worker.await?;
        total.completed += figures.completed;
        for (step, h) in figures.latency {
            total
                .latency
                .entry(step)
                .or_insert_with(new_histogram)
                .add(&h)
                .expect("same bounds");
        }
        for (kind, (count, message)) in figures.errors {
            total.errors.entry(kind).or_insert((0, message)).0 += count;
        }
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

#[derive(Default)]
struct WorkerFigures {
    completed: u64,
    latency: BTreeMap<&'static str, Histogram<u64>>,
    errors: BTreeMap<String, (u64, String)>,
}

/// One job from assignment to closure; the latency of each step in µs, or
/// the step that failed.
async fn lifecycle(
    mut dispatch: Dispatch,
    dispatcher: &Actor,
    officer: &Actor,
    unit_id: &str,
    job: &QueuedJob,
) -> Result<[u64; 5], (String, String)> {
    let mut latency = [0u64; 5];
    let failed = |step: &str, status: tonic::Status| {
        (
            format!("{step} {:?}", status.code()),
            status.message().to_string(),
        )
    };
    let position = Some(job.location);
    let job_id = job.job_id.clone();

    let began = Instant::now();
    dispatch
        .assign_job(AssignJobRequest {
            actor: Some(dispatcher.clone()),
            job_id: job_id.clone(),
            unit_id: unit_id.to_string(),
            reason: String::new(),
        })
        .await
        .map_err(|s| failed(STEPS[0], s))?;
    latency[0] = began.elapsed().as_micros() as u64;

    let began = Instant::now();
    dispatch
        .acknowledge_job(AcknowledgeJobRequest {
            actor: Some(officer.clone()),
            job_id: job_id.clone(),
            position,
        })
        .await
        .map_err(|s| failed(STEPS[1], s))?;
    latency[1] = began.elapsed().as_micros() as u64;

    let began = Instant::now();
    dispatch
        .report_en_route(ReportEnRouteRequest {
            actor: Some(officer.clone()),
            job_id: job_id.clone(),
            position,
        })
        .await
        .map_err(|s| failed(STEPS[2], s))?;
    latency[2] = began.elapsed().as_micros() as u64;

    let began = Instant::now();
    dispatch
        .report_on_scene(ReportOnSceneRequest {
            actor: Some(officer.clone()),
            job_id: job_id.clone(),
            position,
        })
        .await
        .map_err(|s| failed(STEPS[3], s))?;
    latency[3] = began.elapsed().as_micros() as u64;

    let began = Instant::now();
    dispatch
        .close_job(CloseJobRequest {
            actor: Some(officer.clone()),
            job_id,
            resolution_code: ResolutionCode::NoEvidence as i32,
            summons_number: String::new(),
            notes: "benchmark".into(),
            position,
            duplicate_of_sr_number: String::new(),
        })
        .await
        .map_err(|s| failed(STEPS[4], s))?;
    latency[4] = began.elapsed().as_micros() as u64;
    Ok(latency)
}

pub fn print(figures: &LifecycleFigures) {
    let per_second = figures.completed as f64 / figures.elapsed.as_secs_f64().max(1e-9);
    println!(
        "dispatch path: {} lifecycles in {:.2} s = {per_second:.0} lifecycles/s ({:.0} RPCs/s), {} units on {} queued jobs",
        figures.completed,
        figures.elapsed.as_secs_f64(),
        per_second * STEPS.len() as f64,
        figures.units,
        figures.jobs_found
    );
    println!(
        "{:<28} {:>8} {:>8} {:>8} {:>8}",
        "dispatch RPC", "ok", "p50 ms", "p99 ms", "max ms"
    );
    for step in STEPS {
        if let Some(h) = figures.latency.get(step) {
            println!(
                "{step:<28} {:>8} {:>8} {:>8} {:>8}",
                h.len(),
                millis(h.value_at_quantile(0.50)),
                millis(h.value_at_quantile(0.99)),
                millis(h.max())
            );
        }
    }
    for (kind, (count, message)) in &figures.errors {
        let message: String = message.chars().take(120).collect();
        println!("  error {kind:<22} {count:>8}   e.g. {message}");
    }
}
