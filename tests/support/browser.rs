//! Runs a headless-Chromium scenario of `tests/browser/` (a playwright-core script) with its
//! settings in `BROWSER_TEST`, and returns what it printed. Needs `scripts/browser-deps.sh`
//! (run by `scripts/test.sh`); without it the scenario fails, it does not skip.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// Runs `script` with `cfg` (plus `screenshots` when `SCREENSHOTS=dir` is set), panicking
/// with its output when it fails or takes more than `limit`.
pub async fn run_scenario(script: &str, mut cfg: Value, limit: Duration) -> String {
    if let Ok(dir) = std::env::var("SCREENSHOTS") {
        cfg["screenshots"] = Value::String(dir);
    }
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser");
    let child = tokio::process::Command::new("node")
        .arg(script)
        .current_dir(dir)
        .env("BROWSER_TEST", cfg.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (scripts/browser-deps.sh installs what the browser tests need)");
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{script} did not end within {limit:?}"))
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "{script} failed:\n{stdout}\n{stderr}");
    stdout
}
