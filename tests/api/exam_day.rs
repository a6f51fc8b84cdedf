//! An exam's last seconds and the devices around it, as a candidate meets them: the autosave
//! grace with the sweeper at its normal pace, `time-up` and `time-extended`, the laptop a
//! session is bound to, a phone that stays paired for the whole session, and the pages'
//! security headers.

use std::time::Duration;

use proctor_hub::model::Role;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{
    assert_error, published_exam, spawn_app, spawn_app_with, ExamFixture, TestApp,
};
use crate::ws::{authed, closed_with, recv_type, send};

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn answers_sent_in_the_grace_are_stored_and_scored_with_the_sweeper_running(pool: PgPool) {
    // The normal sweep interval (1 s) and grace (5 s): nothing is silenced.
    let app = spawn_app(pool).await;
    assert_eq!(
        app.state.config.exams.sweep_interval,
        Duration::from_secs(1)
    );
    assert_eq!(
        app.state.config.exams.autosave_grace,
        Duration::from_secs(5)
    );
    let fx = published_exam(&app).await;
    let (s, mut laptop) = started_with_laptop(&app, &fx).await;
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();

    // The exam's end is two seconds away.
    let expires_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
        "UPDATE sessions SET expires_at = now() + interval '2 seconds' WHERE id = $1
         RETURNING expires_at",
    )
    .bind(id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();

    // At expiresAt the devices learn that time is up, with the end of the grace.
    let up = recv_type(&mut laptop, "time-up").await;
    assert_eq!(up["sessionId"], id.to_string());
    let told: chrono::DateTime<chrono::Utc> = up["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(told, expires_at);
    let grace_ends: chrono::DateTime<chrono::Utc> =
        up["graceEndsAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(grace_ends - expires_at, chrono::Duration::seconds(5));

    // Two seconds into the grace, an answer typed in the last second arrives: stored.
    let until = expires_at + chrono::Duration::seconds(2);
    tokio::time::sleep((until - chrono::Utc::now()).to_std().unwrap_or_default()).await;
    let r = app
        .put(
            &format!("/sessions/{id}/answers/{}", fx.mcq),
            Some(&fx.candidate),
            json!({"response": {"selected": ["b"]}, "version": 1}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "a save inside the grace is stored"
    );
    let status: String = sqlx::query_scalar("SELECT status::text FROM sessions WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(status, "STARTED", "the sweeper waits for the grace");

    // After the grace the sweeper ends the session, and the late answer counts.
    let ended = recv_type_within(&mut laptop, "session-ended", Duration::from_secs(10)).await;
    assert_eq!(ended["status"], "AUTO_SUBMITTED");
    assert!(
        chrono::Utc::now() >= grace_ends,
        "ended only after the grace"
    );
    assert_eq!(closed_with(&mut laptop).await, 4503);
    let objective: f64 =
        sqlx::query_scalar("SELECT objective_score::float8 FROM scores WHERE session_id = $1")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(objective, 2.0, "the answer saved in the grace is scored");
    let r = app
        .put(
            &format!("/sessions/{id}/answers/{}", fx.mcq),
            Some(&fx.candidate),
            json!({"response": {"selected": ["a"]}, "version": 2}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "SESSION_CLOSED").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_manual_submit_ends_at_once_even_inside_the_grace(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap();
    sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE id = $1::uuid")
        .bind(id)
        .execute(&app.state.db)
        .await
        .unwrap();
    let ended = app
        .post_ok(
            &format!("/sessions/{id}/submit"),
            &fx.candidate,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(ended["status"], "SUBMITTED");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn extended_time_reaches_the_devices_and_the_watchers(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (s, mut laptop) = started_with_laptop(&app, &fx).await;
    let id = s["id"].as_str().unwrap().to_string();
    let before: chrono::DateTime<chrono::Utc> = s["expiresAt"].as_str().unwrap().parse().unwrap();
    let (mut proctor, _) = authed(&app, &fx.admin).await;
    send(&mut proctor, json!({"type": "watch", "examId": fx.exam_id})).await;
    recv_type(&mut proctor, "session-snapshot").await;

    app.post_ok(
        &format!("/sessions/{id}/actions"),
        &fx.admin,
        json!({"actionType": "EXTEND_TIME", "reason": "fire alarm", "payload": {"minutes": 10}}),
        StatusCode::CREATED,
    )
    .await;
    for ws in [&mut laptop, &mut proctor] {
        let m = recv_type(ws, "time-extended").await;
        assert_eq!(m["sessionId"], id);
        let after: chrono::DateTime<chrono::Utc> =
            m["expiresAt"].as_str().unwrap().parse().unwrap();
        assert_eq!(after - before, chrono::Duration::minutes(10));
    }
    let shown = app
        .get(&format!("/sessions/{id}"), Some(&fx.candidate))
        .await;
    let shown: Value = shown.json().await.unwrap();
    let stored: chrono::DateTime<chrono::Utc> =
        shown["expiresAt"].as_str().unwrap().parse().unwrap();
    assert_eq!(stored - before, chrono::Duration::minutes(10));
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_starting_session_appears_on_the_grid_before_any_device_connects(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (mut proctor, _) = authed(&app, &fx.admin).await;
    send(&mut proctor, json!({"type": "watch", "examId": fx.exam_id})).await;
    let snapshot = recv_type(&mut proctor, "session-snapshot").await;
    assert_eq!(snapshot["sessions"], json!([]));
    let s = fx.start(&app, &fx.candidate).await;
    let update = recv_type(&mut proctor, "session-update").await;
    assert_eq!(update["sessionId"], s["id"]);
    assert_eq!(update["candidateId"], fx.candidate_id.to_string());
    assert_eq!(update["status"], "STARTED");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_second_machine_cannot_take_over_an_exam_unless_staff_allow_it(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id: Uuid = s["id"].as_str().unwrap().parse().unwrap();
    let resume = |fp: &'static str| {
        let (app, fx) = (&app, &fx);
        async move {
            app.post(
                &format!("/exams/{}/sessions", fx.exam_id),
                Some(&fx.candidate),
                json!({"deviceFingerprint": fp}),
            )
            .await
        }
    };
    // The laptop that started it resumes.
    assert_eq!(resume("laptop-1").await.status(), StatusCode::OK);
    // Another machine with the candidate's credentials does not.
    assert_error(
        resume("laptop-2").await,
        StatusCode::CONFLICT,
        "DEVICE_MISMATCH",
    )
    .await;
    crate::helpers::eventually("the attempt is a proctoring event", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM proctoring_events WHERE session_id = $1
               AND event_type = 'DEVICE_MISMATCH' AND source = 'SYSTEM'",
        )
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
        n == 1
    })
    .await;
    // A proctor allows the change (audited); the new laptop takes the session, once.
    app.post_ok(
        &format!("/sessions/{id}/actions"),
        &fx.admin,
        json!({"actionType": "ALLOW_DEVICE_CHANGE", "reason": "laptop died, candidate on a spare"}),
        StatusCode::CREATED,
    )
    .await;
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_actions WHERE session_id = $1 AND action_type = 'ALLOW_DEVICE_CHANGE'",
    )
    .bind(id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(audited, 1);
    assert_eq!(resume("laptop-2").await.status(), StatusCode::OK);
    assert_eq!(resume("laptop-2").await.status(), StatusCode::OK);
    // The allowance is spent: the old laptop is now the other machine.
    assert_error(
        resume("laptop-1").await,
        StatusCode::CONFLICT,
        "DEVICE_MISMATCH",
    )
    .await;
    crate::helpers::eventually("the change is recorded", || async {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM proctoring_events WHERE session_id = $1
               AND event_type = 'LAPTOP_DEVICE_CHANGED'",
        )
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
        n == 1
    })
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_phone_stays_paired_for_the_whole_session(pool: PgPool) {
    // Access tokens live 1 s here; the phone reconnects after several lifetimes.
    let app = spawn_app_with(pool, |c| c.jwt.access_ttl = Duration::from_secs(1)).await;
    let fx = published_exam(&app).await;
    let s = fx.start(&app, &fx.candidate).await;
    let id = s["id"].as_str().unwrap().to_string();
    let room = s["webrtcRoomId"].as_str().unwrap().to_string();
    let claimed = crate::ws::pair_phone(&app, &fx.candidate, id.parse().unwrap(), "phone-1").await;
    let device_token = claimed["deviceToken"].as_str().unwrap().to_string();
    assert!(device_token.len() >= 32);
    let renew = |fp: &'static str, token: String| {
        let (app, id) = (&app, id.clone());
        async move {
            app.post(
                "/pairing/renew",
                None,
                json!({"sessionId": id, "deviceToken": token, "deviceFingerprint": fp}),
            )
            .await
        }
    };

    // Several access-token lifetimes later (past the 5 s leeway, counted in whole seconds)
    // the old token is dead; the device token is not.
    tokio::time::sleep(Duration::from_millis(7200)).await;
    let mut ws = crate::ws::connect(&app).await;
    send(
        &mut ws,
        json!({"type": "auth", "token": claimed["accessToken"]}),
    )
    .await;
    assert_eq!(
        closed_with(&mut ws).await,
        4500,
        "the expired access token is refused"
    );
    let r = renew("phone-1", device_token.clone()).await;
    assert_eq!(r.status(), StatusCode::OK);
    let renewed: Value = r.json().await.unwrap();
    assert_eq!(renewed["sessionId"], id);
    assert_eq!(renewed["webrtcRoomId"], room);
    let (mut phone, authed_body) = authed(&app, renewed["accessToken"].as_str().unwrap()).await;
    assert_eq!(authed_body["role"], "MOBILE");
    send(&mut phone, json!({"type": "join", "roomId": room})).await;
    recv_type(&mut phone, "joined").await;

    // Only this phone: another device with the token, or a wrong token, is refused.
    assert_error(
        renew("phone-2", device_token.clone()).await,
        StatusCode::UNAUTHORIZED,
        "DEVICE_TOKEN_INVALID",
    )
    .await;
    assert_error(
        renew("phone-1", "x".repeat(43)).await,
        StatusCode::UNAUTHORIZED,
        "DEVICE_TOKEN_INVALID",
    )
    .await;

    // Unpaired by staff: the credential is revoked with it. (The fixture's tokens have expired
    // by now: fresh ones.)
    let admin = app.token(fx.admin_id, Role::Admin, None);
    let candidate = app.token(fx.candidate_id, Role::Candidate, None);
    app.post_ok(
        &format!("/sessions/{id}/actions"),
        &admin,
        json!({"actionType": "UNPAIR_MOBILE", "reason": "wrong phone"}),
        StatusCode::CREATED,
    )
    .await;
    assert_eq!(closed_with(&mut phone).await, 4503);
    assert_error(
        renew("phone-1", device_token).await,
        StatusCode::UNAUTHORIZED,
        "DEVICE_TOKEN_INVALID",
    )
    .await;

    // Paired again, then the session ends: the new credential stops too.
    let again = crate::ws::pair_phone(&app, &candidate, id.parse().unwrap(), "phone-1").await;
    let second = again["deviceToken"].as_str().unwrap().to_string();
    assert_eq!(
        renew("phone-1", second.clone()).await.status(),
        StatusCode::OK
    );
    app.post_ok(
        &format!("/sessions/{id}/submit"),
        &candidate,
        json!({}),
        StatusCode::OK,
    )
    .await;
    assert_error(
        renew("phone-1", second).await,
        StatusCode::CONFLICT,
        "SESSION_CLOSED",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_phone_rejected_by_the_laptop_loses_its_credential(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (s, mut laptop) = started_with_laptop(&app, &fx).await;
    let id = s["id"].as_str().unwrap().to_string();
    let claimed = crate::ws::pair_phone(&app, &fx.candidate, id.parse().unwrap(), "phone-9").await;
    recv_type(&mut laptop, "pairing-claimed").await;
    send(&mut laptop, json!({"type": "pairing-reject"})).await;
    crate::helpers::eventually("the rejected phone cannot renew", || async {
        let r = app
            .post(
                "/pairing/renew",
                None,
                json!({"sessionId": id, "deviceToken": claimed["deviceToken"], "deviceFingerprint": "phone-9"}),
            )
            .await;
        r.status() == StatusCode::UNAUTHORIZED
    })
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn pages_carry_strict_security_headers(pool: PgPool) {
    let app = spawn_app(pool).await;
    for path in [
        "/app",
        "/app/laptop",
        "/app/proctor",
        "/app/phone",
        "/pair",
        "/app/media.js",
        "/app/laptop.js",
        "/app/pages.css",
    ] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        if path.ends_with(".js") || path.ends_with(".css") {
            continue;
        }
        if path == "/app" {
            // The app's files revalidate with their ETag.
            let etag = h["etag"].clone();
            let again = app
                .client
                .get(app.url(path))
                .header("if-none-match", etag)
                .send()
                .await
                .unwrap();
            assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        }
        // Nothing inline for the policy to block.
        let html = r.text().await.unwrap();
        for inline in ["<script>", "<style", " style=", " onclick=", " onsubmit="] {
            assert!(!html.contains(inline), "{path} has inline {inline}");
        }
    }
    let r = app
        .client
        .get(app.url("/app/no-such-file.js"))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    app.stop().await;
}

/// The fixture candidate's started session and its laptop's socket, in the session's room.
async fn started_with_laptop(app: &TestApp, fx: &ExamFixture) -> (Value, crate::ws::Ws) {
    let s = fx.start(app, &fx.candidate).await;
    let (mut laptop, _) = authed(app, &fx.candidate).await;
    send(
        &mut laptop,
        json!({"type": "join", "roomId": s["webrtcRoomId"]}),
    )
    .await;
    recv_type(&mut laptop, "joined").await;
    (s, laptop)
}

/// The next message of `kind` within `wait` (for waits longer than the helpers' default).
async fn recv_type_within(ws: &mut crate::ws::Ws, kind: &str, wait: Duration) -> Value {
    tokio::time::timeout(wait, async {
        loop {
            let v = crate::ws::recv(ws).await;
            if v["type"] == kind {
                return v;
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no {kind} within {wait:?}"))
}
