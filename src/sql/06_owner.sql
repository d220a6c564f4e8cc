-- Whose rights pdp_ext's statements run with (src/owner.c).  Statements on a
-- user table run as the table's owner with SECURITY_RESTRICTED_OPERATION;
-- pdp's API functions that change pdp's state run as pdp_ext's owner and
-- check the role that called them, pdp._caller().

CREATE FUNCTION pdp._exec_as_owner(tbl regclass, sql text) RETURNS SETOF record
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner$$;
COMMENT ON FUNCTION pdp._exec_as_owner(regclass, text) IS
    'runs one statement on a table as its owner (security-restricted); refused unless it is a table, or unless the caller owns it';
CREATE FUNCTION pdp._exec_as_owner(tbl regclass, sql text, VARIADIC args "any") RETURNS SETOF record
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner$$;
COMMENT ON FUNCTION pdp._exec_as_owner(regclass, text, "any") IS
    'runs one statement on a table as its owner (security-restricted), with the arguments as its parameters $1, $2, ...';

CREATE FUNCTION pdp._exec_as_owner_count(tbl regclass, sql text, VARIADIC args "any") RETURNS bigint
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_exec_as_owner_count$$;
COMMENT ON FUNCTION pdp._exec_as_owner_count(regclass, text, "any") IS
    'runs one statement on a table as its owner (security-restricted), as pdp._exec_as_owner does, and returns how many rows it processed';

CREATE FUNCTION pdp._caller() RETURNS regrole
LANGUAGE C VOLATILE AS $$MODULE_PATHNAME$$, $$pdp_caller$$;
COMMENT ON FUNCTION pdp._caller() IS
    'the role that called the pdp API function now running, or else the current user (ownership checks use it)';
