//! Headless Chromium against the relay (MEDIA.md, test 3): runs `tests/browser/run.mjs`
//! against a hub on port 0. A test binary of its own, so the browser's encoders and decoders do
//! not share the two cores with the API tests running in parallel. Needs Debian's `chromium` and `npm ci` in `tests/browser`
//! (`scripts/browser-deps.sh`, run by `scripts/test.sh`); without them this test fails, it does
//! not skip.

use std::time::Duration;

use proctor_hub::model::UserRole;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;

#[path = "support/browser.rs"]
mod browser;
#[allow(dead_code)]
#[path = "api/helpers.rs"]
mod helpers;

use helpers::{new_session, spawn_app};

#[sqlx::test(migrator = "proctor_hub::store::postgres::MIGRATOR")]
async fn chromium_laptop_phone_and_proctors_through_the_relay(pool: PgPool) {
    let app = spawn_app(pool).await;
    let (laptop_token, session, room, _exam) = new_session(&app).await;
    let r = app
        .post(
            &format!("/sessions/{session}/pairing"),
            Some(&laptop_token),
            json!({}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let minted: Value = r.json().await.unwrap();
    let fragment = minted["pairingUrl"]
        .as_str()
        .unwrap()
        .split_once('#')
        .unwrap()
        .1
        .to_string();
    let mut proctor_tokens = Vec::new();
    for _ in 0..3 {
        proctor_tokens.push(app.user_with_token(UserRole::Proctor).await.1);
    }
    let hub = format!("http://{}", app.addr);
    let cfg = json!({
        "hub": hub,
        "room": room,
        "laptopToken": laptop_token,
        // The media test page of the phone (`/pair` serves the product page).
        "pairingUrl": format!("{hub}/app/phone#{fragment}"),
        "proctorTokens": proctor_tokens,
        "mediaPort": app.media_addr.expect("the relay runs in tests").port(),
    });
    browser::run_scenario("run.mjs", cfg, Duration::from_secs(180)).await;
    app.stop().await;
}
