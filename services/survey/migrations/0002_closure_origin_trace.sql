-- The W3C traceparent of the work that queued the closed job (the request's
-- own trace), which an answer's trace links back to. Names no one.
ALTER TABLE closures ADD COLUMN origin_traceparent TEXT NOT NULL DEFAULT '';
