\set SHOW_CONTEXT never
-- Keys: versions and fingerprints are visible, key bytes and the file never are.
SELECT version, length(fingerprint) AS fp_len, fingerprint ~ '^[0-9a-f]{16}$' AS fp_hex, active
  FROM pdp.key_status();

-- The setting is superuser-only: hidden from everyone else.
CREATE ROLE regress_keyreader IN ROLE pdp_admin;
SET ROLE regress_keyreader;
SHOW pdp.key_file;
SELECT count(*) FROM pg_settings WHERE name = 'pdp.key_file';
-- pdp_admin sees fingerprints only.
SELECT count(*) = 1 AS one_version FROM pdp.key_status();
RESET ROLE;
DROP ROLE regress_keyreader;

-- The setting cannot be changed from a session, only in the server's configuration.
SET pdp.key_file = '/tmp/other.keys';
-- A relative path is refused when configured.
ALTER SYSTEM SET pdp.key_file = 'relative/pdp.keys';

-- No setting, catalog or statistics view holds the file's content.
SELECT count(*) AS settings_with_64_hex FROM pg_settings WHERE setting ~ '[0-9a-f]{64}';
