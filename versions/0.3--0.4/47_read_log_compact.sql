-- Compact read-access entries (issue 15, point 4): the audit worker builds a
-- read entry's details as jsonb directly, the statements as parallel arrays
-- (src/audit_durable.c, no SQL change), and pdp.audit_log.details is
-- compressed with lz4 instead of pglz: a read entry lists up to 1,024
-- statements, and pglz's compression of those details was an eighth of the
-- worker's time.  Existing entries keep their pglz-compressed details (SET
-- COMPRESSION rewrites nothing); their text, and so their chain hashes, are
-- the same either way.
ALTER TABLE pdp.audit_log ALTER COLUMN details SET COMPRESSION lz4;
