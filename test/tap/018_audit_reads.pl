# Read-access logging, opt-in per table (issue 15, point 4): with
# pdp.audit_reads('learners') every statement that reads the table leaves an
# entry with the role, the declared purpose, the table and the rows it
# returned, never a value, committed by the audit worker whatever the
# reader's transaction does (statements that reach the worker together, by
# the same role, on the same table, for the same purpose, share one entry
# listing each statement's time and rows); a statement that fails is
# recorded too; COPY table TO is recorded (the utility hook); an idle
# session's last read arrives without a further statement; where
# reads cannot be recorded (pdp_ext not preloaded) they are refused.
use strict;
use warnings;
use IPC::Run;
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

# Every statement recorded, one row per statement: the entries' parallel
# arrays unnested (doc/audit.md's query), each statement as {at, rows,
# returned, failed}.
my $statements = q{(SELECT l.id, l.role, l.object, l.details, x.o,
                     jsonb_build_object('at', (l.details->>'at')::timestamptz + x.us::text::bigint * interval '1 microsecond',
                                        'rows', x.rows, 'returned', x.returned,
                                        'failed', CASE WHEN x.rows = 'null' THEN true END) AS s
                      FROM pdp.audit_log l,
                           ROWS FROM (jsonb_array_elements(l.details->'after_us'), jsonb_array_elements(l.details->'rows'),
                                      jsonb_array_elements(l.details->'returned')) WITH ORDINALITY x(us, rows, returned, o)
                     WHERE l.action = 'read') r};
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

# A scan run again for every outer row (the inner side of a nested loop):
# the rows of all its runs count.
$node->safe_psql('postgres', q{SET enable_hashjoin = off; SET enable_mergejoin = off; SET enable_material = off;
	SELECT count(*) FROM other o JOIN learners l ON l.id = o.id * 3});
wait_reads(6);
is(last_read(q{r.s->>'rows', r.s->>'returned'}), '10|1', 'an index scan rescanned ten times counts the rows of every run');

is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the chain verifies with the read entries');

# Many statements in a burst: every one is listed, each with its time.
my $before_burst = $node->safe_psql('postgres', 'SELECT max(id) FROM pdp.audit_log');
$node->safe_psql('postgres', q{SET ROLE app; SET pdp.purpose = 'teaching';} . join('', map { "SELECT email FROM learners WHERE id = $_;\n" } 1 .. 200));
wait_reads(206);
is($node->safe_psql('postgres', "SELECT count(*), count(DISTINCT r.s->>'at'), min((r.s->>'rows')::int), max((r.s->>'rows')::int) FROM $statements WHERE r.id > $before_burst"),
	'200|200|1|1', 'a burst of 200 lookups: 200 statements listed, each with its own time and one row');

# The entry's form: the key's command and purpose, the count, the first
# statement's time and, per statement, microseconds after it, the rows its
# scans of the table returned and the rows it returned, as numbers (null for
# a failed statement), nothing else.  Rows are counted exactly: statement k
# of this burst reads k rows of the table and returns one.
my $before_form = $node->safe_psql('postgres', 'SELECT max(id) FROM pdp.audit_log');
$node->safe_psql('postgres', q{SET ROLE app; SET pdp.purpose = 'teaching';} . join('', map { "SELECT count(email) FROM learners WHERE id <= $_;\n" } 1 .. 30));
wait_reads(236);
is($node->safe_psql('postgres', qq{
	SELECT string_agg(k, ',' ORDER BY k) FROM (SELECT DISTINCT jsonb_object_keys(details) AS k FROM pdp.audit_log
	 WHERE action = 'read' AND id > $before_form) x}),
	'after_us,at,command,count,purpose,returned,rows', 'a read entry holds the key, the count and the arrays, nothing else');
is($node->safe_psql('postgres', qq{
	SELECT string_agg(r, ',' ORDER BY id, o), string_agg(t, ',' ORDER BY id, o), sum(c) FILTER (WHERE o = 1)
	  FROM (SELECT l.id, x.o, x.r, x.t, (l.details->>'count')::int AS c FROM pdp.audit_log l,
	        ROWS FROM (jsonb_array_elements_text(l.details->'rows'), jsonb_array_elements_text(l.details->'returned'))
	        WITH ORDINALITY x(r, t, o) WHERE l.action = 'read' AND l.id > $before_form) y}),
	join(',', 1 .. 30) . '|' . join(',', (1) x 30) . '|30',
	'the rows of each statement counted exactly (1 to 30), each returned one row, and the count says 30');
is($node->safe_psql('postgres', qq{
	SELECT bool_and(jsonb_array_length(details->'after_us') = (details->>'count')::int
	            AND jsonb_array_length(details->'rows') = (details->>'count')::int
	            AND jsonb_array_length(details->'returned') = (details->>'count')::int
	            AND (details->'after_us'->>0)::bigint = 0 AND (details->>'at')::timestamptz = at
	            AND NOT jsonb_path_exists(details, '\$.after_us[*] ? (@.type() != "number")')
	            AND NOT jsonb_path_exists(details, '\$.rows[*] ? (@.type() != "number" && @.type() != "null")')
	            AND NOT jsonb_path_exists(details, '\$.returned[*] ? (@.type() != "number" && @.type() != "null")')
	            AND details::text NOT LIKE '%mail.kz%' AND details::text NOT LIKE '%learner%')
	  FROM pdp.audit_log WHERE action = 'read'}),
	't', 'every read entry: arrays as long as its count, times from the entry\'s own, numbers only, no value');

# doc/audit.md's query for an inspector: one row per statement, failed ones flagged.
is($node->safe_psql('postgres', q{
	SELECT count(*), count(*) FILTER (WHERE failed AND rows IS NULL AND returned IS NULL), count(DISTINCT at), sum(rows) FILTER (WHERE purpose = 'teaching' AND command = 'SELECT')
	  FROM (SELECT l.id, l.role, l.session_role, l.object AS "table",
	               l.details->>'command' AS command, l.details->>'purpose' AS purpose,
	               (l.details->>'at')::timestamptz + (x.us #>> '{}')::bigint * interval '1 microsecond' AS at,
	               (x.rows #>> '{}')::bigint AS rows, (x.returned #>> '{}')::bigint AS returned,
	               x.rows = 'null' AS failed
	          FROM pdp.audit_log l,
	               ROWS FROM (jsonb_array_elements(l.details->'after_us'), jsonb_array_elements(l.details->'rows'),
	                          jsonb_array_elements(l.details->'returned')) WITH ORDINALITY x(us, rows, returned, n)
	         WHERE l.action = 'read'
	         ORDER BY l.id, x.n) q}),
	'236|1|236|' . (1 + 10000 + 200 + 465), 'the documented query lists each statement once, with its own time, the failed one flagged');

# Entries of the earlier form (one object per statement), as a database that
# ran a development build has them, stored pglz-compressed before the column
# moved to lz4: they verify beside the compact ones, and large new details are
# stored lz4-compressed.
$node->safe_psql('postgres', q{
	ALTER TABLE pdp.audit_log ALTER COLUMN details SET COMPRESSION pglz;
	INSERT INTO pdp.audit_log (role, session_role, action, object, details)
	SELECT 'app', 'app', 'read', 'public.learners',
	       jsonb_build_object('command', 'SELECT', 'purpose', 'teaching', 'statements',
	                          jsonb_agg(jsonb_build_object('at', now() + g * interval '1 microsecond', 'rows', 1, 'returned', 1)))
	  FROM generate_series(1, 1000) g;
	ALTER TABLE pdp.audit_log ALTER COLUMN details SET COMPRESSION lz4;
});
$node->safe_psql('postgres', q{SET ROLE app;} . join('', map { "SELECT email FROM learners WHERE id = $_;\n" } 1 .. 1000));
wait_reads(1236);
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT pg_column_compression(details), ',') FROM pdp.audit_log WHERE action = 'read'}),
	'lz4,pglz', 'the earlier entry stays pglz-compressed, large new details are lz4-compressed');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the chain verifies over entries of both forms');

# COPY table TO reads without the executor: recorded by the utility hook,
# command COPY, with the rows it wrote; COPY (query) TO through the executor,
# once; COPY of an unaudited table not at all.
my $before_copyto = reads();
$node->safe_psql('postgres', q{SET ROLE app; SET pdp.purpose = 'teaching'; COPY learners TO STDOUT});
wait_reads($before_copyto + 1);
is(last_read(q{r.details->>'command', r.s->>'rows', r.s->>'returned', r.object}), 'COPY|10000|10000|public.learners',
	'COPY learners TO is recorded with command COPY and the 10,000 rows it wrote');
my $before_copy = reads();
$node->safe_psql('postgres', q{SET ROLE app; COPY (SELECT id FROM learners WHERE id <= 3) TO STDOUT; COPY other TO STDOUT});
wait_reads($before_copy + 1);
$node->safe_psql('postgres', q{SELECT pg_sleep(1)});   # the worker's next turns: nothing more may come
is(reads(), $before_copy + 1, 'COPY (query) TO is recorded once, COPY of an unaudited table not at all');
is(last_read(q{r.details->>'command', r.s->>'rows'}), 'SELECT|3', 'the COPY (query) through the executor, with its rows');
($rc, $out, $err) = $node->psql('postgres', q{SET ROLE app; COPY learners TO '/tmp/pdp_018_refused.csv'});
like($err, qr/permission denied|must be superuser|pg_write_server_files/, 'a COPY TO a file the role may not write fails');
wait_reads($before_copy + 2);
is(last_read(q{r.details->>'command', r.s->>'failed'}), 'COPY|true', 'and is recorded as a failed COPY');

# COPY table TO of a table under row-level security: PostgreSQL runs it as a
# query, so the executor records it; the utility hook must not add a second.
$node->safe_psql('postgres', q{ALTER TABLE learners ENABLE ROW LEVEL SECURITY;
	CREATE POLICY app_reads ON learners FOR SELECT TO app USING (id <= 100)});
my $before_rls = reads();
$node->safe_psql('postgres', q{SET ROLE app; COPY learners TO STDOUT});
wait_reads($before_rls + 1);
$node->safe_psql('postgres', q{SELECT pg_sleep(1)});
is(reads(), $before_rls + 1, 'COPY TO of a table under row-level security is recorded once');
is(last_read(q{r.s->>'rows'}), '100', 'with the rows the policy let through');
$node->safe_psql('postgres', q{DROP POLICY app_reads ON learners; ALTER TABLE learners DISABLE ROW LEVEL SECURITY});

# A session that stays idle after its read: the worker collects the record
# from the session's buffer without any further statement of the session.
{
	my ($in, $o, $e) = ('', '', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-qAt', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$o, '2>', \$e, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	my $n = reads();
	$in .= "SET ROLE app; SELECT count(*) FROM learners WHERE id <= 7;\n";
	$h->pump until $o =~ /^7$/m;
	ok($node->poll_query_until('postgres', "SELECT count(*) > $n FROM $statements"),
		'an idle session\'s last read reaches the trail while the session stays open');
	is(last_read(q{r.s->>'rows'}), '7', 'with its rows');
	$in .= "\\q\n";
	$h->finish;
}

# One session alternating between more purposes than its buffer has keys
# (four): the buffer is emptied when a fifth is needed; every statement is
# recorded under its own purpose.
$node->safe_psql('postgres', join('', map { "SELECT pdp.define_purpose('p$_', 'contract'); SELECT pdp.allow_purpose('app', 'p$_');\n" } 1 .. 6));
my $before_keys = reads();
$node->safe_psql('postgres', q{SET ROLE app;} . join('', map { my $p = $_ % 6 + 1; "SET pdp.purpose = 'p$p'; SELECT email FROM learners WHERE id = $_;\n" } 1 .. 60));
wait_reads($before_keys + 60);
is($node->safe_psql('postgres', qq{SELECT string_agg(p || ':' || n, ',' ORDER BY p) FROM
	(SELECT r.details->>'purpose' AS p, count(*) AS n FROM $statements WHERE r.id > (SELECT max(id) FROM pdp.audit_log WHERE action = 'allow_purpose') GROUP BY 1) x}),
	'p1:10,p2:10,p3:10,p4:10,p5:10,p6:10', 'six purposes alternating: each of the 60 statements under its purpose');

# Parallel plans: each worker counts its own scans' rows and adds them to
# its leader's slot.  With the leader taking no part every row is a worker's;
# under EXPLAIN ANALYZE (PostgreSQL's instrumentation, which brings the
# workers' counts back itself) no row is counted twice.
my $par = q{SET parallel_setup_cost = 0; SET parallel_tuple_cost = 0; SET min_parallel_table_scan_size = 0;
	SET max_parallel_workers_per_gather = 2; SET parallel_leader_participation = off; };
my $before_par = reads();
like($node->safe_psql('postgres', $par . q{EXPLAIN (ANALYZE, TIMING OFF, SUMMARY OFF, COSTS OFF) SELECT count(*) FROM learners WHERE email LIKE 'learner%'}),
	qr/Workers Launched: [12]/, 'the scan runs in parallel workers');
wait_reads($before_par + 1);
is(last_read(q{r.s->>'rows'}), '10000', 'EXPLAIN ANALYZE of a parallel scan counts each row once');
$node->safe_psql('postgres', $par . q{SELECT count(*) FROM learners WHERE email LIKE 'learner%'});
wait_reads($before_par + 2);
is(last_read(q{r.s->>'rows'}), '10000', 'a parallel scan the leader takes no part in counts every worker\'s rows');

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
