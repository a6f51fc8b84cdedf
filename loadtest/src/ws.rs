//! A WebSocket client of the hub speaking `signaling`'s types.

use futures::{SinkExt, StreamExt};
use signaling::{decode_server, ServerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::{Error, Result};

/// An authenticated socket.
pub struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Socket {
    /// Connects and authenticates; returns the socket and its `authed` message.
    pub async fn connect(url: &str, token: &str) -> Result<(Socket, ServerMessage)> {
        let (ws, _) = tokio_tungstenite::connect_async(url).await?;
        let mut s = Socket { ws };
        s.send_json(&serde_json::json!({"type": "auth", "token": token}))
            .await?;
        let authed = s.recv().await?;
        match authed {
            ServerMessage::Authed { .. } => Ok((s, authed)),
            other => Err(Error::Usage(format!("expected authed, got {other:?}"))),
        }
    }

    /// Sends one JSON message.
    pub async fn send_json(&mut self, v: &serde_json::Value) -> Result<()> {
        self.ws.send(Message::Text(v.to_string().into())).await?;
        Ok(())
    }

    /// The next server message (pings are answered by the library).
    pub async fn recv(&mut self) -> Result<ServerMessage> {
        loop {
            match self.ws.next().await {
                Some(Ok(Message::Text(t))) => {
                    return decode_server(&t)
                        .map_err(|e| Error::Usage(format!("bad server message: {e}")))
                }
                Some(Ok(Message::Close(c))) => {
                    return Err(Error::Usage(format!("closed by the hub: {c:?}")))
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err(Error::Usage("socket ended".into())),
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
