-- Pseudonymisation over the same 1,000,000 rows: pdp_ext's functions against
-- core md5() (the baseline), core sha256() and pgcrypto's hmac().
\set rows 1000000
CREATE EXTENSION IF NOT EXISTS pgcrypto;
-- Varied valid IINs: FF1 cycle-walks a key-dependent number of steps per value,
-- so a constant input would measure one value's luck, not the average.
CREATE FUNCTION bench.iin_check(d text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN s1 < 10 THEN s1::text WHEN s2 < 10 THEN s2::text END
    FROM (SELECT sum(substr(d, i, 1)::int * i) % 11 AS s1,
                 sum(substr(d, i, 1)::int * ((i + 1) % 11 + 1)) % 11 AS s2
            FROM generate_series(1, 11) i) w $$;
CREATE TABLE bench.people AS
SELECT g AS id, 'learner' || g || '@example.kz' AS email,
       '+7 7' || lpad((g % 1000000000)::text, 9, '0') AS phone,
       b || coalesce(bench.iin_check(b), '0') AS iin
  FROM generate_series(1, :rows) g,
       LATERAL (SELECT to_char(date '1970-01-01' + g % 15000, 'YYMMDD')
                       || CASE WHEN date '1970-01-01' + g % 15000 < date '2000-01-01' THEN 3 + g % 2 ELSE 5 + g % 2 END
                       || lpad((g % 10000)::text, 4, '0') AS b) base;
DELETE FROM bench.people WHERE NOT pdp.iin_is_valid(iin);
VACUUM ANALYZE bench.people;
SET max_parallel_workers_per_gather = 0;   -- single-core cost per row

SELECT bench.measure('pseudonymisation', 'md5(email)', 'SELECT count(md5(email)) FROM bench.people', 5, true, :rows);
SELECT bench.measure('pseudonymisation', 'sha256(email)', 'SELECT count(sha256(email::bytea)) FROM bench.people', 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pgcrypto hmac(email)', $$SELECT count(hmac(email, 'k', 'sha256')) FROM bench.people$$, 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.pseudonym(email)', 'SELECT count(pdp.pseudonym(email)) FROM bench.people', 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.pseudonym(id bigint)', 'SELECT count(pdp.pseudonym(id)) FROM bench.people', 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.pseudo_email(email)', 'SELECT count(pdp.pseudo_email(email)) FROM bench.people', 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.pseudo_phone(phone)', 'SELECT count(pdp.pseudo_phone(phone)) FROM bench.people', 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.pseudo_iin(iin)', 'SELECT count(pdp.pseudo_iin(iin)) FROM bench.people', 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.fpe_encrypt(10 digits)', $$SELECT count(pdp.fpe_encrypt(lpad(id::text, 10, '0'))) FROM bench.people$$, 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.encrypt(email)', 'SELECT count(pdp.encrypt(email)) FROM bench.people', 5, false, :rows);
SELECT bench.measure('pseudonymisation', 'pdp.mask_email(email)', 'SELECT count(pdp.mask_email(email)) FROM bench.people', 5, false, :rows);

-- Writes through the pseudonymise-on-write trigger against plain inserts.
CREATE TABLE bench.plain_users (id bigint PRIMARY KEY, email text, phone text);
CREATE TABLE bench.ruled_users (id bigint PRIMARY KEY, email text, phone text);
SELECT pdp.set_column_rule('bench.ruled_users', 'email', 'pseudo_email');
SELECT pdp.set_column_rule('bench.ruled_users', 'phone', 'pseudo_phone');
SELECT pdp.pseudonymise_on_write('bench.ruled_users');
SELECT bench.measure('writes: pseudonymise on write', 'plain INSERT of 200,000 rows',
    'TRUNCATE bench.plain_users; INSERT INTO bench.plain_users SELECT id, email, phone FROM bench.people WHERE id <= 200000', 5, true, 200000);
SELECT bench.measure('writes: pseudonymise on write', 'INSERT through the on-write trigger (2 rules)',
    'TRUNCATE bench.ruled_users; INSERT INTO bench.ruled_users SELECT id, email, phone FROM bench.people WHERE id <= 200000', 5, false, 200000);
SELECT bench.measure('writes: pseudonymise on write', 'hand-written INSERT applying the same functions',
    'TRUNCATE bench.plain_users; INSERT INTO bench.plain_users SELECT id, pdp.pseudo_email(email), pdp.pseudo_phone(phone) FROM bench.people WHERE id <= 200000', 5, false, 200000);
