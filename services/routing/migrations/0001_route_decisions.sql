-- Routing's schema: every routing decision with its explanation, and the
-- outbox of jobs to publish.

CREATE TABLE route_decisions (
    -- one decision per service request: a redelivered route job decides nothing new
    sr_id           UUID PRIMARY KEY,
    sr_number       TEXT NOT NULL,
    complaint_type  TEXT NOT NULL,
    descriptor      TEXT NOT NULL,
    latitude        DOUBLE PRECISION,
    longitude       DOUBLE PRECISION,
    outcome         TEXT NOT NULL,
    agency          TEXT NOT NULL,
    precinct        TEXT NOT NULL,
    priority        TEXT NOT NULL,
    sla_minutes     INTEGER NOT NULL,
    sla_due_at      TIMESTAMPTZ,
    rule_id         TEXT NOT NULL,
    -- the reasons, one per step, as shown by ExplainRoute
    explanation     JSONB NOT NULL,
    decided_at      TIMESTAMPTZ NOT NULL
);

CREATE INDEX route_decisions_decided ON route_decisions (decided_at);

CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    queue       TEXT NOT NULL,
    envelope    BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
