-- The whole event log in one order, so the service can sign checkpoints of it
-- (its size and Merkle root; see dispatch311_domain::event_log). The
-- checkpointer numbers events as they commit; a number is never changed.
CREATE TABLE event_log (
    log_index  BIGINT PRIMARY KEY,
    event_id   BIGINT NOT NULL UNIQUE REFERENCES job_events (id)
);

CREATE TRIGGER event_log_append_only
    BEFORE UPDATE OR DELETE ON event_log
    FOR EACH ROW EXECUTE FUNCTION reject_job_event_change();

-- The checkpoints this service signed, as signed notes. A copy for the
-- service's own bookkeeping: verifiers read the ones exported to the object
-- store, which the database's owner cannot rewrite.
CREATE TABLE checkpoints (
    tree_size  BIGINT PRIMARY KEY,
    root_hash  TEXT NOT NULL,
    note       TEXT NOT NULL,
    signed_at  TIMESTAMPTZ NOT NULL,
    exported   BOOLEAN NOT NULL DEFAULT false
);

-- The Merkle root of every complete block of BLOCK_LEAVES (256) log entries,
-- so one job can be checked against a signed checkpoint by reading its own
-- blocks and the roots of the others, not the whole log. Written by the
-- checkpointer; a root changed here changes the tree's root, which the signed
-- checkpoint then contradicts.
CREATE TABLE event_log_blocks (
    block_index  BIGINT PRIMARY KEY,
    root_hash    BYTEA NOT NULL
);
