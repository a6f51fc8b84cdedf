use proctor_hub::model::UserRole;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

use crate::helpers::{assert_error, spawn_app};

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn admin_manages_users_and_every_change_is_audited(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (admin_id, admin) = app.user_with_token(UserRole::Admin).await;
    let r = app
        .post("/users", Some(&admin), json!({"email": "New@Example.test", "name": "New", "password": "password-123", "role": "CANDIDATE"}))
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["email"], "new@example.test");
    assert_eq!(created["isActive"], true);
    assert!(created.get("passwordHash").is_none());
    let id = created["id"].as_str().unwrap();

    let r = app
        .post("/users", Some(&admin), json!({"email": "new@example.test", "name": "Dup", "password": "password-123", "role": "CANDIDATE"}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "EMAIL_TAKEN").await;
    let r = app
        .post(
            "/users",
            Some(&admin),
            json!({"email": "bad", "name": "X", "password": "password-123", "role": "CANDIDATE"}),
        )
        .await;
    let body = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    assert_eq!(body["error"]["field"], "email");
    let r = app
        .post("/users", Some(&admin), json!({"email": "ok@example.test", "name": "X", "password": "short", "role": "CANDIDATE"}))
        .await;
    assert_eq!(
        assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await["error"]
            ["field"],
        "password"
    );
    let r = app
        .post("/users", Some(&admin), json!({"email": "ok@example.test", "name": "X", "password": "password-123", "role": "KING"}))
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;

    let got: Value = app
        .get(&format!("/users/{id}"), Some(&admin))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["name"], "New");
    let r = app
        .patch(
            &format!("/users/{id}"),
            Some(&admin),
            json!({"name": "Renamed"}),
        )
        .await;
    assert_eq!(r.json::<Value>().await.unwrap()["name"], "Renamed");
    assert_error(
        app.get(&format!("/users/{}", uuid::Uuid::new_v4()), Some(&admin))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;
    assert_error(
        app.get("/users/not-a-uuid", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "INVALID_ID",
    )
    .await;

    // An admin cannot lock themselves out.
    let r = app
        .patch(
            &format!("/users/{admin_id}"),
            Some(&admin),
            json!({"isActive": false}),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "CANNOT_DEMOTE_SELF").await;

    let audits: Vec<String> =
        sqlx::query_scalar("SELECT action_type FROM admin_actions ORDER BY created_at")
            .fetch_all(&app.state.db)
            .await
            .unwrap();
    assert_eq!(audits, vec!["USER_CREATED", "USER_UPDATED"]);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn list_filters_by_role_and_paginates(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    for i in 0..5 {
        app.user(
            &format!("c{i}@example.test"),
            "password-123",
            UserRole::Candidate,
        )
        .await;
    }
    app.user("p@example.test", "password-123", UserRole::Proctor)
        .await;
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users?role=CANDIDATE&limit=2&cursor={c}"),
            None => "/users?role=CANDIDATE&limit=2".to_string(),
        };
        let page: Value = app.get(&path, Some(&admin)).await.json().await.unwrap();
        for item in page["items"].as_array().unwrap() {
            assert_eq!(item["role"], "CANDIDATE");
            seen.push(item["id"].as_str().unwrap().to_string());
        }
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    seen.dedup();
    assert_eq!(seen.len(), 5);
    assert_error(
        app.get("/users?limit=0", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "INVALID_QUERY",
    )
    .await;
    assert_error(
        app.get("/users?cursor=zzz", Some(&admin)).await,
        StatusCode::BAD_REQUEST,
        "INVALID_CURSOR",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn role_checks(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, candidate) = app.user_with_token(UserRole::Candidate).await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    assert_error(
        app.get("/users", Some(&candidate)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get("/users", Some(&proctor)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get("/users", None).await,
        StatusCode::UNAUTHORIZED,
        "MISSING_TOKEN",
    )
    .await;
    let r = app.post("/users", Some(&proctor), json!({"email": "x@example.test", "name": "X", "password": "password-123", "role": "ADMIN"})).await;
    assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn deactivation_revokes_access_and_refresh_tokens(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let id = app
        .user("d@example.test", "password-123", UserRole::Candidate)
        .await;
    let login = app.login("d@example.test", "password-123").await;
    let access = login["accessToken"].as_str().unwrap();
    let refresh = login["refreshToken"].as_str().unwrap();
    let mut signals = app.state.signals.subscribe();
    assert_eq!(app.get("/me", Some(access)).await.status(), StatusCode::OK);

    let r = app
        .patch(
            &format!("/users/{id}"),
            Some(&admin),
            json!({"isActive": false}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        signals.recv().await.unwrap(),
        proctor_hub::state::HubSignal::UserRevoked { user_id: id }
    );
    assert_error(
        app.get("/me", Some(access)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
    let r = app
        .post("/auth/refresh", None, json!({"refreshToken": refresh}))
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_REFRESH_TOKEN").await;
    let r = app
        .post(
            "/auth/login",
            None,
            json!({"email": "d@example.test", "password": "password-123"}),
        )
        .await;
    assert_error(r, StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS").await;
    let action: String =
        sqlx::query_scalar("SELECT action_type FROM admin_actions WHERE target_user_id = $1")
            .bind(id)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(action, "USER_DEACTIVATED");

    // A role change also ends existing access tokens.
    let (pid, _) = app.user_with_token(UserRole::Proctor).await;
    let email: String = sqlx::query_scalar("SELECT email FROM users WHERE id = $1")
        .bind(pid)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    let token = app.login(&email, "password-123").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    app.patch(
        &format!("/users/{pid}"),
        Some(&admin),
        json!({"role": "CANDIDATE"}),
    )
    .await;
    assert_error(
        app.get("/me", Some(&token)).await,
        StatusCode::UNAUTHORIZED,
        "INVALID_TOKEN",
    )
    .await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn users_are_found_by_part_of_their_email_or_name(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    app.user("grace.hopper@uni.test", "password-123", UserRole::Candidate)
        .await;
    app.user("alan@uni.test", "password-123", UserRole::Candidate)
        .await;
    app.user("odd_100%@uni.test", "password-123", UserRole::Candidate)
        .await;
    let find = |q: &str| {
        let (app, admin) = (&app, admin.clone());
        let url = format!("/users?role=CANDIDATE&q={}", urlencode(q));
        async move {
            let r = app.get(&url, Some(&admin)).await;
            assert_eq!(r.status(), StatusCode::OK);
            let body: Value = r.json().await.unwrap();
            let mut emails: Vec<String> = body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|u| u["email"].as_str().unwrap().to_string())
                .collect();
            emails.sort();
            emails
        }
    };
    assert_eq!(find("HOPPER").await, vec!["grace.hopper@uni.test"]);
    assert_eq!(find("uni.test").await.len(), 3);
    // Pattern characters are literal: "%" matches only the address that has one.
    assert_eq!(find("100%").await, vec!["odd_100%@uni.test"]);
    assert_eq!(find("_").await, vec!["odd_100%@uni.test"]);
    app.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
