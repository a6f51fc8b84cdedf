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
        let v = self
            .call(
                reqwest::Method::POST,
                "/auth/login",
                None,
                Some(json!({"email": email, "password": password})),
                StatusCode::OK,
            )
            .await?;
        v["accessToken"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| Error::Usage("login answered without accessToken".into()))
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
