//! Every load-test scenario at tiny sizes against a hub started here: all operations succeed
//! and the result file is well-formed. (Full sizes are for benchmarks: see BENCHMARKS.md.)

use loadtest::scenario::{
    autosave, events, exam, fanout, idle, media, reconnect, relay, soak, Ctx,
};
use proctor_hub::model::UserRole;
use sqlx::PgPool;

use crate::helpers::{spawn_app, TestApp};

async fn ctx(app: &TestApp, dir: &std::path::Path) -> Ctx {
    app.user("lt-admin@example.test", "password-123", UserRole::Admin)
        .await;
    let api = loadtest::api::Api::new(&app.url("")).unwrap();
    let admin = api
        .login_tokens("lt-admin@example.test", "password-123")
        .await
        .unwrap();
    Ctx {
        api,
        admin: admin.access,
        admin_refresh: Some(admin.refresh),
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
            login_email: None,
            login_password: String::new(),
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

/// `--login-email`: the sockets log in as an account that exists (what the Node baseline
/// offers), which the run leaves active.
#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn idle_scenario_as_an_existing_account(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let (_, email, password) = ctx
        .api
        .create_user(&ctx.admin, "PROCTOR", "existing")
        .await
        .unwrap();
    let r = idle::run(
        &ctx,
        idle::IdleArgs {
            sockets: 5,
            ramp_per_sec: 100,
            heartbeat_ms: 200,
            duration_secs: 1,
            login_email: Some(email.clone()),
            login_password: password.clone(),
        },
    )
    .await
    .unwrap();
    assert!(r.all_ok);
    let v = check_result_file(&dir, "idle");
    assert_eq!(v["latencies"][1]["ok"], 5, "every socket connected");
    assert!(
        v["params"].get("loginPassword").is_none() && v["params"].get("login_password").is_none(),
        "the password is not written to the result: {}",
        v["params"]
    );
    // The account is still usable: the run did not deactivate it.
    ctx.api.login(&email, &password).await.unwrap();
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn relay_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = relay::RelayArgs {
        rooms: 3,
        proctors: 2,
        rate: 30,
        duration_secs: 2,
        candidates: 2,
    };
    let r = relay::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "relay");
    assert_eq!(
        v["latencies"][0]["ok"], 60,
        "every round trip came back: {v}"
    );
    assert_eq!(v["latencies"][1]["ok"], 12, "every member joined");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn fanout_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = fanout::FanoutArgs {
        sessions: 4,
        watchers: 3,
        start_rate: 10,
        step_rate: 10,
        max_rate: 20,
        step_secs: 1,
        // Generous: a debug build on a shared machine; the test checks the mechanics.
        p99_bound_ms: 10_000.0,
        candidates: 2,
    };
    let r = fanout::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "fanout");
    let steps = v["params"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{v}");
    assert_eq!(v["params"]["bestEventsPerSec"], 20);
    assert_eq!(v["latencies"][1]["ok"], 30, "every event acked");
    assert_eq!(
        v["latencies"][0]["ok"], 90,
        "every event reached every watcher: {v}"
    );
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn reconnect_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = reconnect::ReconnectArgs {
        clients: 8,
        attempts: 3,
        timeout_secs: 20,
        candidates: 2,
    };
    let r = reconnect::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "reconnect");
    assert_eq!(v["latencies"][0]["ok"], 8, "every client came back");
    assert_eq!(v["params"]["eventsAckedBefore"], 8);
    assert_eq!(v["params"]["eventsAckedAfter"], 8);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn autosave_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = autosave::AutosaveArgs {
        sessions: 4,
        questions: 2,
        rate: 40,
        duration_secs: 2,
        max_in_flight: 16,
        answer_bytes: 64,
        candidates: 2,
    };
    let r = autosave::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "autosave");
    assert_eq!(v["latencies"][0]["ok"], 80, "every save acknowledged");
    let seconds = v["params"]["perSecond"]
        .as_array()
        .expect("a per-second timeline");
    assert!(seconds.len() >= 2, "{seconds:?}");
    let by_second: u64 = seconds.iter().map(|s| s["ok"].as_u64().unwrap()).sum();
    assert_eq!(by_second, 80, "every save falls in one second: {seconds:?}");
    assert!(seconds
        .iter()
        .all(|s| s["p99Ms"].as_f64().unwrap() >= s["p50Ms"].as_f64().unwrap()));
    assert!(v["summary"].as_str().unwrap().contains("p99 by second"));
    let json = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.to_string_lossy().ends_with(".timeline.svg"))
        .expect("a timeline plot");
    assert!(std::fs::metadata(json).unwrap().len() > 0);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn events_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = events::EventsArgs {
        devices: 4,
        rate: 20,
        duration_secs: 2,
        batch: 5,
        candidates: 2,
    };
    let r = events::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "events");
    assert_eq!(v["latencies"][0]["ok"], 40, "every event acked");
    assert!(["ws", "ws+http"].contains(&v["params"]["paths"].as_str().unwrap()));
    assert!(v["params"]["httpProbeStatus"].as_u64().is_some());
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn exam_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = exam::ExamArgs {
        candidates: 3,
        proctors: 2,
        questions: 2,
        arrival_secs: 1,
        exam_secs: 2,
        heartbeat_ms: 300,
        event_every: 2,
        save_every: 1,
    };
    let r = exam::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "exam");
    let by_op = |op: &str| {
        v["latencies"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["op"] == op)
            .unwrap()["ok"]
            .as_u64()
            .unwrap()
    };
    assert_eq!(by_op("submit"), 3);
    assert_eq!(by_op("session-ended"), 6, "laptop and phone told");
    assert_eq!(by_op("proctor saw every submit"), 2);
    assert!(by_op("event") >= 3 && by_op("heartbeat") >= 6);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn media_scenario_tiny(pool: PgPool) {
    // The test hub runs the media relay on a loopback UDP port (helpers::test_config).
    let app = spawn_app(pool).await;
    assert!(app.media_addr.is_some(), "a hub with its media relay");
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = media::MediaArgs {
        publishers: 2,
        subscribers: 2,
        bitrate_kbps: 200,
        packet_bytes: 500,
        keyframe_ms: 500,
        duration_secs: 3,
        setup_timeout_secs: 20,
        candidates: 2,
    };
    let r = media::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "media");
    let p = &v["params"];
    assert_eq!(p["publishersLive"], 2, "{v}");
    assert_eq!(p["subscribersLive"], 4, "{v}");
    assert_eq!(v["latencies"][1]["op"], "first-packet");
    assert_eq!(
        v["latencies"][1]["ok"], 4,
        "every subscriber got a first packet: {v}"
    );
    let per_sub = p["receivedPerSubscriber"].as_array().unwrap();
    assert_eq!(per_sub.len(), 4);
    assert!(
        per_sub.iter().all(|n| n.as_u64().unwrap() > 0),
        "every subscriber received packets of the measured window: {v}"
    );
    assert!(p["packetsExpected"].as_u64().unwrap() >= p["packetsReceived"].as_u64().unwrap());
    assert_eq!(p["foreignPackets"], 0, "no packet crossed rooms: {v}");
    assert!(p["lossPercent"].as_f64().is_some());
    assert!(p["egressOverMedia"].as_f64().unwrap() > 0.0, "{v}");
    assert!(v["hub"]["cpuUsPerOp"].as_f64().is_some());
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn soak_scenario_tiny(pool: PgPool) {
    let app = spawn_app(pool).await;
    let dir = tempdir();
    let ctx = ctx(&app, &dir).await;
    let args = soak::SoakArgs {
        duration_secs: 6,
        window_secs: 2,
        warmup_secs: 0,
        idle_sockets: 6,
        ramp_per_sec: 100,
        heartbeat_ms: 300,
        relay_rooms: 2,
        relay_proctors: 1,
        relay_rate: 20,
        autosave_sessions: 3,
        questions: 2,
        autosave_rate: 20,
        max_in_flight: 8,
        candidates: 2,
    };
    let r = soak::run(&ctx, args).await.unwrap();
    assert!(r.all_ok, "{}", r.summary);
    let v = check_result_file(&dir, "soak");
    let windows = v["params"]["windows"].as_array().unwrap();
    // Windows end at about 2, 4 and 6 s (a stalled machine may merge two).
    assert!((2..=3).contains(&windows.len()), "{v}");
    for w in windows {
        assert!(w["rssBytes"].as_u64().unwrap() > 0, "{w}");
        for load in ["relay", "autosave", "heartbeat"] {
            assert!(w[load]["ok"].as_u64().unwrap() > 0, "{load} in {w}");
            assert!(w[load]["p999Ms"].as_f64().is_some(), "{w}");
        }
    }
    assert!(windows.last().unwrap()["endSecs"].as_f64().unwrap() >= 5.9);
    assert!(v["params"]["rssDriftPctPerHour"].as_f64().is_some(), "{v}");
    assert_eq!(v["latencies"][0]["op"], "relay round-trip");
    assert_eq!(
        v["params"]["relayReceived"], v["params"]["relaySent"],
        "every round trip came back: {v}"
    );
    let timeline = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().ends_with(".timeline.svg"));
    assert!(timeline, "a timeline plot");
    app.stop().await;
}

fn tempdir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ph-loadtest-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
