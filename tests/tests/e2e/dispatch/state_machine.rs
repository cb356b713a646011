//! A property of the real dispatch service, over random sequences of
//! lifecycle commands sent through its API: a command is accepted only from
//! a state the transition table allows it from, and lands where the table
//! says; a refused command changes nothing (the job and its timeline are as
//! they were) and says why. Each case works a fresh job with a unit of its
//! own; the sequences come from proptest (a failing one is printed whole).

use dispatch311_proto::{
    common::v1::ResolutionCode,
    dispatch::v1::{CancelJobRequest, JobState, ReopenJobRequest},
};
use dispatch311_tests::{
    cad::{
        EMPIRE_STATE, acknowledge, assign, close, close_request, en_route, hydrant_at, offset,
        on_scene, register_unit, snapshot, supervisor,
    },
    suite::{Suite, SuiteOptions},
};
use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use tonic::Code;

/// Random sequences tried, and the longest.
const CASES: usize = 32;
const LONGEST: usize = 12;

#[derive(Debug, Clone, Copy)]
enum Command {
    /// The step the lifecycle takes next from the job's state (so sequences
    /// get deep into it); the others come in any order.
    Next,
    Assign,
    Acknowledge,
    EnRoute,
    OnScene,
    Close(ResolutionCode),
    Cancel,
    Reopen,
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        6 => Just(Command::Next),
        2 => Just(Command::Assign),
        2 => Just(Command::Acknowledge),
        2 => Just(Command::EnRoute),
        2 => Just(Command::OnScene),
        2 => Just(Command::Close(ResolutionCode::ActionTaken)),
        1 => Just(Command::Close(ResolutionCode::PoliceActionNotNecessary)),
        1 => Just(Command::Cancel),
        1 => Just(Command::Reopen),
    ]
}

/// The step the lifecycle takes next from `state`.
fn next(state: JobState) -> Command {
    match state {
        JobState::Queued => Command::Assign,
        JobState::Assigned => Command::Acknowledge,
        JobState::Acknowledged => Command::EnRoute,
        JobState::EnRoute => Command::OnScene,
        JobState::OnScene => Command::Close(ResolutionCode::ActionTaken),
        _ => Command::Reopen,
    }
}

/// Where the transition table lets `command` take a job in `state`; `None`
/// where it forbids it.
fn table(state: JobState, command: Command) -> Option<JobState> {
    use JobState as S;
    let open = [
        S::Queued,
        S::Assigned,
        S::Acknowledged,
        S::EnRoute,
        S::OnScene,
    ];
    match (command, state) {
        (Command::Assign, S::Queued) => Some(S::Assigned),
        (Command::Acknowledge, S::Assigned) => Some(S::Acknowledged),
        (Command::EnRoute, S::Acknowledged) => Some(S::EnRoute),
        (Command::OnScene, S::Acknowledged | S::EnRoute) => Some(S::OnScene),
        (Command::Close(_), S::Acknowledged | S::EnRoute | S::OnScene) => Some(S::Closed),
        (Command::Cancel, state) if open.contains(&state) => Some(S::Cancelled),
        (Command::Reopen, S::Closed) => Some(S::Queued),
        _ => None,
    }
}

#[tokio::test]
async fn a_command_is_accepted_only_where_the_table_allows_and_a_refusal_changes_nothing()
-> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions {
        env: vec![
            ("DISPATCH311_FAST_CLOSURE_SECS".into(), "0".into()),
            ("DISPATCH311_MIN_ON_SCENE_SECS".into(), "0".into()),
        ],
        ..SuiteOptions::default()
    })
    .await?;
    let dispatch = suite.dispatch().await?;
    let mut runner = TestRunner::new(Config::default());
    let sequences = prop::collection::vec(command(), 1..=LONGEST);
    let mut accepted = 0;
    let mut refused = 0;
    for case in 0..CASES {
        let sequence = sequences
            .new_tree(&mut runner)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .current();
        let incident = offset(EMPIRE_STATE, 40.0 * case as f64, 0.0);
        let job = hydrant_at(&suite, incident).await?;
        let officer = format!("O-PROP-{case}");
        let unit = register_unit(
            &dispatch,
            &format!("14-PROP-{case}"),
            "14",
            &[&officer],
            offset(incident, -300.0, 0.0),
        )
        .await?;
        let near = offset(incident, -200.0, 0.0);
        for (step, command) in sequence.iter().enumerate() {
            let before = snapshot(&dispatch, &job.job_id).await?;
            let state = JobState::try_from(before.job.state)?;
            let command = &match *command {
                Command::Next => next(state),
                other => other,
            };
            let what =
                format!("case {case} {sequence:?}, step {step} ({command:?} from {state:?})");
            let answer = match *command {
                Command::Next => unreachable!("resolved above"),
                Command::Assign => assign(&dispatch, &job.job_id, &unit.unit_id).await,
                Command::Acknowledge => acknowledge(&dispatch, &job.job_id, &officer, near).await,
                Command::EnRoute => en_route(&dispatch, &job.job_id, &officer, near).await,
                Command::OnScene => on_scene(&dispatch, &job.job_id, &officer, incident).await,
                Command::Close(code) => {
                    close(
                        &dispatch,
                        close_request(&job.job_id, &officer, code, incident),
                    )
                    .await
                }
                Command::Cancel => dispatch
                    .clone()
                    .cancel_job(CancelJobRequest {
                        actor: supervisor(),
                        job_id: job.job_id.clone(),
                        reason: "the vehicle left before anyone could get there".into(),
                    })
                    .await
                    .map(|answer| answer.into_inner().job.expect("a job")),
                Command::Reopen => dispatch
                    .clone()
                    .reopen_job(ReopenJobRequest {
                        actor: supervisor(),
                        job_id: job.job_id.clone(),
                        reason: "the complainant called again: still blocked".into(),
                        raise_priority: false,
                    })
                    .await
                    .map(|answer| answer.into_inner().job.expect("a job")),
            };
            match answer {
                Ok(after) => {
                    accepted += 1;
                    let landed = JobState::try_from(after.state)?;
                    anyhow::ensure!(
                        table(state, *command) == Some(landed),
                        "{what}: accepted into {landed:?}, the table says {:?}",
                        table(state, *command)
                    );
                }
                Err(status) => {
                    refused += 1;
                    // a forbidden transition is refused as one; an allowed one
                    // may still be refused by an accountability rule
                    let codes: &[Code] = if table(state, *command).is_none() {
                        &[Code::FailedPrecondition]
                    } else {
                        &[Code::FailedPrecondition, Code::InvalidArgument]
                    };
                    anyhow::ensure!(
                        codes.contains(&status.code()) && !status.message().trim().is_empty(),
                        "{what}: refused with {:?} {:?}",
                        status.code(),
                        status.message()
                    );
                    let after = snapshot(&dispatch, &job.job_id).await?;
                    anyhow::ensure!(
                        after.job == before.job && after.events == before.events,
                        "{what}: refused ({}), yet the job changed:\n{:?}\n→ {:?}",
                        status.message(),
                        before.job,
                        after.job
                    );
                }
            }
        }
    }
    assert!(
        accepted > CASES && refused > CASES,
        "the sequences exercised both sides: {accepted} accepted, {refused} refused"
    );
    suite.stop().await
}
