# Durable audit entries (issue 15): a reversal's or an export's entry is
# committed by pdp_ext's audit worker before the value reaches the caller, so
# a rollback cannot remove it; when the entry cannot be committed (worker
# killed, not preloaded, full disk) no value is returned.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;
use Time::HiRes qw(usleep);

my $node = pdp_node('durable', conf => "restart_after_crash = on\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE learners (id bigint PRIMARY KEY, email text);
	INSERT INTO learners VALUES (43, 'learner43@mail.kz');
	SELECT pdp.register_table('learners', 'id');
	CREATE TABLE tokens AS SELECT pdp.encrypt('the secret value') AS tok;
});
my $reads = q{SELECT count(*) FROM pdp.audit_log WHERE action IN ('reverse', 'export_subject')};

# 1. A rolled-back reversal and export stay in the trail.
my $before = $node->safe_psql('postgres', $reads);
my $out = $node->safe_psql('postgres', q{
	BEGIN;
	SELECT pdp.decrypt(tok) FROM tokens;
	SELECT pdp.export_subject(43) ? 'data';
	ROLLBACK;
	BEGIN;
	SAVEPOINT s;
	SELECT pdp.fpe_decrypt(pdp.fpe_encrypt('0123456789'));
	ROLLBACK TO SAVEPOINT s;
	ROLLBACK;
});
is($out, "the secret value\nt\n0123456789", 'the values were returned inside the transactions');
is($node->safe_psql('postgres', $reads) - $before, 3,
	'a reversal and an export rolled back, and a reversal in a rolled-back savepoint, each left a committed entry');
is($node->safe_psql('postgres', q{SELECT string_agg(action || ':' || coalesce(object, ''), ',' ORDER BY id)
	FROM (SELECT * FROM pdp.audit_log WHERE action IN ('reverse', 'export_subject') ORDER BY id DESC LIMIT 3) l}),
	'reverse:pdp.decrypt,export_subject:,reverse:pdp.fpe_decrypt', 'naming the function or the export, never a value');
unlike($node->safe_psql('postgres', q{SELECT string_agg(details::text || coalesce(subject_pseudonym, ''), ' ') FROM pdp.audit_log}),
	qr/secret|learner43|\b43\b/, 'no personal value in the entries');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the worker\'s entries are in the chain');

# 2. SIGKILL of the worker while callers read: no caller got a value without a
# committed entry, and no entry is written twice.
my $clients = 4;
my $calls = 3000;
my $script = "$PostgreSQL::Test::Utils::tmp_check/reads.sql";
open my $fh, '>', $script or die "$script: $!";
print $fh "SELECT 'got:' || pdp.decrypt(tok) FROM tokens;\n" for 1 .. $calls;
close $fh;
$before = $node->safe_psql('postgres', $reads);
my (@h, @out);
for my $i (0 .. $clients - 1)
{
	$out[$i] = '';
	$h[$i] = IPC::Run::start([ 'psql', '-X', '-At', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', $script ],
		'>', \$out[$i], '2>', \my $err);
}
my $worker;
for (1 .. 100)
{
	$worker = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'pdp_ext audit worker'});
	last if $worker ne '' && $worker =~ /^\d+$/;
	usleep(50_000);
}
like($worker, qr/^\d+$/, 'the audit worker runs while the callers read');
usleep(300_000);
kill 'KILL', $worker;
$_->finish for @h;
$node->poll_query_until('postgres', 'SELECT true') or die 'the server did not come back';
my $received = 0;
$received += () = $_ =~ /^got:the secret value$/mg for @out;
my $entries = $node->safe_psql('postgres', $reads) - $before;
ok($received > 0 && $received < $clients * $calls, "the kill interrupted the callers ($received values received)");
cmp_ok($entries, '>=', $received, "every value received has its committed entry ($entries entries)");
cmp_ok($entries, '<=', $received + $clients, 'at most one entry per caller without its value (the calls in flight), none twice');
like(slurp_file($node->logfile), qr/pdp_ext audit worker.*terminated by signal 9/, 'the worker was killed');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the chain verifies after the crash');
is($node->safe_psql('postgres', 'SELECT pdp.decrypt(tok) FROM tokens'), 'the secret value', 'a new worker serves the next reversal');

# 2b. A crash in the middle of a seal (issue 15, point 3): the set-based
# sealer writes a whole batch in the sealing transaction; killed before its
# commit, the batch leaves no seal and no head move, and after the restart
# every entry is sealed exactly once.
# (The audit worker seals for a second after its last batch: let that pass,
# so that the entries below wait for this test's sealer.)
$node->safe_psql('postgres', q{SELECT pdp.seal_audit_log(true, 2147483647); SELECT pg_sleep(2)});
$node->safe_psql('postgres', q{INSERT INTO pdp.audit_log (action, object, details)
	SELECT 'tap_crash_seal', 'tap', jsonb_build_object('n', g) FROM generate_series(1, 11000) g});
my $seal_before = $node->safe_psql('postgres', 'SELECT head_seq || \'|\' || (SELECT count(*) FROM pdp.audit_seal) FROM pdp.audit_chain');
my $sealer_pid;
{
	my ($in, $o, $e) = ('', '', '');
	my $h = IPC::Run::start([ 'psql', '-X', '-qAt', '-d', $node->connstr('postgres') ],
		'<', \$in, '>', \$o, '2>', \$e, IPC::Run::timeout($PostgreSQL::Test::Utils::timeout_default));
	$in .= "BEGIN; SELECT 'sealed:' || pdp.seal_audit_log(true, 2147483647); SELECT pg_backend_pid(); SELECT pg_sleep(600);\n";
	$h->pump until $o =~ /^sealed:(\d+)\n(\d+)$/m;
	my ($sealed, $pid) = ($1, $2);
	$sealer_pid = $pid;
	ok($sealed >= 11000, "the sealer chained the batch in its open transaction ($sealed entries)");
	$node->poll_query_until('postgres', "SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $pid")
	  or die 'the sealing session did not reach its sleep';
	my $offset = -s $node->logfile;
	kill 'KILL', $pid;
	eval { $h->finish; };
	$node->wait_for_log(qr/database system is ready to accept connections/, $offset);
}
like(slurp_file($node->logfile), qr/\(PID $sealer_pid\) was terminated by signal 9/, 'the sealing backend was killed (crash recovery)');
is($node->safe_psql('postgres', 'SELECT head_seq || \'|\' || (SELECT count(*) FROM pdp.audit_seal) FROM pdp.audit_chain'),
	$seal_before, 'the killed seal left no seal and did not move the head');
$node->safe_psql('postgres', q{SELECT pdp.seal_audit_log(true, 2147483647)});
is($node->safe_psql('postgres', q{SELECT count(*) || '|' || count(DISTINCT a.entry_id) || '|' || (SELECT count(*) FROM pdp.audit_log)
	FROM pdp.audit_seal a}),
	join('|', ($node->safe_psql('postgres', 'SELECT count(*) FROM pdp.audit_log')) x 3),
	'after the restart every entry is sealed, each once');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pdp.audit_seal a JOIN pdp.audit_log l ON l.id = a.entry_id WHERE l.action = 'tap_crash_seal'}),
	'11000', 'the 11,000 entries (more than a chunk) of the killed seal included');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'and the chain verifies');

# 3. Without pdp_ext preloaded there is no worker: reversals and exports fail
# closed, returning nothing.
my $bare = pdp_node('bare', preload => '');
$bare->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE learners (id bigint PRIMARY KEY);
	INSERT INTO learners VALUES (43);
	SELECT pdp.register_table('learners', 'id');
});
my ($rc, $stdout, $stderr) = $bare->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.decrypt(pdp.encrypt('the secret value'))");
like($stderr, qr/ERROR:\s+55000: could not record the audit entry/, 'not preloaded: a reversal fails with 55000');
unlike($stdout, qr/secret/, 'and returns nothing');
($rc, $stdout, $stderr) = $bare->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.export_subject(43)");
# (Without preloading, the guard of pdp's internal helpers may refuse first,
# 42501, in a session's first call: closed either way.)
like($stderr, qr/ERROR:\s+(?:55000: could not record the audit entry|42501: permission denied)/,
	'not preloaded: an export fails closed (55000, or 42501 from the internal-helper guard)');
is($stdout, '', 'and returns nothing');
$bare->stop;

# 4. A full disk under the audit log: reversals fail closed (53100).
my $fs = $ENV{PDP_SMALL_FS} // '';
SKIP:
{
	skip 'no small file system to fill (tools/run-tap.sh mounts one when run as root)', 4 unless $fs ne '' && -d $fs;
	mkdir "$fs/ts15" or die "mkdir $fs/ts15: $!";
	$node->safe_psql('postgres', qq{CREATE TABLESPACE small LOCATION '$fs/ts15'});
	$node->safe_psql('postgres', 'ALTER TABLE pdp.audit_log SET TABLESPACE small');
	($rc, $stdout, $stderr) = $node->psql('postgres', q{
		CREATE TABLE filler (x text) TABLESPACE small;
		ALTER TABLE filler ALTER COLUMN x SET STORAGE PLAIN;
		DO $$ BEGIN LOOP INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 100); END LOOP; END $$;});
	like($stderr, qr/No space left on device/, 'the tablespace is full');
	$before = $node->safe_psql('postgres', $reads);
	open $fh, '>', $script or die "$script: $!";
	print $fh "\\set VERBOSITY verbose\n";
	print $fh "SELECT 'got:' || pdp.decrypt(tok) FROM tokens;\n" for 1 .. 2000;
	close $fh;
	($rc, $stdout, $stderr) = $node->psql('postgres', "\\i $script");
	like($stderr, qr/ERROR:\s+53100: could not record the audit entry/, 'once the audit log cannot grow, a reversal fails with 53100');
	$received = () = $stdout =~ /^got:the secret value$/mg;
	is($node->safe_psql('postgres', $reads) - $before, $received,
		"every value returned before that has its entry ($received), the refused one none");
	$node->safe_psql('postgres', 'DROP TABLE filler; CHECKPOINT;');
	is($node->safe_psql('postgres', 'SELECT pdp.decrypt(tok) FROM tokens; SELECT ok FROM pdp.verify_audit_log()'),
		"the secret value\nt", 'after space is freed reversals work again and the chain verifies');
}

$node->stop;
done_testing();
