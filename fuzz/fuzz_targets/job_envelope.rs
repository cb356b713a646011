//! Bytes read from a queue may be anything (a bug elsewhere, a hand-edited
//! stream): the envelope and every payload decode to a value or an error.
#![no_main]

use dispatch311_proto::jobs::v1::{
    ClosedEvent, DispatchJob, JobEnvelope, ReopenRequest, RouteJob, StatusUpdate,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = JobEnvelope::decode(data) {
        let payload = envelope.payload.as_slice();
        let _ = RouteJob::decode(payload);
        let _ = DispatchJob::decode(payload);
        let _ = StatusUpdate::decode(payload);
        let _ = ClosedEvent::decode(payload);
        let _ = ReopenRequest::decode(payload);
    }
});
