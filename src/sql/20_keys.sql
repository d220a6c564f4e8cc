-- Keys: the key file is read by the C module; SQL only ever sees fingerprints.

CREATE FUNCTION pdp.key_status(OUT version integer, OUT fingerprint text, OUT active boolean)
RETURNS SETOF record
LANGUAGE C STRICT VOLATILE PARALLEL RESTRICTED
AS 'MODULE_PATHNAME', 'pdp_key_status';
COMMENT ON FUNCTION pdp.key_status() IS
    'key versions in pdp.key_file with public fingerprints; active marks the version used for new values. Never returns key bytes';
