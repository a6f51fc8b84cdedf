//! A WebSocket client of the hub speaking `signaling`'s types.

use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use signaling::{decode_server, encode_client, ClientMessage, RoomId, ServerMessage};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use crate::error::{Error, Result};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An authenticated socket.
pub struct Socket {
    ws: Ws,
}

/// The sending half of a split [`Socket`].
pub struct Tx(SplitSink<Ws, Message>);

/// The receiving half of a split [`Socket`].
pub struct Rx(SplitStream<Ws>);

fn decode(
    msg: Option<std::result::Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Option<Result<ServerMessage>> {
    match msg {
        Some(Ok(Message::Text(t))) => {
            Some(decode_server(&t).map_err(|e| Error::Usage(format!("bad server message: {e}"))))
        }
        Some(Ok(Message::Close(c))) => Some(Err(Error::Usage(format!("closed by the hub: {c:?}")))),
        Some(Ok(_)) => None,
        Some(Err(e)) => Some(Err(e.into())),
        None => Some(Err(Error::Usage("socket ended".into()))),
    }
}

impl Socket {
    /// Connects and authenticates; returns the socket and its `authed` message.
    ///
    /// The client keeps small buffers (4 KiB reads) so that tens of thousands of sockets fit.
    pub async fn connect(url: &str, token: &str) -> Result<(Socket, ServerMessage)> {
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true).await?;
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

    /// Sends one typed client message.
    pub async fn send(&mut self, m: &ClientMessage) -> Result<()> {
        self.ws.send(Message::Text(encode_client(m).into())).await?;
        Ok(())
    }

    /// The next server message (pings are answered by the library).
    pub async fn recv(&mut self) -> Result<ServerMessage> {
        loop {
            if let Some(r) = decode(self.ws.next().await) {
                return r;
            }
        }
    }

    /// Joins a room and waits for `joined` (skipping presence and other pushes).
    pub async fn join(&mut self, room: Uuid) -> Result<ServerMessage> {
        self.send(&ClientMessage::Join(signaling::Join {
            room_id: RoomId::from_uuid(room),
        }))
        .await?;
        loop {
            match self.recv().await? {
                m @ ServerMessage::Joined { .. } => return Ok(m),
                ServerMessage::Error { code, message, .. } => {
                    return Err(Error::Usage(format!("join refused: {code}: {message}")))
                }
                _ => {}
            }
        }
    }

    /// Splits into independently driven halves.
    pub fn split(self) -> (Tx, Rx) {
        let (tx, rx) = self.ws.split();
        (Tx(tx), Rx(rx))
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

impl Tx {
    /// Sends a frame already encoded.
    pub async fn send_text(&mut self, text: String) -> Result<()> {
        self.0.send(Message::Text(text.into())).await?;
        Ok(())
    }

    /// Sends one typed client message.
    pub async fn send(&mut self, m: &ClientMessage) -> Result<()> {
        self.send_text(encode_client(m)).await
    }

    /// Sends a close frame.
    pub async fn close(mut self) {
        let _ = self.0.close().await;
    }
}

impl Rx {
    /// The next server message.
    pub async fn recv(&mut self) -> Result<ServerMessage> {
        loop {
            if let Some(r) = decode(self.0.next().await) {
                return r;
            }
        }
    }
}
