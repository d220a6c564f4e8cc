-- Pseudonymisation functions: known answers for keyless ones, properties for
-- keyed ones (the test cluster's key is fresh each run), and bad inputs.
\set SHOW_CONTEXT never

-- leaks(stmt, marker): run stmt, which must fail; report its SQLSTATE and
-- whether the marker appears in any part of the error.
CREATE FUNCTION pg_temp.fails(stmt text, marker text DEFAULT NULL) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; det text; hint text;
BEGIN
    EXECUTE stmt;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, det = PG_EXCEPTION_DETAIL, hint = PG_EXCEPTION_HINT;
    RETURN st || CASE WHEN marker IS NOT NULL
                           AND marker <> '' AND strpos(concat_ws(' ', msg, det, hint), marker) > 0
                      THEN ' LEAKS VALUE' ELSE '' END;
END $$;

-- NULL in, NULL out.
SELECT pdp.pseudonym(NULL::text) IS NULL AS a, pdp.pseudo_email(NULL) IS NULL AS b, pdp.pseudo_phone(NULL) IS NULL AS c,
       pdp.pseudo_iin(NULL) IS NULL AS d, pdp.pseudo_name(NULL) IS NULL AS e, pdp.pseudo_ip(NULL) IS NULL AS f,
       pdp.encrypt(NULL) IS NULL AS g, pdp.decrypt(NULL) IS NULL AS h, pdp.fpe_encrypt(NULL) IS NULL AS i,
       pdp.fpe_iin(NULL) IS NULL AS j, pdp.mask(NULL) IS NULL AS k, pdp.iin_is_valid(NULL) IS NULL AS l;

-- pdp.pseudonym: 128 bits as 32 hex digits, deterministic, domain-separated,
-- and the same for a learner id whether stored as text, integer, bigint.
SELECT pdp.pseudonym('learner@mail.kz') ~ '^[0-9a-f]{32}$' AS hex128,
       pdp.pseudonym('learner@mail.kz') = pdp.pseudonym('learner@mail.kz') AS deterministic,
       pdp.pseudonym('learner@mail.kz') <> pdp.pseudonym('learner@mail.kz', 'email') AS domains_differ,
       pdp.pseudonym('learner@mail.kz') <> pdp.pseudonym('Learner@mail.kz') AS case_matters,
       pdp.pseudonym(42) = pdp.pseudonym('42') AND pdp.pseudonym(42::bigint) = pdp.pseudonym('42') AS ids_join,
       pdp.pseudonym('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid) = pdp.pseudonym('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11') AS uuid_joins,
       pdp.pseudonym('') ~ '^[0-9a-f]{32}$' AS empty_ok;
SELECT pg_temp.fails($$SELECT pdp.pseudonym('x', repeat('d', 65))$$) AS long_domain;

-- Collision-freedom over 1,000,000 distinct e-mails and phones.
SELECT count(DISTINCT pdp.pseudonym(e)) AS pseudonyms, count(DISTINCT pdp.pseudo_email(e)) AS emails
  FROM (SELECT 'learner' || g || '@example.kz' AS e FROM generate_series(1, 1000000) g) s;
SELECT count(DISTINCT pdp.pseudo_phone('+7 7' || lpad(g::text, 9, '0'))) AS phones
  FROM generate_series(1, 1000000) g;

-- pdp.pseudo_email.
SELECT pdp.pseudo_email('Aigerim.S@Mail.KZ') ~ '^[a-z2-7]{26}@mail\.kz$' AS well_formed_domain_kept,
       pdp.pseudo_email('Aigerim.S@Mail.KZ') = pdp.pseudo_email('aigerim.s@mail.kz') AS case_insensitive,
       pdp.pseudo_email('aigerim.s@mail.kz', false) ~ '^[a-z2-7]{26}@pseudonym\.invalid$' AS domain_replaced,
       split_part(pdp.pseudo_email('a@b.kz'), '@', 1) <> split_part(pdp.pseudo_email('a@c.kz'), '@', 1) AS domain_in_hash
  ;
SELECT v AS input, pg_temp.fails(format('SELECT pdp.pseudo_email(%L)', v), v) AS result
  FROM (VALUES ('no-at-sign.kz'), ('two@@mail.kz'), ('@mail.kz'), ('us er@mail.kz'),
               ('user@-bad.kz'), (repeat('x', 65) || '@mail.kz')) t(v);
-- Real values: a host without a dot is an address; '' and blanks pass through unchanged.
SELECT pdp.pseudo_email('root@localhost') ~ '^[a-z2-7]{26}@localhost$' AS host_address,
       pdp.pseudo_email('') = '' AS empty_kept, pdp.pseudo_email(' ') = ' ' AS blank_kept,
       pdp.pseudo_email(E'\t\n') = E'\t\n' AS whitespace_kept,
       pdp.mask_email('') = '' AND pdp.mask_email('root@localhost') = 'r***@localhost' AS masks_too;

-- pdp.pseudo_phone: country code, first national digit, length and layout kept.
SELECT p AS input,
       regexp_replace(pdp.pseudo_phone(p), '[0-9]', '9', 'g') = regexp_replace(p, '[0-9]', '9', 'g') AS layout_kept,
       left(regexp_replace(pdp.pseudo_phone(p), '[^0-9]', '', 'g'), k) = left(regexp_replace(p, '[^0-9]', '', 'g'), k) AS prefix_kept,
       pdp.pseudo_phone(p) <> p AS changed
  FROM (VALUES ('+7 701 234 56 78', 2), ('8 (701) 234-56-78', 2), ('87012345678', 2), ('+77012345678', 2),
               ('701.234.56.78', 1), ('+44 20 7946 0958', 3)) t(p, k);
SELECT v AS input, pg_temp.fails(format('SELECT pdp.pseudo_phone(%L)', v), v) AS result
  FROM (VALUES ('call me maybe'), ('+7 701 234 56'), ('12345'), ('5012345678'), ('+7 701 234 56 78 99')) t(v);
SELECT pdp.pseudo_phone('') = '' AS empty_kept, pdp.pseudo_phone('   ') = '   ' AS blank_kept,
       pdp.mask_phone('') = '' AND pdp.mask_card(' ') = ' ' AS masks_too;

-- pdp.pseudo_iin: a valid IIN, birth year kept by default.
SELECT pdp.iin_is_valid(pdp.pseudo_iin('900101300017')) AS valid,
       left(pdp.pseudo_iin('900101300017'), 2) = '90' AS year_kept,
       substr(pdp.pseudo_iin('900101300017'), 7, 1) IN ('3', '4') AS century_kept,
       pdp.iin_is_valid(pdp.pseudo_iin('900101300017', false)) AS valid_without_year,
       pdp.pseudo_iin('900101300017') <> '900101300017' AS changed;
SELECT count(*) AS iins, count(DISTINCT pdp.pseudo_iin(iin)) AS distinct_pseudonyms,
       bool_and(pdp.iin_is_valid(pdp.pseudo_iin(iin))) AS all_valid,
       bool_and(left(pdp.pseudo_iin(iin), 2) = left(iin, 2)) AS all_years_kept
  FROM (SELECT base || lms_check AS iin
          FROM (SELECT base,
                       (SELECT CASE WHEN s1 < 10 THEN s1::text WHEN s2 < 10 THEN s2::text END
                          FROM (SELECT sum(substr(base, i, 1)::int * i) % 11 AS s1,
                                       sum(substr(base, i, 1)::int * ((i + 1) % 11 + 1)) % 11 AS s2
                                  FROM generate_series(1, 11) i) w) AS lms_check
                  FROM (SELECT to_char(date '1990-01-01' + g % 3650, 'YYMMDD') ||
                               CASE WHEN date '1990-01-01' + g % 3650 < date '2000-01-01' THEN 3 + g % 2 ELSE 5 + g % 2 END ||
                               lpad((g % 10000)::text, 4, '0') AS base
                          FROM generate_series(1, 20000) g) b) c
         WHERE lms_check IS NOT NULL) iins;
SELECT v AS input, pg_temp.fails(format('SELECT pdp.pseudo_iin(%L)', v), v) AS result
  FROM (VALUES ('9001013000171'), ('900101300018'), ('900101700017'), ('900230300017'), ('90010130001x'), ('850315400610')) t(v);
SELECT pdp.pseudo_iin('') = '' AS empty_kept, pdp.pseudo_iin(' ') = ' ' AS blank_kept,
       pdp.fpe_iin('') = '' AS fpe_empty_kept;

-- pdp.pseudo_name: realistic, same script and word count.
SELECT n AS input,
       pdp.pseudo_name(n) ~ '[А-Яа-яӘәҒғҚқҢңӨөҰұҮүҺһІі]' = (n ~ '[А-Яа-яӘәҒғҚқҢңӨөҰұҮүҺһІі]') AS script_kept,
       array_length(regexp_split_to_array(pdp.pseudo_name(n), ' '), 1) = array_length(regexp_split_to_array(n, ' '), 1) AS words_kept,
       pdp.pseudo_name(n) = pdp.pseudo_name(n) AS deterministic
  FROM (VALUES ('Айгерім Сәрсенова'), ('Nurlan Akhmetov'), ('Иванов Иван Петрович'), ('Дана')) t(n);
-- Names in other scripts (and mixed ones) get a Latin pseudonym with their word count.
SELECT n AS input, pdp.pseudo_name(n) ~ '^[A-Za-z]+( [A-Za-z]+)*$' AS latin_pseudonym,
       array_length(regexp_split_to_array(pdp.pseudo_name(n), ' '), 1) = array_length(regexp_split_to_array(n, ' '), 1) AS words_kept,
       strpos(pdp.pseudo_name(n), left(n, 1)) = 0 AS not_copied
  FROM (VALUES ('王小明'), ('鈴木 大翔'), ('محمد علي'), ('Γιώργος Παπαδόπουλος'), ('Айгерім Sarsenova')) t(n);
SELECT pdp.pseudo_name('') = '' AS empty_kept, pdp.pseudo_name('  ') = '  ' AS blank_kept;
SELECT v AS input, pg_temp.fails(format('SELECT pdp.pseudo_name(%L)', v), v) AS result
  FROM (VALUES ('R2D2'), ('-'), ('a b c d e')) t(v);

-- pdp.pseudo_ip: family and netmask kept, a permutation.
SELECT family(pdp.pseudo_ip('10.1.2.3')) = 4 AS v4, masklen(pdp.pseudo_ip('10.1.2.0/24')) = 24 AS mask_kept,
       family(pdp.pseudo_ip('2001:db8::1')) = 6 AS v6, pdp.pseudo_ip('10.1.2.3') <> '10.1.2.3'::inet AS changed;
SELECT count(DISTINCT pdp.pseudo_ip(('10.0.0.0'::inet + g))) AS distinct_of_100000 FROM generate_series(1, 100000) g;
-- pdp.pseudo_ip_text: the same pseudonym for an address stored as text (Moodle's varchar(45)).
SELECT pdp.pseudo_ip_text(a) = host(pdp.pseudo_ip(a::inet)) AS same_as_inet, length(pdp.pseudo_ip_text(a)) <= 43 AS fits
  FROM (VALUES ('10.1.2.3'), ('2001:db8::1'), ('0:0:0:0:0:0:0:1'), ('::ffff:10.0.0.1')) t(a);
SELECT pdp.pseudo_ip_text('10.1.2.0/24') = text(pdp.pseudo_ip('10.1.2.0/24')) AS mask_kept,
       pdp.pseudo_ip_text('') = '' AS empty_kept, pdp.pseudo_ip_text(' ') = ' ' AS blank_kept,
       pdp.pseudo_ip_text(NULL) IS NULL AS null_kept;
SELECT v AS input, pg_temp.fails(format('SELECT pdp.pseudo_ip_text(%L)', v), v) AS result
  FROM (VALUES ('localhost'), ('10.1.2'), ('10.1.2.3/33'), ('999.1.1.1')) t(v);
-- The rule's expression takes either type and gives the same pseudonym.
SELECT pdp._pseudo_ip_any('10.1.2.3'::varchar(45)) = pdp.pseudo_ip_text('10.1.2.3') AS varchar_ok,
       pdp._pseudo_ip_any('10.1.2.3'::inet) = pdp.pseudo_ip('10.1.2.3'::inet) AS inet_ok,
       pg_typeof(pdp._pseudo_ip_any('10.1.2.3'::varchar(45)))::text AS keeps_type;
SELECT pg_temp.fails($$SELECT pdp._pseudo_ip_any(42)$$) AS other_type;
SELECT max(length(pdp.pseudo_ip_text(('2001:db8::'::inet + g)::text))) <= 43 AS longest_fits_45
  FROM generate_series(1, 20000) g;

-- pdp.encrypt / pdp.decrypt.
SELECT pdp.encrypt('secret') ~ '^pdp1\.[A-Za-z0-9_-]+$' AS token_form,
       pdp.encrypt('secret') = pdp.encrypt('secret') AS deterministic,
       pdp.encrypt('secret') <> pdp.encrypt('secret', 'other') AS domains_differ,
       pdp.decrypt(pdp.encrypt('Сәлем, әлем')) = 'Сәлем, әлем' AS round_trip,
       pdp.decrypt(pdp.encrypt('')) = '' AS empty_round_trip,
       pdp.decrypt(pdp.encrypt(repeat('x', 100000), 'big')) = repeat('x', 100000) AS large_round_trip;
SELECT pg_temp.fails($$SELECT pdp.decrypt('not a token')$$) AS garbage,
       pg_temp.fails($$SELECT pdp.decrypt('pdp1.AAEA')$$) AS too_short,
       pg_temp.fails($$SELECT pdp.decrypt(overlay(t placing CASE substr(t, 20, 1) WHEN 'A' THEN 'B' ELSE 'A' END from 20 for 1))
                       FROM pdp.encrypt('secret') t$$) AS tampered,
       pg_temp.fails($$SELECT pdp.decrypt(replace(pdp.encrypt('secret'), 'pdp1.AAE', 'pdp1.AAI'))$$) AS other_version,
       pg_temp.fails($$SELECT pdp.encrypt('x', repeat('d', 65))$$) AS long_domain;

-- FF1: round trips, radix 36, refusals.
SELECT pdp.fpe_decrypt(pdp.fpe_encrypt('0123456789')) = '0123456789' AS round_trip,
       pdp.fpe_encrypt('0123456789') ~ '^[0-9]{10}$' AS digits_kept,
       pdp.fpe_encrypt('0123456789', 'a') <> pdp.fpe_encrypt('0123456789', 'b') AS domains_differ,
       pdp.fpe_decrypt(pdp.fpe_encrypt('abc123xyz', 'ids', 36), 'ids', 36) = 'abc123xyz' AS radix36,
       pdp.fpe_decrypt(pdp.fpe_encrypt(repeat('7', 200)), '', 10) = repeat('7', 200) AS long_value,
       pdp.fpe_encrypt('0123456789', '', 10, 1) = pdp.fpe_encrypt('0123456789') AS version_1_is_active;
SELECT pg_temp.fails($$SELECT pdp.fpe_encrypt('12345')$$) AS too_small,
       pg_temp.fails($$SELECT pdp.fpe_encrypt('12345678a')$$, '12345678a') AS bad_digit,
       pg_temp.fails($$SELECT pdp.fpe_encrypt('123456', '', 1)$$) AS radix_1,
       pg_temp.fails($$SELECT pdp.fpe_encrypt('123456', '', 37)$$) AS radix_37,
       pg_temp.fails($$SELECT pdp.fpe_encrypt(repeat('1', 257))$$) AS too_long,
       pg_temp.fails($$SELECT pdp.fpe_encrypt('123456', '', 10, 2)$$) AS missing_version,
       pg_temp.fails($$SELECT pdp.fpe_encrypt('123456', '', 10, 0)$$) AS version_0;
SELECT pdp.iin_is_valid(pdp.fpe_iin('900101300017')) AS token_is_iin,
       pdp.fpe_iin_decrypt(pdp.fpe_iin('900101300017')) = '900101300017' AS round_trip,
       pdp.fpe_iin('900101300017') <> pdp.pseudo_iin('900101300017', false) AS keys_separate;

-- Masking (keyless: exact answers).
SELECT pdp.mask('Айгерім', 1, 1) AS m1, pdp.mask('1234567890', 0, 4) AS m2, pdp.mask('ab', 1, 1) AS all_masked,
       pdp.mask('secret', 0, 0, '#') AS m3, pdp.mask('') AS empty;
SELECT pg_temp.fails($$SELECT pdp.mask('x', -1)$$) AS negative, pg_temp.fails($$SELECT pdp.mask('x', 0, 0, '**')$$) AS two_chars,
       pg_temp.fails($$SELECT pdp.mask('x', 0, 0, '')$$) AS no_char;
SELECT pdp.mask_email('aigerim.s@mail.kz') AS email, pdp.mask_email('әлия@пошта.қаз') AS utf8_email,
       pdp.mask_phone('+7 701 234 56 78') AS phone, pdp.mask_phone('8 (701) 234-56-78') AS phone8,
       pdp.mask_card('4111 1111 1111 1111') AS card, pdp.mask_card('4111-1111-1111-1111') AS card_dashes;
SELECT pg_temp.fails($$SELECT pdp.mask_card('4111 1111 1111 1112')$$, '1112') AS luhn_fails,
       pg_temp.fails($$SELECT pdp.mask_card('4111')$$) AS too_short,
       pg_temp.fails($$SELECT pdp.mask_card('4111 1111 1111 111x')$$) AS letter,
       pg_temp.fails($$SELECT pdp.mask_email('nope')$$, 'nope') AS bad_email,
       pg_temp.fails($$SELECT pdp.mask_phone('abc')$$, 'abc') AS bad_phone;
SELECT pdp.generalize_date('2024-05-17', 'month') AS month, pdp.generalize_date('2024-05-17', 'year') AS year,
       pdp.generalize_date('2024-05-17', 'decade') AS decade, pdp.generalize_date('infinity', 'year') AS inf,
       pg_temp.fails($$SELECT pdp.generalize_date('2024-05-17', 'week')$$) AS week;
SELECT pdp.age_band('900101300017') = (floor(extract(year FROM age(current_date, date '1990-01-01')) / 10) * 10)::int
                                      || '-' || (floor(extract(year FROM age(current_date, date '1990-01-01')) / 10) * 10 + 9)::int AS band_10,
       pdp.age_band('900101300017', 5) ~ '^[0-9]+-[0-9]+$' AS band_5,
       pg_temp.fails($$SELECT pdp.age_band('900101300017', 0)$$) AS width_0;

-- Validators: an IIN and BIN table with first-pass, second-pass and no-digit cases.
SELECT v, pdp.iin_is_valid(v) AS iin, pdp.bin_is_valid(v) AS bin
  FROM (VALUES ('171240017760'),  -- cap.kz's operator BIN, from its privacy policy
               ('171240017761'),  -- wrong check digit
               ('900101300017'),  -- IIN, check digit by the first pass
               ('850315400608'),  -- IIN, check digit by the second pass
               ('850315400610'),  -- prefix that admits no check digit
               ('900230300017'),  -- 30 February
               ('900101700017'),  -- century digit 7
               ('90010130001'),   -- 11 digits
               ('9001013000171'), -- 13 digits
               ('9001013000I7'),  -- a letter
               ('')) t(v);
SELECT pdp.iin_birth_date('900101300017') AS born, pdp.iin_sex('900101300017') AS sex,
       pdp.iin_birth_date('050607600018') AS born_2000s, pdp.iin_sex('050607600018') AS sex_f,
       pg_temp.fails($$SELECT pdp.iin_birth_date('900101300018')$$, '900101300018') AS bad;
SELECT pdp.luhn_is_valid('4111 1111 1111 1111') AS ok1, pdp.luhn_is_valid('79927398713') AS ok2,
       pdp.luhn_is_valid('79927398710') AS bad, pdp.luhn_is_valid('4111x') AS letters, pdp.luhn_is_valid('') AS empty;

-- Computing tokens is for pdp_pseudonymiser, reversal for pdp_reidentifier
-- only; masks and validators hold no key and are everyone's.
CREATE ROLE regress_nokey;
SET ROLE regress_nokey;
SELECT pdp.pseudonym('guess');
SELECT pdp.fpe_iin('900101300017');
SELECT pdp.encrypt('guess@mail.kz');
SELECT pdp.mask_email('guess@mail.kz') AS unkeyed_mask, pdp.iin_is_valid('900101300017') AS unkeyed_check;
RESET ROLE;
-- Internal key domains are reached by no SQL function.
SELECT pdp.pseudonym('1', 'audit');
SELECT pdp.pseudonym(1::bigint, 'erasure');
SELECT pdp.encrypt('1', 'pdp.anything');
SELECT pdp.fpe_encrypt('0123456789', 'audit');
SELECT pdp.pseudonym('1', 'Audit') IS NOT NULL AS other_domains_allowed;
CREATE ROLE regress_analyst IN ROLE pdp_pseudonymiser;
CREATE ROLE regress_reid IN ROLE pdp_reidentifier;
CREATE TABLE tokens AS SELECT pdp.encrypt('reversible') AS t, pdp.fpe_iin('900101300017') AS iin,
                              pdp.fpe_encrypt('0123456789') AS digits;
GRANT SELECT ON tokens TO regress_analyst, regress_reid;
SET ROLE regress_analyst;
SELECT pg_temp.fails('SELECT pdp.decrypt(t) FROM tokens') AS decrypt,
       pg_temp.fails('SELECT pdp.fpe_iin_decrypt(iin) FROM tokens') AS fpe_iin_decrypt,
       pg_temp.fails('SELECT pdp.fpe_decrypt(digits) FROM tokens') AS fpe_decrypt,
       pdp.pseudonym('allowed') IS NOT NULL AS pseudonym_allowed;
RESET ROLE;
SET ROLE regress_reid;
SELECT pdp.decrypt(t) AS decrypted, pdp.fpe_iin_decrypt(iin) AS iin, pdp.fpe_decrypt(digits) AS digits FROM tokens;
RESET ROLE;
DROP TABLE tokens;
DROP ROLE regress_analyst, regress_reid;
