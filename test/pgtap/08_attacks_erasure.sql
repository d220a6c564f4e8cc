-- pgTAP: attacks on erase actions, links and holds (issue 16, points 1, 2
-- and 4; issue 14, classes 1, 2 and 6 for them).  Two pdp_admin members own
-- a table each (era_a, era_b); a DPO (era_dpo) owns none.  All of it is
-- rolled back.
BEGIN;
SELECT plan(32);

CREATE ROLE era_a IN ROLE pdp_admin;
CREATE ROLE era_b IN ROLE pdp_admin;
CREATE ROLE era_dpo IN ROLE pdp_admin;
CREATE SCHEMA era;
GRANT USAGE, CREATE ON SCHEMA era TO era_a, era_b;
GRANT USAGE ON SCHEMA era TO era_dpo;

SET ROLE era_a;
CREATE TABLE era.a_users (id bigint PRIMARY KEY, name text);
CREATE TABLE era.a_posts (id bigint PRIMARY KEY, thread bigint NOT NULL DEFAULT 0, userid bigint NOT NULL,
                          editor bigint NOT NULL DEFAULT 0, note text);
-- Who ran the statements on the child: the trap records current_user.
CREATE TABLE era.a_marker (who name);
GRANT INSERT ON era.a_marker TO PUBLIC;
CREATE FUNCTION era.a_note() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN INSERT INTO era.a_marker VALUES (current_user); IF TG_OP = 'DELETE' THEN RETURN OLD; END IF; RETURN NEW; END $$;
CREATE TRIGGER a_note BEFORE DELETE OR UPDATE ON era.a_posts FOR EACH ROW EXECUTE FUNCTION era.a_note();
SELECT pdp.register_table('era.a_users', 'id');
SELECT pdp.register_table('era.a_posts', 'userid');
RESET ROLE;
SET ROLE era_b;
CREATE TABLE era.b_items (id bigint PRIMARY KEY, post bigint NOT NULL, label text);
SELECT pdp.register_table('era.b_items', 'id', 'keep');
RESET ROLE;

-- 1. Ownership: a link is declared by the owner of both tables.
SET ROLE era_b;
SELECT throws_ok($$SELECT pdp.declare_link('era.a_posts', 'thread', 'era.a_users')$$, '42501', NULL,
                 'attack: a link on a child table the caller does not own is refused');
SELECT throws_ok($$SELECT pdp.declare_link('era.b_items', 'post', 'era.a_posts')$$, '42501', NULL,
                 'attack: a link to a parent table the caller does not own is refused');
RESET ROLE;
SET ROLE era_dpo;
SELECT throws_ok($$SELECT pdp.declare_link('era.a_posts', 'thread', 'era.a_posts')$$, '42501', NULL,
                 'attack: a DPO who owns neither table cannot declare a link');
RESET ROLE;
SET ROLE era_a;
SELECT lives_ok($$SELECT pdp.declare_link('era.a_posts', 'thread', 'era.a_posts', 'id', 'keep')$$,
                'the owner of both declares a self-link');
-- Attachments without a user column, in a cycle: a_att -> a_posts, a_att2 -> a_att, a_att -> a_att2.
CREATE TABLE era.a_att (id bigint PRIMARY KEY, post bigint NOT NULL DEFAULT 0, other bigint NOT NULL DEFAULT 0);
CREATE TABLE era.a_att2 (id bigint PRIMARY KEY, att bigint NOT NULL);
SELECT pdp.declare_link('era.a_att', 'post', 'era.a_posts');
SELECT pdp.declare_link('era.a_att2', 'att', 'era.a_att');
SELECT pdp.declare_link('era.a_att', 'other', 'era.a_att2');
RESET ROLE;
SET ROLE era_b;
SELECT throws_ok($$SELECT pdp.drop_link('era.a_posts', 'thread')$$, '42501', NULL,
                 'attack: dropping another owner''s link is refused');
SELECT throws_ok($$INSERT INTO pdp.link (child, child_col, child_attnum, parent, parent_col, parent_attnum, on_other)
                   VALUES ('era.b_items', 'post', 2, 'era.a_posts', 'id', 1, 'delete')$$, '42501', NULL,
                 'attack: a direct insert into pdp.link is refused');
SELECT throws_ok($$DELETE FROM pdp.link$$, '42501', NULL, 'attack: a direct delete from pdp.link is refused');
SELECT throws_ok($$UPDATE pdp.subject_column SET on_erase = 'keep'$$, '42501', NULL,
                 'attack: erase actions cannot be changed by a direct update');
RESET ROLE;
SELECT is((SELECT count(*) FROM pdp.link WHERE child = 'era.a_posts'::regclass), 1::bigint,
          'the refused calls changed no link');
SELECT throws_ok($$SELECT pdp.declare_link('era.a_posts', 'thread', 'pdp.subject_column', 'attnum')$$, '42501', NULL,
                 'attack: a link into pdp''s own tables is refused');
SELECT throws_ok($$SELECT pdp.declare_link('era.a_posts', 'thread', 'pg_catalog.pg_authid', 'oid')$$, '42501', NULL,
                 'attack: a link into the system catalogs is refused');
SELECT is((SELECT count(*) FROM pdp.audit_log WHERE action = 'declare_link' AND object = 'era.a_posts'), 1::bigint,
          'the declared link is audited');

-- 2. Values: an erase or reparent value is a value of the column's type,
-- never SQL.
SET ROLE era_a;
SELECT throws_ok($$SELECT pdp.register_table('era.a_posts', 'editor', 'set_value', '0); DROP TABLE era.a_users; --')$$,
                 '22023', NULL, 'attack: a set_value that does not cast is refused at registration');
SELECT throws_ok($$SELECT pdp.register_table('era.a_posts', 'editor', 'set_null')$$, '22023', NULL,
                 'a NOT NULL column refuses set_null');
SELECT throws_ok($$SELECT pdp.declare_link('era.a_posts', 'thread', 'era.a_posts', 'id', 'reparent', '1; DROP TABLE era.a_users')$$,
                 '22023', NULL, 'attack: a reparent value that does not cast is refused');
SELECT lives_ok($$SELECT pdp.register_table('era.a_posts', 'editor', 'set_value', ' 0')$$, 'set_value 0 registers');
CREATE TABLE era.a_text (id bigint PRIMARY KEY, owner text, by text NOT NULL DEFAULT '');
SELECT pdp.register_table('era.a_text', 'owner');
SELECT pdp.register_table('era.a_text', 'by', 'set_value', $v$x'); DROP TABLE era.a_users; --$v$);
RESET ROLE;
SELECT is((SELECT erase_value FROM pdp.subject_column WHERE tbl = 'era.a_posts'::regclass AND col = 'editor'), '0',
          'an erase value is stored in its type''s text form');

-- 3. A link cycle (posts reply to posts, and a post to its own reply):
-- erasure ends and takes every row that follows the erased subject's.
INSERT INTO era.a_users VALUES (1, 'one'), (2, 'two'), (3, 'three');
INSERT INTO era.a_posts (id, thread, userid, editor) VALUES (10, 12, 1, 2), (11, 10, 1, 0), (12, 11, 1, 0),  -- a cycle
                                                            (20, 0, 2, 1),                                  -- two's, edited by one
                                                            (21, 10, 3, 0);                                 -- three's reply to one
INSERT INTO era.a_text VALUES (1, '1', '2'), (2, '2', '1');
INSERT INTO era.a_att VALUES (100, 10, 0), (101, 0, 200), (102, 20, 0);
INSERT INTO era.a_att2 VALUES (200, 100), (201, 102);
SET ROLE era_dpo;
SELECT lives_ok($$SELECT pdp.erase_subject(1, 'asked')$$, 'erasure through a link cycle ends');
RESET ROLE;
SELECT results_eq($$SELECT id FROM era.a_posts ORDER BY id$$, ARRAY[20::bigint, 21],
                  'the cycle''s rows are gone; another subject''s reply is kept (on_other keep)');
SELECT results_eq($$SELECT id FROM era.a_att UNION ALL SELECT id FROM era.a_att2 ORDER BY 1$$, ARRAY[102::bigint, 201],
                  'rows without a user column that follow the erased rows, through a cycle of links, are gone; the rest stays');
SELECT is((SELECT editor FROM era.a_posts WHERE id = 20), 0::bigint, 'the erased editor''s link is cut to its erase value');
SELECT is((SELECT by FROM era.a_text WHERE id = 2), $v$x'); DROP TABLE era.a_users; --$v$,
          'a text erase value is written as a value, not run as SQL');
SELECT ok(to_regclass('era.a_users') IS NOT NULL, 'nothing was dropped');
SELECT ok(EXISTS (SELECT 1 FROM pdp.erasure WHERE receipt->'followed' @>
                   '[{"table": "era.a_posts", "action": "follow keep", "via": "thread", "rows": 1}]'),
          'the receipt reports the kept dependant of another subject');
SELECT is((SELECT array_agg(DISTINCT who) FROM era.a_marker), ARRAY['era_a'::name],
          'attack: every statement on the tables ran as their owner, never as pdp_ext''s owner or the DPO');

-- 4. Holds are the held subject's data.  Three is held: erasing two cuts
-- two's link in three's row and does not delete it; three's reply to a
-- post of two is kept.
INSERT INTO era.a_posts (id, thread, userid, editor) VALUES (30, 0, 3, 2), (31, 20, 3, 0);
-- A conversation both own: erasing one member keeps it for the held other.
SET ROLE era_a;
CREATE TABLE era.a_pair (id bigint PRIMARY KEY, one bigint, other bigint);
SELECT pdp.register_table('era.a_pair', 'one');
SELECT pdp.register_table('era.a_pair', 'other');
RESET ROLE;
INSERT INTO era.a_pair VALUES (1, 2, 3), (2, 2, NULL);
SELECT pdp.place_hold(3, 'appeal');
SELECT lives_ok($$SELECT pdp.erase_subject(2, 'asked')$$, 'erasing one subject is not blocked by another''s hold');
SELECT results_eq($$SELECT id, editor FROM era.a_posts WHERE userid = 3 ORDER BY id$$,
                  $$VALUES (21::bigint, 0::bigint), (30, 0), (31, 0)$$,
                  'attack: erasing a subject deletes no row a held subject owns, and cuts its link in them');
SELECT results_eq($$SELECT id FROM era.a_pair ORDER BY id$$, ARRAY[1::bigint],
                  'a row the erased subject owns together with a held subject is kept; their own row goes');
SELECT ok(EXISTS (SELECT 1 FROM pdp.erasure WHERE receipt->'tables' @>
                   '[{"table": "era.a_pair", "action": "held", "rows": 1}, {"table": "era.a_pair", "action": "delete", "rows": 1}]'),
          'the receipt counts the row kept for the held co-owner');
SELECT throws_ok($$SELECT pdp.erase_subject(3, 'asked')$$, '55000', NULL, 'the held subject itself is not erased');

-- 5. A linked column cannot drift to another type than its other end.
SELECT throws_ok($$ALTER TABLE era.a_posts ALTER COLUMN thread TYPE integer$$, '42804', NULL,
                 'a linked column''s type change alone is refused');
ALTER TABLE era.a_posts RENAME COLUMN thread TO reply_to;
SELECT is((SELECT child_column FROM pdp.links WHERE child = 'era.a_posts'::regclass), 'reply_to'::name,
          'a renamed link column is followed');

SELECT * FROM finish();
ROLLBACK;
