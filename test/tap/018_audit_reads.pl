# Read-access logging, opt-in per table (issue 15, point 4): with
# pdp.audit_reads('learners') every statement that reads the table leaves an
# entry with the role, the declared purpose, the table and the rows it
# returned, never a value, committed by the audit worker whatever the
# reader's transaction does (statements that reach the worker together, by
# the same role, on the same table, for the same purpose, share one entry
# listing each statement's time and rows); a statement that fails is
# recorded too; where
# reads cannot be recorded (pdp_ext not preloaded) they are refused.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $node = pdp_node('reads');
$node->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE ROLE app LOGIN;
	CREATE ROLE owner_role LOGIN IN ROLE pdp_admin;
	CREATE TABLE learners (id bigint PRIMARY KEY, email text);
	INSERT INTO learners SELECT g, 'learner' || g || chr(64) || 'mail.kz' FROM generate_series(1, 10000) g;
	CREATE TABLE other (id bigint PRIMARY KEY);
	INSERT INTO other SELECT generate_series(1, 10);
	GRANT SELECT ON learners, other TO app;
	SELECT pdp.register_table('learners', 'id');
	SELECT pdp.define_purpose('teaching', 'contract');
	SELECT pdp.allow_purpose('app', 'teaching');
	ANALYZE learners;
});

my ($rc, $out, $err) = $node->psql('postgres', q{SELECT pdp.audit_reads('other')});
like($err, qr/neither registered nor protected/, 'only a registered or protected table can have its reads audited');
($rc, $out, $err) = $node->psql('postgres', q{SET ROLE app; SELECT pdp.audit_reads('learners')});
like($err, qr/permission denied|must be owner/, 'an application role cannot switch read logging');
is($node->safe_psql('postgres', q{SELECT pdp.audit_reads('learners')}), 't', 'the owner switches it on');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pdp.audit_log WHERE action = 'audit_reads' AND details = '{"enabled": true}'}),
	'1', 'switching it on is recorded');

# Every statement recorded, one row per statement: the entries' lists unnested.
my $statements = q{(SELECT l.id, l.role, l.object, l.details, x.s, x.o FROM pdp.audit_log l,
                     jsonb_array_elements(l.details->'statements') WITH ORDINALITY x(s, o) WHERE l.action = 'read') r};
sub reads { $node->safe_psql('postgres', "SELECT count(*) FROM $statements") }
sub wait_reads
{
	my $n = shift;
	$node->poll_query_until('postgres', "SELECT count(*) >= $n FROM $statements")
	  or die "read entries did not arrive";
}
sub last_read
{
	my $expr = shift;
	return $node->safe_psql('postgres', "SELECT $expr FROM $statements ORDER BY r.id DESC, r.o DESC LIMIT 1");
}

# A primary-key lookup, a scan, inside a transaction that rolls back.
$node->safe_psql('postgres', q{
	SET ROLE app;
	SET pdp.purpose = 'teaching';
	SELECT email FROM learners WHERE id = 42;
	BEGIN;
	SELECT count(*) FROM learners;
	ROLLBACK;
	SELECT count(*) FROM other;
});
wait_reads(2);
is($node->safe_psql('postgres', qq{
	SELECT string_agg(r.role || ':' || r.object || ':' || (r.s->>'rows') || ':' || (r.details->>'purpose') || ':' || (r.details->>'command'), ',' ORDER BY r.id, r.o)
	  FROM $statements}),
	'app:public.learners:1:teaching:SELECT,app:public.learners:10000:teaching:SELECT',
	'each read is recorded with role, table, rows returned and purpose; the rolled-back one too; the unaudited table not');
is($node->safe_psql('postgres', "SELECT string_agg(r.s->>'returned', ',' ORDER BY r.id, r.o) FROM $statements"), '1,1',
	'and the rows each statement returned (one e-mail; one count)');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pdp.audit_log WHERE action = 'read' AND (details::text LIKE '%mail.kz%' OR object LIKE '%mail.kz%' OR subject_pseudonym IS NOT NULL)}),
	'0', 'no value in the entries');

# A parallel scan: the workers' rows count too.
$node->safe_psql('postgres', q{
	SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2;
	SELECT count(*) FROM learners WHERE email LIKE 'learner%';
});
wait_reads(3);
is(last_read(q{r.s->>'rows'}), '10000', 'a parallel scan counts every worker\'s rows');

# A statement that fails after it started is recorded with unknown rows.
($rc, $out, $err) = $node->psql('postgres', q{SELECT 1 / (id - 5000) FROM learners ORDER BY id});
like($err, qr/division by zero/, 'a failing read');
wait_reads(4);
is(last_read(q{r.s->>'failed', r.s->>'rows' IS NULL}), 'true|t', 'is recorded as failed, rows unknown');

# A read inside a function and a join: one entry per statement and table.
$node->safe_psql('postgres', q{SELECT count(*) FROM learners a JOIN learners b USING (id) WHERE a.id < 11 AND b.id < 11});
wait_reads(5);
is(last_read(q{r.s->>'rows'}), '20', 'a self-join is one statement, with the rows of both scans');

is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the chain verifies with the read entries');

# Many statements in a burst: every one is listed, each with its time.
my $before_burst = $node->safe_psql('postgres', 'SELECT max(id) FROM pdp.audit_log');
$node->safe_psql('postgres', q{SET ROLE app; SET pdp.purpose = 'teaching';} . join('', map { "SELECT email FROM learners WHERE id = $_;\n" } 1 .. 200));
wait_reads(205);
is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT r.s->>'at'), min((r.s->>'rows')::int), max((r.s->>'rows')::int) FROM $statements WHERE r.id > $before_burst"),
	'200|200|1|1', 'a burst of 200 lookups: 200 statements listed, each with its own time and one row');

# Switched off: no more entries; the switch is recorded.
$node->safe_psql('postgres', q{SELECT pdp.audit_reads('learners', false)});
my $before = reads();
$node->safe_psql('postgres', q{SELECT count(*) FROM learners});
$node->safe_psql('postgres', q{SELECT pdp.audit_reads('learners'); SELECT pdp.audit_reads('learners', false); SELECT pdp.seal_audit_log()});
is(reads(), $before, 'with read logging off, reads are not recorded');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pdp.audit_log WHERE action = 'audit_reads' AND details = '{"enabled": false}'}),
	'2', 'switching it off is recorded');

# Where reads cannot be recorded, they are refused.
$node->safe_psql('postgres', q{SELECT pdp.audit_reads('learners')});
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
($rc, $out, $err) = $node->psql('postgres', q{LOAD 'pdp_ext'; SELECT count(*) FROM learners});
like($err, qr/cannot read a table whose reads are audited/, 'without the audit worker, a read of an audited table is refused');
is($out, '', 'and returns nothing');

done_testing();
