//! Every load-test scenario at tiny sizes against a hub started here: all operations succeed
//! and the result file is well-formed. (Full sizes are for benchmarks: see BENCHMARKS.md.)

use loadtest::scenario::{idle, Ctx};
use proctor_hub::model::UserRole;
use sqlx::PgPool;

use crate::helpers::{spawn_app, TestApp};

async fn ctx(app: &TestApp, dir: &std::path::Path) -> Ctx {
    app.user("lt-admin@example.test", "password-123", UserRole::Admin)
        .await;
    let api = loadtest::api::Api::new(&app.url("")).unwrap();
    let admin = api
        .login("lt-admin@example.test", "password-123")
        .await
        .unwrap();
    Ctx {
        api,
        admin,
        hub_pid: Some(std::process::id()),
        out: dir.to_path_buf(),
        run_id: "test".into(),
        command: "test".into(),
        quiet: true,
    }
}

fn check_result_file(dir: &std::path::Path, scenario: &str) -> serde_json::Value {
    let file = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "json")
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(scenario)
        })
        .expect("a result file");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(v["scenario"], scenario);
    assert_eq!(v["allOk"], true, "{v}");
    assert!(v["summary"].as_str().unwrap().starts_with(scenario));
    assert!(v["latencies"][0]["ok"].as_u64().unwrap() > 0, "{v}");
    assert!(file.with_extension("svg").exists(), "a latency plot");
    v
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn idle_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let r = idle::run(
        &ctx,
        idle::IdleArgs {
            sockets: 20,
            ramp_per_sec: 200,
            heartbeat_ms: 200,
            duration_secs: 2,
        },
    )
    .await
    .unwrap();
    assert!(r.all_ok);
    let v = check_result_file(&dir, "idle");
    assert_eq!(v["latencies"][1]["ok"], 20, "every socket connected");
    assert!(v["hub"]["cpuUsPerOp"].as_f64().is_some());
    app.stop().await;
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ph-loadtest-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
