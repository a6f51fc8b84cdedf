use std::collections::HashSet;

use proctor_hub::model::{Role, UserRole};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{assert_error, spawn_app, spawn_app_with, TestApp};

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn login_success_returns_tokens_and_user(pool: PgPool) {
    let app = spawn_app(pool).await;
    let id = app
        .user("Ann@Example.test", "password-123", UserRole::Proctor)
        .await;
    let body = app.login("  ann@example.TEST ", "password-123").await;
    assert_eq!(body["user"]["id"], id.to_string());
    assert_eq!(body["user"]["role"], "PROCTOR");
    assert_eq!(body["user"]["email"], "ann@example.test");
    assert_eq!(body["expiresIn"], 900);
    assert!(body["refreshToken"].as_str().unwrap().len() >= 43);
    let access = body["accessToken"].as_str().unwrap();
    let claims = app.state.jwt.verify(access).unwrap();
    assert_eq!(claims.sub, id);
    assert_eq!(claims.role, Role::Proctor);
    let me: Value = app.get("/me", Some(access)).await.json().await.unwrap();
    assert_eq!(me["email"], "ann@example.test");
    assert!(me.get("passwordHash").is_none());
    // Only the token's hash is stored.
    let stored: String = sqlx::query_scalar("SELECT token_jti FROM refresh_sessions")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_ne!(stored, body["refreshToken"].as_str().unwrap());
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn login_failures_look_identical(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.user("bob@example.test", "password-123", UserRole::Candidate)
        .await;
    let inactive = app
        .user("gone@example.test", "password-123", UserRole::Candidate)
        .await;
    sqlx::query("UPDATE users SET is_active = false WHERE id = $1")
        .bind(inactive)
        .execute(&app.state.db)
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for (email, password) in [
        ("bob@example.test", "wrong-password"),
        ("nobody@example.test", "password-123"),
        ("gone@example.test", "password-123"),
    ] {
        let r = app
            .post(
                "/auth/login",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        bodies.push(assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await);
    }
    assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn bad_bodies_get_clear_errors(pool: PgPool) {
    let app = spawn_app(pool).await;
    let url = app.api("/auth/login");
    let r = app
        .client
        .post(&url)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::BAD_REQUEST, "MALFORMED_JSON").await;
    let r = app
        .client
        .post(&url)
        .json(&json!({"email": 5, "password": "x"}))
        .send()
        .await
        .unwrap();
    let body = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["error"]["field"], "email");
    let r = app
        .client
        .post(&url)
        .json(&json!({"email": "a@b.co", "password": "x", "admin": true}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = app
        .client
        .post(&url)
        .body(r#"{"email":"a@b.co","password":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_error(
        r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UNSUPPORTED_MEDIA_TYPE",
    )
    .await;
    let big = "x".repeat(2 * 1024 * 1024);
    let r = app
        .client
        .post(&url)
        .json(&json!({"email": big, "password": "x"}))
        .send()
        .await
        .unwrap();
    assert_error(r, StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn access_token_validation(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, token) = app.user_with_token(UserRole::Admin).await;
    assert_eq!(app.get("/me", Some(&token)).await.status(), StatusCode::OK);
    assert_error(
        app.get("/me", None).await,
        StatusCode::UNAUTHORIZED,
        "MISSING_TOKEN",
    )
    .await;
    assert_error(
        app.get("/me", Some("garbage")).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;

    // Signed with another secret.
    let mut other = crate::helpers::test_config().jwt;
    other.secret = "another-secret-another-secret-another".to_string().into();
    let foreign = proctor_hub::auth::jwt::JwtKeys::new(&other)
        .issue(uuid::Uuid::new_v4(), Role::Admin, None)
        .unwrap();
    assert_error(
        app.get("/me", Some(&foreign)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;

    // Wrong audience, same key.
    let mut aud = crate::helpers::test_config().jwt;
    aud.audience = "another-service".into();
    let claims = app.state.jwt.verify(&token).unwrap();
    let wrong_aud = proctor_hub::auth::jwt::JwtKeys::new(&aud)
        .issue(claims.sub, Role::Admin, None)
        .unwrap();
    assert_error(
        app.get("/me", Some(&wrong_aud)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;

    // A refresh token is not an access token.
    let body = app
        .login(&app_email(&app, claims.sub).await, "password-123")
        .await;
    let refresh = body["refreshToken"].as_str().unwrap();
    assert_error(
        app.get("/me", Some(refresh)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;

    // alg=none.
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let head = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
    let payload = b64.encode(serde_json::to_vec(&claims).unwrap());
    let none = format!("{head}.{payload}.");
    assert_error(
        app.get("/me", Some(&none)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
    app.stop().await;
}

async fn app_email(app: &crate::helpers::TestApp, id: uuid::Uuid) -> String {
    sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(id)
        .fetch_one(&app.state.db)
        .await
        .unwrap()
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn expired_access_token_is_rejected(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.jwt.access_ttl = std::time::Duration::from_secs(1)
    })
    .await;
    let (_, token) = app.user_with_token(UserRole::Admin).await;
    assert_eq!(app.get("/me", Some(&token)).await.status(), StatusCode::OK);
    // 1 s lifetime + 5 s leeway.
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    assert_error(
        app.get("/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn refresh_rotates_and_replay_revokes_the_family(pool: PgPool) {
    let app = spawn_app(pool).await;
    let id = app
        .user("r@example.test", "password-123", UserRole::Candidate)
        .await;
    let login = app
        .post("/auth/login", None, json!({"email": "r@example.test", "password": "password-123", "deviceFingerprint": "laptop-1"}))
        .await
        .json::<Value>()
        .await
        .unwrap();
    let t1 = login["refreshToken"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/auth/refresh",
            None,
            json!({"refreshToken": t1, "deviceFingerprint": "laptop-1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let b: Value = r.json().await.unwrap();
    let t2 = b["refreshToken"].as_str().unwrap().to_string();
    assert_ne!(t1, t2);
    assert_eq!(
        app.get("/me", b["accessToken"].as_str()).await.status(),
        StatusCode::OK
    );

    // The same device retrying t1 within the grace gets the same successor (lost response).
    let r = app
        .post(
            "/auth/refresh",
            None,
            json!({"refreshToken": t1, "deviceFingerprint": "laptop-1"}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.json::<Value>().await.unwrap()["refreshToken"],
        t2.as_str()
    );

    // Another device replaying t1: reuse → the family is revoked, t2 dies too, audit row.
    let r = app
        .post(
            "/auth/refresh",
            None,
            json!({"refreshToken": t1, "deviceFingerprint": "attacker"}),
        )
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "REFRESH_TOKEN_REUSED").await;
    let r = app
        .post(
            "/auth/refresh",
            None,
            json!({"refreshToken": t2, "deviceFingerprint": "laptop-1"}),
        )
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
    let audits: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM admin_actions WHERE action_type = 'REFRESH_TOKEN_REUSED' AND target_user_id = $1",
    )
    .bind(id)
    .fetch_one(&app.state.db)
    .await
    .unwrap();
    assert_eq!(audits, 1);
    let live: i64 =
        sqlx::query_scalar("SELECT count(*) FROM refresh_sessions WHERE revoked_at IS NULL")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(live, 0);
    // An unknown token is simply invalid.
    let r = app
        .post("/auth/refresh", None, json!({"refreshToken": "nope"}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn replay_after_the_grace_revokes_even_from_the_same_device(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.jwt.refresh_grace = std::time::Duration::from_secs(1)
    })
    .await;
    app.user("g@example.test", "password-123", UserRole::Candidate)
        .await;
    let t1 = app.login("g@example.test", "password-123").await["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.post("/auth/refresh", None, json!({"refreshToken": t1}))
            .await
            .status(),
        StatusCode::OK
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let r = app
        .post("/auth/refresh", None, json!({"refreshToken": t1}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "REFRESH_TOKEN_REUSED").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn concurrent_refresh_of_one_token_makes_exactly_one_successor(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.user("c@example.test", "password-123", UserRole::Candidate)
        .await;
    let t1 = app.login("c@example.test", "password-123").await["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    let calls = (0..16).map(|_| {
        let client = app.client.clone();
        let url = app.api("/auth/refresh");
        let t1 = t1.clone();
        async move {
            let r = client
                .post(url)
                .json(&json!({"refreshToken": t1}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    });
    let results = futures::future::join_all(calls).await;
    let successors: HashSet<String> = results
        .iter()
        .map(|(status, body)| {
            assert_eq!(*status, StatusCode::OK, "{body}");
            body["refreshToken"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(successors.len(), 1);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM refresh_sessions")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(rows, 2, "the login token and exactly one successor");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn logout_revokes_the_refresh_token(pool: PgPool) {
    let app = spawn_app(pool).await;
    app.user("l@example.test", "password-123", UserRole::Proctor)
        .await;
    let t = app.login("l@example.test", "password-123").await["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        app.post("/auth/logout", None, json!({"refreshToken": t}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let r = app
        .post("/auth/refresh", None, json!({"refreshToken": t}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
    // Logging out twice is harmless.
    assert_eq!(
        app.post("/auth/logout", None, json!({"refreshToken": t}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    app.stop().await;
}

/// A login from the client address `ip` (the hub trusts `X-Forwarded-For` in these tests).
async fn login_from(app: &TestApp, ip: &str, email: &str, password: &str) -> reqwest::Response {
    app.client
        .post(app.api("/auth/login"))
        .header("x-forwarded-for", format!("198.51.100.99, {ip}"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn an_attacker_cannot_lock_a_candidate_out(pool: PgPool) {
    let app = spawn_app_with(pool, |c| c.trust_forwarded_for = true).await;
    app.user("t@example.test", "password-123", UserRole::Candidate)
        .await;
    let attacker = "203.0.113.7";
    let mut refused = 0;
    for i in 0..50 {
        let r = login_from(&app, attacker, "t@example.test", &format!("guess-{i}")).await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let wait = retry_after(&r);
            assert!(wait > 0 && wait <= 900, "Retry-After {wait}");
            assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
            refused += 1;
        } else {
            assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
        }
    }
    // The default limit: 10 failures of one account from one address, then 429.
    assert_eq!(refused, 40);
    // The attacker's address stays refused, even with the right password...
    let r = login_from(&app, attacker, "t@example.test", "password-123").await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    // ...but the candidate, from anywhere else, gets in at once.
    let r = login_from(&app, "192.0.2.10", "t@example.test", "password-123").await;
    assert_eq!(r.status(), StatusCode::OK);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn parallel_wrong_guesses_cannot_slip_past_the_limit(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.trust_forwarded_for = true;
        c.auth.login_max_failures_per_account_ip = 10;
    })
    .await;
    app.user("p@example.test", "password-123", UserRole::Candidate)
        .await;
    let guesses = (0..20).map(|i| {
        login_from(
            &app,
            "203.0.113.8",
            "p@example.test",
            if i % 2 == 0 { "a" } else { "b" },
        )
    });
    let statuses: Vec<StatusCode> = futures::future::join_all(guesses)
        .await
        .iter()
        .map(|r| r.status())
        .collect();
    let unauthorized = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let limited = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!((unauthorized, limited), (10, 10), "{statuses:?}");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn twenty_parallel_wrong_guesses_count_twenty(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.trust_forwarded_for = true;
        c.auth.login_max_failures_per_account_ip = 100;
    })
    .await;
    app.user("q@example.test", "password-123", UserRole::Candidate)
        .await;
    let ip = "203.0.113.9";
    let guesses = (0..20).map(|_| login_from(&app, ip, "ghost@example.test", "nope"));
    for r in futures::future::join_all(guesses).await {
        assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    }
    let mut conn = app.state.redis.clone();
    let account = proctor_hub::auth::sha256_hex("ghost@example.test");
    let counted: (u32, u32) = redis::pipe()
        .cmd("GET")
        .arg(app.state.keys.login_failures_ip(ip))
        .cmd("GET")
        .arg(app.state.keys.login_failures_account_ip(&account, ip))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(counted, (20, 20));
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn one_address_is_limited_across_accounts(pool: PgPool) {
    let app = spawn_app_with(pool, |c| {
        c.trust_forwarded_for = true;
        c.auth.login_max_failures_per_ip = 5;
    })
    .await;
    app.user("o@example.test", "password-123", UserRole::Candidate)
        .await;
    for i in 0..5 {
        let r = login_from(&app, "203.0.113.10", &format!("x{i}@example.test"), "bad").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    }
    let r = login_from(&app, "203.0.113.10", "o@example.test", "password-123").await;
    assert!(retry_after(&r) > 0);
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    let r = login_from(&app, "203.0.113.11", "o@example.test", "password-123").await;
    assert_eq!(r.status(), StatusCode::OK);
    // Logins that work never use up an address.
    for _ in 0..8 {
        let r = login_from(&app, "203.0.113.12", "o@example.test", "password-123").await;
        assert_eq!(r.status(), StatusCode::OK);
    }
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn a_class_behind_one_nat_address_logs_in_at_once(pool: PgPool) {
    // More candidates than the per-IP failure limit, all clicking "Log in" in the same second
    // from one campus address: logins being checked are no failures.
    let app = spawn_app_with(pool, |c| {
        c.trust_forwarded_for = true;
        c.auth.login_max_failures_per_ip = 5;
    })
    .await;
    for i in 0..12 {
        app.user(
            &format!("s{i}@example.test"),
            "password-123",
            UserRole::Candidate,
        )
        .await;
    }
    let logins = (0..12).map(|i| {
        let app = &app;
        async move {
            login_from(
                app,
                "198.51.100.1",
                &format!("s{i}@example.test"),
                "password-123",
            )
            .await
        }
    });
    for r in futures::future::join_all(logins).await {
        assert_eq!(r.status(), StatusCode::OK);
    }
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn login_works_and_is_throttled_while_redis_is_down(pool: PgPool) {
    let proxy = crate::proxy::Proxy::start("127.0.0.1:6379".parse().unwrap()).await;
    let redis_url = format!("redis://{}", proxy.addr);
    let app = spawn_app_with(pool, |c| {
        c.trust_forwarded_for = true;
        c.auth.login_max_failures_per_account_ip = 3;
        c.redis_url = redis_url;
    })
    .await;
    app.user("r@example.test", "password-123", UserRole::Candidate)
        .await;
    proxy.cut();
    let r = login_from(&app, "192.0.2.1", "r@example.test", "password-123").await;
    assert_eq!(r.status(), StatusCode::OK, "login works without Redis");
    for _ in 0..3 {
        let r = login_from(&app, "203.0.113.20", "r@example.test", "bad").await;
        assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    }
    let r = login_from(&app, "203.0.113.20", "r@example.test", "bad").await;
    assert_error(r, StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED").await;
    let r = login_from(&app, "192.0.2.2", "r@example.test", "password-123").await;
    assert_eq!(r.status(), StatusCode::OK);
    proxy.restore();
    app.stop().await;
}
