-- Who filed each request: the subject of the integrator's token. An
-- integrator sees only its own requests, and its request ids are its own:
-- another integrator reusing one files a new request instead of reading
-- someone else's. Rows from before authentication belong to no one ('').
ALTER TABLE service_requests ADD COLUMN filed_by TEXT NOT NULL DEFAULT '';
ALTER TABLE service_requests ALTER COLUMN filed_by DROP DEFAULT;

ALTER TABLE service_requests DROP CONSTRAINT service_requests_request_id_key;
ALTER TABLE service_requests ADD CONSTRAINT service_requests_filed_by_request_id_key
    UNIQUE (filed_by, request_id);

-- an integrator's list, newest first
CREATE INDEX service_requests_filed_by_newest
    ON service_requests (filed_by, created_at DESC, sr_id DESC);
