-- Last: the catalog-sync event triggers' functions.  They fire on DDL inside
-- this update too (DROP FUNCTION, ALTER TABLE in the parts above), so each
-- part runs them as 0.3 had them, and their 0.4 bodies, which read tables
-- the parts above create (links, credentials, EAV attributes, the inactivity
-- fallback column), are installed only now.

CREATE OR REPLACE FUNCTION pdp._on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t regclass;
BEGIN
    DELETE FROM pdp.subject_column s
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
       AND d.objid OPERATOR(pg_catalog.=) s.tbl::oid
       AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) s.attnum);
    -- A link goes with its child or parent table, or either column.
    DELETE FROM pdp.link l
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
       AND ((d.objid OPERATOR(pg_catalog.=) l.child::oid
             AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) l.child_attnum))
            OR (d.objid OPERATOR(pg_catalog.=) l.parent::oid
                AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) l.parent_attnum)));
    DELETE FROM pdp.credential_column cc
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
       AND d.objid OPERATOR(pg_catalog.=) cc.tbl::oid
       AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) cc.attnum);
    IF pg_catalog.to_regclass('pdp.eav_attribute') IS NOT NULL THEN   -- created later in the install script
        DELETE FROM pdp.eav_attribute e
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) e.tbl::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) e.value_attnum
                OR d.objsubid OPERATOR(pg_catalog.=) e.attribute_attnum);
    END IF;
    IF pg_catalog.to_regclass('pdp.anonymise_column') IS NOT NULL THEN   -- created later in the install script
        DELETE FROM pdp.anonymise_column x
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) x.tbl::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) x.attnum);
        DELETE FROM pdp.quasi_identifier x
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) x.tbl::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) x.attnum);
    END IF;
    DELETE FROM pdp.apply_run r
     USING pg_event_trigger_dropped_objects() d
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
       AND d.objid OPERATOR(pg_catalog.=) r.tbl::oid AND d.objsubid OPERATOR(pg_catalog.=) 0;
    -- Retention of a dropped table, or whose anchor or fallback column was dropped, goes;
    -- so do the table's tags, anonymisation marks and table-wide holds.
    IF pg_catalog.to_regclass('pdp.retention_policy') IS NOT NULL THEN
        DELETE FROM pdp.retention_policy p
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) p.tbl::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.address_names[pg_catalog.array_length(d.address_names, 1)]
                                                       OPERATOR(pg_catalog.=) p.anchor_column
                OR d.address_names[pg_catalog.array_length(d.address_names, 1)] OPERATOR(pg_catalog.=) p.fallback_column);
        -- So does inactivity retention whose activity table, activity column
        -- or fallback column was dropped (it would make every purge fail).
        DELETE FROM pdp.subject_retention r
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) r.activity_table::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0
                OR d.address_names[pg_catalog.array_length(d.address_names, 1)] OPERATOR(pg_catalog.=) r.activity_column
                OR d.address_names[pg_catalog.array_length(d.address_names, 1)] OPERATOR(pg_catalog.=) r.fallback_column);
        DELETE FROM pdp.retention_tag g USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) g.tbl AND d.objsubid OPERATOR(pg_catalog.=) 0;
        DELETE FROM pdp.anonymised_row a USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) a.tbl AND d.objsubid OPERATOR(pg_catalog.=) 0;
        UPDATE pdp.hold h SET released_at = pg_catalog.now(), released_by = SESSION_USER
          FROM pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) h.tbl::oid AND d.objsubid OPERATOR(pg_catalog.=) 0
           AND h.released_at IS NULL;
    END IF;
    -- Rules of dropped columns vanish; a surviving table's on-write trigger
    -- is rebuilt without them.
    FOR t IN
        DELETE FROM pdp.column_rule r
         USING pg_event_trigger_dropped_objects() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
           AND d.objid OPERATOR(pg_catalog.=) r.tbl::oid
           AND (d.objsubid OPERATOR(pg_catalog.=) 0 OR d.objsubid OPERATOR(pg_catalog.=) r.attnum)
        RETURNING r.tbl
    LOOP
        IF EXISTS (SELECT 1 FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) t::oid) THEN
            IF pdp._on_write_enabled(t) THEN
                PERFORM pdp._sync_on_write_trigger(t, true);
            END IF;
            PERFORM pdp._sync_rectification_trigger(t);
        END IF;
    END LOOP;
END
$$;

CREATE OR REPLACE FUNCTION pdp._on_alter_table() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    bad record;
    t regclass;
    ren record;
BEGIN
    -- A subject column's type may not drift to one the registry cannot key.
    SELECT c.relname, s.col, a.atttypid::regtype AS typ INTO bad
      FROM pdp.subject_column s
      JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) s.tbl::oid
      JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
                         AND a.attnum OPERATOR(pg_catalog.=) s.attnum
     WHERE NOT pdp.is_subject_type(a.atttypid::regtype)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot change registered subject column "%" of table "%" to type %', bad.col, bad.relname, bad.typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Unregister the column first, or keep bigint, integer, text, varchar or uuid.';
    END IF;
    -- Nor may a ruled column change to a type its rule cannot write.
    SELECT c.relname, r.col, r.rule, pg_catalog.format_type(a.atttypid, a.atttypmod) AS typ INTO bad
      FROM pdp.column_rule r
      JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) r.tbl::oid
      JOIN pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid
                         AND a.attnum OPERATOR(pg_catalog.=) r.attnum
     WHERE pdp._rule_misfit(r.rule, a.atttypid, a.atttypmod, a.attnotnull) IS NOT NULL
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'rule "%" does not fit column "%" of table "%" as %', bad.rule, bad.col, bad.relname, bad.typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'Drop or change the column''s rule first.';
    END IF;
    -- Follow column renames: the attnum is stable, the name is not.
    FOR t IN
        UPDATE pdp.subject_column s SET col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) s.tbl::oid
           AND a.attnum OPERATOR(pg_catalog.=) s.attnum
           AND a.attname OPERATOR(pg_catalog.<>) s.col
        RETURNING s.tbl
    LOOP
        PERFORM pdp._sync_rectification_trigger(t);
    END LOOP;
    -- Links follow renames of their columns the same way.
    UPDATE pdp.link l SET child_col = a.attname
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) l.child::oid AND a.attnum OPERATOR(pg_catalog.=) l.child_attnum
       AND a.attname OPERATOR(pg_catalog.<>) l.child_col;
    UPDATE pdp.link l SET parent_col = a.attname
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) l.parent::oid AND a.attnum OPERATOR(pg_catalog.=) l.parent_attnum
       AND a.attname OPERATOR(pg_catalog.<>) l.parent_col;
    -- Nor may a linked column's type drift from its other end's.
    SELECT c.relname, l.child_col AS col, pg_catalog.format_type(ca.atttypid, NULL) AS typ INTO bad
      FROM pdp.link l
      JOIN pg_class c ON c.oid OPERATOR(pg_catalog.=) l.child::oid
      JOIN pg_attribute ca ON ca.attrelid OPERATOR(pg_catalog.=) l.child::oid AND ca.attnum OPERATOR(pg_catalog.=) l.child_attnum
      JOIN pg_attribute pa ON pa.attrelid OPERATOR(pg_catalog.=) l.parent::oid AND pa.attnum OPERATOR(pg_catalog.=) l.parent_attnum
     WHERE ca.atttypid OPERATOR(pg_catalog.<>) pa.atttypid
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot change linked column "%" of table "%" to type % alone', bad.col, bad.relname, bad.typ
            USING ERRCODE = 'datatype_mismatch',
                  HINT = 'A link compares its child and parent columns: drop the link (pdp.drop_link) first, or change both.';
    END IF;
    UPDATE pdp.credential_column cc SET col = a.attname
      FROM pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) cc.tbl::oid
       AND a.attnum OPERATOR(pg_catalog.=) cc.attnum
       AND a.attname OPERATOR(pg_catalog.<>) cc.col;
    IF pg_catalog.to_regclass('pdp.eav_attribute') IS NOT NULL THEN   -- created later in the install script
        UPDATE pdp.eav_attribute e SET value_col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.value_attnum
           AND a.attname OPERATOR(pg_catalog.<>) e.value_col;
        UPDATE pdp.eav_attribute e SET attribute_col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) e.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) e.attribute_attnum
           AND a.attname OPERATOR(pg_catalog.<>) e.attribute_col;
    END IF;
    IF pg_catalog.to_regclass('pdp.anonymise_column') IS NOT NULL THEN   -- created later in the install script
        UPDATE pdp.anonymise_column x SET col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) x.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) x.attnum
           AND a.attname OPERATOR(pg_catalog.<>) x.col;
        UPDATE pdp.quasi_identifier x SET col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) x.tbl::oid AND a.attnum OPERATOR(pg_catalog.=) x.attnum
           AND a.attname OPERATOR(pg_catalog.<>) x.col;
    END IF;
    FOR t IN
        UPDATE pdp.column_rule r SET col = a.attname
          FROM pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) r.tbl::oid
           AND a.attnum OPERATOR(pg_catalog.=) r.attnum
           AND a.attname OPERATOR(pg_catalog.<>) r.col
        RETURNING r.tbl
    LOOP
        -- The on-write trigger names columns in its arguments: rebuild it.
        IF pdp._on_write_enabled(t) THEN
            PERFORM pdp._sync_on_write_trigger(t, true);
        END IF;
        PERFORM pdp._sync_rectification_trigger(t);
    END LOOP;
    -- Columns kept by name (retention anchors, the inactivity column): a
    -- RENAME COLUMN reports the table and the renamed column's number; a
    -- stored name that is no longer a column of that table was the old name.
    FOR ren IN SELECT c.objid, a.attname
                 FROM pg_catalog.pg_event_trigger_ddl_commands() c
                 JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.objid
                                               AND a.attnum OPERATOR(pg_catalog.=) c.objsubid
                WHERE c.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::regclass::oid
                  AND c.objsubid > 0 AND NOT a.attisdropped LOOP
        IF pg_catalog.to_regclass('pdp.retention_policy') IS NOT NULL THEN
            UPDATE pdp.retention_policy p SET anchor_column = ren.attname
             WHERE p.tbl::oid OPERATOR(pg_catalog.=) ren.objid AND p.anchor_column IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute x
                                WHERE x.attrelid OPERATOR(pg_catalog.=) ren.objid
                                  AND x.attname OPERATOR(pg_catalog.=) p.anchor_column AND NOT x.attisdropped);
            UPDATE pdp.retention_policy p SET fallback_column = ren.attname
             WHERE p.tbl::oid OPERATOR(pg_catalog.=) ren.objid AND p.fallback_column IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute x
                                WHERE x.attrelid OPERATOR(pg_catalog.=) ren.objid
                                  AND x.attname OPERATOR(pg_catalog.=) p.fallback_column AND NOT x.attisdropped);
            UPDATE pdp.subject_retention r SET activity_column = ren.attname
             WHERE r.activity_table::oid OPERATOR(pg_catalog.=) ren.objid
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute x
                                WHERE x.attrelid OPERATOR(pg_catalog.=) ren.objid
                                  AND x.attname OPERATOR(pg_catalog.=) r.activity_column AND NOT x.attisdropped);
            UPDATE pdp.subject_retention r SET fallback_column = ren.attname
             WHERE r.activity_table::oid OPERATOR(pg_catalog.=) ren.objid AND r.fallback_column IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute x
                                WHERE x.attrelid OPERATOR(pg_catalog.=) ren.objid
                                  AND x.attname OPERATOR(pg_catalog.=) r.fallback_column AND NOT x.attisdropped);
        END IF;
    END LOOP;
END
$$;
