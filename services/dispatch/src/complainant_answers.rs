//! Consumes the `complainant-answers` queue: the complainant's answer to a
//! responder's question, relayed by intake with the complainant's name,
//! phone numbers and e-mail addresses already taken out. It goes on the
//! job's timeline (COMPLAINANT_ANSWERED) once, whatever the redeliveries.

use dispatch311_proto::jobs::v1::ComplainantAnswer;
use dispatch311_queue::{Delivery, JobHandler, Outcome};
use uuid::Uuid;

use crate::jobs::lifecycle::Lifecycle;

pub struct ComplainantAnswerHandler {
    lifecycle: Lifecycle,
}

impl ComplainantAnswerHandler {
    pub fn new(lifecycle: Lifecycle) -> Self {
        Self { lifecycle }
    }
}

impl JobHandler for ComplainantAnswerHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let answer: ComplainantAnswer = match delivery.payload() {
            Ok(answer) => answer,
            Err(e) => return Outcome::dead_letter(format!("undecodable complainant answer: {e}")),
        };
        let (Ok(job_id), Ok(message_id)) = (
            Uuid::parse_str(&answer.job_id),
            Uuid::parse_str(&answer.message_id),
        ) else {
            return Outcome::dead_letter("complainant answer without a job id and a message id");
        };
        // the answer's text goes to the event log, never to a log line
        match self
            .lifecycle
            .record_complainant_answer(job_id, message_id, answer.text)
            .await
        {
            Ok(true) => {
                tracing::info!(%job_id, %message_id, "complainant answered a responder's question");
                Outcome::Done
            }
            Ok(false) => {
                tracing::debug!(%job_id, %message_id, "complainant answer already recorded");
                Outcome::Done
            }
            Err(e) if e.is_final() => Outcome::dead_letter(format!("answer not recorded: {e}")),
            Err(e) => Outcome::Retry {
                error: e.to_string(),
                after: None,
            },
        }
    }
}
