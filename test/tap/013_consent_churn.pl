# Consent, restriction, purpose and grant changes committed in a loop while
# other backends read protected tables, many times over: no crash, and every
# answer right.  Readers check each answer against the truth computed from
# pdp's tables under the same REPEATABLE READ snapshot, on the probed path
# (primary-key lookups), the set path (whole-table counts, serial and in
# parallel plans) and with pdp.visibility_memory = 0 (sets never built).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $node = pdp_node('churn', conf => "max_connections = 40\nmax_worker_processes = 16\nmax_parallel_workers = 8\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE enrol (id bigint PRIMARY KEY, learner bigint, tag text);
	INSERT INTO enrol SELECT g, g % 2000, 'row ' || g FROM generate_series(1, 20000) g;
	CREATE TABLE notes (id bigint PRIMARY KEY, author text);
	INSERT INTO notes SELECT g, 'u-' || (g % 500) FROM generate_series(1, 5000) g;
	SELECT pdp.register_table('enrol', 'learner');
	SELECT pdp.register_table('notes', 'author');
	SELECT pdp.define_purpose('news', 'consent');
	SELECT pdp.define_purpose('teaching', 'contract');
	SELECT pdp.define_purpose('spare', 'contract');
	SELECT pdp.import_consents(ARRAY(SELECT ROW(g::text, 'news', now() - interval '1 day', NULL, '{}', NULL)::pdp.consent_import
	                                   FROM generate_series(0, 1999, 2) g));
	SELECT pdp.import_consents(ARRAY(SELECT ROW('u-' || g, 'news', now() - interval '1 day', NULL, '{}', NULL)::pdp.consent_import
	                                   FROM generate_series(0, 499, 3) g));
	SELECT pdp.protect_table('enrol', force => true);
	SELECT pdp.protect_table('notes', force => true);
	CREATE ROLE app LOGIN;
	CREATE ROLE bystander;
	GRANT SELECT ON enrol, notes TO app;
	SELECT pdp.allow_purpose('app', 'news');
	SELECT pdp.allow_purpose('app', 'teaching');
	-- The truth, from pdp's tables, under the caller's snapshot.
	CREATE FUNCTION expect_enrol(seen bigint, purpose text, one bigint) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER AS $$
	DECLARE
	    truth bigint;
	BEGIN
	    SELECT count(*) INTO truth FROM enrol e
	     WHERE (one IS NULL OR e.id = one)
	       AND (purpose <> 'news' OR EXISTS (SELECT 1 FROM pdp.consent_state c WHERE c.subject = e.learner::text AND c.purpose = 'news'))
	       AND NOT EXISTS (SELECT 1 FROM pdp.restriction r WHERE r.subject = e.learner::text);
	    IF truth <> seen THEN
	        RAISE EXCEPTION 'wrong answer: saw % rows, truth is %', seen, truth;
	    END IF;
	END $$;
	CREATE FUNCTION expect_notes(seen bigint) RETURNS void
	LANGUAGE plpgsql SECURITY DEFINER AS $$
	DECLARE
	    truth bigint;
	BEGIN
	    SELECT count(*) INTO truth FROM notes n
	     WHERE EXISTS (SELECT 1 FROM pdp.consent_state c WHERE c.subject = n.author AND c.purpose = 'news')
	       AND NOT EXISTS (SELECT 1 FROM pdp.restriction r WHERE r.subject = n.author);
	    IF truth <> seen THEN
	        RAISE EXCEPTION 'wrong answer: saw % notes, truth is %', seen, truth;
	    END IF;
	END $$;
	CREATE FUNCTION expect_same(parallel bigint, serial bigint) RETURNS void
	LANGUAGE plpgsql AS $$
	BEGIN
	    IF parallel <> serial THEN
	        RAISE EXCEPTION 'wrong answer: a parallel plan saw % rows, a serial one % under the same snapshot', parallel, serial;
	    END IF;
	END $$;
	GRANT EXECUTE ON FUNCTION expect_enrol(bigint, text, bigint), expect_notes(bigint) TO app;
	GRANT EXECUTE ON FUNCTION expect_same(bigint, bigint) TO app;
});

my $dir = PostgreSQL::Test::Utils::tempdir();
sub script
{
	my ($name, $text) = @_;
	open my $fh, '>', "$dir/$name" or die $!;
	print $fh $text;
	close $fh;
	return "$dir/$name";
}

# Writers: consents, restrictions, purposes and grants, committed in a loop.
my $churn = script('churn.sql', q{
\set s random(0, 1999)
\set t random(0, 499)
SELECT pdp.grant_consent(:s::bigint, 'news');
SELECT pdp.withdraw_consent((:s + 1)::bigint, 'news');
SELECT pdp.withdraw_consents(ARRAY[(:s + 2)::text, (:s + 3)::text], 'news');
SELECT pdp.grant_consent('u-' || :t, 'news');
SELECT pdp.withdraw_consent('u-' || (:t + 1), 'news');
SELECT pdp.restrict_subject((:s + 5)::bigint, 'churn');
SELECT pdp.lift_restriction((:s + 6)::bigint);
SELECT pdp.allow_purpose('bystander', 'spare');
SELECT pdp.disallow_purpose('bystander', 'spare');
SELECT pdp.define_purpose('spare', 'contract', 'redefined ' || :s);
});

# Readers: each answer checked under the same snapshot.
my $scan = script('scan.sql', q{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET LOCAL pdp.purpose = 'news';
SELECT count(*) AS seen FROM enrol \gset
SELECT expect_enrol(:seen, 'news', NULL);
SELECT count(*) AS seen FROM notes \gset
SELECT expect_notes(:seen);
SET LOCAL pdp.purpose = 'teaching';
SELECT count(*) AS seen FROM enrol \gset
SELECT expect_enrol(:seen, 'teaching', NULL);
END;
});
my $parallel = script('parallel.sql', q{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET LOCAL pdp.purpose = 'news';
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SELECT count(*) AS seen FROM enrol \gset
SELECT expect_enrol(:seen, 'news', NULL);
END;
});
# A parallel plan (whose processes share one consent set, built by whichever
# reaches the threshold first) against a serial plan and the truth, under one
# snapshot, while the writers withdraw consents; every transaction takes a
# new snapshot, so a set left by an earlier statement would be caught.  The
# leader does not scan, so its two workers share (one builds, one maps).
my $par_serial = script('par_serial.sql', q{
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET LOCAL pdp.purpose = 'news';
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
SET LOCAL client_min_messages = debug1;
SELECT count(*) AS par FROM enrol \gset
SET LOCAL client_min_messages = notice;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT count(*) AS ser FROM enrol \gset
SELECT expect_same(:par, :ser);
SELECT expect_enrol(:par, 'news', NULL);
END;
});
my $lookup = script('lookup.sql', q{
\set id random(1, 20000)
BEGIN ISOLATION LEVEL REPEATABLE READ;
SET LOCAL pdp.purpose = 'news';
SELECT count(*) AS seen FROM enrol WHERE id = :id \gset
SELECT expect_enrol(:seen, 'news', :id);
SET LOCAL pdp.visibility_memory = 0;
SELECT count(*) AS seen FROM enrol \gset
SELECT expect_enrol(:seen, 'news', NULL);
END;
});

my $port = $node->port;
my $host = $node->host;
my @common = ('pgbench', '-n', '-h', $host, '-p', $port, '-T', '20');
my ($out_w, $err_w, $out_r, $err_r) = ('', '', '', '');
my $writers = IPC::Run::start([ @common, '-c', '2', '-f', $churn, 'postgres' ], '>', \$out_w, '2>', \$err_w);
my $readers = IPC::Run::start([ @common, '-U', 'app', '-c', '4', '-f', "$scan\@2", '-f', "$parallel\@1",
		'-f', "$par_serial\@2", '-f', "$lookup\@4", 'postgres' ], '>', \$out_r, '2>', \$err_r);
$writers->finish;
$readers->finish;

my ($wtx) = $out_w =~ /number of transactions actually processed: (\d+)/;
my ($rtx) = $out_r =~ /number of transactions actually processed: (\d+)/;
ok(defined $wtx && $wtx > 100, "writers committed changes in a loop (" . ($wtx // 0) . " rounds)")
  or diag($err_w);
ok(defined $rtx && $rtx > 100, "readers read protected tables meanwhile (" . ($rtx // 0) . " checked transactions)")
  or diag($err_r);
unlike($err_r, qr/wrong answer/, 'every answer matched the truth under its snapshot');
like($err_r, qr/publishes its parallel group's shared consent set/,
	"parallel plans built their group's consent set once, in shared memory");
like($err_r, qr/a parallel worker maps its parallel group's shared consent set|the leader maps its parallel group's shared consent set/,
	"other processes of the group mapped that set instead of reading their own");
unlike($err_r . $err_w, qr/aborted|server closed|terminated abnormally/, 'no client aborted and no backend died');
my ($failed) = $out_r =~ /number of failed transactions: (\d+)/;
is($failed // 0, 0, 'no reader transaction failed');
is($node->safe_psql('postgres', 'SELECT 1'), '1', 'the server is up');
my $log = slurp_file($node->logfile);
unlike($log, qr/server process .* was terminated|TRAP:|PANIC/, 'no backend crashed');

# A backend's private sets stay within the setting.
my $mem = $node->safe_psql('postgres', q{
	SET ROLE app;
	SET pdp.purpose = 'news';
	SELECT count(*) FROM enrol;
	RESET ROLE;
	SELECT coalesce(sum(total_bytes), 0) FROM pg_backend_memory_contexts WHERE name LIKE 'pdp_ext%';
});
my @lines = split /\n/, $mem;
cmp_ok($lines[-1], '>', 0, 'a whole-table read built a set');
cmp_ok($lines[-1], '<=', 8192 * 1024, "pdp_ext's sets in one backend stay within pdp.visibility_memory ($lines[-1] bytes)");

done_testing();
