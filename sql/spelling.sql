-- A subject spelled another way in a text subject column.  Where integer and
-- text subject columns are both registered, the canonical subject 7 is also
-- the text cell '007' (or ' 7', '+7'): export finds it, erasure removes it,
-- and a purge keeps it while learner 7 is held or restricted, as the row test
-- and the write guard already read it.  A text that is no integer ('x7')
-- names somebody else.
\set VERBOSITY terse
CREATE SCHEMA sp;
CREATE TABLE sp.users (id bigint PRIMARY KEY, name text);
CREATE TABLE sp.notes (id int PRIMARY KEY, learner text, body text, written timestamptz NOT NULL);
INSERT INTO sp.users VALUES (7, 'Seven'), (8, 'Eight'), (9, 'Nine');
INSERT INTO sp.notes VALUES (1, '007', 'a', now() - interval '3 years'), (2, '7', 'b', now() - interval '3 years'),
                            (3, '8', 'c', now() - interval '3 years'), (4, '0008', 'd', now() - interval '3 years'),
                            (5, 'x7', 'e', now() - interval '3 years'), (6, ' 9', 'f', now() - interval '3 years'),
                            (7, '+9', 'g', now() - interval '3 years'), (8, '10', 'h', now() - interval '3 years');
SELECT pdp.register_table('sp.users', 'id');
SELECT pdp.register_table('sp.notes', 'learner');
SELECT pdp._integer_spelling('007') AS "007", pdp._integer_spelling(' +7 ') AS " +7 ", pdp._integer_spelling('x7') AS x7,
       pdp._integer_spelling('-0') AS "-0", pdp._integer_spelling('99999999999999999999') AS too_big;
-- Export of 7 holds both notes spelled as 7, not 'x7'.
SELECT jsonb_array_length(pdp.export_subject(7::bigint)->'data'->'sp.notes') AS notes_of_7,
       (SELECT string_agg(n->>'body', ',' ORDER BY n->>'body') FROM jsonb_array_elements(pdp.export_subject(7::bigint)->'data'->'sp.notes') n) AS bodies;
-- A purge keeps the rows of held learner 8 and restricted learner 9 in every spelling.
SELECT pdp.set_retention('sp.notes', '1 year', 'written');
SELECT pdp.place_hold(8::bigint, 'spelling test') > 0 AS held;
SELECT pdp.restrict_subject(9::bigint, 'spelling test');
SELECT rows AS would_purge FROM pdp.purge_expired(dry_run => true) WHERE table_name = 'sp.notes'::regclass;
-- Erasure of 7 removes both notes spelled as 7.
SELECT pdp.erase_subject(7::bigint, 'spelling test') IS NOT NULL AS erased;
SELECT string_agg(body, ',' ORDER BY id) AS left_after_erasure FROM sp.notes;
SET pdp.purge_max_share = 1;
SELECT rows AS purged FROM pdp.purge_expired() WHERE table_name = 'sp.notes'::regclass;
SELECT string_agg(body, ',' ORDER BY id) AS left_after_purge FROM sp.notes;
SELECT pdp.lift_restriction(9::bigint);
SELECT pdp.release_hold(h.id) FROM pdp.hold h WHERE h.subject = '8' AND h.released_at IS NULL;
DROP SCHEMA sp CASCADE;
