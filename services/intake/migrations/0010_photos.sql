-- Photos uploaded by integrators, metadata stripped, kept in the photo store
-- under their id. A photo belongs to the integrator that uploaded it until a
-- request of that integrator is filed with it; then to that request, at its
-- position.
CREATE TABLE photos (
    photo_id      UUID PRIMARY KEY,
    uploaded_by   TEXT NOT NULL,
    content_type  TEXT NOT NULL CHECK (content_type IN ('image/jpeg', 'image/png')),
    size_bytes    INTEGER NOT NULL,
    uploaded_at   TIMESTAMPTZ NOT NULL,
    sr_id         UUID REFERENCES service_requests (sr_id),
    position      SMALLINT,
    CHECK ((sr_id IS NULL) = (position IS NULL))
);
CREATE INDEX photos_of_request ON photos (sr_id, position) WHERE sr_id IS NOT NULL;
