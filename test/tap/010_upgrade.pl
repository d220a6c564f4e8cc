# ALTER EXTENSION pdp_ext UPDATE from every released version (as
# pg_stat_statements tests its old versions): the updated extension has the
# same catalog entries as a fresh install of the current version, and the
# data recorded under the old version (registry, rules, consents, holds,
# recipients, audit chain) is kept and keeps working.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $node = pdp_node('upgrade');

my $current = $node->safe_psql('postgres',
	q{SELECT default_version FROM pg_available_extensions WHERE name = 'pdp_ext'});
my @old = split /\n/, $node->safe_psql('postgres', qq{
	SELECT version FROM pg_available_extension_versions
	 WHERE name = 'pdp_ext' AND version <> '$current' ORDER BY string_to_array(version, '.')::int[]});
ok(@old > 0, "there are released versions to update from (current $current): @old");

# Every catalog entry the extension owns, and those hanging off its tables,
# one per line, in a form that does not depend on OIDs.
my $catalog = q{
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'pdp_ext'),
member AS (SELECT d.classid, d.objid FROM pg_depend d, ext
            WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'),
tbl AS (SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'pdp'::regnamespace AND c.relkind IN ('r', 'p', 'v'))
SELECT line FROM (
  SELECT 'object ' || pg_describe_object(m.classid, m.objid, 0) || ' comment=' ||
         coalesce(obj_description(m.objid, (SELECT relname FROM pg_class WHERE oid = m.classid)), '-') AS line
    FROM member m
  UNION ALL
  SELECT 'function ' || replace(pg_get_functiondef(p.oid), E'\n', ' ') || ' acl=' || coalesce(p.proacl::text, '-') ||
         ' owner-is-super=' || (SELECT rolsuper FROM pg_roles WHERE oid = p.proowner)
    FROM pg_proc p JOIN member m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
  UNION ALL
  SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity || '/' ||
         c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '-') ||
         ' view=' || coalesce(replace(pg_get_viewdef(c.oid), E'\n', ' '), '-')
    FROM pg_class c JOIN member m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid
  UNION ALL
  SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
         ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '-') ||
         ' compression=' || coalesce(nullif(a.attcompression::text, ''), '-') ||
         ' acl=' || coalesce(a.attacl::text, '-') || ' comment=' || coalesce(col_description(a.attrelid, a.attnum), '-')
    FROM pg_attribute a JOIN tbl ON tbl.oid = a.attrelid
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
   WHERE a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT 'index ' || pg_get_indexdef(i.indexrelid) FROM pg_index i JOIN tbl ON tbl.oid = i.indrelid
  UNION ALL
  SELECT 'constraint ' || co.conrelid::regclass || ' ' || co.conname || ' ' || pg_get_constraintdef(co.oid)
    FROM pg_constraint co JOIN tbl ON tbl.oid = co.conrelid
  UNION ALL
  SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text ||
         ' comment=' || coalesce(obj_description(t.oid, 'pg_trigger'), '-')
    FROM pg_trigger t JOIN tbl ON tbl.oid = t.tgrelid WHERE NOT t.tgisinternal
  UNION ALL
  SELECT 'policy ' || po.polrelid::regclass || ' ' || po.polname || ' ' || po.polcmd::text || ' ' ||
         coalesce(pg_get_expr(po.polqual, po.polrelid), '-')
    FROM pg_policy po JOIN tbl ON tbl.oid = po.polrelid
  UNION ALL
  SELECT 'event trigger ' || e.evtname || ' ' || e.evtevent || ' ' || e.evtfoid::regproc || ' ' || e.evtenabled::text ||
         ' ' || coalesce(e.evttags::text, '-')
    FROM pg_event_trigger e JOIN member m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = e.oid
  UNION ALL
  SELECT 'dumped with data: ' || c::regclass || ' ' || coalesce(x.extcondition[n], '')
    FROM pg_extension x, unnest(x.extconfig) WITH ORDINALITY AS u(c, n) WHERE x.extname = 'pdp_ext'
) s ORDER BY line};

# Lines in one listing and not the other, for a readable failure.
sub catalog_difference
{
	my ($got, $want) = @_;
	my %g = map { $_ => 1 } split /\n/, $got;
	my %w = map { $_ => 1 } split /\n/, $want;
	my @d = ((map { "only after update: $_" } grep { !$w{$_} } sort keys %g),
			 (map { "only in fresh install: $_" } grep { !$g{$_} } sort keys %w));
	return join("\n", @d);
}

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION pdp_ext');
my $fresh = $node->safe_psql('fresh', $catalog);
ok(length($fresh) > 10000, 'the fresh install lists its catalog entries');

# What was recorded under the old version, counted.
my $facts = q{SELECT concat_ws('/',
	(SELECT count(*) FROM pdp.subject_column), (SELECT count(*) FROM pdp.column_rule),
	(SELECT count(*) FROM pdp.purpose), (SELECT count(*) FROM pdp.purpose_grant),
	(SELECT count(*) FROM pdp.consent_event), (SELECT count(*) FROM pdp.consent_state),
	(SELECT count(*) FROM pdp.restriction), (SELECT count(*) FROM pdp.hold),
	(SELECT count(*) FROM pdp.recipient), (SELECT count(*) FROM pdp.disclosure),
	(SELECT count(*) FROM pdp.retention_policy), (SELECT count(*) FROM pdp.audit_log))};

foreach my $v (@old)
{
	my $db = "from_$v"; $db =~ s/\./_/g;
	$node->safe_psql('postgres', "CREATE DATABASE $db");
	$node->safe_psql($db, qq{
		CREATE EXTENSION pdp_ext VERSION '$v';
		CREATE TABLE learner (id bigint PRIMARY KEY, email text, seen_at timestamptz DEFAULT now());
		CREATE TABLE activity (id serial PRIMARY KEY, learner bigint REFERENCES learner, what text);
		SELECT pdp.register_table('learner', 'id');
		SELECT pdp.register_table('activity', 'learner');
		SELECT pdp.set_column_rule('learner', 'email', 'pseudo_email', 'email');
		SELECT pdp.pseudonymise_on_write('learner');
		INSERT INTO learner (id, email) SELECT g, 'l' || g || '\@mail.kz' FROM generate_series(1, 20) g;
		INSERT INTO activity (learner, what) SELECT g % 20 + 1, 'login' FROM generate_series(1, 100) g;
		SELECT pdp.define_purpose('news', 'consent');
		CREATE ROLE app_$db;
		GRANT SELECT ON learner, activity TO app_$db;
		SELECT pdp.allow_purpose('app_$db', 'news');
		SELECT pdp.grant_consent(g, 'news') FROM generate_series(1, 10) g;
		SELECT pdp.withdraw_consent(3, 'news');
		SELECT pdp.restrict_subject(4, 'dispute');
		SELECT pdp.place_hold(5, 'court case');
		SELECT pdp.define_recipient('bank', 'KZ');
		SELECT pdp.record_disclosure(6, 'bank', 'news', ARRAY['email']);
		SELECT pdp.set_retention('activity', interval '3 years');
		SELECT pdp.protect_table('activity');
		SELECT pdp.set_column_rule('activity', 'what', 'mask');
		SELECT pdp.create_masked_view('activity');
		GRANT SELECT ON activity_masked TO app_$db;
		CREATE TABLE note (id serial PRIMARY KEY, author bigint, body text);
		SELECT pdp.register_table('note', 'author', 'anonymise');
		INSERT INTO note (author, body) VALUES (7, 'by seven'), (8, 'by eight');
	});
	my $facts_before = $node->safe_psql($db, $facts);
	my $values_before = $node->safe_psql($db, 'SELECT id, email FROM learner ORDER BY id');
	is($node->safe_psql($db, 'SELECT ok FROM pdp.verify_audit_log()'), 't', "$v: the audit chain verifies before the update");

	my ($rc, $out, $err) = $node->psql($db, 'ALTER EXTENSION pdp_ext UPDATE');
	is($rc, 0, "$v: ALTER EXTENSION pdp_ext UPDATE succeeds");
	like($err, qr/WARNING:  masked view public.activity_masked shows rows of public.activity without its consent-aware visibility/,
		"$v: the update names the masked view that must be re-created")
	  if $v eq '0.1';
	like($err, qr/HINT:  Re-create it: SELECT pdp.create_masked_view\('public.activity', 'activity_masked'\);/,
		"$v: with the call that re-creates it")
	  if $v eq '0.1';
	is($node->safe_psql($db, q{SELECT extversion FROM pg_extension WHERE extname = 'pdp_ext'}), $current,
		"$v: ALTER EXTENSION pdp_ext UPDATE reaches $current");
	my $diff = catalog_difference($node->safe_psql($db, $catalog), $fresh);
	is($diff, '', "$v: after the update the catalog entries equal a fresh $current install");

	is($node->safe_psql($db, $facts), $facts_before, "$v: registry, rules, purposes, consents, holds, recipients and audit are kept");
	is($node->safe_psql($db, 'SELECT id, email FROM learner ORDER BY id'), $values_before,
		"$v: no value is pseudonymised again by the update");
	is($node->safe_psql($db, q{SELECT ok FROM pdp.verify_audit_log()}), 't', "$v: the audit chain still verifies");
	is($node->safe_psql($db, q{SELECT legacy_entries = entries AND legacy_entries > 0 FROM pdp.verify_audit_log()}), 't',
		"$v: the entries sealed before the update verify as the unkeyed legacy segment");
	$node->safe_psql($db, q{SELECT pdp.create_masked_view('public.activity', 'activity_masked')});
	is($node->safe_psql($db, qq{
		SELECT pdp.grant_consent(11, 'news') > 0;
		SET ROLE app_$db; SET pdp.purpose = 'news';
		SELECT count(*) FROM activity;
		SELECT count(*) FROM activity_masked;
		RESET ROLE;
		SELECT ok AND keyed AND entries > legacy_entries FROM pdp.verify_audit_log();
		INSERT INTO learner (id, email) VALUES (21, 'new\@mail.kz') RETURNING email = pdp.pseudo_email('new\@mail.kz');}),
		"t\n45\n45\nt\nt",
		"$v: consents, protection, the audit chain (keyed after the legacy segment) and the on-write trigger keep working after the update");
	# Protection re-installed by the update takes the current policies: the
	# SELECT policy's row test is given the row's ctid, with no OR of its own.
	is($node->safe_psql($db, q{
		SELECT pg_get_expr(polqual, polrelid) FROM pg_policy WHERE polrelid = 'activity'::regclass AND polname = 'pdp_select'}),
		'pdp._visible(learner, ctid)', "$v: the protected table's SELECT policy is the current one");
	# 0.3's per-table "anonymise" is 0.4's per-column set_null, and erasure takes it.
	is($node->safe_psql($db, qq{
		SELECT on_erase FROM pdp.registered_tables WHERE table_name = 'note'::regclass;
		SELECT t->>'action' FROM jsonb_array_elements(pdp.erase_subject(7, 'asked')->'tables') t WHERE t->>'table' = 'public.note';
		SELECT count(*) FROM note WHERE author IS NULL;}),
		"set_null\nset_null\n1", "$v: an anonymise registration becomes set_null and erasure cuts the link");
}

done_testing();
