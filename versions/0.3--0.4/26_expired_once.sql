-- A purge batch builds its expiry condition once: pdp._find_expired (re-made
-- in 20_purge.sql and later parts) makes the batch's statement itself from
-- pdp._expired_where_sql, and the builder that 0.3 had for it is gone.
DROP FUNCTION pdp._expired_rows_sql(regclass, text, boolean);
