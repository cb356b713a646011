//! Questions from the crew to the complainant, through intake (which alone
//! knows how to reach them), and the answers: both on the job's timeline,
//! each answer once.

use dispatch311_domain::{
    jobs::{kinds, queues},
    time::to_timestamp,
};
use dispatch311_proto::{
    dispatch::v1::{self as dispatch, EventType, Role},
    jobs::v1::ComplainantQuestion,
};
use uuid::Uuid;

use super::{
    JobError,
    change::{AskedMessage, JobChange},
    commands::AskComplainant,
    lifecycle::{COMPLAINANT_ACTOR, Lifecycle, MAX_NOTES_CHARS, open_for_crew},
};
use crate::store::{
    changes::ReadFor,
    events::{ActorRef, NewEvent},
};

impl Lifecycle {
    /// Sends the crew's question to the complainant through intake, and
    /// records it (event, message row and the intake job in one write).
    pub async fn relay_message_to_complainant(
        &self,
        command: AskComplainant,
    ) -> Result<(Uuid, dispatch::Job), JobError> {
        let AskComplainant {
            actor,
            job_id,
            text,
        } = command;
        let (job, change) = self
            .must_change(job_id, &ReadFor::default(), |s, now| {
                open_for_crew(&actor, s)?;
                let mut change = JobChange::new(&s.job, &s.flag_keys, now);
                let message_id = Uuid::now_v7();
                let question = ComplainantQuestion {
                    message_id: message_id.to_string(),
                    sr_id: s.job.sr_id.to_string(),
                    sr_number: s.job.sr_number.clone(),
                    job_id: job_id.to_string(),
                    from: format!("NYPD precinct {}", s.job.precinct),
                    text: text.clone(),
                    asked_at: Some(to_timestamp(now)),
                };
                change.asked = Some(AskedMessage {
                    message_id,
                    asked_by: actor.id.clone(),
                });
                change.publish(
                    queues::COMPLAINANT_QUESTIONS,
                    kinds::COMPLAINANT_QUESTION,
                    &question,
                )?;
                change.append(NewEvent {
                    event_type: EventType::MessageToComplainant,
                    actor: actor.clone(),
                    occurred_at: now,
                    position: None,
                    unit_id: s.job.unit_id,
                    reason: text.clone(),
                });
                Ok(change)
            })
            .await?;
        let message_id = change
            .asked
            .map(|asked| asked.message_id)
            .unwrap_or_default();
        Ok((message_id, job))
    }

    /// Puts the complainant's (redacted) answer to `message_id` on the job's
    /// timeline, once. Returns whether it was new.
    pub async fn record_complainant_answer(
        &self,
        job_id: Uuid,
        message_id: Uuid,
        text: String,
    ) -> Result<bool, JobError> {
        let read = ReadFor {
            message_id: Some(message_id),
            ..ReadFor::default()
        };
        let written = self
            .change(job_id, &read, |s, now| {
                if !s.message_unanswered {
                    return Ok(None);
                }
                let mut change = JobChange::new(&s.job, &s.flag_keys, now);
                change.answered = Some(message_id);
                change.append(NewEvent {
                    event_type: EventType::ComplainantAnswered,
                    actor: ActorRef {
                        id: COMPLAINANT_ACTOR.into(),
                        role: Role::System,
                    },
                    occurred_at: now,
                    position: None,
                    unit_id: s.job.unit_id,
                    reason: text.chars().take(MAX_NOTES_CHARS).collect(),
                });
                Ok(Some(change))
            })
            .await?;
        Ok(written.is_some())
    }
}
