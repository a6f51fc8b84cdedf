//! Events reported over the WebSocket: checked against the sender (a laptop reports LAPTOP
//! events, a phone MOBILE events, nobody but the hub SYSTEM events), handed to the batched
//! ingest, and acknowledged (`event-ack`) only once stored. The socket does not wait for the
//! store: the ack is queued on the socket's outbox when the write commits, so heartbeats and
//! signaling keep flowing while the event store is slow. Watchers learn of the event from the
//! live feed once it is stored.

use std::sync::Arc;

use signaling::{encode_server, EventReport, ServerMessage};
use uuid::Uuid;

use crate::events::ingest::IngestError;
use crate::events::validate::{check_source, check_timestamp};
use crate::events::{to_millis, NewEvent, Source};
use crate::hub::Principal;
use crate::model::Role;
use crate::state::AppState;
use crate::ws::outbox::Outbox;

/// The error reply code when the event store cannot take or confirm events.
pub const EVENT_STORE_UNAVAILABLE: &str = "EVENT_STORE_UNAVAILABLE";

/// Accepts one event from a device. `Ok` means it is queued and its `event-ack` (or an
/// `error` with [`EVENT_STORE_UNAVAILABLE`]) will arrive on `outbox`; `Err` is the error reply
/// to send now, `(code, message)`.
pub async fn accept(
    state: &AppState,
    principal: &Principal,
    event: EventReport,
    outbox: &Outbox,
) -> Result<(), (&'static str, String)> {
    let source = match principal.role {
        Role::Candidate => Source::Laptop,
        Role::Mobile => Source::Mobile,
        Role::Admin | Role::Proctor => {
            return Err((
                "FORBIDDEN",
                "only a candidate's devices report events".into(),
            ))
        }
    };
    check_source(event.source.as_ref().map(|s| s.as_str()), source)
        .map_err(|r| (r.code, r.reason))?;
    let now = chrono::Utc::now();
    let timestamp =
        check_timestamp(event.timestamp.map(|t| t.get()), now).map_err(|r| (r.code, r.reason))?;
    // The device's own live session: a phone's is in its token; a laptop's is its open one.
    let row = state
        .device_session(principal.user_id, principal.session_id)
        .await
        .map_err(|_| {
            (
                "STORE_UNAVAILABLE",
                "the event was not stored; retry".to_string(),
            )
        })?;
    let Some((session_id, exam_id)) = row else {
        return Err((
            "NO_ACTIVE_SESSION",
            "no session in progress for this device".into(),
        ));
    };
    let event_id = event.event_id;
    let stored = NewEvent {
        id: Uuid::now_v7(),
        event_id: event_id.as_uuid(),
        session_id,
        exam_id,
        candidate_id: principal.user_id,
        source,
        event_type: event.event_type.as_str().to_string(),
        severity: i16::from(event.severity.get()),
        timestamp,
        received_at: to_millis(now),
        meta: event.meta.map(|m| serde_json::Value::Object(m.into_map())),
        frame_ref: event.frame_ref.map(|f| f.as_str().to_string()),
    };
    let unavailable = || {
        (
            EVENT_STORE_UNAVAILABLE,
            "the event was not stored; retry with the same eventId".to_string(),
        )
    };
    let pending = state.ingest.submit(vec![stored]).map_err(|e| match e {
        IngestError::Full | IngestError::Unavailable | IngestError::Rejected => unavailable(),
    })?;
    let wait = state.config.events.ack_timeout;
    let outbox = outbox.clone();
    state.tasks.spawn(async move {
        let reply = match tokio::time::timeout(wait, pending).await {
            Ok(Ok(Ok(_))) => ServerMessage::EventAck { event_id },
            _ => {
                let (code, message) = unavailable();
                ServerMessage::error(code, message)
            }
        };
        outbox.push(Arc::from(encode_server(&reply)));
    });
    Ok(())
}
