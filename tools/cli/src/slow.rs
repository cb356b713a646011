//! `dispatch311-cli slow`: the slow-dispatch finder, for an SRE on call. Lists
//! the jobs whose chosen step took longest (or has been waiting longest),
//! with each step's duration and the trace ids to open.

use std::fmt::Write as _;

use dispatch311_proto::dispatch::v1::{
    JobState, LifecycleStep, ListSlowJobsRequest, ListSlowJobsResponse, SlowJob,
};

/// The step to rank jobs by, as the command line names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Step {
    /// routed → queued in dispatch
    Queued,
    /// queued → assigned to a unit
    Assigned,
    /// assigned → acknowledged
    Acknowledged,
    /// assigned → en route
    EnRoute,
    /// assigned → on scene
    OnScene,
    /// assigned → closed
    Closed,
}

impl Step {
    fn proto(self) -> LifecycleStep {
        match self {
            Step::Queued => LifecycleStep::Queued,
            Step::Assigned => LifecycleStep::Assigned,
            Step::Acknowledged => LifecycleStep::Acknowledged,
            Step::EnRoute => LifecycleStep::EnRoute,
            Step::OnScene => LifecycleStep::OnScene,
            Step::Closed => LifecycleStep::Closed,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct SlowArgs {
    /// The step to rank by.
    #[arg(long, value_enum)]
    pub step: Step,
    /// Only steps that took (or have waited) at least this long: 90s, 2m, 1h, 1d.
    #[arg(long, value_parser = duration, default_value = "0s")]
    pub over: prost_types::Duration,
    /// Only steps that began this long ago or less.
    #[arg(long, value_parser = duration, default_value = "1h")]
    pub since: prost_types::Duration,
    /// One precinct, e.g. 14 (default: all).
    #[arg(long, default_value = "")]
    pub precinct: String,
    /// Jobs per page.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..=1_000))]
    pub limit: i32,
    /// The token a previous page printed, for the next one.
    #[arg(long, default_value = "")]
    pub page_token: String,
}

impl SlowArgs {
    pub fn request(&self) -> ListSlowJobsRequest {
        ListSlowJobsRequest {
            step: self.step.proto() as i32,
            over: Some(self.over),
            since: Some(self.since),
            precinct: self.precinct.trim().to_owned(),
            page_size: self.limit,
            page_token: self.page_token.clone(),
        }
    }
}

/// "90s", "2m", "1h", "1d" (or several: "1h30m").
pub fn duration(text: &str) -> Result<prost_types::Duration, String> {
    let mut seconds: i64 = 0;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3_600,
            'd' => 86_400,
            _ => return Err(format!("{text:?}: a duration such as 90s, 2m, 1h or 1d")),
        };
        let value: i64 = number
            .parse()
            .map_err(|_| format!("{text:?}: a number before each unit, e.g. 2m"))?;
        seconds = seconds.saturating_add(value.saturating_mul(unit));
        number.clear();
    }
    if !number.is_empty() || text.trim().is_empty() {
        return Err(format!("{text:?}: give a unit, e.g. 2m"));
    }
    Ok(prost_types::Duration { seconds, nanos: 0 })
}

/// The page as text: one line per job, slowest first, then its steps and traces.
pub fn show(step: Step, response: &ListSlowJobsResponse) -> String {
    if response.jobs.is_empty() {
        return "no job matches\n".to_owned();
    }
    let mut out = String::new();
    for job in &response.jobs {
        let _ = writeln!(
            out,
            "{}  precinct {}  {}  {} {}{}",
            job.sr_number,
            job.precinct,
            state_name(job.state()),
            step_label(step.proto()),
            took(job.step_duration.as_ref()),
            if job.waiting {
                " so far, still waiting"
            } else {
                ""
            },
        );
        let _ = writeln!(out, "    steps:  {}", steps(job));
        let _ = writeln!(out, "    traces: request {}", or_dash(&job.origin_trace_id));
        for timing in &job.steps {
            if !timing.trace_id.is_empty() && timing.trace_id != job.origin_trace_id {
                let _ = writeln!(
                    out,
                    "            {} {}",
                    step_label(timing.step()),
                    timing.trace_id
                );
            }
        }
    }
    if !response.next_page_token.is_empty() {
        let _ = writeln!(out, "more: --page-token {}", response.next_page_token);
    }
    out
}

fn steps(job: &SlowJob) -> String {
    job.steps
        .iter()
        .map(|timing| {
            format!(
                "{} {}",
                step_label(timing.step()),
                took(timing.duration.as_ref())
            )
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn step_label(step: LifecycleStep) -> &'static str {
    match step {
        LifecycleStep::Unspecified => "?",
        LifecycleStep::Queued => "queued",
        LifecycleStep::Assigned => "assigned",
        LifecycleStep::Acknowledged => "acknowledged",
        LifecycleStep::EnRoute => "en route",
        LifecycleStep::OnScene => "on scene",
        LifecycleStep::Closed => "closed",
    }
}

fn state_name(state: JobState) -> &'static str {
    state.as_str_name().trim_start_matches("JOB_STATE_")
}

/// "0.4s", "3m 05s", "2h 10m".
fn took(duration: Option<&prost_types::Duration>) -> String {
    let Some(d) = duration else {
        return "-".to_owned();
    };
    let seconds = d.seconds as f64 + f64::from(d.nanos) / 1e9;
    match d.seconds {
        s if s < 60 => format!("{seconds:.1}s"),
        s if s < 3_600 => format!("{}m {:02}s", s / 60, s % 60),
        s => format!("{}h {:02}m", s / 3_600, (s % 3_600) / 60),
    }
}

fn or_dash(text: &str) -> &str {
    if text.is_empty() { "-" } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(duration("90s").unwrap().seconds, 90);
        assert_eq!(duration("2m").unwrap().seconds, 120);
        assert_eq!(duration("1h30m").unwrap().seconds, 5_400);
        assert_eq!(duration("1d").unwrap().seconds, 86_400);
        assert!(duration("2").is_err());
        assert!(duration("m").is_err());
        assert!(duration("2 weeks").is_err());
        assert!(duration("").is_err());
    }

    #[test]
    fn steps_read_as_minutes_and_hours() {
        let d = |seconds, nanos| prost_types::Duration { seconds, nanos };
        assert_eq!(took(Some(&d(0, 400_000_000))), "0.4s");
        assert_eq!(took(Some(&d(185, 0))), "3m 05s");
        assert_eq!(took(Some(&d(7_800, 0))), "2h 10m");
    }
}
