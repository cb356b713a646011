//! Tamper evidence against whoever owns the database, end to end: dispatch
//! signs checkpoints of its whole event log with a key PostgreSQL never sees
//! and exports them to the object store. Then, as the PostgreSQL superuser
//! (triggers silenced with `session_replication_role = replica`):
//! - an ON_SCENE position 2 km away is moved to 15 m and every later hash of
//!   the job recomputed with the database's own `job_event_hash`, the job's
//!   anchor updated — the job's chain verifies, the signed checkpoint does not;
//! - a job's last events are deleted and its anchor moved back (truncation);
//! - the whole log is rolled back to an earlier checkpoint.
//!
//! `VerifyJobTimeline` and the auditor's `dispatch311-cli verify-log` (which
//! needs only the verifier key and the exported checkpoints) report each.

use std::time::Duration;

use dispatch311_auth::Role;
use dispatch311_proto::dispatch::v1::{Job, VerifyJobTimelineResponse};
use dispatch311_tests::{
    cad::{
        Dispatch, EMPIRE_STATE, acknowledge, assign, en_route, hydrant_at, offset, on_scene,
        register_unit, verify,
    },
    suite::{CHECKPOINTS_FOLDER, Suite, SuiteOptions, eventually},
};
use sqlx::PgPool;
use uuid::Uuid;

/// A job driven on scene `arrival_north_m` north of the hydrant.
async fn job_on_scene(
    suite: &Suite,
    dispatch: &Dispatch,
    n: usize,
    arrival_north_m: f64,
) -> anyhow::Result<Job> {
    let place = offset(EMPIRE_STATE, 100.0 * n as f64, 0.0);
    let job = hydrant_at(suite, place).await?;
    let officer = format!("O-{n}");
    let unit = register_unit(
        dispatch,
        &format!("14-ADAM-{n}"),
        "14",
        &[officer.as_str()],
        place,
    )
    .await?;
    assign(dispatch, &job.job_id, &unit.unit_id).await?;
    acknowledge(dispatch, &job.job_id, &officer, place).await?;
    en_route(dispatch, &job.job_id, &officer, place).await?;
    on_scene(
        dispatch,
        &job.job_id,
        &officer,
        offset(place, arrival_north_m, 0.0),
    )
    .await?;
    Ok(job)
}

/// Waits until a signed checkpoint covers the whole log as it is now.
async fn checkpointed(suite: &Suite, dispatch: &Dispatch, job_id: &str) -> anyhow::Result<i64> {
    let pool = suite.database().await?;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM dispatch.job_events")
        .fetch_one(&pool)
        .await?;
    eventually(
        Duration::from_secs(20),
        "a checkpoint of the whole log",
        || {
            let dispatch = dispatch.clone();
            async move {
                let report = verify(&dispatch, job_id).await?;
                Ok((report.checkpoint_size >= events).then_some(report.checkpoint_size))
            }
        },
    )
    .await
}

/// The auditor's own check: exit status and what it printed.
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
                checkpoints.to_str().unwrap(),
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

/// As the database's owner: runs `statements` with triggers silenced.
async fn as_superuser(pool: &PgPool, statements: &[String]) -> anyhow::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET LOCAL session_replication_role = replica")
        .execute(&mut *tx)
        .await?;
    for statement in statements {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Recomputes the hashes of `job_id`'s events from `from_sequence` on with
/// the database's own function, and the job's anchor: a consistent chain.
async fn rechain(pool: &PgPool, job_id: Uuid, from_sequence: i64) -> anyhow::Result<()> {
    let last: i64 =
        sqlx::query_scalar("SELECT max(sequence) FROM dispatch.job_events WHERE job_id = $1")
            .bind(job_id)
            .fetch_one(pool)
            .await?;
    let mut statements = Vec::new();
    for sequence in from_sequence..=last {
        statements.push(format!(
            "UPDATE dispatch.job_events e SET \
                previous_hash = coalesce((SELECT p.hash FROM dispatch.job_events p \
                    WHERE p.job_id = e.job_id AND p.sequence = e.sequence - 1), ''), \
                hash = dispatch.job_event_hash(coalesce((SELECT p.hash FROM dispatch.job_events p \
                    WHERE p.job_id = e.job_id AND p.sequence = e.sequence - 1), ''), e.job_id, e.sequence, \
                    e.event_type, e.occurred_at, e.actor, e.actor_role, e.latitude, e.longitude, e.unit_id, e.reason) \
             WHERE e.job_id = '{job_id}' AND e.sequence = {sequence}"
        ));
    }
    statements.push(format!(
        "UPDATE dispatch.jobs j SET (last_event_sequence, last_event_hash) = \
            (SELECT sequence, hash FROM dispatch.job_events e WHERE e.job_id = j.job_id \
             ORDER BY sequence DESC LIMIT 1) WHERE j.job_id = '{job_id}'"
    ));
    as_superuser(pool, &statements).await
}

fn assert_broken(report: &VerifyJobTimelineResponse, words: &str) {
    assert!(!report.intact, "{report:?}");
    assert!(!report.checkpoint_matches, "{report:?}");
    assert!(report.detail.contains(words), "{words:?} not in {report:?}");
}

#[tokio::test]
async fn a_rewritten_and_rechained_event_breaks_the_signed_checkpoint() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let pool = suite.database().await?;

    let job = job_on_scene(&suite, &dispatch, 1, 2_000.0).await?;
    let size = checkpointed(&suite, &dispatch, &job.job_id).await?;
    let before = verify(&dispatch, &job.job_id).await?;
    assert!(before.intact && before.checkpoint_matches, "{before:?}");
    let (ok, text) = verify_log(&suite).await?;
    assert!(ok, "the untouched log verifies: {text}");
    assert!(text.contains(&format!("{size} events")), "{text}");

    // the arrival 2 km away becomes 15 m, and the chain is recomputed to match
    let job_id: Uuid = job.job_id.parse()?;
    let near = offset(EMPIRE_STATE, 100.0 + 15.0, 0.0);
    let sequence: i64 = sqlx::query_scalar(
        "SELECT sequence FROM dispatch.job_events WHERE job_id = $1 AND event_type = 'ON_SCENE'",
    )
    .bind(job_id)
    .fetch_one(&pool)
    .await?;
    as_superuser(
        &pool,
        &[format!(
            "UPDATE dispatch.job_events SET latitude = {}, longitude = {} \
             WHERE job_id = '{job_id}' AND sequence = {sequence}",
            near.latitude, near.longitude
        )],
    )
    .await?;
    rechain(&pool, job_id, sequence).await?;

    let after = verify(&dispatch, &job.job_id).await?;
    assert_eq!(
        after.first_broken_sequence, 0,
        "the job's own chain was recomputed: {after:?}"
    );
    assert_broken(&after, "no longer hash to the signed checkpoint");
    let (ok, text) = verify_log(&suite).await?;
    assert!(!ok, "the auditor's check fails: {text}");
    assert!(
        text.contains("do not hash to the signed checkpoint"),
        "{text}"
    );

    suite.stop().await
}

#[tokio::test]
async fn a_truncated_job_log_and_a_rolled_back_log_are_reported() -> anyhow::Result<()> {
    // truncation: the last two events of the first job, its anchor moved back
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let pool = suite.database().await?;
    let first = job_on_scene(&suite, &dispatch, 1, 10.0).await?;
    job_on_scene(&suite, &dispatch, 2, 10.0).await?;
    checkpointed(&suite, &dispatch, &first.job_id).await?;
    let first_id: Uuid = first.job_id.parse()?;
    as_superuser(
        &pool,
        &[
            format!(
                "DELETE FROM dispatch.event_log WHERE event_id IN (SELECT id FROM dispatch.job_events \
                 WHERE job_id = '{first_id}' ORDER BY sequence DESC LIMIT 2)"
            ),
            format!(
                "DELETE FROM dispatch.job_events WHERE id IN (SELECT id FROM dispatch.job_events \
                 WHERE job_id = '{first_id}' ORDER BY sequence DESC LIMIT 2)"
            ),
        ],
    )
    .await?;
    rechain(&pool, first_id, 1).await?;
    let report = verify(&dispatch, &first.job_id).await?;
    assert_eq!(report.first_broken_sequence, 0, "{report:?}");
    assert!(!report.intact && !report.checkpoint_matches, "{report:?}");
    assert!(
        report.detail.contains("deleted") || report.detail.contains("no longer hash"),
        "{report:?}"
    );
    let (ok, text) = verify_log(&suite).await?;
    assert!(!ok && text.contains("BROKEN"), "{text}");
    suite.stop().await?;

    // rollback: the log as it was at an earlier checkpoint
    let suite = Suite::start(SuiteOptions::default()).await?;
    let dispatch = suite.dispatch().await?;
    let pool = suite.database().await?;
    let first = job_on_scene(&suite, &dispatch, 1, 10.0).await?;
    let earlier = checkpointed(&suite, &dispatch, &first.job_id).await?;
    let second = job_on_scene(&suite, &dispatch, 2, 10.0).await?;
    let later = checkpointed(&suite, &dispatch, &second.job_id).await?;
    assert!(later > earlier);
    as_superuser(
        &pool,
        &[
            format!(
                "DELETE FROM dispatch.job_events WHERE id IN \
                 (SELECT event_id FROM dispatch.event_log WHERE log_index >= {earlier})"
            ),
            format!("DELETE FROM dispatch.event_log WHERE log_index >= {earlier}"),
            "UPDATE dispatch.jobs j SET (last_event_sequence, last_event_hash) = \
                (SELECT coalesce(max(sequence), 0), coalesce((SELECT hash FROM dispatch.job_events e2 \
                 WHERE e2.job_id = j.job_id ORDER BY sequence DESC LIMIT 1), '') \
                 FROM dispatch.job_events e WHERE e.job_id = j.job_id)"
                .to_owned(),
        ],
    )
    .await?;
    let report = verify(&dispatch, &first.job_id).await?;
    assert_eq!(
        report.first_broken_sequence, 0,
        "the first job's chain is whole: {report:?}"
    );
    assert_broken(
        &report,
        &format!("of the {later} events a signed checkpoint vouched for"),
    );
    let (ok, text) = verify_log(&suite).await?;
    assert!(!ok, "{text}");
    assert!(text.contains(&format!("vouched for {later}")), "{text}");

    suite.stop().await
}
