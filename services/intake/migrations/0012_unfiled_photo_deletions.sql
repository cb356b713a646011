-- Photos uploaded but never filed with a request are deleted by the retention
-- sweep like the rest, and recorded like the rest: such a deletion belongs to
-- no request, and names the photo instead.
ALTER TABLE retention_deletions
    ALTER COLUMN sr_id DROP NOT NULL,
    ALTER COLUMN sr_number DROP NOT NULL,
    ADD COLUMN photo_id UUID,
    DROP CONSTRAINT retention_deletions_what_check,
    ADD CONSTRAINT retention_deletions_what_check
        CHECK (what IN ('contact', 'description', 'voice_recording', 'unfiled_photo')),
    ADD CONSTRAINT retention_deletions_names_what
        CHECK ((what = 'unfiled_photo') = (photo_id IS NOT NULL AND sr_id IS NULL));
