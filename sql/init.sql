-- Installation: the extension loads, lands in schema pdp, and documents itself.
CREATE EXTENSION pdp_ext;
SELECT extname, extversion, extrelocatable, n.nspname
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE extname = 'pdp_ext';

-- Every object of the extension carries a COMMENT (tables' columns too).
SELECT pg_describe_object(d.classid, d.objid, 0) AS undocumented
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'pdp_ext')
   AND d.deptype = 'e'
   AND d.classid <> 'pg_type'::regclass
   AND obj_description(d.objid, (SELECT relname FROM pg_class WHERE oid = d.classid)) IS NULL
 ORDER BY 1;
SELECT a.attrelid::regclass AS tbl, a.attname AS undocumented_column
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
 WHERE c.relnamespace = 'pdp'::regnamespace AND c.relkind = 'r'
   AND a.attnum > 0 AND NOT a.attisdropped
   AND col_description(a.attrelid, a.attnum) IS NULL
 ORDER BY 1, 2;

-- The module reserves the pdp.* prefix: a misspelt setting is an error.
SET pdp.no_such_setting = 'x';
