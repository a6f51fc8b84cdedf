use reqwest::StatusCode;
use sqlx::PgPool;

use crate::helpers::spawn_app;

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn health_ready_and_metrics(pool: PgPool) {
    let app = spawn_app(pool).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["postgres"], "ok");
    assert_eq!(body["redis"], "ok");
    let r = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    assert!(text.contains("hub_http_requests_total"), "{text}");
    let r = app.client.get(app.url("/nope")).send().await.unwrap();
    crate::helpers::assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn readyz_reports_unavailable_postgres(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.state.db.close().await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["postgres"], "unavailable");
    // An API call that needs Postgres answers 503 STORE_UNAVAILABLE with Retry-After.
    let r = app
        .post(
            "/auth/login",
            None,
            serde_json::json!({"email": "a@b.co", "password": "x"}),
        )
        .await;
    assert!(r.headers().contains_key("retry-after"));
    crate::helpers::assert_error(r, StatusCode::SERVICE_UNAVAILABLE, "STORE_UNAVAILABLE").await;
    app.stop().await;
}

/// Migrations apply to an empty database, twice without change, through the same code path as
/// `proctor-hub migrate`; and the CLI's `create-user` creates a user that can log in.
#[tokio::test]
async fn migrate_empty_database_and_cli_create_user() {
    let name = format!("ph_cli_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proctor-hub"))
        .args(["migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proctor-hub"))
        .args(["migrate"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success(), "second migrate is a no-op");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proctor-hub"))
        .args([
            "create-user",
            "--email",
            "Root@Example.test",
            "--name",
            "Root",
            "--password",
            "a-long-password",
            "--role",
            "admin",
        ])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created ADMIN root@example.test"));
    // Duplicate email fails with a clear message.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_proctor-hub"))
        .args([
            "create-user",
            "--email",
            "root@example.test",
            "--name",
            "Root",
            "--password",
            "a-long-password",
            "--role",
            "ADMIN",
        ])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("email exists"));

    let pool = proctor_hub::store::postgres::connect(&url).await.unwrap();
    let (count, migrations): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM _sqlx_migrations WHERE success)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(count, 1);
    assert_eq!(
        migrations as usize,
        proctor_hub::store::postgres::MIGRATOR.iter().count()
    );
    let app = crate::helpers::spawn_app(pool.clone()).await;
    app.login("root@example.test", "a-long-password").await;
    app.stop().await;
    pool.close().await;
    let admin =
        proctor_hub::store::postgres::connect("postgres://postgres@127.0.0.1:5432/postgres")
            .await
            .unwrap();
    sqlx::query(&format!("DROP DATABASE \"{name}\" WITH (FORCE)"))
        .execute(&admin)
        .await
        .unwrap();
}
