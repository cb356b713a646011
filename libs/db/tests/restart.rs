//! Against the real PostgreSQL: a connection the server terminates, as it
//! does to every connection during a restart (`pg_ctl restart -m fast` sends
//! 57P01 "terminating connection due to administrator command"), is an
//! unavailable database — the services answer UNAVAILABLE with a retry delay,
//! never INTERNAL.

use sqlx::{Connection as _, PgConnection, postgres::PgPoolOptions};

#[tokio::test]
async fn a_connection_the_server_terminates_is_unavailable_not_internal() -> anyhow::Result<()> {
    let url = dispatch311_db::testing::create_database().await?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&url)
        .await?;
    // a connection in use, as in a request being served during the restart
    let mut in_use = pool.acquire().await?;
    let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut *in_use)
        .await?;

    // the server ends it, as a fast shutdown ends every connection
    let mut admin = PgConnection::connect(&url).await?;
    let terminated: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
        .bind(pid)
        .fetch_one(&mut admin)
        .await?;
    assert!(terminated);
    admin.close().await?;

    let error = sqlx::query_scalar::<_, i32>("SELECT 1")
        .fetch_one(&mut *in_use)
        .await
        .expect_err("the terminated connection cannot answer");
    eprintln!("a terminated connection: {error:?}");
    assert!(
        dispatch311_db::is_unavailable(&error),
        "a terminated connection must count as unavailable, got {error:?}"
    );
    drop(in_use);

    // the pool recovers with a new connection
    let one: i32 = sqlx::query_scalar("SELECT 1").fetch_one(&pool).await?;
    assert_eq!(one, 1);
    pool.close().await;
    dispatch311_db::testing::drop_database(&url).await.ok();
    Ok(())
}
