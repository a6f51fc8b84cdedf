use proctor_hub::model::UserRole;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

use crate::helpers::{assert_error, exam_body, mcq_body, published_exam, spawn_app};

async fn field_of(r: reqwest::Response) -> String {
    let body = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    body["error"]["field"].as_str().unwrap().to_string()
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn exam_lifecycle_and_roles(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let (_, candidate) = app.user_with_token(UserRole::Candidate).await;

    let mut body = exam_body(30, true);
    body["proctoringPolicy"] = json!({"TAB_HIDDEN": {"weight": 3}});
    let e = app
        .post_ok("/exams", &admin, body.clone(), StatusCode::CREATED)
        .await;
    assert_eq!(e["status"], "DRAFT");
    assert_eq!(e["durationMinutes"], 30);
    assert_eq!(e["randomizeQuestions"], true);
    assert_eq!(e["proctoringPolicy"]["TAB_HIDDEN"]["weight"], 3);
    let id = e["id"].as_str().unwrap().to_string();

    // Only ADMIN writes; PROCTOR reads; CANDIDATE neither.
    assert_error(
        app.post("/exams", Some(&proctor), body.clone()).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    assert_error(
        app.get("/exams", Some(&candidate)).await,
        StatusCode::FORBIDDEN,
        "FORBIDDEN",
    )
    .await;
    let list: Value = app
        .get("/exams", Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let got: Value = app
        .get(&format!("/exams/{id}"), Some(&proctor))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["title"], "Algebra");
    assert_error(
        app.get(&format!("/exams/{}", Uuid::new_v4()), Some(&admin))
            .await,
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
    )
    .await;

    // PATCH: fields merge, the window is re-checked, the policy can be cleared with null.
    let r = app
        .patch(
            &format!("/exams/{id}"),
            Some(&admin),
            json!({"title": "Algebra II", "proctoringPolicy": null}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["title"], "Algebra II");
    assert!(e["proctoringPolicy"].is_null());
    let r = app
        .patch(
            &format!("/exams/{id}"),
            Some(&admin),
            json!({"endsAt": "2000-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(field_of(r).await, "endsAt");

    // Publishing needs a question; DRAFT -> ARCHIVED is not a transition.
    let r = app
        .post(&format!("/exams/{id}/publish"), Some(&admin), json!({}))
        .await;
    assert_eq!(field_of(r).await, "questions");
    let r = app
        .post(&format!("/exams/{id}/archive"), Some(&admin), json!({}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_NOT_PUBLISHED").await;
    app.post_ok(
        &format!("/exams/{id}/questions"),
        &admin,
        mcq_body(1, &["a"]),
        StatusCode::CREATED,
    )
    .await;
    let e = app
        .post_ok(
            &format!("/exams/{id}/publish"),
            &admin,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(e["status"], "PUBLISHED");
    let r = app
        .post(&format!("/exams/{id}/publish"), Some(&admin), json!({}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_NOT_DRAFT").await;
    // Questions are frozen once published.
    let r = app
        .post(
            &format!("/exams/{id}/questions"),
            Some(&admin),
            mcq_body(1, &["a"]),
        )
        .await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_NOT_DRAFT").await;
    let e = app
        .post_ok(
            &format!("/exams/{id}/archive"),
            &admin,
            json!({}),
            StatusCode::OK,
        )
        .await;
    assert_eq!(e["status"], "ARCHIVED");
    let r = app
        .post(&format!("/exams/{id}/archive"), Some(&admin), json!({}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_NOT_PUBLISHED").await;
    let r = app
        .post(&format!("/exams/{id}/publish"), Some(&admin), json!({}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_NOT_DRAFT").await;
    let r = app
        .patch(&format!("/exams/{id}"), Some(&admin), json!({"title": "x"}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_ARCHIVED").await;

    // Every change was audited.
    let n: i64 =
        sqlx::query_scalar("SELECT count(*) FROM admin_actions WHERE action_type LIKE 'EXAM_%'")
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    assert_eq!(n, 4, "created, updated, published, archived");
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn exam_validation_names_fields(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"title": ""}), "title"),
        (json!({"durationMinutes": 0}), "durationMinutes"),
        (json!({"endsAt": "2000-01-01T00:00:00Z"}), "endsAt"),
        (json!({"proctoringPolicy": [1, 2]}), "proctoringPolicy"),
        (json!({"durationMinutes": "ten"}), "durationMinutes"),
        (json!({"surprise": 1}), "body"),
    ];
    for (patch, field) in cases {
        let mut body = exam_body(30, false);
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = app.post("/exams", Some(&admin), body).await;
        let got = field_of(r).await;
        assert!(
            got == field || (field == "body" && got.contains("surprise")) || got == "body",
            "{field}: got {got}"
        );
    }
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn questions_crud_and_validation(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    let (_, proctor) = app.user_with_token(UserRole::Proctor).await;
    let e = app
        .post_ok("/exams", &admin, exam_body(30, false), StatusCode::CREATED)
        .await;
    let id = e["id"].as_str().unwrap();
    let path = format!("/exams/{id}/questions");

    let q = app
        .post_ok(&path, &admin, mcq_body(2, &["a", "c"]), StatusCode::CREATED)
        .await;
    assert_eq!(q["type"], "MCQ");
    assert_eq!(q["answerKey"]["correct"], json!(["a", "c"]));
    assert_eq!(q["orderIndex"], 0);
    let qid = q["id"].as_str().unwrap();
    let q2 = app
        .post_ok(
            &path,
            &admin,
            json!({"type": "SUBJECTIVE", "prompt": "Why?", "points": 3}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(q2["orderIndex"], 1);

    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"type": "MCQ", "prompt": "x", "points": 1, "options": [{"id": "a", "text": "A"}, {"id": "a", "text": "B"}], "answerKey": {"correct": ["a"]}}),
            "options[1].id",
        ),
        (
            json!({"type": "MCQ", "prompt": "x", "points": 1, "options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}], "answerKey": {"correct": ["z"]}}),
            "answerKey.correct[0]",
        ),
        (
            json!({"type": "MCQ", "prompt": "x", "points": 1, "options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}], "answerKey": {"correct": []}}),
            "answerKey.correct",
        ),
        (
            json!({"type": "MCQ", "prompt": "x", "points": 1, "options": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}]}),
            "answerKey.correct",
        ),
        (
            json!({"type": "MCQ", "prompt": "x", "points": 1, "options": "nope", "answerKey": {"correct": ["a"]}}),
            "options",
        ),
        (
            json!({"type": "SUBJECTIVE", "prompt": "", "points": 1}),
            "prompt",
        ),
        (
            json!({"type": "SUBJECTIVE", "prompt": "x", "points": -1}),
            "points",
        ),
        (json!({"type": "ESSAY", "prompt": "x", "points": 1}), "type"),
    ];
    for (body, field) in bad {
        let r = app.post(&path, Some(&admin), body).await;
        assert_eq!(field_of(r).await, field);
    }

    // PATCH revalidates the whole question.
    let r = app
        .patch(
            &format!("{path}/{qid}"),
            Some(&admin),
            json!({"answerKey": {"correct": ["q"]}}),
        )
        .await;
    assert_eq!(field_of(r).await, "answerKey.correct[0]");
    let r = app
        .patch(
            &format!("{path}/{qid}"),
            Some(&admin),
            json!({"points": 7, "orderIndex": 5}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["points"], 7);

    // Staff read the questions with their keys, in order.
    let list: Value = app.get(&path, Some(&proctor)).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["answerKey"]["correct"], json!(["a", "c"]));

    let r = app
        .delete(
            &format!("{path}/{}", q2["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app
        .delete(
            &format!("{path}/{}", q2["id"].as_str().unwrap()),
            Some(&admin),
        )
        .await;
    assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let r = app.delete(&format!("{path}/{qid}"), Some(&proctor)).await;
    assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    // Once published: no edits, no deletes.
    app.post_ok(
        &format!("/exams/{id}/publish"),
        &admin,
        json!({}),
        StatusCode::OK,
    )
    .await;
    let r = app
        .patch(&format!("{path}/{qid}"), Some(&admin), json!({"points": 1}))
        .await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_NOT_DRAFT").await;
    let r = app.delete(&format!("{path}/{qid}"), Some(&admin)).await;
    assert_error(r, StatusCode::CONFLICT, "EXAM_NOT_DRAFT").await;
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn assignments_accept_only_active_candidates(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    let (proctor_id, proctor) = app.user_with_token(UserRole::Proctor).await;
    let (c2, _) = app.user_with_token(UserRole::Candidate).await;
    let path = format!("/exams/{}/assignments", fx.exam_id);

    let r = app
        .put(
            &path,
            Some(&fx.admin),
            json!({"candidateIds": [c2], "extraTimeMinutes": 15}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let list: Value = app.get(&path, Some(&proctor)).await.json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    let c2_row = items
        .iter()
        .find(|a| a["candidateId"] == c2.to_string())
        .unwrap();
    assert_eq!(c2_row["extraTimeMinutes"], 15);

    // A proctor, an unknown id and a deactivated candidate are all refused, naming the field.
    let (gone, _) = app.user_with_token(UserRole::Candidate).await;
    sqlx::query("UPDATE users SET is_active = false WHERE id = $1")
        .bind(gone)
        .execute(&app.state.db)
        .await
        .unwrap();
    for bad in [proctor_id, Uuid::new_v4(), gone] {
        let r = app
            .put(&path, Some(&fx.admin), json!({"candidateIds": [bad]}))
            .await;
        assert_eq!(field_of(r).await, "candidateIds");
    }
    let r = app
        .put(&path, Some(&fx.admin), json!({"candidateIds": []}))
        .await;
    assert_eq!(field_of(r).await, "candidateIds");
    let r = app
        .put(
            &path,
            Some(&fx.admin),
            json!({"candidateIds": [c2], "extraTimeMinutes": -1}),
        )
        .await;
    assert_eq!(field_of(r).await, "extraTimeMinutes");
    let r = app
        .put(&path, Some(&proctor), json!({"candidateIds": [c2]}))
        .await;
    assert_error(r, StatusCode::FORBIDDEN, "FORBIDDEN").await;

    let r = app.delete(&format!("{path}/{c2}"), Some(&fx.admin)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let r = app.delete(&format!("{path}/{c2}"), Some(&fx.admin)).await;
    assert_error(r, StatusCode::NOT_FOUND, "NOT_FOUND").await;
    let list: Value = app.get(&path, Some(&fx.admin)).await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn candidates_are_assigned_from_a_pasted_list_of_emails(pool: PgPool) {
    let app = spawn_app(pool).await;
    let fx = published_exam(&app).await;
    for e in ["ada@uni.test", "bo@uni.test"] {
        app.user(e, "password-123", UserRole::Candidate).await;
    }
    app.user("prof@uni.test", "password-123", UserRole::Proctor)
        .await;
    let path = format!("/exams/{}/assignments", fx.exam_id);
    // One unknown and one who is no candidate: nothing is assigned, both are named.
    let r = app
        .put(
            &path,
            Some(&fx.admin),
            json!({"emails": ["ada@uni.test", "nobody@uni.test", "prof@uni.test"]}),
        )
        .await;
    let body = assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("nobody@uni.test") && message.contains("prof@uni.test"),
        "{message}"
    );
    assert!(!message.contains("ada@uni.test"), "{message}");
    // Case and spacing as pasted; a repeat counts once.
    let r = app
        .put(
            &path,
            Some(&fx.admin),
            json!({"emails": [" ADA@uni.test", "bo@uni.test", "ada@uni.test"], "extraTimeMinutes": 15}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let listed: Value = r.json().await.unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 3, "{listed}");
    // Ids and emails together are ambiguous.
    let r = app
        .put(
            &path,
            Some(&fx.admin),
            json!({"emails": ["bo@uni.test"], "candidateIds": [fx.candidate_id]}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    app.stop().await;
}
