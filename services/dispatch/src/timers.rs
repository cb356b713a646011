//! Consumes the `dispatch-timers` queue: scheduled checks on jobs
//! (acknowledgement timeouts, SLA breaches). A timer fires once even with
//! several replicas: the queue delivers it to one consumer at a time, and the
//! check changes a job only if the job is still in the state the timer guards.

use dispatch311_queue::{Delivery, JobHandler, Outcome};

use crate::{config::DispatchRules, store::Store};

pub struct TimerHandler {
    pub store: Store,
    pub rules: DispatchRules,
}

impl JobHandler for TimerHandler {
    async fn handle(&self, _delivery: Delivery) -> Outcome {
        Outcome::Retry {
            error: "timers are not built yet".into(),
            after: None,
        }
    }
}
