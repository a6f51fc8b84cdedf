//! The `iceServers` of `joined`: STUN URLs as configured, and TURN with short-lived REST
//! credentials (coturn's `use-auth-secret`): username `expiry:peerId` where `expiry` is a Unix
//! time, credential base64(HMAC-SHA1(secret, username)). The TURN server checks the HMAC and
//! the expiry itself, so the hub keeps no state for it.

use base64::Engine;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use signaling::{IceServer, PeerId};

use crate::config::IceConfig;

/// The servers for `peer`, with TURN credentials valid until `now_unix + ttl`.
pub fn ice_servers(config: &IceConfig, peer: PeerId, now_unix: i64) -> Vec<IceServer> {
    let mut servers = Vec::new();
    if !config.stun_urls.is_empty() {
        servers.push(IceServer {
            urls: config.stun_urls.clone(),
            username: None,
            credential: None,
        });
    }
    if let (false, Some(secret)) = (config.turn_urls.is_empty(), &config.turn_secret) {
        let expiry = now_unix + config.turn_ttl.as_secs() as i64;
        let username = format!("{expiry}:{peer}");
        servers.push(IceServer {
            urls: config.turn_urls.clone(),
            credential: Some(turn_credential(secret.expose_secret(), &username)),
            username: Some(username),
        });
    }
    servers
}

/// base64(HMAC-SHA1(secret, username)).
pub fn turn_credential(secret: &str, username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn turn_rest_credentials() {
        // Reference value computed with: printf '%s' '1700003600:user' |
        //   openssl dgst -sha1 -hmac 'north' -binary | base64
        assert_eq!(
            turn_credential("north", "1700003600:user"),
            "sINANF+/jFpitqlh5IvZjJDUz54="
        );
        let peer = PeerId::new_v4();
        let config = IceConfig {
            stun_urls: vec!["stun:127.0.0.1:3478".into()],
            turn_urls: vec!["turn:127.0.0.1:3478?transport=udp".into()],
            turn_secret: Some("north".to_string().into()),
            turn_ttl: Duration::from_secs(600),
        };
        let servers = ice_servers(&config, peer, 1_700_000_000);
        assert_eq!(servers.len(), 2);
        assert!(servers[0].username.is_none());
        let turn = &servers[1];
        let username = turn.username.clone().unwrap();
        assert_eq!(username, format!("1700000600:{peer}"));
        assert_eq!(
            turn.credential.as_deref(),
            Some(turn_credential("north", &username).as_str())
        );
        // Without a secret, no TURN entry.
        let no_secret = IceConfig {
            turn_secret: None,
            ..config
        };
        assert_eq!(ice_servers(&no_secret, peer, 0).len(), 1);
    }
}
