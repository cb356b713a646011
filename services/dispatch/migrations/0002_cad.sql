-- The computer-aided dispatch core: units, assignments, the guarded job
-- lifecycle, a hash-chained event log, accountability flags and the feed
-- that units' devices watch.

CREATE TABLE units (
    unit_id               UUID PRIMARY KEY,
    call_sign             TEXT NOT NULL UNIQUE,
    precinct              TEXT NOT NULL,
    officer_ids           TEXT[] NOT NULL,
    status                TEXT NOT NULL,
    latitude              DOUBLE PRECISION,
    longitude             DOUBLE PRECISION,
    position_reported_at  TIMESTAMPTZ,
    current_job_id        UUID,
    updated_at            TIMESTAMPTZ NOT NULL
);

CREATE INDEX units_precinct ON units (precinct, status);

CREATE TABLE precinct_settings (
    precinct     TEXT PRIMARY KEY,
    auto_assign  BOOLEAN NOT NULL
);

ALTER TABLE jobs
    ADD COLUMN police_matter      BOOLEAN NOT NULL DEFAULT true,
    ADD COLUMN unit_id            UUID REFERENCES units (unit_id),
    -- increases with every assignment; an acknowledgement timer names the one it guards
    ADD COLUMN assignment_number  BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN assigned_at        TIMESTAMPTZ,
    ADD COLUMN acknowledged_at    TIMESTAMPTZ,
    ADD COLUMN en_route_at        TIMESTAMPTZ,
    ADD COLUMN on_scene_at        TIMESTAMPTZ,
    ADD COLUMN on_scene_latitude  DOUBLE PRECISION,
    ADD COLUMN on_scene_longitude DOUBLE PRECISION,
    ADD COLUMN closed_at          TIMESTAMPTZ,
    ADD COLUMN closed_by          TEXT,
    ADD COLUMN resolution_code    TEXT NOT NULL DEFAULT '',
    ADD COLUMN resolution_notes   TEXT NOT NULL DEFAULT '',
    ADD COLUMN summons_number     TEXT NOT NULL DEFAULT '',
    ADD COLUMN sla_breached       BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN reopen_count       INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN closure_count      INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN rerouted_to        TEXT NOT NULL DEFAULT '',
    ADD COLUMN updated_at         TIMESTAMPTZ NOT NULL DEFAULT now();

CREATE INDEX jobs_precinct_state ON jobs (precinct, state, queued_at);
CREATE INDEX jobs_unit ON jobs (unit_id) WHERE unit_id IS NOT NULL;

-- The event log becomes tamper-evident: each event carries the SHA-256 of
-- its predecessor's hash and its own content. The formula lives here, once,
-- and both appending and verifying use it.
CREATE FUNCTION job_event_hash(
    previous_hash TEXT, job_id UUID, sequence BIGINT, event_type TEXT, occurred_at TIMESTAMPTZ,
    actor TEXT, actor_role TEXT, latitude DOUBLE PRECISION, longitude DOUBLE PRECISION,
    unit_id UUID, reason TEXT
) RETURNS TEXT LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws(E'\x1f',
        previous_hash, job_id::text, sequence::text, event_type,
        ((extract(epoch FROM occurred_at) * 1000000)::bigint)::text,
        actor, actor_role, coalesce(latitude::text, ''), coalesce(longitude::text, ''),
        coalesce(unit_id::text, ''), reason), 'UTF8')), 'hex')
$$;

ALTER TABLE job_events
    ADD COLUMN sequence       BIGINT,
    ADD COLUMN actor_role     TEXT NOT NULL DEFAULT 'SYSTEM',
    ADD COLUMN latitude       DOUBLE PRECISION,
    ADD COLUMN longitude      DOUBLE PRECISION,
    ADD COLUMN unit_id        UUID,
    ADD COLUMN previous_hash  TEXT NOT NULL DEFAULT '',
    ADD COLUMN hash           TEXT;

-- chain the events recorded before this migration (one QUEUED event per job)
ALTER TABLE job_events DISABLE TRIGGER job_events_append_only;
UPDATE job_events e SET sequence = numbered.sequence
FROM (SELECT id, row_number() OVER (PARTITION BY job_id ORDER BY id) AS sequence FROM job_events) numbered
WHERE e.id = numbered.id;
UPDATE job_events SET hash = job_event_hash(previous_hash, job_id, sequence, event_type, occurred_at, actor,
    actor_role, latitude, longitude, unit_id, reason)
WHERE sequence = 1;
ALTER TABLE job_events ENABLE TRIGGER job_events_append_only;

ALTER TABLE job_events ALTER COLUMN sequence SET NOT NULL, ALTER COLUMN hash SET NOT NULL;
CREATE UNIQUE INDEX job_events_job_sequence ON job_events (job_id, sequence);

-- Accountability flags: raised by rules, never removed.
CREATE TABLE job_flags (
    id         BIGSERIAL PRIMARY KEY,
    job_id     UUID NOT NULL REFERENCES jobs (job_id),
    kind       TEXT NOT NULL,
    detail     TEXT NOT NULL,
    raised_at  TIMESTAMPTZ NOT NULL,
    -- a rule raises a flag once per closure (or per assignment, per SLA)
    dedup_key  TEXT NOT NULL,
    UNIQUE (job_id, dedup_key)
);

CREATE INDEX job_flags_job ON job_flags (job_id);

-- What units' devices watch: every change to a unit's assignment, in order.
CREATE TABLE unit_feed (
    sequence     BIGSERIAL PRIMARY KEY,
    unit_id      UUID NOT NULL REFERENCES units (unit_id),
    job_id       UUID NOT NULL REFERENCES jobs (job_id),
    change       TEXT NOT NULL,
    occurred_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX unit_feed_unit ON unit_feed (unit_id, sequence);
