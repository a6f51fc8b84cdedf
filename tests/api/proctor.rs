use std::collections::HashSet;
use std::time::Duration;

use proctor_hub::model::{Role, UserRole};
use proctor_hub::state::HubSignal;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::helpers::{
    assert_error, exam_body, published_exam, published_exam_with, sessions_in_sql, spawn_app,
    spawn_app_with,
};

/// Every signal already sent (senders signal before their call returns).
fn drain(rx: &mut broadcast::Receiver<HubSignal>) -> Vec<HubSignal> {
    let mut out = vec![];
    loop {
        match rx.try_recv() {
            Ok(s) => out.push(s),
            Err(broadcast::error::TryRecvError::Lagged(n)) => panic!("lagged {n}"),
            Err(_) => return out,
        }
    }
}

fn endings(signals: &[HubSignal]) -> Vec<Uuid> {
    signals
        .iter()
        .filter_map(|s| match s {
            HubSignal::SessionEnded { session_id, .. } => Some(*session_id),
            _ => None,
        })
        .collect()
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn staff_actions(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    let mut rx = app.state.signals.subscribe();
    let path = format!("/sessions/{id}/actions");

    // The exam's session list, with the liveness seam.
    let list: Value = app
        .get(&format!("/exams/{}/sessions", fx.exam_id), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    let item = &list["items"][0];
    assert_eq!(item["id"], id.to_string());
    assert_eq!(item["candidate"]["id"], fx.candidate_id.to_string());
    assert!(item["candidate"]["email"].is_string());
    assert_eq!(item["status"], "STARTED");
    assert_eq!(item["reviewDecision"], "PENDING");
    assert_eq!(item["violationScore"], 0.0);
    // In progress with no heartbeat: the laptop is lost; no phone paired: unknown.
    assert_eq!(
        item["liveness"],
        json!({"laptop": "LOST", "mobile": "UNKNOWN"})
    );
    // A live heartbeat key (as the hub writes them) reads online.
    let mut conn = app.state.redis.clone();
    let _: () = redis::cmd("SET")
        .arg(app.state.keys.heartbeat(id, "laptop"))
        .arg(1)
        .arg("EX")
        .arg(15)
        .query_async(&mut conn)
        .await
        .unwrap();
    let list: Value = app
        .get(&format!("/exams/{}/sessions", fx.exam_id), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"][0]["liveness"]["laptop"], "ONLINE");
    assert_error(
        app.get(
            &format!("/exams/{}/sessions", fx.exam_id),
            Some(&fx.candidate),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    let a = app
        .post_ok(
            &path,
            &proctor,
            json!({"actionType": "WARN", "reason": "eyes on screen"}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(a["actionType"], "WARN");
    assert_eq!(a["sessionId"], id.to_string());
    assert!(drain(&mut rx).contains(&HubSignal::Warn {
        session_id: id,
        message: "eyes on screen".into()
    }));

    for bad in [
        json!({"minutes": 0}),
        json!({"minutes": 601}),
        json!({}),
        json!({"minutes": "5"}),
    ] {
        let r = app
            .post(
                &path,
                Some(&proctor),
                json!({"actionType": "EXTEND_TIME", "reason": "", "payload": bad}),
            )
            .await;
        let b = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(b["error"]["field"], "payload.minutes");
    }
    let r = app
        .post(
            &path,
            Some(&proctor),
            json!({"actionType": "NUKE", "reason": ""}),
        )
        .await;
    let b = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(b["error"]["field"], "actionType");

    let before: chrono::DateTime<chrono::Utc> = s["expiresAt"].as_str().unwrap().parse().unwrap();
    app.post_ok(
        &path,
        &proctor,
        json!({"actionType": "EXTEND_TIME", "reason": "outage", "payload": {"minutes": 15}}),
        StatusCode::CREATED,
    )
    .await;
    let after: Value = app
        .get(&format!("/sessions/{id}"), Some(&fx.candidate))
        .await
        .json()
        .await
        .unwrap();
    let after: chrono::DateTime<chrono::Utc> =
        after["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!((after - before).num_minutes(), 15);
    assert!(drain(&mut rx).contains(&HubSignal::TimeExtended {
        session_id: id,
        exam_id: fx.exam_id,
        expires_at: after,
    }));

    sqlx::query(
        "UPDATE sessions SET mobile_socket_id = 'sock', mobile_paired_at = now() WHERE id = $1",
    )
    .bind(id)
    .execute(&app.state.db)
    .await
    .unwrap();
    app.post_ok(
        &path,
        &proctor,
        json!({"actionType": "UNPAIR_MOBILE", "reason": "wrong phone"}),
        StatusCode::CREATED,
    )
    .await;
    assert!(drain(&mut rx).contains(&HubSignal::UnpairMobile { session_id: id }));
    let paired: Option<String> =
        sqlx::query_scalar("SELECT mobile_socket_id FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert!(paired.is_none());

    app.post_ok(
        &path,
        &proctor,
        json!({"actionType": "TERMINATE", "reason": "second person"}),
        StatusCode::CREATED,
    )
    .await;
    let signals = drain(&mut rx);
    assert!(
        signals.contains(&HubSignal::SessionEnded {
            session_id: id,
            exam_id: fx.exam_id,
            status: proctor_hub::model::SessionStatus::Terminated,
            reason: "second person".into()
        }),
        "{signals:?}"
    );
    for t in ["TERMINATE", "WARN"] {
        let r = app
            .post(
                &path,
                Some(&proctor),
                json!({"actionType": t, "reason": ""}),
            )
            .await;
        assert_error(r, StatusCode::CONFLICT, "SESSION_CLOSED").await;
    }
    let r = app
        .post(
            &path,
            Some(&proctor),
            json!({"actionType": "EXTEND_TIME", "reason": "", "payload": {"minutes": 5}}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_CLOSED").await;
    // The candidate's submit now reports the termination.
    let sub = app
        .post_ok(
            &format!("/sessions/{id}/submit"),
            &fx.candidate,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(sub["status"], "TERMINATED");

    // Four actions recorded (refused ones rolled back); paginated.
    let page: Value = app
        .get(&format!("{path}?limit=3"), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let cursor = page["nextCursor"].as_str().unwrap();
    let rest: Value = app
        .get(&format!("{path}?limit=3&cursor={cursor}"), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest["items"][0]["actionType"], "TERMINATE");
    assert!(rest["nextCursor"].is_null());
    assert_error(
        app.get(&path, Some(&fx.candidate)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.post(
            &format!("/sessions/{}/actions", Uuid::new_v4()),
            Some(&proctor),
            json!({"actionType": "WARN", "reason": ""}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn review_rules(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap();
    let path = format!("/sessions/{id}/review");
    let r = app
        .post(
            &path,
            Some(&proctor),
            json!({"decision": "APPROVED", "reason": "fine"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_NOT_ENDED").await;
    app.post_ok(
        &format!("/sessions/{id}/submit"),
        &fx.candidate,
        json!({}),
        StatusCode::OK,
    )
    .await;
    for bad in ["PENDING", "MAYBE"] {
        let r = app
            .post(
                &path,
                Some(&proctor),
                json!({"decision": bad, "reason": ""}),
            )
            .await;
        let b = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        assert_eq!(b["error"]["field"], "decision");
    }
    assert_error(
        app.post(
            &path,
            Some(&fx.candidate),
            json!({"decision": "APPROVED", "reason": ""}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let v = app
        .post_ok(
            &path,
            &proctor,
            json!({"decision": "REJECTED", "reason": "phone visible"}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(v["reviewDecision"], "REJECTED");
    assert_eq!(v["reviewReason"], "phone visible");
    let r = app
        .post(
            &path,
            Some(&fx.admin),
            json!({"decision": "APPROVED", "reason": "override"}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "REVIEW_ALREADY_DECIDED").await;
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM admin_actions WHERE action_type = 'REVIEW'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(n, 1);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn grading_arithmetic(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap();
    let save = |q: Uuid, response: Value| {
        let path = format!("/sessions/{id}/answers/{q}");
        let app = &app;
        let t = fx.candidate.clone();
        async move {
            assert_eq!(
                app.put(&path, Some(&t), json!({"response": response, "version": 1}))
                    .await
                    .status(),
                StatusCode::OK
            )
        }
    };
    save(fx.mcq, json!({"selected": ["b"]})).await;
    save(fx.mcq_multi, json!({"selected": ["c", "a"]})).await;
    save(fx.coding, json!({"language": "python", "code": "print(1)"})).await;
    let grades = format!("/sessions/{id}/grades");
    let r = app
        .put(
            &grades,
            Some(&fx.admin),
            json!({"grades": [{"questionId": fx.coding, "points": 1}]}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_NOT_ENDED").await;
    assert_error(
        app.get(&format!("/sessions/{id}/score"), Some(&proctor))
            .await,
        StatusCode::CONFLICT,
        "SESSION_NOT_ENDED",
    )
    .await;
    app.post_ok(
        &format!("/sessions/{id}/submit"),
        &fx.candidate,
        json!({}),
        StatusCode::OK,
    )
    .await;

    let score: Value = app
        .get(&format!("/sessions/{id}/score"), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        score,
        json!({"objectiveScore": 5.0, "subjectiveScore": 0.0, "finalScore": 5.0, "gradedAt": null})
    );

    let bad: Vec<(Value, &str)> = vec![
        (
            json!([{"questionId": fx.coding, "points": 6}]),
            "grades[0].points",
        ),
        (
            json!([{"questionId": fx.coding, "points": -1}]),
            "grades[0].points",
        ),
        (
            json!([{"questionId": fx.mcq, "points": 1}]),
            "grades[0].questionId",
        ),
        (
            json!([{"questionId": Uuid::new_v4(), "points": 1}]),
            "grades[0].questionId",
        ),
        (
            json!([{"questionId": fx.subjective, "points": 2}]),
            "grades[0].points",
        ),
        (
            json!([{"questionId": fx.coding, "points": 1}, {"questionId": fx.coding, "points": 1}]),
            "grades[1].questionId",
        ),
        (
            json!([{"questionId": fx.coding, "points": "4"}]),
            "grades[0].points",
        ),
        (json!([]), "grades"),
    ];
    for (g, field) in bad {
        let r = app
            .put(&grades, Some(&fx.admin), json!({"grades": g}))
            .await;
        let b = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
        let got = b["error"]["field"].as_str().unwrap();
        assert!(got == field || got.starts_with(field), "{field}: {got}");
    }
    assert_error(
        app.put(
            &grades,
            Some(&proctor),
            json!({"grades": [{"questionId": fx.coding, "points": 1}]}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;

    let r = app
        .put(
            &grades,
            Some(&fx.admin),
            json!({"grades": [{"questionId": fx.coding, "points": 4.5}]}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let sc: Value = r.json().await.unwrap();
    assert_eq!(sc["subjectiveScore"], 4.5);
    assert_eq!(sc["finalScore"], 9.5);
    assert!(
        sc["gradedAt"].is_null(),
        "the subjective question is not graded yet"
    );
    // The unanswered subjective question may be graded 0: now everything is graded.
    let sc: Value = app
        .put(
            &grades,
            Some(&fx.admin),
            json!({"grades": [{"questionId": fx.subjective, "points": 0}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sc["finalScore"], 9.5);
    assert!(sc["gradedAt"].is_string());
    // Staff read each grade back with the session; the candidate does not.
    let staff_view: Value = app
        .get(&format!("/sessions/{id}"), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(staff_view["grades"][fx.coding.to_string()]["points"], 4.5);
    assert_eq!(
        staff_view["grades"][fx.subjective.to_string()]["points"],
        0.0
    );
    assert!(staff_view["grades"][fx.coding.to_string()]["gradedBy"].is_string());
    let own_view: Value = app
        .get(&format!("/sessions/{id}"), Some(&fx.candidate))
        .await
        .json()
        .await
        .unwrap();
    assert!(own_view.get("grades").is_none(), "{own_view}");
    // Re-grading replaces and is audited.
    let sc: Value = app
        .put(
            &grades,
            Some(&fx.admin),
            json!({"grades": [{"questionId": fx.coding, "points": 5}]}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(sc["subjectiveScore"], 5.0);
    assert_eq!(sc["finalScore"], 10.0);
    assert!(sc["gradedAt"].is_string());
    let got: Value = app
        .get(&format!("/sessions/{id}/score"), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got, sc);
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM admin_actions WHERE action_type = 'GRADE'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(n, 3);
    // The placeholder row of the unanswered question is not an answer on the candidate side.
    let body: Value = app
        .get(&format!("/sessions/{id}"), Some(&fx.candidate))
        .await
        .json()
        .await
        .unwrap();
    assert!(body["answers"].get(fx.subjective.to_string()).is_none());
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn manual_submits_racing_sweepers_end_each_session_once(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.exams.sweep_interval = Duration::from_millis(20)).await;
    let fx = published_exam_with(&app, exam_body(1, false), false).await;
    let mut rx = app.state.signals.subscribe();
    let sessions = sessions_in_sql(&app, fx.exam_id, 100, -60).await;
    let submits = sessions.iter().map(|(sid, cid)| {
        let token = app.state.jwt.issue(*cid, Role::Candidate, None).unwrap();
        let path = format!("/sessions/{sid}/submit");
        let app = &app;
        async move {
            let r = app.post(&path, Some(&token), json!({})).await;
            assert_eq!(r.status(), StatusCode::OK);
            r.json::<Value>().await.unwrap()
        }
    });
    let state = app.state.clone();
    let (answers, a, b) = tokio::join!(
        futures::future::join_all(submits),
        proctor_hub::jobs::sweeper::sweep_once(&state),
        proctor_hub::jobs::sweeper::sweep_once(&state),
    );
    a.unwrap();
    b.unwrap();
    for ans in &answers {
        assert!(
            ans["status"] == "SUBMITTED" || ans["status"] == "AUTO_SUBMITTED",
            "{ans}"
        );
    }
    let ended = endings(&drain(&mut rx));
    assert_eq!(ended.len(), 100, "exactly one ending per session");
    let distinct: HashSet<Uuid> = ended.into_iter().collect();
    assert_eq!(distinct.len(), 100);
    let (started, scores): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM sessions WHERE status = 'STARTED'), (SELECT count(*) FROM scores)",
    ).fetch_one(&app.state.db).await.unwrap();
    assert_eq!((started, scores), (0, 100));
    // Each reported ending is the stored one.
    for ((sid, _), ans) in sessions.iter().zip(&answers) {
        let status: String = sqlx::query_scalar("SELECT status::text FROM sessions WHERE id = $1")
            .bind(sid)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
        assert_eq!(ans["status"], status);
    }
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn parallel_sweepers_never_double_end_and_spare_live_sessions(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.exams.sweep_interval = Duration::from_secs(3600)).await;
    let fx = published_exam(&app).await;
    let mut rx = app.state.signals.subscribe();
    let expired = sessions_in_sql(&app, fx.exam_id, 100, -60).await;
    let live = sessions_in_sql(&app, fx.exam_id, 5, 600).await;
    let state = app.state.clone();
    let (a, b, c) = tokio::join!(
        proctor_hub::jobs::sweeper::sweep_once(&state),
        proctor_hub::jobs::sweeper::sweep_once(&state),
        proctor_hub::jobs::sweeper::sweep_once(&state),
    );
    let swept = a.unwrap() + b.unwrap() + c.unwrap();
    let ended = endings(&drain(&mut rx));
    assert_eq!(ended.len(), 100);
    assert_eq!(swept, 100);
    let distinct: HashSet<Uuid> = ended.iter().copied().collect();
    let expected: HashSet<Uuid> = expired.iter().map(|(s, _)| *s).collect();
    assert_eq!(distinct, expected);
    for (sid, _) in &live {
        let status: String = sqlx::query_scalar("SELECT status::text FROM sessions WHERE id = $1")
            .bind(sid)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
        assert_eq!(status, "STARTED");
    }
    let reason: String = sqlx::query_scalar("SELECT ended_reason FROM sessions WHERE id = $1")
        .bind(expired[0].0)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(reason, "time is up");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn sweeper_auto_submits_at_start_up_and_on_its_interval(pool: PgPool) {
    // Sessions that expired while no hub ran end at start-up.
    let pre = spawn_app_with(pool.clone(), |c| {
        c.exams.sweep_interval = Duration::from_secs(3600)
    })
    .await;
    let fx = published_exam_with(&pre, exam_body(1, false), false).await;
    let s = fx.start(&pre, &fx.candidate).await;
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    let r = pre
        .put(
            &format!("/sessions/{id}/answers/{}", fx.mcq),
            Some(&fx.candidate),
            json!({"response": {"selected": ["b"]}, "version": 1}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    pre.stop().await;
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(id)
        .execute(&pool)
        .await
        .unwrap();
    let app = spawn_app_with(pool, |c| c.exams.sweep_interval = Duration::from_secs(3600)).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status: String = sqlx::query_scalar("SELECT status::text FROM sessions WHERE id = $1")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
        if status == "AUTO_SUBMITTED" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "start-up sweep did not run"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Scored on the way out (MCQ-only exam: graded at once).
    let score: Value = app
        .get(&format!("/sessions/{id}/score"), Some(&fx.admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(score["objectiveScore"], 2.0);
    assert!(score["gradedAt"].is_string());
    let sub = app
        .post_ok(
            &format!("/sessions/{id}/submit"),
            &fx.candidate,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(
        sub["status"], "AUTO_SUBMITTED",
        "submit after auto-submit reports the existing ending"
    );
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn the_review_queue_lists_ended_sessions_awaiting_a_decision(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let live = sessions_in_sql(&app, fx.exam_id, 2, 600).await;
    let ended = sessions_in_sql(&app, fx.exam_id, 3, 600).await;
    sqlx::query(
        "UPDATE sessions SET status = 'SUBMITTED', submitted_at = now() WHERE id = ANY($1)",
    )
    .bind(ended.iter().map(|(s, _)| *s).collect::<Vec<_>>())
    .execute(&app.state.db)
    .await
    .unwrap();
    app.post_ok(
        &format!("/sessions/{}/review", ended[0].0),
        &fx.admin,
        json!({"decision": "APPROVED", "reason": "clean"}),
        StatusCode::OK,
    )
    .await;
    let ids = |path: String| {
        let app = &app;
        let admin = fx.admin.clone();
        async move {
            let body: Value = app.get(&path, Some(&admin)).await.json().await.unwrap();
            let mut ids: Vec<Uuid> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["id"].as_str().unwrap().parse().unwrap())
                .collect();
            ids.sort();
            ids
        }
    };
    let mut queue: Vec<Uuid> = ended[1..].iter().map(|(s, _)| *s).collect();
    queue.sort();
    let base = format!("/exams/{}/sessions", fx.exam_id);
    assert_eq!(
        ids(format!("{base}?ended=true&reviewDecision=PENDING")).await,
        queue
    );
    let mut running: Vec<Uuid> = live.iter().map(|(s, _)| *s).collect();
    running.sort();
    assert_eq!(ids(format!("{base}?ended=false")).await, running);
    assert_eq!(
        ids(format!("{base}?reviewDecision=APPROVED")).await,
        vec![ended[0].0]
    );
    app.stop().await;
}
