-- A unit's feed shows each job as it was when the change committed, not as
-- it is when a device reads it: a device that reconnects later replays the
-- same messages it would have seen live (EN_ROUTE, then ON_SCENE, then
-- CLOSED, rather than CLOSED three times).
--
-- The snapshot is taken by a deferred trigger at commit, when the job row
-- holds the outcome of the transaction that wrote the feed entry, whichever
-- order that transaction updated the job and pushed to the feed in.

ALTER TABLE unit_feed ADD COLUMN job_snapshot JSONB;

CREATE FUNCTION snapshot_unit_feed_job() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    UPDATE unit_feed SET job_snapshot = (SELECT to_jsonb(j) FROM jobs j WHERE j.job_id = NEW.job_id)
    WHERE sequence = NEW.sequence;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER unit_feed_job_snapshot
    AFTER INSERT ON unit_feed
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION snapshot_unit_feed_job();
