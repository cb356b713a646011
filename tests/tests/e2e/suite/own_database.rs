//! A city can put one service on a database of its own
//! (`DISPATCH311_<SERVICE>_DATABASE_URL`, falling back to the shared
//! `DATABASE_URL`): dispatch then keeps its schema there, the others stay in
//! the shared database, and a request still goes from filing to its precinct
//! queue.

use dispatch311_tests::{
    cad::{EMPIRE_STATE, hydrant_at},
    suite::{Suite, SuiteOptions},
};

/// The dispatch311 schemas a database holds.
async fn schemas_in(url: &str) -> anyhow::Result<Vec<String>> {
    let pool = sqlx::PgPool::connect(url).await?;
    let schemas = sqlx::query_scalar(
        "SELECT nspname::text FROM pg_namespace \
         WHERE nspname IN ('intake', 'routing', 'dispatch', 'survey') ORDER BY nspname",
    )
    .fetch_all(&pool)
    .await?;
    pool.close().await;
    Ok(schemas)
}

#[tokio::test]
async fn dispatch_on_a_database_of_its_own_still_queues_every_request() -> anyhow::Result<()> {
    let own = dispatch311_db::testing::create_database().await?;
    let suite = Suite::start(SuiteOptions {
        env: vec![("DISPATCH311_DISPATCH_DATABASE_URL".into(), own.clone())],
        ..SuiteOptions::default()
    })
    .await?;

    let job = hydrant_at(&suite, EMPIRE_STATE).await?;
    assert_eq!(job.precinct, "14");
    assert_eq!(schemas_in(&own).await?, ["dispatch"]);
    assert_eq!(
        schemas_in(&suite.database_url).await?,
        ["intake", "routing", "survey"]
    );

    suite.stop().await?;
    dispatch311_db::testing::drop_database(&own).await
}
