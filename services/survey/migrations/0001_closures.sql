-- Survey's schema: every closure of a police 311 job (no contact details),
-- the survey tokens handed to the survey system (only their SHA-256), the
-- complainants' answers, and the outbox of reopen requests.

CREATE TABLE closures (
    id                     BIGSERIAL PRIMARY KEY,
    -- the transaction that inserted the row (pg_current_xact_id()). The poll
    -- feed orders by (xid, id) and only hands out rows whose transaction is
    -- older than every transaction still running, so a closure that commits
    -- late can never land behind a cursor that already moved past it.
    -- Stored as BIGINT (an xid8 is a 64-bit counter that never wraps).
    xid                    BIGINT NOT NULL DEFAULT pg_current_xact_id()::text::bigint,
    sr_id                  UUID NOT NULL,
    sr_number              TEXT NOT NULL,
    -- 1 for the first closure, 2 after one reopening...
    closure_number         INTEGER NOT NULL CHECK (closure_number >= 1),
    agency                 TEXT NOT NULL,
    precinct               TEXT NOT NULL,
    borough                TEXT NOT NULL,
    complaint_type         TEXT NOT NULL,
    descriptor             TEXT NOT NULL,
    -- short name of the resolution code, e.g. 'NO_EVIDENCE'
    resolution_code        TEXT NOT NULL,
    resolution_text        TEXT NOT NULL,
    closed_at              TIMESTAMPTZ NOT NULL,
    assigned_at            TIMESTAMPTZ,
    flagged                BOOLEAN NOT NULL,
    summons_issued         BOOLEAN NOT NULL,
    complainant_consented  BOOLEAN NOT NULL,
    received_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- a redelivered closed event stores nothing
    UNIQUE (sr_id, closure_number)
);

CREATE INDEX closures_feed ON closures (xid, id);
CREATE INDEX closures_closed_at ON closures (closed_at);

-- One row per token handed out; the token itself is never stored.
CREATE TABLE survey_tokens (
    token_hash  BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
    closure_id  BIGINT NOT NULL REFERENCES closures (id),
    issued_at   TIMESTAMPTZ NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);

CREATE INDEX survey_tokens_closure ON survey_tokens (closure_id);

-- One answer per closure, whichever of its tokens brought it.
CREATE TABLE responses (
    id                   BIGSERIAL PRIMARY KEY,
    closure_id           BIGINT NOT NULL UNIQUE REFERENCES closures (id),
    token_hash           BYTEA NOT NULL REFERENCES survey_tokens (token_hash),
    -- short enum names, e.g. 'STRONGLY_DISAGREE'; reason '' when none
    agreement            TEXT NOT NULL,
    reason               TEXT NOT NULL,
    condition_corrected  TEXT NOT NULL,
    -- never exported
    comment              TEXT NOT NULL,
    -- whether a reopen request was sent to dispatch
    reopen_requested     BOOLEAN NOT NULL,
    recorded_at          TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox (
    id          BIGSERIAL PRIMARY KEY,
    queue       TEXT NOT NULL,
    envelope    BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
