-- Questions responders sent to the complainant through intake, and when the
-- answer came back. The texts are in the job's event log (the question as
-- MESSAGE_TO_COMPLAINANT, the redacted answer as COMPLAINANT_ANSWERED); this
-- table makes an answer count once, however often it is delivered.
CREATE TABLE complainant_messages (
    message_id   UUID PRIMARY KEY,
    job_id       UUID NOT NULL REFERENCES jobs (job_id),
    asked_by     TEXT NOT NULL,
    asked_at     TIMESTAMPTZ NOT NULL,
    answered_at  TIMESTAMPTZ
);
CREATE INDEX complainant_messages_of_job ON complainant_messages (job_id);
