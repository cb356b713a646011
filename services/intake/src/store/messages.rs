//! Questions from responders to the complainant and the answers.

use super::*;
use tracing::Instrument;

/// What `answer_message` did.
pub enum Answered {
    Done(ComplainantMessage),
    /// No such question about a request of this integrator.
    Unknown,
    AlreadyAnswered,
}

pub(super) fn message_from_row(row: &PgRow) -> ComplainantMessage {
    ComplainantMessage {
        message_id: row.get::<Uuid, _>("message_id").to_string(),
        sr_number: row.get("sr_number"),
        from: row.get("asker"),
        question: row.get("question"),
        asked_at: Some(to_timestamp(row.get("asked_at"))),
        answer: row.get::<Option<String>, _>("answer").unwrap_or_default(),
        answered_at: row
            .get::<Option<DateTime<Utc>>, _>("answered_at")
            .map(to_timestamp),
    }
}

impl Store {
    /// Keeps a responder's question; `Some(false)` when it was kept before,
    /// `None` when the request is unknown.
    pub async fn record_question(
        &self,
        question: &ComplainantQuestion,
    ) -> StoreResult<Option<bool>> {
        let (Ok(message_id), Ok(sr_id)) = (
            Uuid::parse_str(&question.message_id),
            Uuid::parse_str(&question.sr_id),
        ) else {
            return Ok(None);
        };
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM service_requests WHERE sr_id = $1)")
                .bind(sr_id)
                .fetch_one(&self.pool)
                .instrument(dispatch311_db::statement_span("SELECT", "service_requests"))
                .await?;
        if !known {
            return Ok(None);
        }
        let asked_at = question
            .asked_at
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(Utc::now);
        let inserted = sqlx::query(
            "INSERT INTO complainant_messages (message_id, sr_id, job_id, asker, question, asked_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (message_id) DO NOTHING",
        )
        .bind(message_id)
        .bind(sr_id)
        .bind(&question.job_id)
        .bind(&question.from)
        .bind(&question.text)
        .bind(asked_at)
        .execute(&self.pool)
        .instrument(dispatch311_db::statement_span("INSERT", "complainant_messages"))
        .await?
        .rows_affected();
        Ok(Some(inserted == 1))
    }

    /// The questions to the complainant of `sr_id`, oldest first.
    pub async fn messages_of(&self, sr_id: Uuid) -> StoreResult<Vec<ComplainantMessage>> {
        let rows = sqlx::query(
            "SELECT m.message_id, s.sr_number, m.asker, m.question, m.asked_at, m.answer, m.answered_at \
             FROM complainant_messages m JOIN service_requests s USING (sr_id) \
             WHERE m.sr_id = $1 ORDER BY m.asked_at, m.message_id",
        )
        .bind(sr_id)
        .fetch_all(&self.pool)
        .instrument(dispatch311_db::statement_span("SELECT", "complainant_messages"))
        .await?;
        Ok(rows.iter().map(message_from_row).collect())
    }

    /// Records the complainant's answer to `message_id` — a question about a
    /// request `filed_by` filed — with their name, phone numbers and e-mail
    /// addresses taken out, and sends it on to dispatch, in one transaction.
    pub async fn answer_message(
        &self,
        filed_by: &str,
        message_id: Uuid,
        answer: &str,
    ) -> StoreResult<Answered> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = sqlx::query(
            "SELECT m.sr_id, m.job_id, m.answered_at, c.key_id, c.sealed \
             FROM complainant_messages m JOIN service_requests s USING (sr_id) \
             LEFT JOIN complainant_contacts c USING (sr_id) \
             WHERE m.message_id = $1 AND s.filed_by = $2 FOR UPDATE OF m",
        )
        .bind(message_id)
        .bind(filed_by)
        .fetch_optional(&mut *tx)
        .instrument(dispatch311_db::statement_span(
            "SELECT",
            "complainant_messages",
        ))
        .await?
        else {
            return Ok(Answered::Unknown);
        };
        if row.get::<Option<DateTime<Utc>>, _>("answered_at").is_some() {
            return Ok(Answered::AlreadyAnswered);
        }
        let sr_id: Uuid = row.get("sr_id");
        let name = match (
            row.get::<Option<String>, _>("key_id"),
            row.get::<Option<Vec<u8>>, _>("sealed"),
        ) {
            (Some(key_id), Some(sealed)) => {
                open_contact(&self.contacts, sr_id, key_id, sealed)?.name
            }
            _ => String::new(),
        };
        let redacted = redact::for_responders(answer, &name);
        let now = Utc::now().trunc_subsecs(6);
        let to_dispatch = ComplainantAnswer {
            message_id: message_id.to_string(),
            sr_id: sr_id.to_string(),
            job_id: row.get("job_id"),
            text: redacted.clone(),
            answered_at: Some(to_timestamp(now)),
        };
        sqlx::query(
            "UPDATE complainant_messages SET answer = $2, answered_at = $3 WHERE message_id = $1",
        )
        .bind(message_id)
        .bind(&redacted)
        .bind(now)
        .execute(&mut *tx)
        .instrument(dispatch311_db::statement_span(
            "UPDATE",
            "complainant_messages",
        ))
        .await?;
        outbox::enqueue(
            &mut tx,
            queues::COMPLAINANT_ANSWERS,
            kinds::COMPLAINANT_ANSWER,
            &to_dispatch.sr_id,
            &to_dispatch,
        )
        .await?;
        let message = sqlx::query(
            "SELECT m.message_id, s.sr_number, m.asker, m.question, m.asked_at, m.answer, m.answered_at \
             FROM complainant_messages m JOIN service_requests s USING (sr_id) WHERE m.message_id = $1",
        )
        .bind(message_id)
        .fetch_one(&mut *tx)
        .instrument(dispatch311_db::statement_span("SELECT", "complainant_messages"))
        .await?;
        tx.commit().await?;
        Ok(Answered::Done(message_from_row(&message)))
    }
}
