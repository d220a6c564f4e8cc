-- Column-level pseudonymisation, masking and validation (C, over OpenSSL).
-- Keyed functions are STABLE (their result depends on the key file);
-- keyless ones IMMUTABLE.  All are STRICT (NULL in, NULL out) and PARALLEL
-- SAFE, except the reversing ones, which write an audit entry.

-- Keyed, irreversible ----------------------------------------------------

CREATE FUNCTION pdp.pseudonym(value text, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudonym_text';
COMMENT ON FUNCTION pdp.pseudonym(text, text) IS
    'keyed deterministic pseudonym: 128 bits of HMAC-SHA-256 under a subkey per domain, as 32 hex digits';
CREATE FUNCTION pdp.pseudonym(value bigint, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudonym_int8';
COMMENT ON FUNCTION pdp.pseudonym(bigint, text) IS
    'pseudonym of a bigint (or integer): the same as of its text form';
CREATE FUNCTION pdp.pseudonym(value uuid, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudonym_uuid';
COMMENT ON FUNCTION pdp.pseudonym(uuid, text) IS
    'pseudonym of a uuid: the same as of its canonical text form';

-- The audit trail's and the erasure receipts' pseudonym of a subject, under
-- a key domain no SQL function takes ("audit" is refused by the functions
-- above).  Internal: refused unless another pdp function calls it.
CREATE FUNCTION pdp._subject_pseudonym(subject text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL RESTRICTED AS 'MODULE_PATHNAME', 'pdp_subject_pseudonym';
COMMENT ON FUNCTION pdp._subject_pseudonym(text) IS
    'internal: the pseudonym under which the audit trail and pdp.erasure know a subject; callable only from pdp_ext''s own functions';

CREATE FUNCTION pdp.pseudo_email(email text, keep_domain boolean DEFAULT true) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_email';
COMMENT ON FUNCTION pdp.pseudo_email(text, boolean) IS
    'well-formed pseudonymous address: 130-bit keyed local part, domain kept or replaced by pseudonym.invalid';

CREATE FUNCTION pdp.pseudo_phone(phone text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_phone';
COMMENT ON FUNCTION pdp.pseudo_phone(text) IS
    'collision-free phone pseudonym (FF1): keeps country code, first national digit, length and layout';

CREATE FUNCTION pdp.pseudo_iin(iin text, keep_birth_year boolean DEFAULT true) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_iin';
COMMENT ON FUNCTION pdp.pseudo_iin(text, boolean) IS
    'collision-free IIN pseudonym that is itself a valid IIN (real date, century/sex digit, check digit)';

CREATE FUNCTION pdp.pseudo_name(name text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_name';
COMMENT ON FUNCTION pdp.pseudo_name(text) IS
    'realistic Kazakh or Russian name in the input''s script and word count; from finite lists, so not unique';

CREATE FUNCTION pdp.pseudo_ip(addr inet) RETURNS inet
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_ip';
COMMENT ON FUNCTION pdp.pseudo_ip(inet) IS
    'collision-free IP address pseudonym (FF1) of the same family and netmask length';
CREATE FUNCTION pdp.pseudo_ip_text(addr text) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_ip_text';
COMMENT ON FUNCTION pdp.pseudo_ip_text(text) IS
    'pseudo_ip for an address stored as text or varchar: the same pseudonym as text (at most 43 characters); blanks pass through';
CREATE FUNCTION pdp._pseudo_ip_any(addr anyelement) RETURNS anyelement
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_pseudo_ip_any';
COMMENT ON FUNCTION pdp._pseudo_ip_any(anyelement) IS
    'the rule pseudo_ip''s expression: pdp.pseudo_ip for inet, pdp.pseudo_ip_text for text and varchar';

-- Keyed, reversible by pdp_reidentifier ----------------------------------

CREATE FUNCTION pdp.encrypt(value text, domain text DEFAULT '') RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_encrypt';
COMMENT ON FUNCTION pdp.encrypt(text, text) IS
    'deterministic authenticated encryption (AES-256-SIV) into a token carrying its key version and domain';
-- The reversing functions write an audit entry: VOLATILE, PARALLEL UNSAFE.
CREATE FUNCTION pdp.decrypt(token text) RETURNS text
LANGUAGE C STRICT VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_decrypt';
COMMENT ON FUNCTION pdp.decrypt(text) IS
    'reverses pdp.encrypt; pdp_reidentifier only';

CREATE FUNCTION pdp.fpe_encrypt(digits text, domain text DEFAULT '', radix integer DEFAULT 10,
                                key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_fpe_encrypt';
COMMENT ON FUNCTION pdp.fpe_encrypt(text, text, integer, integer) IS
    'NIST SP 800-38G FF1 on AES-256 over digits 0-9a-z below radix; key_version NULL means the active key';
CREATE FUNCTION pdp.fpe_decrypt(digits text, domain text DEFAULT '', radix integer DEFAULT 10,
                                key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_fpe_decrypt';
COMMENT ON FUNCTION pdp.fpe_decrypt(text, text, integer, integer) IS
    'reverses pdp.fpe_encrypt with the same domain, radix and key version; pdp_reidentifier only';

CREATE FUNCTION pdp.fpe_iin(iin text, key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_fpe_iin';
COMMENT ON FUNCTION pdp.fpe_iin(text, integer) IS
    'reversible IIN token that is itself a valid IIN; key_version NULL means the active key';
CREATE FUNCTION pdp.fpe_iin_decrypt(token text, key_version integer DEFAULT NULL) RETURNS text
LANGUAGE C VOLATILE PARALLEL UNSAFE AS 'MODULE_PATHNAME', 'pdp_fpe_iin_decrypt';
COMMENT ON FUNCTION pdp.fpe_iin_decrypt(text, integer) IS
    'reverses pdp.fpe_iin under the same key version; pdp_reidentifier only';

-- Masking and generalisation (keyless) -----------------------------------

CREATE FUNCTION pdp.mask(value text, keep_first integer DEFAULT 0, keep_last integer DEFAULT 0,
                         mask_char text DEFAULT '*') RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask';
COMMENT ON FUNCTION pdp.mask(text, integer, integer, text) IS
    'masks all characters but the first keep_first and last keep_last (all of them if those would show everything)';
CREATE FUNCTION pdp.mask_email(email text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask_email';
COMMENT ON FUNCTION pdp.mask_email(text) IS 'a*****@domain: first character of the local part and the domain';
CREATE FUNCTION pdp.mask_phone(phone text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask_phone';
COMMENT ON FUNCTION pdp.mask_phone(text) IS '+7 7** *** ** 78: country code, first national digit and the last two digits';
CREATE FUNCTION pdp.mask_card(card text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_mask_card';
COMMENT ON FUNCTION pdp.mask_card(text) IS 'PCI DSS style: first six and last four digits of a Luhn-valid card number';
CREATE FUNCTION pdp.generalize_date(d date, "precision" text) RETURNS date
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_generalize_date';
COMMENT ON FUNCTION pdp.generalize_date(date, text) IS 'first day of the month, year or decade';
CREATE FUNCTION pdp.age_band(iin text, width integer DEFAULT 10) RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_age_band';
COMMENT ON FUNCTION pdp.age_band(text, integer) IS 'age today from an IIN''s birth date, as a band like 30-39';

-- Validators (keyless) ----------------------------------------------------

CREATE FUNCTION pdp.iin_is_valid(iin text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_iin_is_valid';
COMMENT ON FUNCTION pdp.iin_is_valid(text) IS 'true for a valid Kazakh IIN: date, century/sex digit, check digit';
CREATE FUNCTION pdp.bin_is_valid(bin text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_bin_is_valid';
COMMENT ON FUNCTION pdp.bin_is_valid(text) IS 'true for a valid Kazakh BIN: month, entity type, check digit';
CREATE FUNCTION pdp.iin_birth_date(iin text) RETURNS date
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_iin_birth_date';
COMMENT ON FUNCTION pdp.iin_birth_date(text) IS 'birth date encoded in a valid IIN';
CREATE FUNCTION pdp.iin_sex(iin text) RETURNS text
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_iin_sex';
COMMENT ON FUNCTION pdp.iin_sex(text) IS 'M or F, from a valid IIN''s seventh digit';
CREATE FUNCTION pdp.luhn_is_valid(digits text) RETURNS boolean
LANGUAGE C STRICT IMMUTABLE PARALLEL SAFE AS 'MODULE_PATHNAME', 'pdp_luhn_is_valid';
COMMENT ON FUNCTION pdp.luhn_is_valid(text) IS 'true when the digits (spaces and dashes allowed) pass the Luhn check';
