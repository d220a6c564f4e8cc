-- Erasure that leaves nothing behind in pdp's own tables (issue 17, point 1)
-- and notices for every correction the law counts (point 3): a learner's
-- whole life (consents with evidence, disclosures, requests, a
-- rectification, a restriction and its lifting), then erasure, then a
-- search of every pdp table for the learner's identifier and evidence.
\set SHOW_CONTEXT never
\set VERBOSITY terse

CREATE SCHEMA fg;
CREATE TABLE fg.learner (login text PRIMARY KEY, email text, city text);
CREATE TABLE fg.post (id serial PRIMARY KEY, author text, body text);
INSERT INTO fg.learner VALUES ('aigerim-x7q', 'aigerim@example.kz', 'Almaty'), ('bolat-k2m', 'bolat@example.kz', 'Astana');
INSERT INTO fg.post (author, body) VALUES ('aigerim-x7q', 'hello'), ('bolat-k2m', 'hi');
SELECT pdp.register_table('fg.learner', 'login');
SELECT pdp.register_table('fg.post', 'author');
SELECT pdp.set_column_rule('fg.learner', 'email', 'mask_email', 'email');
SELECT pdp.define_purpose('fg_news', 'consent');
SELECT pdp.define_recipient('fg mailer', 'KZ');
SELECT pdp.define_recipient('fg bank', 'KZ');

-- Her life in pdp: consent with evidence (her IP and e-mail), a withdrawal and
-- a new consent, disclosures to two recipients, requests, a rectification, a
-- restriction and its lifting, a released hold.
SELECT pdp.grant_consent('aigerim-x7q', 'fg_news', evidence => '{"ip": "203.0.113.77", "email": "aigerim@example.kz"}') > 0 AS granted;
SELECT pdp.withdraw_consent('aigerim-x7q', 'fg_news');
SELECT pdp.grant_consent('aigerim-x7q', 'fg_news', evidence => '{"ip": "203.0.113.77"}') > 0 AS granted;
SELECT pdp.grant_consent('bolat-k2m', 'fg_news', evidence => '{"ip": "198.51.100.9"}') > 0 AS granted;
SELECT pdp.record_disclosure('aigerim-x7q', 'fg mailer', 'fg_news', '{email}') > 0 AS disclosed;
SELECT pdp.record_disclosure('aigerim-x7q', 'fg bank', 'fg_news', '{email,city}') > 0 AS disclosed;
SELECT pdp.record_disclosure('bolat-k2m', 'fg mailer', 'fg_news', '{email}') > 0 AS disclosed;
SELECT pdp.open_request('aigerim-x7q', 'access') AS access_request \gset
SELECT pdp.complete_request(:access_request, 'export sent');
SELECT pdp.open_request('aigerim-x7q', 'erasure') AS erasure_request \gset
UPDATE fg.learner SET email = 'aigerim.n@example.kz' WHERE login = 'aigerim-x7q';
SELECT pdp.restrict_subject('aigerim-x7q', 'Aigerim contests her e-mail address');
SELECT pdp.lift_restriction('aigerim-x7q');
SELECT pdp.place_hold('aigerim-x7q', 'dispute with Aigerim') AS hold_id \gset
SELECT pdp.release_hold(:hold_id);

-- Every correction the law counts reaches every recipient of her data.
SELECT kind, recipient, table_name, columns FROM pdp.pending_notices WHERE subject = 'aigerim-x7q' ORDER BY kind, recipient;

-- Her erasure: the receipt says what pdp's own tables forgot, and raised
-- an erasure notice for each recipient.
SELECT r->'pdp_tables' AS pdp_tables, r->'notices_raised' AS notices_raised,
       r->'consents_withdrawn' AS consents_withdrawn, jsonb_array_length(r->'tables') AS tables
  FROM pdp.erase_subject('aigerim-x7q', 'her request') r;
SELECT pdp.complete_request(:erasure_request, 'erased');

-- What is left of her in pdp's tables: only the pending erasure notices (the
-- recipients must learn whom to erase) hold her identifier; nothing holds
-- her evidence or the free-text reasons that named her.
CREATE FUNCTION pg_temp.traces(needle text) RETURNS TABLE (tbl text, n bigint) LANGUAGE plpgsql AS $$
DECLARE r record; k bigint;
BEGIN
    FOR r IN SELECT c.oid::regclass AS t FROM pg_class c
              WHERE c.relnamespace = 'pdp'::regnamespace AND c.relkind = 'r' ORDER BY 1 LOOP
        EXECUTE format('SELECT count(*) FROM %s x WHERE x::text ILIKE %L', r.t, '%' || needle || '%') INTO k;
        IF k > 0 THEN tbl := r.t::text; n := k; RETURN NEXT; END IF;
    END LOOP;
END $$;
SELECT * FROM pg_temp.traces('aigerim');
SELECT * FROM pg_temp.traces('203.0.113.77');
SELECT kind, recipient FROM pdp.pending_notices WHERE subject = 'aigerim-x7q' ORDER BY recipient;
SELECT pdp.acknowledge_notice(id) FROM pdp.pending_notices WHERE subject = 'aigerim-x7q';
SELECT * FROM pg_temp.traces('aigerim');
-- What stays is what the law needs: that consent existed and was withdrawn,
-- what went to whom, which requests were made and answered, and when.
SELECT action, evidence, subject LIKE '~erased:%' AS pseudonymised FROM pdp.consent_event
 WHERE subject NOT IN ('bolat-k2m') AND purpose = 'fg_news' ORDER BY id;
SELECT recipient, categories, subject LIKE '~erased:%' AS pseudonymised FROM pdp.disclosure WHERE recipient LIKE 'fg %' ORDER BY id;
SELECT kind, outcome, completed_at IS NOT NULL AS completed, subject LIKE '~erased:%' AS pseudonymised
  FROM pdp.subject_request WHERE id >= :access_request ORDER BY id;
SELECT kind, acknowledged_by IS NOT NULL AS closed, subject LIKE '~erased:%' AS pseudonymised
  FROM pdp.rectification_notice WHERE recipient LIKE 'fg %' AND subject <> 'bolat-k2m' ORDER BY id;
-- Everyone else is untouched.
SELECT count(*) AS bolat_events FROM pdp.consent_event WHERE subject = 'bolat-k2m';
SELECT pdp.has_consent('bolat-k2m', 'fg_news') AS bolat_consents;
-- The history stays append-only outside an erasure, even for the owner.
UPDATE pdp.consent_event SET subject = '~erased:x', evidence = '{}' WHERE subject = 'bolat-k2m';
UPDATE pdp.restriction_event SET reason = NULL;
SELECT pdp._forget_subject('bolat-k2m');
-- Restriction and its lifting notify recipients; a subject with no
-- disclosures raises none.
SELECT pdp.restrict_subject('bolat-k2m', 'objection');
SELECT pdp.lift_restriction('bolat-k2m');
SELECT kind, recipient FROM pdp.pending_notices WHERE subject = 'bolat-k2m' ORDER BY id;
SELECT pdp.restrict_subject('nobody-z9', 'objection');
SELECT count(*) AS notices FROM pdp.pending_notices WHERE subject = 'nobody-z9';
SELECT pdp.lift_restriction('nobody-z9');

-- A system subject (guest, administrator, service account) is not erased.
SELECT pdp.declare_system_subject('bolat-k2m', 'service account');
SELECT pdp.erase_subject('bolat-k2m', 'asked');
SELECT count(*) AS bolat_rows FROM fg.learner WHERE login = 'bolat-k2m';
SELECT pdp.drop_system_subject('bolat-k2m');

-- Clean up.
SELECT pdp.acknowledge_notice(id) FROM pdp.pending_notices WHERE subject = 'bolat-k2m';
SELECT pdp.unregister_table('fg.learner'), pdp.unregister_table('fg.post');
DROP SCHEMA fg CASCADE;
