-- A job transition is one statement (store/changes.rs): it updates the job
-- only if its last event is still the one read, and its units only if their
-- status and job are still as read. When the job was updated but a unit had
-- changed, the statement calls this to undo all of it; SQLSTATE 40001 tells
-- the service to read again and decide again.
CREATE FUNCTION job_write_conflict() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'a unit changed since the job was read'
        USING ERRCODE = 'serialization_failure';
END
$$;
