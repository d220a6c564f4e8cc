# A full disk during a purge: a real "No space left on device" from a 4 MB
# tmpfs that tools/run-tap.sh mounts (as root) and that holds a tablespace.
# The audit log and an anonymised table live there; once it is full the
# purge stops with SQLSTATE 53100 (disk_full), no batch is half-done, nothing
# is purged without its audit entry, and after space is freed the next purge
# completes and the audit chain verifies.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $fs = $ENV{PDP_SMALL_FS} // '';
plan skip_all => 'no small file system to fill (tools/run-tap.sh mounts one when run as root)' unless $fs ne '' && -d $fs;

# The purge below removes most of its table: no safety valve (pdp.purge_max_share = 1).
my $node = pdp_node('full_disk', conf => "pdp.purge_max_share = 1\n");

mkdir "$fs/ts" or die "mkdir $fs/ts: $!";
$node->safe_psql('postgres', qq{CREATE TABLESPACE small LOCATION '$fs/ts'});
$node->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	ALTER TABLE pdp.audit_log SET TABLESPACE small;
	CREATE TABLE logins (id bigserial PRIMARY KEY, learner bigint, at timestamptz);
	INSERT INTO logins (learner, at) SELECT g % 50, now() - interval '2 years' FROM generate_series(1, 400) g;
	INSERT INTO logins (learner, at) SELECT g % 50, now() FROM generate_series(1, 40) g;
	CREATE TABLE grades (id bigserial PRIMARY KEY, learner bigint, graded date, note text) TABLESPACE small;
	INSERT INTO grades (learner, graded, note) SELECT g % 50, current_date - 1000, 'private note ' || g
	  FROM generate_series(1, 300) g;
	SELECT pdp.register_table('logins', 'learner');
	SELECT pdp.register_table('grades', 'learner', 'anonymise');
	SELECT pdp.set_column_rule('grades', 'note', 'mask');
	SELECT pdp.set_retention('logins', '1 year', 'at');
	SELECT pdp.set_retention('grades', '2 years', 'graded', 'anonymise');
});
my $state = q{SELECT (SELECT count(*) FROM logins) || '/' || (SELECT count(*) FROM grades WHERE note LIKE 'private%')};
is($node->safe_psql('postgres', $state), '440/300', 'set-up: 400 expired logins, 300 expired grades');

# Fill the file system.
my ($rc, $out, $err) = $node->psql('postgres', q{
	\set VERBOSITY verbose
	CREATE TABLE filler (x text) TABLESPACE small;
	ALTER TABLE filler ALTER COLUMN x SET STORAGE PLAIN;
	DO $$ BEGIN LOOP INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 100); END LOOP; END $$;});
like($err, qr/ERROR:\s+53100: could not extend file .*No space left on device/, 'the tablespace is full (53100)');

# The purge: anonymising grades needs room (new row versions), and every
# purged batch needs room for its audit entry.  It goes as far as the space
# left allows, a whole batch (rows and audit entry) at a time.
($rc, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\nCALL pdp.purge(batch_size => 50)");
like($err, qr/(WARNING:\s+01000: purge: \d+ batch\(es\) failed and were left for the next run\s+DETAIL:\s+SQLSTATE 53100|ERROR:\s+53100: could not extend file .*No space left on device)/,
	'the purge reports the full disk: SQLSTATE 53100');
unlike($err, qr/private note|learner \d/, 'the report carries no row value');
my $done = q{SELECT (SELECT 400 - count(*) FROM logins WHERE at < now() - interval '1 year') || '/' ||
                   (SELECT count(*) FROM grades WHERE coalesce(note, '') NOT LIKE 'private%') || '/' ||
                   (SELECT coalesce(sum((details->>'rows')::int), 0) FROM pdp.audit_log WHERE action = 'purge_batch')};
my ($deleted, $anonymised, $audited) = split m{/}, $node->safe_psql('postgres', $done);
ok($anonymised < 300, "the full disk stopped the anonymisation ($anonymised of 300 done)");
is($deleted % 50 + $anonymised % 50, 0, "only whole batches of 50: $deleted deleted, $anonymised anonymised");
is($audited, $deleted + $anonymised, 'every purged or anonymised row is in an audit entry');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the audit chain verifies');
like($node->safe_psql('postgres', q{SELECT errors::text FROM pdp.purge_log ORDER BY id DESC LIMIT 1}),
	qr/"sqlstate": "53100"/, 'the run records each failed batch by SQLSTATE');

# Free the space; the next purge does all of it.
$node->safe_psql('postgres', 'DROP TABLE filler; CHECKPOINT;');
$node->safe_psql('postgres', 'CALL pdp.purge(batch_size => 50)');
is($node->safe_psql('postgres', $state), '40/0', 'after space is freed, the next purge deletes and anonymises every expired row');
is($node->safe_psql('postgres', q{SELECT status FROM pdp.purge_log ORDER BY id DESC LIMIT 1}), 'finished',
	'and finishes');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the audit chain verifies');
is($node->safe_psql('postgres',
	q{SELECT sum((details->>'rows')::int) FROM pdp.audit_log WHERE action = 'purge_batch'}), '700',
	'every purged or anonymised row is in an audit entry, once');
unlike(slurp_file($node->logfile), qr/PANIC|terminated by signal/, 'the server never crashed');

done_testing();
