//! Consumes the `complainant-questions` queue: a responder's question for the
//! complainant of a request, kept for the integrator that filed it
//! (ListComplainantMessages) until the complainant answers
//! (AnswerComplainantMessage). Kept once per message id.

use dispatch311_proto::jobs::v1::ComplainantQuestion;
use dispatch311_queue::{Delivery, JobHandler, Outcome};

use crate::{status_updates::outcome_of_failure, store::Store};

pub struct ComplainantQuestionHandler {
    store: Store,
}

impl ComplainantQuestionHandler {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl JobHandler for ComplainantQuestionHandler {
    async fn handle(&self, delivery: Delivery) -> Outcome {
        let question: ComplainantQuestion = match delivery.payload() {
            Ok(question) => question,
            Err(e) => return Outcome::dead_letter(format!("undecodable question: {e}")),
        };
        match self.store.record_question(&question).await {
            Ok(Some(new)) => {
                tracing::info!(
                    sr_number = %question.sr_number,
                    message_id = %question.message_id,
                    new,
                    "responder's question kept for the complainant"
                );
                Outcome::Done
            }
            Ok(None) => Outcome::dead_letter(format!(
                "question {} for an unknown request {}",
                question.message_id, question.sr_id
            )),
            Err(e) => outcome_of_failure(e),
        }
    }
}
