-- Every release of a complainant's contact details: which request, for what
-- purpose, to whom, when. Written in the statement that reads the contact,
-- so no contact leaves intake unrecorded; appended, never edited.
CREATE TABLE contact_releases (
    id           BIGSERIAL PRIMARY KEY,
    sr_id        UUID NOT NULL REFERENCES service_requests (sr_id),
    sr_number    TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    requester    TEXT NOT NULL,
    released_at  TIMESTAMPTZ NOT NULL
);

-- auditors read them newest first, all of them or those of one request
CREATE INDEX contact_releases_newest ON contact_releases (released_at DESC, id DESC);
CREATE INDEX contact_releases_of_request ON contact_releases (sr_number, released_at DESC, id DESC);

CREATE FUNCTION reject_contact_release_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'contact releases are append-only';
END
$$;

CREATE TRIGGER contact_releases_append_only
    BEFORE UPDATE OR DELETE ON contact_releases
    FOR EACH ROW EXECUTE FUNCTION reject_contact_release_change();
