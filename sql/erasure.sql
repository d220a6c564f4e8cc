-- Erasure per column, links without foreign keys, holds that mean "this
-- subject's data", on a small schema shaped like Moodle's (issue 16, points
-- 1, 2 and 4), with a partitioned and a composite-key table (issue 14, class 6).
\set SHOW_CONTEXT never
\set VERBOSITY terse
-- Tiny tables: the purge safety valve (pdp.purge_max_share) is opened.
SET pdp.purge_max_share = 1;

CREATE SCHEMA mdl;
SET search_path = mdl, public;
-- Moodle declares no foreign keys, and its user columns are bigint NOT NULL DEFAULT 0.
CREATE TABLE mdl_user (id bigserial PRIMARY KEY, username text NOT NULL, email text NOT NULL DEFAULT '');
CREATE TABLE mdl_forum_discussions (id bigserial PRIMARY KEY, name text NOT NULL, userid bigint NOT NULL DEFAULT 0,
                                    usermodified bigint NOT NULL DEFAULT 0, timemodified bigint NOT NULL DEFAULT 0);
CREATE TABLE mdl_forum_posts (id bigserial PRIMARY KEY, discussion bigint NOT NULL DEFAULT 0, parent bigint NOT NULL DEFAULT 0,
                              userid bigint NOT NULL DEFAULT 0, message text NOT NULL);
-- A child without a user column (like data_content): reachable only through its link.
CREATE TABLE mdl_post_content (id bigserial PRIMARY KEY, postid bigint NOT NULL, content text);
CREATE TABLE mdl_grade_grades (id bigserial PRIMARY KEY, itemid bigint NOT NULL, userid bigint NOT NULL,
                               usermodified bigint NOT NULL DEFAULT 0, finalgrade numeric, feedback text);
-- Partitioned, primary key (id, timecreated).
CREATE TABLE mdl_logstore (id bigint NOT NULL, timecreated bigint NOT NULL, userid bigint NOT NULL DEFAULT 0,
                           relateduserid bigint, eventname text, PRIMARY KEY (id, timecreated))
    PARTITION BY RANGE (timecreated);
CREATE TABLE mdl_logstore_old PARTITION OF mdl_logstore FOR VALUES FROM (0) TO (1000);
CREATE TABLE mdl_logstore_new PARTITION OF mdl_logstore FOR VALUES FROM (1000) TO (MAXVALUE);
-- Composite primary key, no id.
CREATE TABLE mdl_role_assignments (roleid bigint NOT NULL, contextid bigint NOT NULL, userid bigint NOT NULL,
                                   modifierid bigint NOT NULL DEFAULT 0, PRIMARY KEY (roleid, contextid, userid));

-- 1. Erase actions per column.  Registration order does not matter: the
-- staff column first, then the learner's own column of the same table.
SELECT pdp.register_table('mdl_user', 'id');
SELECT pdp.register_table('mdl_grade_grades', 'usermodified', 'set_value', '0');
SELECT pdp.register_table('mdl_grade_grades', 'userid');
SELECT pdp.register_table('mdl_forum_discussions', 'userid');
SELECT pdp.register_table('mdl_forum_discussions', 'usermodified', on_erase => 'set_value', erase_value => ' 0 ');
SELECT pdp.register_table('mdl_forum_posts', 'userid');
SELECT pdp.register_table('mdl_logstore', 'userid');
SELECT pdp.register_table('mdl_logstore', 'relateduserid', 'anonymise');         -- 0.3's spelling of set_null
SELECT pdp.register_table('mdl_role_assignments', 'userid');
SELECT pdp.register_table('mdl_role_assignments', 'modifierid', 'set_value', '0');
SELECT relation_name, subject_column, on_erase, erase_value FROM pdp.registered_tables
 WHERE schema_name = 'mdl' ORDER BY 1, 2;
-- Refused, each with a clear error, nothing written.
CREATE TABLE mdl_message (id bigserial PRIMARY KEY, useridfrom bigint NOT NULL DEFAULT 0, useridto bigint, subject varchar(4));
SELECT pdp.register_table('mdl_message', 'useridfrom', 'set_null');              -- NOT NULL: cannot set NULL
\set VERBOSITY default
SELECT pdp.register_table('mdl_message', 'useridfrom', 'set_null');              -- ... and the hint says what to do
\set VERBOSITY terse
SELECT pdp.register_table('mdl_message', 'useridfrom', 'set_value');             -- no erase_value
SELECT pdp.register_table('mdl_message', 'useridfrom', 'set_value', 'nobody');   -- does not cast to bigint
SELECT pdp.register_table('mdl_message', 'useridfrom', 'set_value', '99999999999999999999');  -- out of range
SELECT pdp.register_table('mdl_message', 'subject', 'set_value', 'toolong');     -- longer than varchar(4)
SELECT pdp.register_table('mdl_message', 'useridfrom', 'delete', '0');           -- erase_value only with set_value
SELECT pdp.register_table('mdl_message', 'useridfrom', 'shred');                 -- unknown action
SELECT count(*) AS message_registrations FROM pdp.registered_tables WHERE relation_name = 'mdl_message';
SELECT pdp.register_table('mdl_message', 'useridto', 'keep');
SELECT pdp.register_table('mdl_message', 'useridfrom', 'set_value', '0');
ALTER TABLE mdl_message ADD COLUMN fullmessage text;
SELECT pdp.set_column_rule('mdl_message', 'fullmessage', 'null');

-- 2. Links without foreign keys.
SELECT pdp.declare_link('mdl_forum_posts', 'discussion', 'mdl_forum_discussions');      -- parent column id
SELECT pdp.declare_link('mdl_forum_posts', 'parent', 'mdl_forum_posts', 'id', 'keep');   -- a reply to a reply: a self-link
SELECT pdp.declare_link('mdl_post_content', 'postid', 'mdl_forum_posts');
SELECT child, child_column, parent, parent_column, link_type, on_other, reparent_value FROM pdp.links ORDER BY 1::text, 2;
-- Refused: unknown column, types that differ, a reparent value that does not cast, unknown on_other.
SELECT pdp.declare_link('mdl_post_content', 'nope', 'mdl_forum_posts');
SELECT pdp.declare_link('mdl_post_content', 'content', 'mdl_forum_posts');
SELECT pdp.declare_link('mdl_forum_posts', 'discussion', 'mdl_forum_discussions', 'id', 'reparent', 'general');
SELECT pdp.declare_link('mdl_forum_posts', 'discussion', 'mdl_forum_discussions', 'id', 'reparent');
SELECT pdp.declare_link('mdl_forum_posts', 'discussion', 'mdl_forum_discussions', 'id', 'orphan');
SELECT pdp.declare_link('mdl_forum_posts', 'discussion', 'pg_catalog.pg_class', 'oid');
SELECT on_other FROM pdp.links WHERE child = 'mdl_forum_posts'::regclass AND child_column = 'discussion';
SELECT action, object, details FROM pdp.audit_log WHERE action LIKE '%link' ORDER BY id;

-- Users: 1 admin, 2 teacher, 3 and 4 learners, 5 a learner with nothing else.
INSERT INTO mdl_user (username, email) VALUES ('admin', 'admin@lms.kz'), ('teacher', 'teacher@lms.kz'),
                                              ('aigerim', 'aigerim@mail.kz'), ('nurlan', 'nurlan@mail.kz'), ('dana', 'dana@mail.kz');
INSERT INTO mdl_forum_discussions (name, userid, usermodified) VALUES ('aigerim asks', 3, 2), ('nurlan asks', 4, 4);
INSERT INTO mdl_forum_posts (discussion, parent, userid, message) VALUES
    (1, 0, 3, 'aigerim: question'),          -- 1
    (1, 1, 4, 'nurlan: reply to aigerim'),   -- 2
    (1, 2, 3, 'aigerim: thanks'),            -- 3
    (2, 0, 4, 'nurlan: question'),           -- 4
    (2, 4, 3, 'aigerim: reply to nurlan'),   -- 5
    (2, 5, 4, 'nurlan: reply to her reply'); -- 6
INSERT INTO mdl_post_content (postid, content) VALUES (1, 'attachment of post 1'), (2, 'attachment of post 2'), (5, 'attachment of post 5');
INSERT INTO mdl_grade_grades (itemid, userid, usermodified, finalgrade, feedback) VALUES
    (1, 3, 2, 90, 'good'), (1, 4, 2, 70, 'ok'), (2, 4, 3, 50, 'peer-graded by aigerim');
INSERT INTO mdl_logstore VALUES (1, 10, 3, NULL, 'login'), (2, 20, 2, 3, 'graded'), (3, 1500, 3, 4, 'message sent'),
                                (4, 1600, 4, 3, 'message sent'), (5, 1700, 4, NULL, 'login');
INSERT INTO mdl_role_assignments VALUES (5, 10, 3, 2), (5, 10, 4, 2), (3, 10, 2, 1);
-- A message to learner 4 (kept: useridto is 'keep') and one to nobody.
INSERT INTO mdl_message (useridfrom, useridto, subject, fullmessage) VALUES (3, 4, 'hi', 'hello nurlan'), (3, NULL, 'note', 'a note to self');

-- 3. Export follows links: the subject's rows, then what follows them that
-- is not another subject's (their reply is withheld, only counted).
SELECT pdp.export_subject(3) AS doc \gset
SELECT key AS table_name, jsonb_array_length(value) AS rows FROM jsonb_each((:'doc'::jsonb)->'data') ORDER BY 1;
SELECT key AS linked_table, (SELECT array_agg(r->>'id' ORDER BY (r->>'id')::int) FROM jsonb_array_elements(value) r) AS ids
  FROM jsonb_each((:'doc'::jsonb)->'linked') ORDER BY 1;
SELECT (:'doc'::jsonb)->'linked_withheld' AS withheld;

-- 4. Holds mean the held subject's data.  Learner 4 is held; erasing the
-- teacher (2) cuts the teacher's links in learner 4's rows (grade,
-- discussion) without deleting them.
SELECT pdp.place_hold(4, 'grade appeal') AS hold \gset
SELECT pdp.erase_subject(2, 'left the school') AS receipt \gset
SELECT jsonb_pretty((:'receipt'::jsonb)->'tables') AS tables, (:'receipt'::jsonb)->'followed' AS followed;
SELECT id, userid, usermodified, finalgrade, feedback FROM mdl_grade_grades ORDER BY id;
SELECT id, userid, usermodified FROM mdl_forum_discussions ORDER BY id;
SELECT roleid, contextid, userid, modifierid FROM mdl_role_assignments ORDER BY 1, 2, 3;
SELECT id, timecreated, userid, relateduserid FROM mdl_logstore ORDER BY id;

-- 5. Erasing learner 3, with learner 4 held: their own rows go (delete wins
-- over set_value in the grade they own), their discussion takes along what
-- follows it except held learner 4's reply, their posts take their
-- attachments; their links in learner 4's rows are cut (the peer grade,
-- learner 4's log rows), on both partitions.
SELECT pdp.erase_subject(3, 'learner asked') AS receipt \gset
SELECT jsonb_pretty((:'receipt'::jsonb)->'tables') AS tables;
SELECT jsonb_pretty((:'receipt'::jsonb)->'followed') AS followed;
SELECT id, discussion, parent, userid, message FROM mdl_forum_posts ORDER BY id;
SELECT id, postid, content FROM mdl_post_content ORDER BY id;
SELECT id, userid, usermodified, finalgrade, feedback FROM mdl_grade_grades ORDER BY id;
SELECT tableoid::regclass AS partition, id, userid, relateduserid, eventname FROM mdl_logstore ORDER BY id;
SELECT roleid, contextid, userid, modifierid FROM mdl_role_assignments ORDER BY 1, 2, 3;
-- Cut from its sender, the message to learner 4 keeps its text (it still
-- names them); the one that names nobody any more is anonymised by its rule.
SELECT id, useridfrom, useridto, subject, fullmessage FROM mdl_message ORDER BY id;
SELECT id, username FROM mdl_user ORDER BY id;
-- The receipt is stored, and holds no personal value.
SELECT count(*) AS receipts FROM pdp.erasure WHERE subject_pseudonym = (:'receipt'::jsonb)->>'subject_pseudonym';
SELECT (:'receipt'::jsonb)::text ~ 'aigerim|@' AS receipt_has_personal_value;
SELECT pdp.release_hold(:hold);

-- 6. on_other: dependants written by other subjects are deleted, reparented
-- or kept.  Learner 5 opens a discussion that learner 4 answers.
INSERT INTO mdl_forum_discussions (id, name, userid, timemodified) VALUES (100, 'tombstone', 0, 4102444800), (3, 'dana asks', 5, 4102444800),
                                                                      (4, 'dana again', 5, 4102444800);
INSERT INTO mdl_forum_posts (discussion, parent, userid, message) VALUES
    (3, 0, 5, 'dana: question'), (3, 0, 4, 'nurlan: answer to dana'), (4, 0, 4, 'nurlan: answer again');
SELECT pdp.declare_link('mdl_forum_posts', 'discussion', 'mdl_forum_discussions', 'id', 'reparent', '100');
SELECT pdp.erase_subject(5, 'learner asked')->'followed' AS followed;
SELECT id, discussion, userid, message FROM mdl_forum_posts WHERE userid IN (4, 5) ORDER BY id;

-- 7. Renames are followed (attnums), and a purge follows links too: an
-- expired discussion takes its posts along, its owner's and the rest per
-- on_other ('delete' again here); a held subject's posts stay.
ALTER TABLE mdl_forum_posts RENAME COLUMN discussion TO discussionid;
SELECT child_column FROM pdp.links WHERE child = 'mdl_forum_posts'::regclass ORDER BY 1;
SELECT pdp.declare_link('mdl_forum_posts', 'discussionid', 'mdl_forum_discussions');
INSERT INTO mdl_user (id, username) VALUES (6, 'erlan'), (7, 'zhanna');
INSERT INTO mdl_forum_discussions (id, name, userid, timemodified) VALUES (5, 'old thread', 6, 1000), (6, 'new thread', 6, 4102444800);
INSERT INTO mdl_forum_posts (discussionid, parent, userid, message) VALUES
    (5, 0, 6, 'erlan: old question'), (5, 0, 7, 'zhanna: old answer'), (5, 0, 4, 'nurlan: held answer'),
    (6, 0, 6, 'erlan: new question');
SELECT pdp.place_hold(4, 'second appeal') AS hold \gset
SELECT pdp.set_retention('mdl_forum_discussions', '1 year', 'timemodified');
SELECT table_name, action, rows FROM pdp.purge_expired() ORDER BY 1::text;
SELECT id, discussionid, userid, message FROM mdl_forum_posts WHERE discussionid IN (5, 6) ORDER BY id;
SELECT details FROM pdp.audit_log WHERE action = 'purge_follow' ORDER BY id;
SELECT pdp.release_hold(:hold);

-- A purge of a partitioned table with a composite key: each partition
-- numbers its rows' ctids from (0,1), and only the expired row goes.
CREATE TABLE mdl_stats (id bigint NOT NULL, timecreated bigint NOT NULL, userid bigint NOT NULL,
                        PRIMARY KEY (id, timecreated)) PARTITION BY RANGE (timecreated);
CREATE TABLE mdl_stats_old PARTITION OF mdl_stats FOR VALUES FROM (0) TO (2000000000);
CREATE TABLE mdl_stats_new PARTITION OF mdl_stats FOR VALUES FROM (2000000000) TO (MAXVALUE);
INSERT INTO mdl_stats VALUES (1, 1000, 6), (2, 4102444800, 6);
SELECT tableoid::regclass AS partition, ctid, id FROM mdl_stats ORDER BY id;
SELECT pdp.register_table('mdl_stats', 'userid');
SELECT pdp.set_retention('mdl_stats', '1 year', 'timecreated');
SELECT table_name, action, rows FROM pdp.purge_expired() WHERE table_name = 'mdl_stats'::regclass;
SELECT tableoid::regclass AS partition, id, timecreated FROM mdl_stats ORDER BY id;

-- A hold on the admin keeps the admin's log rows, not every row that names
-- them in a link column (the issue's "98% of the expired log" frozen).
CREATE TABLE mdl_log (id bigserial PRIMARY KEY, userid bigint NOT NULL, relateduserid bigint NOT NULL DEFAULT 0,
                      timecreated bigint NOT NULL);
SELECT pdp.register_table('mdl_log', 'userid');
SELECT pdp.register_table('mdl_log', 'relateduserid', 'set_value', '0');
INSERT INTO mdl_log (userid, relateduserid, timecreated) VALUES (1, 0, 1000), (1, 6, 1000), (6, 1, 1000), (7, 1, 1000), (7, 1, 4102444800);
SELECT pdp.place_hold(1, 'audit of the site administrator') AS admin_hold \gset
SELECT pdp.set_retention('mdl_log', '1 year', 'timecreated');
SELECT table_name, action, rows FROM pdp.purge_expired() WHERE table_name = 'mdl_log'::regclass;
SELECT userid, relateduserid, timecreated FROM mdl_log ORDER BY id;
SELECT pdp.release_hold(:admin_hold);

-- 8. Dropping: a link goes with its column; drop_link says whether there was one.
SELECT pdp.drop_link('mdl_forum_posts', 'parent');
SELECT pdp.drop_link('mdl_forum_posts', 'parent');
ALTER TABLE mdl_post_content DROP COLUMN postid;
SELECT child, child_column FROM pdp.links ORDER BY 1::text, 2;
-- Renames of the parent's column and of either table are followed.
ALTER TABLE mdl_forum_discussions RENAME COLUMN id TO discussion_key;
ALTER TABLE mdl_forum_posts RENAME TO mdl_posts;
SELECT child, child_column, parent, parent_column FROM pdp.links;
-- A link goes with its table, and so does every one of the schema's.
DROP SCHEMA mdl CASCADE;
RESET search_path;
SELECT count(*) AS links_left FROM pdp.link;
