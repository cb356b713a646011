-- A job transition writes its unit feed entries with the job's new row as
-- their snapshot in the same statement (store/changes.rs), so the deferred
-- trigger of migration 0004 has nothing left to do for them; it still takes
-- the snapshot of entries written without one.
CREATE OR REPLACE FUNCTION snapshot_unit_feed_job() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF NEW.job_snapshot IS NOT NULL THEN
        RETURN NULL;
    END IF;
    UPDATE unit_feed SET job_snapshot = (SELECT to_jsonb(j) FROM jobs j WHERE j.job_id = NEW.job_id)
    WHERE sequence = NEW.sequence;
    RETURN NULL;
END
$$;
