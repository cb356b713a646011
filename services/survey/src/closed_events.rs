//! Consumes the `closed` queue: every closure dispatch publishes is stored
//! once per `(sr_id, closure_number)`, ready for the survey system's poll.

use dispatch311_domain::time::from_timestamp;
use dispatch311_proto::{common::v1::ResolutionCode, jobs::v1::ClosedEvent};
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use dispatch311_telemetry::attributes::{self, set_on_current};
use uuid::Uuid;

use crate::store::{NewClosure, Store, StoreError};

pub struct ClosedEventHandler {
    store: Store,
}

impl ClosedEventHandler {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl JobHandler for ClosedEventHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let event = match delivery.payload::<ClosedEvent>() {
            Ok(event) => event,
            Err(e) => return Outcome::dead_letter(format!("undecodable closed event: {e}")),
        };
        set_on_current(attributes::SR_NUMBER, event.sr_number.clone());
        set_on_current(attributes::PRECINCT, event.precinct.clone());
        let closure = match closure_of(&event) {
            Ok(closure) => closure,
            Err(reason) => return Outcome::dead_letter(format!("invalid closed event: {reason}")),
        };
        match self.store.record_closure(&closure).await {
            Ok(true) => {
                tracing::info!(
                    sr_number = %closure.sr_number,
                    closure_number = closure.closure_number,
                    precinct = %closure.precinct,
                    consented = closure.complainant_consented,
                    "closure recorded"
                );
                Outcome::Done
            }
            Ok(false) => {
                tracing::info!(
                    sr_number = %closure.sr_number,
                    closure_number = closure.closure_number,
                    "closure already recorded"
                );
                Outcome::Done
            }
            Err(StoreError::Database(e)) => Outcome::retry(format!("database: {e}")),
            Err(e) => Outcome::retry(e),
        }
    }
}

/// The closure an event describes, or why it cannot be stored.
pub fn closure_of(event: &ClosedEvent) -> Result<NewClosure, String> {
    let sr_id = Uuid::parse_str(&event.sr_id).map_err(|_| "sr_id is not a uuid".to_string())?;
    if event.sr_number.trim().is_empty() {
        return Err("sr_number is empty".into());
    }
    let closure_number = i32::try_from(event.closure_number)
        .ok()
        .filter(|n| *n >= 1)
        .ok_or("closure_number must be 1 or more")?;
    let closed_at = event
        .closed_at
        .as_ref()
        .and_then(from_timestamp)
        .ok_or("closed_at is missing or not a time")?;
    let assigned_at = match &event.assigned_at {
        Some(at) => Some(from_timestamp(at).ok_or("assigned_at is not a time")?),
        None => None,
    };
    let resolution_code = ResolutionCode::try_from(event.resolution_code)
        .map_err(|_| format!("unknown resolution code {}", event.resolution_code))?;
    Ok(NewClosure {
        sr_id,
        sr_number: event.sr_number.clone(),
        closure_number,
        agency: event.agency.clone(),
        precinct: event.precinct.clone(),
        borough: event.borough.clone(),
        complaint_type: event.complaint_type.clone(),
        descriptor: event.descriptor.clone(),
        resolution_code,
        resolution_text: event.resolution_text.clone(),
        closed_at,
        assigned_at,
        flagged: event.flagged,
        summons_issued: event.summons_issued,
        complainant_consented: event.complainant_consented,
        origin_traceparent: event.origin_traceparent.clone(),
        // a malformed id counts the closure as a job of its own
        job_id: Uuid::parse_str(&event.job_id).ok(),
    })
}

#[cfg(test)]
mod tests {
    use dispatch311_proto::Timestamp;

    use super::*;

    fn event() -> ClosedEvent {
        ClosedEvent {
            sr_id: "0193a1f2-7c4e-7d1a-9b3e-1f2a3b4c5d6e".into(),
            sr_number: "SR-2026-0000042".into(),
            agency: "NYPD".into(),
            precinct: "14".into(),
            borough: "MANHATTAN".into(),
            complaint_type: "Illegal Parking".into(),
            descriptor: "Blocked Hydrant".into(),
            resolution_code: ResolutionCode::NoEvidence as i32,
            resolution_text: "no evidence".into(),
            closed_at: Some(Timestamp {
                seconds: 1_800_000_000,
                nanos: 0,
            }),
            assigned_at: None,
            flagged: true,
            complainant_consented: true,
            closure_number: 2,
            summons_issued: false,
            origin_traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into(),
            job_id: "0193a1f2-7c4e-7d1a-9b3e-1f2a3b4c5d70".into(),
        }
    }

    #[test]
    fn a_closed_event_becomes_a_closure() {
        let closure = closure_of(&event()).unwrap();
        assert_eq!(closure.closure_number, 2);
        assert_eq!(closure.resolution_code, ResolutionCode::NoEvidence);
        assert_eq!(closure.assigned_at, None);
        assert!(closure.flagged && closure.complainant_consented);
    }

    #[test]
    fn events_that_cannot_be_stored_say_why() {
        let mut bad_id = event();
        bad_id.sr_id = "42".into();
        let mut no_closure = event();
        no_closure.closure_number = 0;
        let mut no_time = event();
        no_time.closed_at = None;
        let mut bad_code = event();
        bad_code.resolution_code = 99;
        for (event, why) in [
            (bad_id, "sr_id"),
            (no_closure, "closure_number"),
            (no_time, "closed_at"),
            (bad_code, "resolution code"),
        ] {
            let reason = closure_of(&event).unwrap_err();
            assert!(reason.contains(why), "{reason}");
        }
    }
}
