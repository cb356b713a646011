-- Each intake process takes SR numbers in blocks of 100 (one round trip per
-- block instead of one per request). Numbers stay unique across replicas;
-- a restart leaves a gap.
ALTER SEQUENCE sr_number_seq INCREMENT BY 100;
