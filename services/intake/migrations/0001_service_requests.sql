-- Intake's schema: the public record of each service request, its public
-- timeline, the complainant's contact details (which never leave this
-- schema), client idempotency keys, and the outbox of jobs to publish.

CREATE SEQUENCE sr_number_seq;

CREATE TABLE service_requests (
    sr_id            UUID PRIMARY KEY,
    sr_number        TEXT NOT NULL UNIQUE,
    -- the client's idempotency key: the same key twice returns the first request
    request_id       TEXT NOT NULL UNIQUE,
    complaint_type   TEXT NOT NULL,
    descriptor       TEXT NOT NULL,
    latitude         DOUBLE PRECISION,
    longitude        DOUBLE PRECISION,
    street_address   TEXT NOT NULL,
    cross_street     TEXT NOT NULL,
    borough          TEXT NOT NULL,
    postal_code      TEXT NOT NULL,
    -- the complainant's own words: kept here, never in the public view or a job
    description      TEXT NOT NULL,
    photos           JSONB NOT NULL,
    channel          TEXT NOT NULL,
    status           TEXT NOT NULL,
    -- lifecycle position of `status`, so late updates never move a request back
    status_rank      SMALLINT NOT NULL,
    agency           TEXT NOT NULL DEFAULT '',
    precinct         TEXT NOT NULL DEFAULT '',
    priority         TEXT NOT NULL DEFAULT '',
    sla_due_at       TIMESTAMPTZ,
    resolution_code  TEXT NOT NULL DEFAULT '',
    resolution_text  TEXT NOT NULL DEFAULT '',
    resolved_at      TIMESTAMPTZ,
    trace_id         TEXT NOT NULL,
    observed_at      TIMESTAMPTZ NOT NULL,
    created_at       TIMESTAMPTZ NOT NULL,
    updated_at       TIMESTAMPTZ NOT NULL,
    -- when the reconciler last re-published the route job of a stuck request
    republished_at   TIMESTAMPTZ,
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE INDEX service_requests_created ON service_requests (created_at DESC, sr_id DESC);
CREATE INDEX service_requests_status_created ON service_requests (status, created_at DESC);
-- the reconciler looks for requests that stopped early in the pipeline
CREATE INDEX service_requests_unfinished ON service_requests (created_at) WHERE status IN ('RECEIVED', 'ROUTED');

-- Contact details of the complainant. Only intake reads this table.
CREATE TABLE complainant_contacts (
    sr_id               UUID PRIMARY KEY REFERENCES service_requests (sr_id),
    name                TEXT NOT NULL,
    phone               TEXT NOT NULL,
    email               TEXT NOT NULL,
    consent_to_contact  BOOLEAN NOT NULL
);

-- Every public status change; appended, never edited.
CREATE TABLE timeline_entries (
    id              BIGSERIAL PRIMARY KEY,
    sr_id           UUID NOT NULL REFERENCES service_requests (sr_id),
    status          TEXT NOT NULL,
    occurred_at     TIMESTAMPTZ NOT NULL,
    source          TEXT NOT NULL,
    message         TEXT NOT NULL,
    -- identifies the transition, so a redelivered status update is applied once
    transition_key  TEXT NOT NULL,
    UNIQUE (sr_id, transition_key)
);

CREATE FUNCTION reject_timeline_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'timeline entries are append-only';
END
$$;

CREATE TRIGGER timeline_entries_append_only
    BEFORE UPDATE OR DELETE ON timeline_entries
    FOR EACH ROW EXECUTE FUNCTION reject_timeline_change();

-- Transactional outbox: jobs written in the same transaction as the change
-- that caused them, published to Redis by the relay.
CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    queue       TEXT NOT NULL,
    envelope    BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
