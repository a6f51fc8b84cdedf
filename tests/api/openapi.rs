//! The OpenAPI document against the server: every route under `/api/v1` is in the document
//! and every operation in it is routed, with the same methods; the served document is the
//! generated one; `/docs` renders it.

use std::collections::{BTreeMap, BTreeSet};

use reqwest::StatusCode;
use serde_json::Value;
use sqlx::PgPool;

use crate::helpers::spawn_app;

/// The `/api/v1` paths the real router holds, read from its `Debug` form (axum lists every
/// registered path there). Fails loudly if that form stops naming paths.
fn routed_paths(router: &axum::Router) -> BTreeSet<String> {
    let text = format!("{router:?}");
    let mut paths = BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("\"/api/v1") {
        rest = &rest[at + 1..];
        let end = rest.find('"').expect("closing quote");
        paths.insert(rest[..end].to_string());
        rest = &rest[end..];
    }
    assert!(
        paths.len() > 20,
        "found only {} /api/v1 paths in the router's Debug form: {paths:?}",
        paths.len()
    );
    paths
}

/// Fills `{params}` with values that parse (a nil UUID), so a probe reaches the handler's
/// method router.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}').expect("closing brace") + open;
        out.push_str("00000000-0000-0000-0000-000000000000");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

#[sqlx::test]
async fn every_route_is_in_the_spec_and_every_operation_is_routed(pool: PgPool) {
    let app = spawn_app(pool).await;
    let served: Value = app
        .client
        .get(app.api("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(
        served,
        serde_json::to_value(proctor_hub::http::spec()).unwrap(),
        "the served document is the generated one"
    );

    // Operations in the document, by path.
    let mut documented: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, item) in served["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented
                .entry(path.clone())
                .or_default()
                .insert(method.to_uppercase());
        }
    }

    // Paths in the router that serves requests (the whole app, not only the API part), minus
    // the document itself.
    let router = proctor_hub::http::routes(app.state.clone());
    let mut routed = routed_paths(&router);
    routed.remove("/api/v1/openapi.json");
    let spec_paths: BTreeSet<String> = documented.keys().cloned().collect();
    assert_eq!(
        routed.difference(&spec_paths).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "routes the document lacks"
    );
    assert_eq!(
        spec_paths.difference(&routed).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "documented paths with no route"
    );

    // Methods: a documented one reaches a handler (401 without a token, or a handler's own
    // answer, never the router's 404/405); an undocumented one is 405.
    for (path, methods) in &documented {
        let url = app.url(&concrete(path));
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let r = app
                .client
                .request(method.parse().unwrap(), &url)
                .header("content-type", "application/json")
                .body("{}")
                .send()
                .await
                .unwrap();
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            if methods.contains(method) {
                assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
                assert!(
                    !body.contains("route not found"),
                    "{method} {path} is documented but not routed"
                );
            } else {
                assert_eq!(
                    status,
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {path} is routed but not documented ({body})"
                );
            }
        }
    }

    // Every operation says what it is, and documents its errors with the error body.
    assert!(
        served["info"].get("contact").is_none(),
        "{}",
        served["info"]
    );
    let tags: Vec<&str> = served["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for (path, item) in served["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(op["summary"].is_string(), "{method} {path} has no summary");
            let tag = op["tags"][0].as_str().unwrap_or_default();
            assert!(
                tags.contains(&tag),
                "{method} {path}: tag {tag:?} is not described"
            );
            let e = &op["responses"]["500"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(e, "#/components/schemas/ErrorBody", "{method} {path}");
        }
    }
    let codes = served["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .unwrap();
    for code in [
        "VALIDATION_FAILED",
        "NOT_FOUND",
        "SESSION_CLOSED",
        "LEGAL_HOLD",
    ] {
        assert!(codes.iter().any(|c| c == code), "{code} is listed");
    }
    assert_eq!(
        served["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );

    // The rendered reference.
    let docs = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    let html = docs.text().await.unwrap();
    assert!(html.contains("docs.js"), "{html}");
    app.stop().await;
}

/// What the property-based contract run (scripts/contract.sh) found, kept fixed.
#[sqlx::test]
async fn fuzzed_inputs_get_clear_errors_not_500s(pool: PgPool) {
    use crate::helpers::assert_error;
    use proctor_hub::model::UserRole;
    use serde_json::json;

    let app = spawn_app(pool).await;
    let (_, admin) = app.user_with_token(UserRole::Admin).await;
    // A NUL character (which Postgres cannot store) in a body or a query: 422 / 400, before
    // any store is touched.
    let r = app
        .post(
            "/auth/refresh",
            None,
            json!({"refreshToken": "x", "deviceFingerprint": "a\u{0}"}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = app
        .post(
            "/users",
            Some(&admin),
            json!({"email": "n@x.org", "name": "a\u{0}b", "password": "long enough pw", "role": "CANDIDATE"}),
        )
        .await;
    assert_error(r, StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_FAILED").await;
    let r = app.get("/users?q=%00", Some(&admin)).await;
    assert_error(r, StatusCode::BAD_REQUEST, "INVALID_QUERY").await;
    // The largest doubles in free-form JSON read back from Postgres as themselves.
    let f = crate::helpers::published_exam(&app).await;
    let s = f.start(&app, &f.candidate).await;
    let session = s["id"].as_str().unwrap();
    let r = app
        .post(
            &format!("/sessions/{session}/actions"),
            Some(&f.admin),
            json!({"actionType": "WARN", "reason": "x", "payload": {"n": [-1.7976931348623157e308, 5e-324]}}),
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::CREATED,
        "{}",
        r.text().await.unwrap()
    );
    // A wrong method is a JSON 405.
    let r = app.delete("/auth/login", None).await;
    assert_error(r, StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED").await;
    app.stop().await;
}

/// A save Postgres refuses fails alone: the others of its autosave group are stored.
#[sqlx::test]
async fn one_refused_save_does_not_fail_its_group(pool: PgPool) {
    use proctor_hub::store::answers::{AnswerWrite, WriteResult};
    use serde_json::json;

    let app = spawn_app(pool).await;
    let f = crate::helpers::published_exam(&app).await;
    let mut sessions = Vec::new();
    for _ in 0..10 {
        let (_, token) = f.another_candidate(&app).await;
        let s = f.start(&app, &token).await;
        sessions.push(s["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap());
    }
    let write = |session, text: &str| AnswerWrite {
        session_id: session,
        question_id: f.subjective,
        kind: proctor_hub::model::QuestionType::Subjective,
        response: json!({"text": text}),
        version: 1,
        latency_ms: None,
    };
    // All at once, so they share a group commit; one holds a NUL character, which Postgres
    // refuses in jsonb.
    let saves = sessions.iter().enumerate().map(|(i, s)| {
        let w = write(*s, if i == 3 { "bad \u{0} text" } else { "fine" });
        let autosave = &app.state.autosave;
        async move { autosave.save(w).await }
    });
    let results = futures::future::join_all(saves).await;
    for (i, r) in results.iter().enumerate() {
        if i == 3 {
            assert!(r.is_err(), "the refused save fails");
        } else {
            assert!(
                matches!(r, Ok(WriteResult::Stored { version: 1, .. })),
                "save {i}: {r:?}"
            );
        }
    }
    app.stop().await;
}
