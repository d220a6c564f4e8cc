# A generated matrix of malformed calls across the public functions: each
# gets an error with an SQLSTATE or a result, the server never crashes, and
# no value passed in reaches the server log (log_min_messages = debug1,
# log_statement = none), checked with a planted marker value.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $marker = 'MARKER-7f3a';
my $node = pdp_node('malformed', conf => "log_min_messages = debug1\nlog_statement = none\nlog_min_error_statement = error\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE t1 (id bigint PRIMARY KEY, email text, at timestamptz);
	CREATE TABLE "Odd ""T"" 1" ("User Id" bigint PRIMARY KEY, note text);
	CREATE TABLE t3 (id bigint PRIMARY KEY, by bigint NOT NULL DEFAULT 0, label text, parent bigint);
	SELECT pdp.register_table('t1', 'id');
	SELECT pdp.define_purpose('p1', 'consent');
	SELECT pdp.define_recipient('rec', 'KZ');
	CREATE ROLE app;
	CREATE TABLE t4 (id bigint PRIMARY KEY, note text);
	SELECT pdp.register_table('t4', 'id');
	SELECT pdp.set_column_rule('t4', 'note', 'shred');
	SELECT pdp.pseudonymise_on_write('t4');
	INSERT INTO t4 VALUES (1, 'first note');
});

# Malformed values for every position; the marker only where a personal
# value goes.  Names (purposes, recipients, tables, columns, roles) are
# identifiers, echoed in messages as PostgreSQL echoes them.
my @values = ('NULL', q{''}, q{repeat('x', 1048576)}, q{'900101300018'}, q{'9001013000171'}, q{'abc'},
	q{'Айгерім Sarsenova'}, q{'"; DROP TABLE t1; --'}, q{'A B C'}, q{'$$'}, q{'-1'}, q{'   '},
	q{'-12 mon 361 days'}, q{'1 mon -31 days'});
my @markers = ("'$marker-aigerim.s\@mail.kz'", "'$marker 900101300018'", "'+7 701 $marker'");
# [template, 'v' (a value goes here) or 'n' (a name)]
my @templates = (
	['SELECT pdp.pseudonym(%s) IS NULL', 'v'], [q{SELECT pdp.pseudonym('x', %s) IS NULL}, 'n'],
	['SELECT pdp.pseudo_email(%s) IS NULL', 'v'], ['SELECT pdp.pseudo_email(%s, false) IS NULL', 'v'],
	['SELECT pdp.pseudo_phone(%s) IS NULL', 'v'], ['SELECT pdp.pseudo_iin(%s) IS NULL', 'v'],
	['SELECT pdp.pseudo_iin(%s, false) IS NULL', 'v'], ['SELECT pdp.pseudo_name(%s) IS NULL', 'v'],
	['SELECT pdp.encrypt(%s) IS NULL', 'v'], [q{SELECT pdp.encrypt('x', %s) IS NULL}, 'n'],
	['SELECT pdp.decrypt(%s) IS NULL', 'v'], ['SELECT pdp.fpe_encrypt(%s) IS NULL', 'v'],
	[q{SELECT pdp.fpe_encrypt('0123456789', %s) IS NULL}, 'n'], ['SELECT pdp.fpe_decrypt(%s) IS NULL', 'v'],
	['SELECT pdp.fpe_iin(%s) IS NULL', 'v'], ['SELECT pdp.fpe_iin_decrypt(%s) IS NULL', 'v'],
	['SELECT pdp.mask(%s) IS NULL', 'v'], [q{SELECT pdp.mask('abc', 0, 0, %s) IS NULL}, 'v'],
	['SELECT pdp.mask_email(%s) IS NULL', 'v'], ['SELECT pdp.mask_phone(%s) IS NULL', 'v'],
	['SELECT pdp.mask_card(%s) IS NULL', 'v'], ['SELECT pdp.age_band(%s) IS NULL', 'v'],
	['SELECT pdp.iin_is_valid(%s)', 'v'], ['SELECT pdp.bin_is_valid(%s)', 'v'], ['SELECT pdp.iin_birth_date(%s) IS NULL', 'v'],
	['SELECT pdp.iin_sex(%s) IS NULL', 'v'], ['SELECT pdp.luhn_is_valid(%s)', 'v'],
	[q{SELECT pdp.generalize_date('2024-01-01', %s) IS NULL}, 'n'], [q{SELECT pdp.define_purpose(%s, 'consent')}, 'n'],
	[q{SELECT pdp.define_purpose('px', %s)}, 'n'], [q{SELECT pdp.define_maintenance_purpose(%s)}, 'n'],
	[q{SELECT pdp.define_maintenance_purpose('pm', %s)}, 'n'], [q{SELECT pdp.grant_consent(%s::text, 'p1') > 0}, 'v'],
	[q{SELECT pdp.grant_consent('1', %s) > 0}, 'n'], [q{SELECT pdp.grant_consent('1', 'p1', evidence => jsonb_build_object('ip', %s::text)) > 0}, 'v'],
	[q{SELECT pdp.has_consent(%s::text, 'p1')}, 'v'], [q{SELECT pdp.withdraw_consent(%s::text, 'p1')}, 'v'],
	['SELECT count(*) FROM pdp.consent_history(%s::text)', 'v'], [q{SELECT pdp.restrict_subject(%s::text, 'r')}, 'v'],
	[q{SELECT pdp.restrict_subject('1', %s)}, 'v'], ['SELECT pdp.lift_restriction(%s::text)', 'v'],
	[q{SELECT pdp.publish_policy(%s, now() + interval '20 days', repeat('a', 64))}, 'n'],
	[q{SELECT pdp.publish_policy('v', now() + interval '20 days', %s)}, 'v'], [q{SELECT pdp.define_recipient(%s, 'KZ')}, 'n'],
	[q{SELECT pdp.define_recipient('r2', %s)}, 'n'], [q{SELECT pdp.define_recipient('r3', 'US', %s)}, 'n'],
	[q{SELECT pdp.record_disclosure(%s::text, 'rec', 'p1', '{x}') > 0}, 'v'], [q{SELECT pdp.record_disclosure('1', %s, 'p1', '{x}') > 0}, 'n'],
	[q{SELECT pdp.record_disclosure('1', 'rec', 'p1', ARRAY[%s]) > 0}, 'n'],
	[q{SELECT pdp.open_request(%s::text, 'access') > 0}, 'v'], [q{SELECT pdp.open_request('1', %s) > 0}, 'n'],
	[q{SELECT pdp.open_request('1', 'access', %s) > 0}, 'n'], ['SELECT pdp.export_subject(%s::text) IS NULL', 'v'],
	[q{SELECT pdp.erase_subject(%s::text, 'r') IS NULL}, 'v'], [q{SELECT pdp.erase_subject('2', %s) IS NULL}, 'v'],
	[q{SELECT pdp.place_hold(%s::text, 'r') > 0}, 'v'], [q{SELECT pdp.place_hold('3', %s) > 0}, 'v'],
	[q{SELECT pdp.register_table(%s, 'id')}, 'n'], [q{SELECT pdp.register_table('t1', %s)}, 'n'],
	[q{SELECT pdp.register_table('"Odd ""T"" 1"', %s)}, 'n'], [q{SELECT pdp.set_column_rule('t1', %s, 'mask')}, 'n'],
	[q{SELECT pdp.set_column_rule('t1', 'email', %s)}, 'n'], [q{SELECT pdp.set_retention('t1', '1 year', %s)}, 'n'],
	['SELECT count(*) FROM pdp.discover(%s)', 'n'], ['SELECT length(pdp.report(%s))', 'n'],
	[q{SELECT pdp.allow_purpose(%s, 'p1')}, 'n'], [q{SELECT pdp.allow_purpose('app', %s)}, 'n'],
	['SELECT pdp.protect_table(%s)', 'n'], ['SELECT pdp.unregister_table(%s)', 'n'],
	# Every function that takes an interval (judged by pdp._check_interval).
	['SELECT pdp.trim_audit_log(%s) >= 0', 'n'],
	['SELECT pdp.publish_audit_anchor(%s) > 0', 'n'], [q{SELECT pdp.schedule_audit_anchor('* * * * *', %s)}, 'n'],
	['SELECT pdp.schedule_audit_anchor(%s)', 'n'], ['SELECT pdp.audit_reads(%s)', 'n'],
	[q{SELECT pdp.audit_reads('t1', %s)}, 'n'], [q{SELECT (pdp.audit_head()).seq >= 0 AND %s IS NULL}, 'n'], [q{SELECT pdp.set_retention('t1', %s)}, 'n'],
	[q{SELECT pdp.set_subject_retention(%s, 't1', 'at')}, 'n'], ['CALL pdp.purge(1, %s)', 'n'],
	[q{INSERT INTO pdp.request_deadline VALUES ('ZZ', 'access', %s, NULL, 'matrix')}, 'n'],
	# Added or changed for issue 14, classes 1 and 2: the owner switch, the API
	# functions that run as pdp_ext's owner, and the purge and report helpers.
	[q{SELECT count(*) FROM pdp._exec_as_owner(%s, 'SELECT 1') AS x(a int)}, 'n'],
	[q{SELECT count(*) FROM pdp._exec_as_owner('t1', %s) AS x(a int)}, 'n'],
	[q{SELECT count(*) FROM pdp._exec_as_owner('t1', 'SELECT $1::text', %s) AS x(a text)}, 'v'],
	[q{SELECT count(*) FROM pdp._exec_as_owner('t1', 'SELECT $1::text', VARIADIC ARRAY[%s]::text[]) AS x(a text)}, 'v'],
	[q{SELECT pdp.unregister_table('t1', %s)}, 'n'], [q{SELECT pdp.set_column_rule(%s, 'email', 'mask')}, 'n'],
	[q{SELECT pdp.drop_column_rule('t1', %s)}, 'n'], [q{SELECT pdp.drop_column_rule(%s, 'email')}, 'n'],
	['SELECT pdp.drop_retention(%s)', 'n'], [q{SELECT pdp.set_subject_retention('1 year', %s, 'at')}, 'n'],
	[q{SELECT pdp._apply_progress('t1', %s, NULL, NULL, NULL)}, 'n'], ['CALL pdp.apply_rules(%s)', 'n'],
	[q{SELECT pdp.create_masked_view('t1', %s)}, 'n'],
	[q{SELECT pdp._find_expired('t1', %s, false, 10, NULL)}, 'n'], [q{SELECT pdp._find_expired('t1', 'retention', false, %s, NULL)}, 'n'],
	[q{SELECT pdp._purge_batch('t1', %s, 10, NULL, false)}, 'n'], [q{SELECT pdp._purge_batch(%s, 'retention', 10, NULL, false)}, 'n'],
	[q{SELECT pdp._purge_by_range('t1', %s, 10)}, 'n'], [q{SELECT pdp._purge_by_range(%s, 'retention', 10)}, 'n'],
	[q{SELECT (pdp._purge_range('t1', %s, 10, 0, 1)).n}, 'n'], [q{SELECT (pdp._purge_range(%s, 'retention', 10, 0, 1)).n}, 'n'],
	[q{SELECT pdp._exec_as_owner_count(%s, 'SELECT 1', 1)}, 'n'], [q{SELECT pdp._exec_as_owner_count('t1', %s, 1)}, 'n'],
	[q{SELECT pdp.set_retention('t1', '1 year', 'at', 'delete', ARRAY[%s])}, 'n'],
	[q{SELECT pdp.set_retention('t1', '1 year', 'at', 'delete', NULL, %s)}, 'n'],
	[q{SELECT pdp._cut_inactive_links(%s)}, 'n'],
	['SELECT count(*) FROM pdp.purge_expired(%s)', 'n'], ['SELECT pdp._expiry_counts(%s)', 'n'],
	[q{SELECT pdp._sample_column('t1', %s, 100, 10)}, 'n'], [q{SELECT pdp._sample_column(%s, 'email', 100, 10)}, 'n'],
	[q{SELECT pdp._sample_column('t1', 'email', %s, 10)}, 'n'],
	# Issue 14, classes 4, 5, 7 and 13: internals, reserved key domains,
	# canonical subjects (t1's bigint subjects make most of these 22P02),
	# the bulk consent entry points and the report's discovery.  The bigint
	# and uuid overloads get no markers: PostgreSQL's own input functions
	# quote what they cannot parse, before any pdp code runs.
	['SELECT pdp._canonical_subject(%s) IS NULL', 'v'], ['SELECT pdp._subject_pseudonym(%s) IS NULL', 'v'],
	['SELECT pdp._canonical_subject_or_null(%s) IS NULL', 'v'], ['SELECT pdp._canonical_subjects(ARRAY[%s, NULL]) IS NULL', 'v'], [q{SELECT pdp._report_counts() IS NULL AND %s IS NULL}, 'n'],
	[q{SELECT pdp.citus_sync_state() IS NULL AND %s IS NULL}, 'n'],
	[q{SELECT pdp._audit('matrix', NULL, %s)}, 'v'], [q{SELECT pdp._audit(%s, NULL, '1')}, 'n'],
	[q{SELECT pdp.pseudonym(%s, 'audit') IS NULL}, 'v'], [q{SELECT pdp.encrypt(%s, 'erasure') IS NULL}, 'v'],
	[q{SELECT pdp.fpe_encrypt(%s, 'pdp.x') IS NULL}, 'v'], [q{SELECT pdp.pseudonym(1::bigint, %s) IS NULL}, 'n'],
	[q{SELECT pdp.withdraw_consents(ARRAY[%s]::text[], 'p1') >= 0}, 'v'],
	[q{SELECT pdp.import_consents(ARRAY[ROW(%s, 'p1', now() - interval '1 day', NULL, NULL, NULL)::pdp.consent_import]) >= 0}, 'v'],
	[q{SELECT pdp._import_check(ARRAY[ROW(%s, 'p1', now() - interval '1 day', NULL, NULL, NULL)::pdp.consent_import]) IS NULL}, 'v'],
	[q{SELECT pdp._import_check(ARRAY[ROW('1', 'p1', now() - interval '1 day', NULL, jsonb_build_object(%s::text, 1), NULL)::pdp.consent_import]) IS NULL}, 'v'],
	[q{SELECT pdp.import_consents(ARRAY[ROW('1', 'p1', now() - interval '1 day', %s, NULL, NULL)::pdp.consent_import]) >= 0}, 'n'],
	[q{SELECT pdp.has_consent(%s::text, 'p1', now() - interval '1 hour')}, 'v'],
	[q{SELECT pdp.place_hold(%s::text, 'r', now() + interval '1 day') > 0}, 'v'],
	['SELECT pdp.export_subject(%s::uuid) IS NULL', 'n'], [q{SELECT pdp.erase_subject(%s::bigint, 'r') IS NULL}, 'n'],
	[q{SELECT pdp.restrict_subject(%s::uuid, 'r')}, 'n'], ['SELECT pdp.lift_restriction(%s::bigint)', 'n'],
	[q{SELECT pdp.record_disclosure(%s::bigint, 'rec', 'p1', '{x}') > 0}, 'n'],
	[q{SELECT pdp.open_request(%s::uuid, 'access') > 0}, 'n'],
	# Issue 16, points 3 and 9: "never" values and a fallback, system
	# subjects, the safety valve, the pg_cron check (pg_cron is not loaded here).
	[q{SELECT pdp.set_subject_retention('1 year', 't1', 'at', %s)}, 'n'],
	[q{SELECT pdp.set_subject_retention('1 year', 't1', 'at', ARRAY[%s])}, 'n'],
	[q{SELECT pdp.set_subject_retention('1 year', 't1', 'at', '{}', %s)}, 'n'],
	[q{SELECT pdp.set_subject_retention('1 year', 't1', %s, '{0}', 'at')}, 'n'],
	[q{SELECT pdp.declare_system_subject(%s::text, 'r')}, 'v'], [q{SELECT pdp.declare_system_subject('5', %s)}, 'v'],
	['SELECT pdp.drop_system_subject(%s::text)', 'v'],
	['SET pdp.purge_max_share = %s', 'n'], [q{SELECT set_config('pdp.purge_max_share', %s, false)}, 'n'],
	[q{SELECT pdp._purge_valve(1, %s)}, 'n'], ['SELECT pdp._subject_valve(%s)', 'n'],
	['SELECT pdp._cron_check(%s) IS NULL', 'n'], ['SELECT pdp.schedule_purge(%s)', 'n'],
	['SELECT count(*) FROM pdp.purge_log WHERE status = %s', 'n'],
	# Issue 16, points 1, 2 and 4: erase actions per column and links.
	[q{SELECT pdp.register_table('t3', 'by', %s)}, 'n'], [q{SELECT pdp.register_table('t3', 'by', 'set_value', %s)}, 'v'],
	[q{SELECT pdp.register_table('t3', 'label', 'set_value', %s)}, 'v'], [q{SELECT pdp.register_table('t3', 'parent', 'keep', %s)}, 'v'],
	[q{SELECT pdp.declare_link(%s, 'parent', 't3')}, 'n'], [q{SELECT pdp.declare_link('t3', %s, 't3')}, 'n'],
	[q{SELECT pdp.declare_link('t3', 'parent', %s)}, 'n'], [q{SELECT pdp.declare_link('t3', 'parent', 't3', %s)}, 'n'],
	[q{SELECT pdp.declare_link('t3', 'parent', 't3', 'id', %s)}, 'n'],
	[q{SELECT pdp.declare_link('t3', 'parent', 't3', 'id', 'reparent', %s)}, 'v'],
	[q{SELECT pdp.drop_link(%s, 'parent')}, 'n'], [q{SELECT pdp.drop_link('t3', %s)}, 'n'],
	# Issue 16, point 10: LMS profiles (the name is a file name: only [a-z0-9_]).
	['SELECT count(*) FROM pdp.apply_profile(%s, true)', 'n'], [q{SELECT count(*) FROM pdp.apply_profile('moodle', %s)}, 'n'],
	['SELECT pdp._profile_source(%s) IS NULL', 'n'], ['SELECT count(*) FROM pdp._profile_steps(%s)', 'n'],
	[q{SELECT pdp._profile_check(%s, '{}')}, 'n'], [q{SELECT pdp._profile_catalog_has(%s, '{}')}, 'n'],
	# Issue 16, points 5, 6 and 8: rules on real values, credentials, EAV, discovery.
	['SELECT pdp.pseudo_ip_text(%s) IS NULL', 'v'], [q{SELECT pdp._rule_accepts('pseudo_email', %s)}, 'v'],
	[q{SELECT pdp._rule_accepts(%s, 'x')}, 'n'], [q{SELECT pdp._rule_failed('t1'::regclass::oid, 2::smallint, %s) IS NULL}, 'n'],
	['SELECT pdp._scan_text(%s) IS NULL', 'v'], ['SELECT pdp._is_placeholder(%s)', 'v'],
	[q{SELECT pdp.declare_credential(%s, 'email')}, 'n'], [q{SELECT pdp.declare_credential('t1', %s)}, 'n'],
	[q{SELECT pdp.drop_credential(%s, 'email')}, 'n'], [q{SELECT pdp.drop_credential('t1', %s)}, 'n'],
	[q{SELECT pdp.register_eav(%s, 'email', 'at', '1', 'iin')}, 'n'], [q{SELECT pdp.register_eav('t1', %s, 'at', '1', 'iin')}, 'n'],
	[q{SELECT pdp.register_eav('t1', 'email', %s, '1', 'iin')}, 'n'], [q{SELECT pdp.register_eav('t1', 'email', 'id', %s, 'iin')}, 'n'],
	[q{SELECT pdp.register_eav('t1', 'email', 'id', '1', %s)}, 'n'], [q{SELECT pdp.register_eav('t1', 'email', 'id', '2', 'iin', %s)}, 'n'],
	[q{SELECT pdp.drop_eav(%s, 'email', '1')}, 'n'], [q{SELECT pdp.drop_eav('t1', %s, '1')}, 'n'], [q{SELECT pdp.drop_eav('t1', 'email', %s)}, 'n'],
	[q{SELECT pdp._profile_column('t1', %s, 100, 10, true, NULL)}, 'n'], [q{SELECT pdp._profile_column(%s, 'email', 100, 10, true, NULL)}, 'n'],
	[q{SELECT pdp._profile_column('t1', 'email', %s, 10, true, NULL)}, 'n'], [q{SELECT pdp._profile_column('t1', 'email', 100, 10, true, %s)}, 'n'],
	[q{SELECT count(*) FROM pdp.discover('public', %s)}, 'n'],
	['SELECT count(*) FROM pdp.find_subject_traces(%s::text)', 'v'],
	['SELECT count(*) FROM pdp._find_traces(ARRAY[%s]::text[], NULL, NULL, NULL)', 'v'],
	# Issue 17, points 2 and 4: anonymisation, k-anonymity, erasure's sweep.
	[q{SELECT pdp.set_anonymisation(%s, 'email', 'set_null')}, 'n'], [q{SELECT pdp.set_anonymisation('t1', %s, 'set_null')}, 'n'],
	[q{SELECT pdp.set_anonymisation('t1', 'email', %s)}, 'n'], [q{SELECT pdp.set_anonymisation('t1', 'email', 'set_value', %s)}, 'v'],
	[q{SELECT pdp.set_anonymisation('t1', 'at', 'generalise', NULL, %s)}, 'n'],
	[q{SELECT pdp.set_anonymisation('t1', 'email', 'generalise', NULL, %s)}, 'n'],
	[q{SELECT pdp.drop_anonymisation(%s, 'email')}, 'n'], [q{SELECT pdp.drop_anonymisation('t1', %s)}, 'n'],
	[q{SELECT pdp.declare_quasi_identifiers(%s, '{email}')}, 'n'], [q{SELECT pdp.declare_quasi_identifiers('t1', ARRAY[%s]::name[])}, 'n'],
	[q{SELECT pdp.k_anonymity(%s, '{email}')}, 'n'], [q{SELECT pdp.k_anonymity('t1', ARRAY[%s])}, 'n'],
	[q{SELECT pdp.k_anonymity('t1', ARRAY['email', %s])}, 'n'],
	['SET pdp.min_k = %s', 'n'], [q{SELECT set_config('pdp.min_k', %s, false)}, 'n'],
	[q{SELECT pdp.erase_subject(%s::text, 'r', true) IS NULL}, 'v'], [q{SELECT pdp.erase_subject('2', %s, true) IS NULL}, 'v'],
	[q{SELECT pdp.erase_subject('2', 'r', %s) IS NULL}, 'n'], [q{SELECT pdp.erase_subject(%s::bigint, 'r', sweep => true) IS NULL}, 'n'],
	# Issue 17, point 5: crypto-shredding (the rule, reading, the erasure hook, the store).
	[q{SELECT pdp.unshred(%s, 'note', 'pdps1.x', '1') IS NULL}, 'n'], [q{SELECT pdp.unshred('t4', %s, 'pdps1.x', '1') IS NULL}, 'n'],
	[q{SELECT pdp.unshred('t4', 'note', %s, '1') IS NULL}, 'v'], [q{SELECT pdp.unshred('t4', 'note', note, %s) IS NULL FROM t4}, 'v'],
	[q{SELECT pdp.unshred('t4', 'note', 'pdps1.' || %s, '1') IS NULL}, 'v'],
	['SELECT pdp._shred_erase_keys(%s) IS NULL', 'v'], ['SELECT pdp._shred_subject_column(%s) IS NULL', 'n'],
	['SELECT pdp._shred_static(%s) IS NULL', 'v'], [q{SELECT count(*) FROM pdp.subject_key_store_status() WHERE %s IS NULL}, 'n'],
	[q{INSERT INTO t4 SELECT max(id) + 1, %s FROM t4}, 'v'], [q{UPDATE t4 SET note = %s WHERE id = 1}, 'v'],
	[q{INSERT INTO t4 VALUES (NULL, %s)}, 'v'], [q{SELECT pdp.set_column_rule('t4', %s, 'shred')}, 'n'],
);

my $script = "\\set ON_ERROR_STOP off\n\\set VERBOSITY verbose\n";
my $calls = 0;
foreach my $t (@templates)
{
	foreach my $v (@values, $t->[1] eq 'v' ? @markers : ())
	{
		$script .= sprintf($t->[0], $v) . ";\n";
		$calls++;
	}
}
cmp_ok($calls, '>=', 300, "the matrix has $calls malformed calls (at least 300)");

my ($out, $err) = ('', '');
my $offset = -s $node->logfile;
$node->psql('postgres', $script, stdout => \$out, stderr => \$err, on_error_stop => 0);
unlike($err, qr/server closed the connection|connection to server was lost/, 'the server never crashed');
my @errors = grep { /^(psql:[^:]*:\d+: )?ERROR:/ } split /\n/, $err;
my @without = grep { !/ERROR:  [0-9A-Z]{5}: / } @errors;
cmp_ok(scalar(@errors), '>', 100, scalar(@errors) . ' of the calls were refused with an error');
is(scalar(@without), 0, 'every error carries an SQLSTATE') or diag(join("\n", @without[0 .. ($#without < 5 ? $#without : 4)]));
my @internal = grep { /ERROR:  XX000: / } @errors;
is(scalar(@internal), 0, 'no internal error (XX000)') or diag(join("\n", @internal[0 .. ($#internal < 5 ? $#internal : 4)]));
ok($node->safe_psql('postgres', 'SELECT 1') eq '1', 'the server still answers');

my $log = slurp_file($node->logfile, $offset);
unlike($log, qr/terminated by signal/, 'no backend was terminated by a signal');
my @leaks = grep { /\Q$marker\E/ } split /\n/, $log;
is(scalar(@leaks), 0, 'no value passed in reached the server log (debug1, log_statement = none)')
	or diag(join("\n", @leaks[0 .. ($#leaks < 5 ? $#leaks : 4)]));
ok(index($log, 'aigerim') < 0, 'not even part of one');
my @audit_leaks = split /\n/, $node->safe_psql('postgres', "SELECT count(*) FROM pdp.audit_log WHERE details::text LIKE '%$marker%' OR object LIKE '%$marker%'");
is($audit_leaks[0], '0', 'no value passed in reached an audit entry');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the audit chain holds');
$node->stop;
done_testing();
