//! Fuzzes the client decoder and the connection state machine with arbitrary frames.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use signaling::{decode_client, encode_client, Action, Connection, Inbound, Limits};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match decode_client(&text) {
        // Whatever decodes must encode and decode to the same message.
        Ok(message) => assert_eq!(decode_client(&encode_client(&message)), Ok(message)),
        Err(e) => {
            let _ = (e.code(), e.close_code(), e.to_string());
        }
    }
    // The same bytes as a pre-auth frame must never be mistaken for anything but auth.
    let mut conn = Connection::new(Limits::default(), Duration::ZERO);
    match conn.on_frame(Inbound::Text(text.as_ref()), Duration::ZERO) {
        Action::Authenticate(_) | Action::Close(_) => {}
        other => panic!("unexpected pre-auth action {other:?}"),
    }
});
