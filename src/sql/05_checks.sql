-- Checks shared by every capability.
--
-- Intervals.  PostgreSQL compares intervals by counting a month as 30 days,
-- so '-12 mon 361 days' compares as "more than a day" although it reaches
-- back about four days from any date.  Every interval pdp_ext accepts is
-- judged by the time it actually spans: from now and, when its months and
-- its days or time have different signs (a month's length varies with the
-- date), also from the date where it would span least, because a retention
-- period or a deadline is later added to other dates than today.  Months
-- are then counted at their Gregorian average, 30.436875 days, less (where
-- they add) or plus (where they take away) four days, which bounds every
-- calendar's drift from the average, short months and month-end clamping
-- included: '1 mon -31 days' (zero or less from every date) and
-- '-1 mon 31 days' (zero from April 1st) are refused, '-1 mon 40 days'
-- (nine days or more from every date) is accepted.

CREATE FUNCTION pdp._check_interval(i interval, message text, at_least interval DEFAULT NULL) RETURNS interval
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    m integer;
    d integer;
    t interval;
    least_span interval;
    ok boolean;
BEGIN
    IF i IS NOT NULL THEN
        m := (pg_catalog.date_part('year', i) * 12 + pg_catalog.date_part('month', i))::integer;
        d := pg_catalog.date_part('day', i)::integer;
        t := i OPERATOR(pg_catalog.-) pg_catalog.make_interval(months => m, days => d);
        IF at_least IS NULL THEN
            ok := (pg_catalog.now() OPERATOR(pg_catalog.+) i) OPERATOR(pg_catalog.>) pg_catalog.now();
        ELSE
            ok := (pg_catalog.now() OPERATOR(pg_catalog.+) i) OPERATOR(pg_catalog.>=) (pg_catalog.now() OPERATOR(pg_catalog.+) at_least);
        END IF;
        IF ok AND ((m > 0 AND (d < 0 OR t OPERATOR(pg_catalog.<) interval '0'))
                OR (m < 0 AND (d > 0 OR t OPERATOR(pg_catalog.>) interval '0'))) THEN
            least_span := pg_catalog.make_interval(days => d,
                                                   secs => (CASE WHEN m > 0 THEN pg_catalog.floor(m * 30.436875) - 4
                                                                 ELSE -(pg_catalog.ceil(-m * 30.436875) + 4) END) * 86400)
                          OPERATOR(pg_catalog.+) t;
            ok := CASE WHEN at_least IS NULL THEN least_span OPERATOR(pg_catalog.>) interval '0'
                       ELSE least_span OPERATOR(pg_catalog.>=) at_least END;
        END IF;
    END IF;
    IF i IS NULL OR NOT ok THEN
        RAISE EXCEPTION '%', message USING ERRCODE = 'invalid_parameter_value',
              DETAIL = 'An interval is judged by the time it spans from now, and one mixing positive and negative parts by the least it spans from any date.';
    END IF;
    RETURN i;
END
$$;
COMMENT ON FUNCTION pdp._check_interval(interval, text, interval) IS
    'refuses (22023, with message) an interval that is NULL or does not span more than zero (or at least at_least) from now and, for mixed signs, from every date; returns it';

-- The same check on the period column of pdp's own tables, however a row is written.
CREATE FUNCTION pdp._check_period() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NEW.period IS NOT NULL THEN
        PERFORM pdp._check_interval(NEW.period, pg_catalog.format('%s.period must be positive', TG_TABLE_NAME));
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION pdp._check_period() IS 'trigger: refuses a period that does not span a positive time (pdp._check_interval)';
