-- Complainant contacts are sealed by the service (AES-256-GCM, keys from
-- DISPATCH311_CONTACT_KEYS) before they reach the database: name, phone and
-- e-mail become one sealed value and the id of the key that sealed it.
-- Consent stays in plain text: it identifies no one and queries need it.
--
-- SQL cannot seal with the service's key, so this migration converts only an
-- empty table; plain-text contacts can only be development data made before
-- sealing existed, and are refused rather than kept readable.
DO $$
DECLARE
    plain_rows BIGINT;
BEGIN
    SELECT count(*) INTO plain_rows FROM complainant_contacts;
    IF plain_rows > 0 THEN
        RAISE EXCEPTION 'complainant_contacts has % rows in plain text, which SQL cannot encrypt: they are '
            'development data from before contacts were sealed; drop that database (e.g. psql -h 127.0.0.1 '
            '-U postgres -c ''DROP DATABASE dispatch311 WITH (FORCE)'') and start again', plain_rows;
    END IF;
END
$$;

ALTER TABLE complainant_contacts
    DROP COLUMN name,
    DROP COLUMN phone,
    DROP COLUMN email,
    ADD COLUMN key_id TEXT NOT NULL CHECK (key_id <> ''),
    -- nonce (12 bytes) || ciphertext || tag (16 bytes); the request id is the
    -- associated data, so a value copied to another row does not open
    ADD COLUMN sealed BYTEA NOT NULL CHECK (octet_length(sealed) >= 28);

-- start-up lists the key ids in use (are all of them configured?) and
-- `rekey` finds what an older key sealed
CREATE INDEX complainant_contacts_key ON complainant_contacts (key_id);
