-- Dispatch's schema: police 311 jobs in per-precinct queues, the append-only
-- log of what happened to each job, and the outbox of jobs to publish.
-- No complainant contact details are ever stored here.

CREATE TABLE jobs (
    job_id                 UUID PRIMARY KEY,
    -- one job per service request: a redelivered dispatch job creates nothing
    sr_id                  UUID NOT NULL UNIQUE,
    sr_number              TEXT NOT NULL UNIQUE,
    complaint_type         TEXT NOT NULL,
    descriptor             TEXT NOT NULL,
    latitude               DOUBLE PRECISION,
    longitude              DOUBLE PRECISION,
    street_address         TEXT NOT NULL,
    cross_street           TEXT NOT NULL,
    borough                TEXT NOT NULL,
    postal_code            TEXT NOT NULL,
    agency                 TEXT NOT NULL,
    precinct               TEXT NOT NULL,
    priority               TEXT NOT NULL,
    -- numeric priority so queues sort highest first
    priority_rank          SMALLINT NOT NULL,
    state                  TEXT NOT NULL,
    sla_due_at             TIMESTAMPTZ,
    created_at             TIMESTAMPTZ NOT NULL,
    routed_at              TIMESTAMPTZ,
    queued_at              TIMESTAMPTZ NOT NULL,
    photo_count            INTEGER NOT NULL,
    complainant_consented  BOOLEAN NOT NULL
);

-- a precinct's queue: open jobs, highest priority first, then oldest first
CREATE INDEX jobs_precinct_queue ON jobs (precinct, priority_rank DESC, queued_at, job_id) WHERE state = 'QUEUED';

-- Everything that happened to a job; appended, never edited.
CREATE TABLE job_events (
    id           BIGSERIAL PRIMARY KEY,
    job_id       UUID NOT NULL REFERENCES jobs (job_id),
    event_type   TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL,
    actor        TEXT NOT NULL,
    reason       TEXT NOT NULL
);

CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE FUNCTION reject_job_event_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'job events are append-only';
END
$$;

CREATE TRIGGER job_events_append_only
    BEFORE UPDATE OR DELETE ON job_events
    FOR EACH ROW EXECUTE FUNCTION reject_job_event_change();

CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    queue       TEXT NOT NULL,
    envelope    BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
