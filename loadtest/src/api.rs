//! The hub's public HTTP API as the load generator uses it: provisioning through the admin
//! API, logins, and clean-up. Nothing here reaches into the hub's stores.

use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{Error, Result};

/// An HTTP client bound to one hub.
#[derive(Clone)]
pub struct Api {
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub base: String,
    client: reqwest::Client,
}

/// Only loopback targets: this tool must never load anything but a hub on this machine.
pub fn check_loopback(url: &str) -> Result<()> {
    let host = url
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .map(|h| {
            if let Some(v6) = h.strip_prefix('[') {
                v6.split(']').next().unwrap_or("").to_string()
            } else {
                h.rsplit_once(':').map_or(h, |(host, _)| host).to_string()
            }
        })
        .unwrap_or_default();
    let ok = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if ok {
        Ok(())
    } else {
        Err(Error::NotLoopback(url.to_string()))
    }
}

impl Api {
    /// A client for `base`.
    pub fn new(base: &str) -> Result<Self> {
        check_loopback(base)?;
        Ok(Api {
            base: base.trim_end_matches('/').to_string(),
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()?,
        })
    }

    /// The WebSocket URL of the hub.
    pub fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http", "ws", 1))
    }

    /// Sends a JSON request and expects `expect`.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        expect: StatusCode,
    ) -> Result<Value> {
        let mut req = self
            .client
            .request(method.clone(), format!("{}/api/v1{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if status != expect {
            return Err(Error::Http {
                what: format!("{method} {path}"),
                status: status.as_u16(),
                body: text,
            });
        }
        Ok(if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        })
    }

    /// Logs in; returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> Result<String> {
        self.login_tokens(email, password).await.map(|t| t.access)
    }

    /// Logs in; returns the access and refresh tokens (runs longer than an access token lives
    /// refresh them with [`Api::refresh`]).
    pub async fn login_tokens(&self, email: &str, password: &str) -> Result<Tokens> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
                StatusCode::OK,
            )
            .await?;
        Tokens::of(&v, "login")
    }

    /// Rotates a refresh token (cheap for the hub: no password hash); returns the new pair.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/auth/refresh",
                None,
                Some(json!({"refreshToken": refresh_token})),
                StatusCode::OK,
            )
            .await?;
        Tokens::of(&v, "refresh")
    }

    /// Creates a user through the admin API; returns (id, email, password).
    pub async fn create_user(
        &self,
        admin: &str,
        role: &str,
        run: &str,
    ) -> Result<(Uuid, String, String)> {
        let email = format!("lt-{run}-{}@loadtest.invalid", Uuid::new_v4().simple());
        let password = format!("lt-{}", Uuid::new_v4().simple());
        let v = self
            .call(
                reqwest::Method::POST,
                "/users",
                Some(admin),
                Some(
                    json!({"email": email, "name": "loadtest", "password": password, "role": role}),
                ),
                StatusCode::CREATED,
            )
            .await?;
        let id = v["id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| Error::Usage("user without id".into()))?;
        Ok((id, email, password))
    }

    /// Deactivates a user (clean-up: the API keeps users for the audit trail).
    pub async fn deactivate(&self, admin: &str, id: Uuid) -> Result<()> {
        self.call(
            reqwest::Method::PATCH,
            &format!("/users/{id}"),
            Some(admin),
            Some(json!({"isActive": false})),
            StatusCode::OK,
        )
        .await
        .map(|_| ())
    }
}

/// What a login or a refresh returns.
#[derive(Debug, Clone)]
pub struct Tokens {
    /// The access token.
    pub access: String,
    /// The refresh token (single use: rotated by [`Api::refresh`]).
    pub refresh: String,
    /// How long the access token lives.
    pub expires_in: std::time::Duration,
}

impl Tokens {
    fn of(v: &Value, what: &str) -> Result<Tokens> {
        let field = |f: &str| {
            v[f].as_str()
                .map(str::to_string)
                .ok_or_else(|| Error::Usage(format!("{what} answered without {f}")))
        };
        Ok(Tokens {
            access: field("accessToken")?,
            refresh: field("refreshToken")?,
            expires_in: std::time::Duration::from_secs(v["expiresIn"].as_u64().unwrap_or(900)),
        })
    }
}

/// A session as the candidate's start call returns it (the fields the load generator uses).
#[derive(Debug, Clone)]
pub struct StartedSession {
    /// The session.
    pub id: Uuid,
    /// Its WebRTC room.
    pub room: Uuid,
    /// Its questions, in the order served.
    pub questions: Vec<Uuid>,
}

fn uuid_at(v: &Value, field: &str) -> Result<Uuid> {
    v[field]
        .as_str()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| Error::Usage(format!("response without {field}: {v}")))
}

impl Api {
    /// Sends a JSON request; returns the status and the body (no expectation).
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut req = self
            .client
            .request(method, format!("{}/api/v1{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Creates a published exam open for the next two hours with `questions` SUBJECTIVE
    /// questions; returns its id.
    pub async fn published_exam(&self, admin: &str, run: &str, questions: usize) -> Result<Uuid> {
        self.published_exam_for(admin, run, questions, 120).await
    }

    /// [`Api::published_exam`] open (and lasting) `minutes` minutes from now (1..=1440).
    pub async fn published_exam_for(
        &self,
        admin: &str,
        run: &str,
        questions: usize,
        minutes: u32,
    ) -> Result<Uuid> {
        let minutes = minutes.clamp(1, 24 * 60);
        let now = chrono::Utc::now();
        let v = self
            .call(
                reqwest::Method::POST,
                "/exams",
                Some(admin),
                Some(json!({
                    "title": format!("loadtest {run}"), "instructions": "load test",
                    "durationMinutes": minutes,
                    "startsAt": now - chrono::Duration::minutes(5),
                    "endsAt": now + chrono::Duration::minutes(i64::from(minutes)),
                    "randomizeQuestions": false,
                })),
                StatusCode::CREATED,
            )
            .await?;
        let exam = uuid_at(&v, "id")?;
        for i in 0..questions.max(1) {
            self.call(
                reqwest::Method::POST,
                &format!("/exams/{exam}/questions"),
                Some(admin),
                Some(json!({"type": "SUBJECTIVE", "prompt": format!("Question {i}"), "points": 1})),
                StatusCode::CREATED,
            )
            .await?;
        }
        self.call(
            reqwest::Method::POST,
            &format!("/exams/{exam}/publish"),
            Some(admin),
            Some(json!({})),
            StatusCode::OK,
        )
        .await?;
        Ok(exam)
    }

    /// Assigns candidates to an exam (in chunks the API accepts).
    pub async fn assign(&self, admin: &str, exam: Uuid, candidates: &[Uuid]) -> Result<()> {
        for chunk in candidates.chunks(1000) {
            self.call(
                reqwest::Method::PUT,
                &format!("/exams/{exam}/assignments"),
                Some(admin),
                Some(json!({"candidateIds": chunk})),
                StatusCode::OK,
            )
            .await?;
        }
        Ok(())
    }

    /// Archives an exam (clean-up).
    pub async fn archive(&self, admin: &str, exam: Uuid) -> Result<()> {
        self.call(
            reqwest::Method::POST,
            &format!("/exams/{exam}/archive"),
            Some(admin),
            Some(json!({})),
            StatusCode::OK,
        )
        .await
        .map(|_| ())
    }

    /// A candidate starts (or resumes) its session of `exam`.
    pub async fn start_session(&self, candidate: &str, exam: Uuid) -> Result<StartedSession> {
        let (status, v) = self
            .raw(
                reqwest::Method::POST,
                &format!("/exams/{exam}/sessions"),
                Some(candidate),
                Some(json!({"deviceFingerprint": "loadtest-laptop"})),
            )
            .await?;
        if status != StatusCode::CREATED && status != StatusCode::OK {
            return Err(Error::Http {
                what: format!("POST /exams/{exam}/sessions"),
                status: status.as_u16(),
                body: v.to_string(),
            });
        }
        Ok(StartedSession {
            id: uuid_at(&v, "id")?,
            room: uuid_at(&v, "webrtcRoomId")?,
            questions: v["questions"]
                .as_array()
                .map(|qs| qs.iter().filter_map(|q| uuid_at(q, "id").ok()).collect())
                .unwrap_or_default(),
        })
    }

    /// Pairs a phone with a session: the laptop mints a token, the phone claims it; returns the
    /// phone's MOBILE access token.
    pub async fn pair_phone(&self, candidate: &str, session: Uuid) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/sessions/{session}/pairing"),
                Some(candidate),
                Some(json!({})),
                StatusCode::CREATED,
            )
            .await?;
        let token = v["pairingUrl"]
            .as_str()
            .and_then(|u| u.split_once("#t="))
            .map(|(_, t)| t.to_string())
            .ok_or_else(|| Error::Usage(format!("pairing without a token: {v}")))?;
        let v = self
            .call(
                reqwest::Method::POST,
                "/pairing/claim",
                None,
                Some(json!({"token": token, "deviceFingerprint": "loadtest-phone"})),
                StatusCode::OK,
            )
            .await?;
        v["accessToken"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Usage("claim answered without accessToken".into()))
    }

    /// Saves an answer; returns the version the hub now stores.
    pub async fn save_answer(
        &self,
        candidate: &str,
        session: Uuid,
        question: Uuid,
        version: u64,
        text: &str,
    ) -> Result<u64> {
        let v = self
            .call(
                reqwest::Method::PUT,
                &format!("/sessions/{session}/answers/{question}"),
                Some(candidate),
                Some(json!({"response": {"text": text}, "version": version})),
                StatusCode::OK,
            )
            .await?;
        v["version"]
            .as_u64()
            .ok_or_else(|| Error::Usage(format!("save answered without version: {v}")))
    }

    /// Submits a session; returns its final status.
    pub async fn submit(&self, candidate: &str, session: Uuid) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                &format!("/sessions/{session}/submit"),
                Some(candidate),
                Some(json!({})),
                StatusCode::OK,
            )
            .await?;
        Ok(v["status"].as_str().unwrap_or_default().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:80/x",
            "http://127.1.2.3",
        ] {
            assert!(check_loopback(ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://192.168.1.1",
            "nonsense",
        ] {
            assert!(check_loopback(bad).is_err(), "{bad}");
        }
    }
}
