//! The closed-request feed under concurrent writers: closures whose
//! transactions commit in the reverse order of their start (so the rows with
//! the lowest ids commit last), interleaved with closures that commit at
//! once and a transaction that rolls back, while a survey system follows the
//! cursor with small pages. Every committed closure must be handed out
//! exactly once, nothing rolled back ever, and a poller starting over must
//! see the same order.
//!
//! The writers insert straight into the survey service's `closures` table,
//! the way its own `closed` consumer does, because only the database can
//! hold transactions open and commit them in a chosen order.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use dispatch311_tests::{
    suite::{Suite, SuiteOptions, eventually},
    survey::Poller,
};
use sqlx::{PgConnection, PgPool};
use tokio_util::sync::CancellationToken;

const WRITERS: usize = 8;
const ROWS_PER_WRITER: usize = 3;

async fn insert_closure(conn: &mut PgConnection, sr_number: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO survey.closures (sr_id, sr_number, closure_number, agency, precinct, borough, \
            complaint_type, descriptor, resolution_code, resolution_text, closed_at, assigned_at, \
            flagged, summons_issued, complainant_consented) \
         VALUES ($1, $2, 1, 'NYPD', '14', 'MANHATTAN', 'Illegal Parking', 'Blocked Hydrant', \
            'NO_EVIDENCE', 'no evidence of the violation', now(), now() - interval '20 minutes', \
            false, false, false)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(sr_number)
    .execute(conn)
    .await?;
    Ok(())
}

async fn insert_now(db: &PgPool, sr_number: &str) -> anyhow::Result<()> {
    let mut conn = db.acquire().await?;
    insert_closure(&mut conn, sr_number).await
}

#[tokio::test]
async fn closures_committing_out_of_order_are_each_handed_out_exactly_once() -> anyhow::Result<()> {
    let suite = Suite::start(SuiteOptions::default()).await?;
    let db = suite.database().await?;

    // the survey system polls all along, with pages smaller than a writer's rows
    let handed_out: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = CancellationToken::new();
    let poller = {
        let mut poller = Poller::new(suite.survey().await?, 2);
        let handed_out = Arc::clone(&handed_out);
        let stop = stop.clone();
        tokio::spawn(async move {
            loop {
                let before = poller.seen.len();
                poller.poll().await?;
                handed_out
                    .lock()
                    .unwrap()
                    .extend(poller.seen[before..].iter().map(|c| c.sr_number.clone()));
                if stop.is_cancelled() {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };

    // writers open in order, each inserting its rows: writer 0 has the oldest
    // transaction and the lowest row ids
    let mut committed: Vec<String> = Vec::new();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let mut tx = db.begin().await?;
        let mut rows = Vec::new();
        for row in 0..ROWS_PER_WRITER {
            let sr_number = format!("FEED-W{writer}-{row}");
            insert_closure(&mut tx, &sr_number).await?;
            rows.push(sr_number);
        }
        writers.push((tx, rows));
    }
    let mut aborted = db.begin().await?;
    for row in 0..2 {
        insert_closure(&mut aborted, &format!("FEED-ABORTED-{row}")).await?;
    }
    let mut aborted = Some(aborted);

    // commit newest first, with closures committing at once in between and
    // the poller running through every gap
    let oldest_last = writers.len() - 1;
    for (n, (tx, rows)) in writers.into_iter().rev().enumerate() {
        let quick = format!("FEED-AUTO-{n}");
        insert_now(&db, &quick).await?;
        committed.push(quick);
        tokio::time::sleep(Duration::from_millis(120)).await;
        if n == WRITERS / 2
            && let Some(aborted) = aborted.take()
        {
            aborted.rollback().await?;
        }
        if n == oldest_last {
            // everything committed so far is younger than the oldest writer,
            // which could still commit rows behind it: none may be out yet
            let early: Vec<String> = handed_out.lock().unwrap().clone();
            assert!(
                early.is_empty(),
                "closures handed out while an older transaction was still open: {early:?}"
            );
        }
        tx.commit().await?;
        committed.extend(rows);
    }

    let expected: BTreeSet<String> = committed.iter().cloned().collect();
    assert_eq!(expected.len(), WRITERS * ROWS_PER_WRITER + WRITERS);
    eventually(
        Duration::from_secs(20),
        "the poller to be handed every committed closure",
        || {
            let handed_out = Arc::clone(&handed_out);
            let expected = expected.clone();
            async move {
                let seen: BTreeSet<String> = handed_out.lock().unwrap().iter().cloned().collect();
                Ok(expected.is_subset(&seen).then_some(()))
            }
        },
    )
    .await?;
    // a few more rounds: a repeat would show up now
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.cancel();
    poller.await??;

    let handed_out = handed_out.lock().unwrap().clone();
    let mut times: HashMap<&str, usize> = HashMap::new();
    for sr_number in &handed_out {
        *times.entry(sr_number.as_str()).or_default() += 1;
    }
    let repeated: Vec<_> = times.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        repeated.is_empty(),
        "handed out more than once: {repeated:?}"
    );
    let missing: Vec<_> = expected
        .iter()
        .filter(|sr| !times.contains_key(sr.as_str()))
        .collect();
    assert!(missing.is_empty(), "never handed out: {missing:?}");
    assert!(
        !handed_out.iter().any(|sr| sr.contains("ABORTED")),
        "a rolled-back closure was handed out: {handed_out:?}"
    );
    assert_eq!(handed_out.len(), expected.len());

    // the order is stable: a poller starting over sees the same sequence
    let mut fresh = Poller::new(suite.survey().await?, 1000);
    fresh.poll().await?;
    let replayed: Vec<String> = fresh.seen.iter().map(|c| c.sr_number.clone()).collect();
    assert_eq!(replayed, handed_out, "a second poller saw another order");

    // nothing new: the cursor stays where it is
    let cursor = fresh.cursor.clone();
    assert_eq!(fresh.poll().await?, 0);
    assert_eq!(fresh.cursor, cursor);

    suite.stop().await
}

#[tokio::test]
async fn a_cursor_that_was_not_handed_out_is_refused() -> anyhow::Result<()> {
    use dispatch311_proto::survey::v1::ListClosedRequestsRequest;
    use tonic::Code;
    use tonic_types::StatusExt as _;

    let suite = Suite::start(SuiteOptions::default()).await?;
    let mut survey = suite.survey().await?;
    for (cursor, page_size) in [("not-a-cursor", 10), ("", -1)] {
        let refused = survey
            .list_closed_requests(ListClosedRequestsRequest {
                cursor: cursor.to_string(),
                page_size,
            })
            .await
            .expect_err("a bad request is refused");
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        let field = &refused
            .get_details_bad_request()
            .expect("field violations")
            .field_violations[0]
            .field;
        assert_eq!(field, if page_size < 0 { "page_size" } else { "cursor" });
    }
    // an empty feed: an empty page and the cursor unchanged
    let page = survey
        .list_closed_requests(ListClosedRequestsRequest {
            cursor: String::new(),
            page_size: 0,
        })
        .await?
        .into_inner();
    assert!(page.closed_requests.is_empty());
    assert_eq!(page.next_cursor, "");
    suite.stop().await
}
