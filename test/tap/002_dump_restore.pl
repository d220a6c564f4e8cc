# pg_dump / pg_restore keeps the subject registry, even where the restored
# table's attribute numbers differ from the original's (a dropped column),
# and a DBA's edits of pdp.request_deadline (changed, added rows).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $node = pdp_node('dump');

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION pdp_ext;
	CREATE SCHEMA "LMS";
	CREATE TABLE "LMS"."Learners" (gone int, "Learner Id" bigint PRIMARY KEY, email text);
	ALTER TABLE "LMS"."Learners" DROP COLUMN gone;
	CREATE TABLE "LMS".posts (id serial, author int REFERENCES "LMS"."Learners"("Learner Id"), editor uuid);
	SELECT pdp.register_table('"LMS"."Learners"', 'Learner Id');
	SELECT pdp.register_table('"LMS".posts', 'author', 'anonymise');
	SELECT pdp.register_table('"LMS".posts', 'editor', 'anonymise');
	ALTER TABLE "LMS".posts RENAME COLUMN editor TO "Editor UUID";
	CREATE TABLE "LMS".attachments (gone int, id serial PRIMARY KEY, "Post" int);
	ALTER TABLE "LMS".attachments DROP COLUMN gone;
	SELECT pdp.declare_link('"LMS".attachments', 'Post', '"LMS".posts', 'id', 'reparent', ' 0');
	SELECT pdp.set_column_rule('"LMS"."Learners"', 'email', 'pseudo_email', 'email');
	INSERT INTO "LMS"."Learners" VALUES (1, 'raw1@mail.kz'), (2, 'raw2@mail.kz');
	CALL pdp.apply_rules('"LMS"."Learners"');
	SELECT pdp.pseudonymise_on_write('"LMS"."Learners"');
	INSERT INTO "LMS"."Learners" VALUES (3, 'raw3@mail.kz');
	-- Credentials and EAV classifications, on columns whose attnums change in
	-- the restored table (a dropped column before them), one renamed.
	CREATE TABLE "LMS".zinfo (gone int, id bigint PRIMARY KEY, userid bigint, fieldid bigint, data text, pw text);
	ALTER TABLE "LMS".zinfo DROP COLUMN gone;
	SELECT pdp.register_table('"LMS".zinfo', 'userid');
	SELECT pdp.declare_credential('"LMS".zinfo', 'pw');
	ALTER TABLE "LMS".zinfo RENAME COLUMN pw TO "Pass Word";
	SELECT pdp.register_eav('"LMS".zinfo', 'data', 'fieldid', '1', 'iin', 'mask');
	INSERT INTO "LMS".zinfo VALUES (1, 1, 1, '900101300017', 'hash1');
});
my $cred = q{SELECT string_agg(c.col || '@' || c.attnum || '=' || a.attname, ',') FROM pdp.credential_column c
                    JOIN pg_attribute a ON a.attrelid = c.tbl AND a.attnum = c.attnum};
my $eav = q{SELECT string_agg(e.value_col || '@' || e.value_attnum || '=' || v.attname || '/' || e.attribute_col || '@' || e.attribute_attnum
                              || '=' || a.attname || '/' || e.attribute_value || '/' || e.category || '/' || e.rule, ',')
              FROM pdp.eav_attribute e JOIN pg_attribute v ON v.attrelid = e.tbl AND v.attnum = e.value_attnum
              JOIN pg_attribute a ON a.attrelid = e.tbl AND a.attnum = e.attribute_attnum};
is($node->safe_psql('src', $cred), 'Pass Word@6=Pass Word', 'the credential follows its rename (attnum 6 after a dropped column)');
my $eav_before = $node->safe_psql('src', $eav);
my $values = 'SELECT "Learner Id", email FROM "LMS"."Learners" ORDER BY 1';
my $values_before = $node->safe_psql('src', $values);
is($node->safe_psql('src', q{SELECT count(*) FROM "LMS"."Learners" WHERE email LIKE 'raw%'}), '0',
	'no raw value in the source table');
my $query = 'SELECT table_name, subject_column, subject_type, on_erase FROM pdp.registered_tables ORDER BY 1, 2';
my $before = $node->safe_psql('src', $query);
is($node->safe_psql('src', q{SELECT attnum FROM pdp.subject_column WHERE col = 'Learner Id'}), '2',
	'the original column has attnum 2 (after a dropped column)');

$node->safe_psql('src', q{
	SELECT pdp.define_purpose('news', 'consent');
	SELECT pdp.grant_consent(1, 'news', evidence => '{"form": "f1"}');
	SELECT pdp.withdraw_consent(1, 'news');
	SELECT pdp.grant_consent(2, 'news');
	SELECT pdp.restrict_subject(2, 'dispute');
});
my $audit_before = $node->safe_psql('src', 'SELECT ok, entries FROM pdp.verify_audit_log()');
my $last_src_entry = $node->safe_psql('src', 'SELECT max(id) FROM pdp.audit_log');
like($audit_before, qr/^t\|\d+$/, 'the source audit chain verifies');
my $facts = q{SELECT (SELECT count(*) FROM pdp.consent_event) || '/' || (SELECT count(*) FROM pdp.consent_state) || '/' ||
                     (SELECT count(*) FROM pdp.restriction) || '/' || (SELECT count(*) FROM pdp.purpose)};
my $facts_before = $node->safe_psql('src', $facts);

# A DBA's edits of the request deadlines: a changed shipped row, a period
# written differently but comparing equal ('30 days' for '1 mon'), a new
# jurisdiction.  Untouched shipped rows come from CREATE EXTENSION.
$node->safe_psql('src', q{
	UPDATE pdp.request_deadline SET working_days = 10, source = 'counsel, 2026' WHERE jurisdiction = 'KZ' AND kind = 'access';
	UPDATE pdp.request_deadline SET period = '30 days' WHERE jurisdiction = 'EU' AND kind = 'erasure';
	INSERT INTO pdp.request_deadline VALUES ('UK', 'access', '1 month', NULL, 'UK GDPR Art. 12(3)');
});
my $deadlines = q{SELECT string_agg(jurisdiction || ':' || kind || ':' || coalesce(period::text, '-') || ':' ||
                                    coalesce(working_days::text, '-') || ':' || md5(source), ',' ORDER BY jurisdiction, kind)
                    FROM pdp.request_deadline};
my $deadlines_before = $node->safe_psql('src', $deadlines);
like($deadlines_before, qr/KZ:access:-:10:.*EU:erasure:30 days|EU:erasure:30 days.*KZ:access:-:10/, 'the source has the DBA\'s edits');

my $dump = PostgreSQL::Test::Utils::tempdir() . '/src.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ], 'pg_restore');

is($node->safe_psql('dst', $query), $before, 'the registry is restored with current names');
is($node->safe_psql('dst', $deadlines), $deadlines_before,
	'the DBA\'s edits of the request deadlines are restored (changed, rewritten and added rows; the rest as shipped)');
is($node->safe_psql('dst', q{SELECT count(*) FROM pdp.request_deadline}), '15', 'no deadline is there twice or missing');
is($node->safe_psql('dst', $facts), $facts_before, 'consents, their history, restrictions and purposes are restored');
# The restore's own DDL on the registered and protected tables (policies,
# triggers, row-level security) is recorded after the restored entries.
is($node->safe_psql('dst', "SELECT v.ok, v.entries - (SELECT count(*) FROM pdp.audit_log WHERE id > $last_src_entry) FROM pdp.verify_audit_log() v"),
	$audit_before, 'the restored audit chain verifies, with every entry');
is($node->safe_psql('dst', "SELECT count(*) FILTER (WHERE action <> 'ddl') FROM pdp.audit_log WHERE id > $last_src_entry"), '0',
	'what the restore added are records of its DDL on registered or protected tables');
is($node->safe_psql('dst', q{SELECT pdp.grant_consent(3, 'news') > 0; SELECT ok FROM pdp.verify_audit_log()}), "t\nt",
	'and new entries chain on after the restore');
is($node->safe_psql('dst', q{SELECT attnum FROM pdp.subject_column WHERE col = 'Learner Id'}), '1',
	'attnum is resolved again for the restored table');
my $links = q{SELECT child, child_column, parent, parent_column, link_type, on_other, reparent_value FROM pdp.links};
is($node->safe_psql('dst', $links), $node->safe_psql('src', $links), 'links are restored with current names');
is($node->safe_psql('src', q{SELECT child_attnum FROM pdp.link}) . '/' . $node->safe_psql('dst', q{SELECT child_attnum FROM pdp.link}),
	'3/2', 'a link\'s attnum is resolved again for the restored table');
is($node->safe_psql('dst', q{SELECT pdp.unregister_table('"LMS".posts', 'Editor UUID')}), '1',
	'restored registrations work as before');
is($node->safe_psql('dst', $values), $values_before,
	'restored values are not pseudonymised a second time (the trigger is restored after the data)');
is($node->safe_psql('dst', q{SELECT column_name || ':' || rule || ':' || on_write FROM pdp.column_rules}),
	'email:pseudo_email:true', 'rules and the on-write trigger are restored');
is($node->safe_psql('dst', $cred), 'Pass Word@5=Pass Word', 'the credential is restored on its column (attnum resolved again)');
my $eav_after = $node->safe_psql('dst', $eav);
is($eav_after =~ s/@\d+=/@=/gr, $eav_before =~ s/@\d+=/@=/gr, 'the EAV classification is restored');
like($eav_after, qr/^data\@4=data\/fieldid\@3=fieldid\/1\/iin\/mask$/, 'with its attnums resolved again');
is($node->safe_psql('dst', q{SELECT pdp.export_subject(1)->'data'->'"LMS".zinfo'->0->'Pass Word'}), '{"withheld": "credential"}',
	'the restored credential is withheld from exports');
is($node->safe_psql('dst', q{SELECT finished_at IS NOT NULL FROM pdp.apply_run}), 't',
	'the finished apply_rules run is restored, so it is not run twice');
is($node->safe_psql('dst', q{INSERT INTO "LMS"."Learners" VALUES (4, 'raw4@mail.kz') RETURNING email = pdp.pseudo_email('raw4@mail.kz')}),
	't', 'the restored trigger pseudonymises new rows');

is($node->safe_psql('dst', q{SELECT pdp.open_request(1, 'access') > 0;
                             SELECT due_at::date - received_at::date > 10 FROM pdp.subject_request WHERE kind = 'access'}),
	"t\nt", 'a request opened after the restore gets the edited deadline');

done_testing();
