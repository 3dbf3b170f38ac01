//! The fault fixtures themselves: what a killed server keeps, that stop and start work, and
//! that dropping a fixture leaves nothing behind. The binary is named `fault`, so nextest runs
//! these one at a time (the `fault` test group).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use chorus_testkit::fault::{PrivatePostgres, PrivateRedis};
use sqlx::{Connection, PgConnection};

async fn note(url: &str) -> String {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar("SELECT body FROM note WHERE id = 1")
        .fetch_one(&mut conn)
        .await
        .unwrap()
}

fn listed_clusters() -> String {
    let output = Command::new("pg_lsclusters").arg("--no-header").output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[tokio::test]
async fn postgres_keeps_committed_rows_through_a_kill() {
    let mut pg = PrivatePostgres::new().await;
    let url = pg.create_database().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO note VALUES (1, 'committed')")
        .execute(&mut conn)
        .await
        .unwrap();

    pg.kill().await;
    assert!(!pg.is_running());
    assert!(
        sqlx::query("SELECT 1").execute(&mut conn).await.is_err(),
        "an open connection breaks"
    );
    assert!(
        PgConnection::connect(&url).await.is_err(),
        "nothing accepts connections"
    );

    pg.restart().await;
    assert_eq!(note(&url).await, "committed");
}

#[tokio::test]
async fn postgres_stops_and_starts_and_drop_removes_the_cluster() {
    let mut pg = PrivatePostgres::new().await;
    let cluster = pg.cluster().to_owned();
    assert!(listed_clusters().contains(&cluster));
    let url = pg.create_database().await;
    let mut conn = PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE note (id int PRIMARY KEY, body text NOT NULL)")
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query("INSERT INTO note VALUES (1, 'kept')")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    pg.stop().await;
    assert!(PgConnection::connect(&url).await.is_err(), "stopped");
    pg.start().await;
    assert_eq!(note(&url).await, "kept");
    pg.restart().await;
    assert_eq!(note(&url).await, "kept");

    drop(pg);
    assert!(!listed_clusters().contains(&cluster), "{cluster} is dropped");
    assert!(PgConnection::connect(&url).await.is_err(), "and not running");
}

#[tokio::test]
async fn redis_keeps_acknowledged_entries_through_a_kill() {
    let mut redis = PrivateRedis::new().await;
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let id: String = redis::AsyncCommands::xadd(&mut conn, "events", "*", &[("e", "acknowledged")])
        .await
        .unwrap();

    redis.kill().await;
    assert!(!redis.is_running());
    assert!(
        client.get_multiplexed_async_connection().await.is_err(),
        "nothing accepts connections"
    );

    redis.restart().await;
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let entries: redis::streams::StreamRangeReply =
        redis::AsyncCommands::xrange_all(&mut conn, "events").await.unwrap();
    let ids: Vec<&str> = entries.ids.iter().map(|entry| entry.id.as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
}

#[tokio::test]
async fn redis_stops_and_starts_and_drop_removes_its_data() {
    let mut redis = PrivateRedis::new().await;
    let dir = redis.dir().to_owned();
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::AsyncCommands::set(&mut conn, "key", "kept").await.unwrap();

    redis.stop().await;
    assert!(client.get_multiplexed_async_connection().await.is_err(), "stopped");
    redis.start().await;
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let value: String = redis::AsyncCommands::get(&mut conn, "key").await.unwrap();
    assert_eq!(value, "kept");
    drop(conn);

    drop(redis);
    assert!(!dir.exists(), "{} is removed", dir.display());
    assert!(
        client.get_multiplexed_async_connection().await.is_err(),
        "and not running"
    );
}
