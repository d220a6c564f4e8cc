-- Renames of every kind (issue 14, class 8): retention anchors and the
-- inactivity column, which are kept by name, follow RENAME COLUMN.

-- (pdp._on_alter_table is re-created last, in 99_catalog_sync.sql: during the update it must not read objects later parts create.)
