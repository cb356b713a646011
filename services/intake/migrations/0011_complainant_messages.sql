-- Questions responders sent to a request's complainant (through dispatch),
-- and the answers, kept as sent on: with the complainant's name, phone
-- numbers and e-mail addresses taken out. The integrator that filed the
-- request shows the question to the complainant and posts the answer; the
-- responder is named by precinct only (`asker`), the complainant not at all.
CREATE TABLE complainant_messages (
    message_id   UUID PRIMARY KEY,
    sr_id        UUID NOT NULL REFERENCES service_requests (sr_id),
    job_id       TEXT NOT NULL,
    asker        TEXT NOT NULL,
    question     TEXT NOT NULL,
    asked_at     TIMESTAMPTZ NOT NULL,
    answer       TEXT,
    answered_at  TIMESTAMPTZ,
    CHECK ((answer IS NULL) = (answered_at IS NULL))
);
CREATE INDEX complainant_messages_of_request ON complainant_messages (sr_id, asked_at);
