# pg_cron really runs the scheduled purge in a server with pg_cron preloaded;
# a purge killed midway (SIGKILL of the whole server) leaves no half-done
# batch, and the next run resumes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

# The scheduled purge removes most of the table: no safety valve on this
# node (pdp.purge_max_share = 1); the second node below keeps the default.
my $node = pdp_node('purge_cron', preload => 'pg_cron,pdp_ext',
	conf => "cron.database_name = 'postgres'\ncron.use_background_workers = on\nmax_worker_processes = 20\nrestart_after_crash = on\n"
	  . "pdp.purge_max_share = 1\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION pdp_ext;
	CREATE TABLE logins (id bigserial PRIMARY KEY, learner bigint, at timestamptz);
	INSERT INTO logins (learner, at) SELECT g % 100, now() - interval '2 years' FROM generate_series(1, 300) g;
	INSERT INTO logins (learner, at) SELECT g % 100, now() FROM generate_series(1, 50) g;
	SELECT pdp.register_table('logins', 'learner');
	SELECT pdp.set_retention('logins', '1 year', 'at');
	SELECT pdp.place_hold(7, 'dispute');
});

# Scheduled every minute; wait for pg_cron to run it (at most two minutes).
my $job = $node->safe_psql('postgres', q{SELECT pdp.schedule_purge('* * * * *')});
ok($job > 0, 'purge scheduled with pg_cron');
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = } . $job . q{ AND status = 'succeeded'}, 't'),
	'pg_cron ran the purge');
is($node->safe_psql('postgres', 'SELECT count(*) FROM logins'), '53',
	'the expired rows are gone; the recent ones and the held learner keeps three');
is($node->safe_psql('postgres', q{SELECT status, total_rows FROM pdp.purge_log ORDER BY id DESC LIMIT 1}), 'finished|297',
	'the run is in the purge log');
$node->safe_psql('postgres', 'SELECT pdp.unschedule_purge()');

# Kill the server in the middle of a purge whose batches are slowed down.
$node->safe_psql('postgres', q{
	INSERT INTO logins (learner, at) SELECT g % 100, now() - interval '2 years' FROM generate_series(1, 200) g;
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN OLD; END $$;
	CREATE TRIGGER slow BEFORE DELETE ON logins FOR EACH ROW EXECUTE FUNCTION slow();
});
my $purge = $node->background_psql('postgres');
$purge->query_until(qr/started/, q{\echo started
CALL pdp.purge(batch_size => 20);
});
ok($node->poll_query_until('postgres', q{SELECT total_rows >= 40 FROM pdp.purge_progress}, 't'),
	'the purge is under way');
# SIGKILL the backend running the purge: the postmaster then treats it as a
# crash, kills every process and recovers from the WAL.
my $pid = $node->safe_psql('postgres', q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'CALL pdp.purge%'});
ok($pid =~ /^\d+$/, 'found the purging backend');
kill 'KILL', $pid;
eval { $purge->quit };
ok($node->poll_query_until('postgres', 'SELECT true', 't'), 'the server recovered from the crash');
like(slurp_file($node->logfile), qr/terminated by signal 9/, 'the log shows the crash');
# Batches commit without waiting for the disk, so the crash may lose the last
# ones (or all of them), each whole, with its count.
my $after_restart = $node->safe_psql('postgres', 'SELECT count(*) FROM logins');
is((253 - $after_restart) % 20, 0, 'only whole batches of 20 were removed (no half batch)');
is($node->safe_psql('postgres', q{SELECT coalesce(rows->>'public.logins delete', '0') FROM pdp.purge_run ORDER BY id DESC LIMIT 1}),
	253 - $after_restart, 'every row deleted before the kill is counted in the killed run: nothing lost, nothing twice');
$node->safe_psql('postgres', 'DROP TRIGGER slow ON logins');
$node->safe_psql('postgres', 'CALL pdp.purge()');
is($node->safe_psql('postgres', q{SELECT status FROM pdp.purge_run ORDER BY id DESC LIMIT 1 OFFSET 1}), 'interrupted',
	'the killed run is marked interrupted');
is($node->safe_psql('postgres', 'SELECT count(*) FROM logins'), '55',
	'the next run finished the work (the held learner keeps two new rows)');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the audit chain holds after the crash');
$node->stop;
# Issue 16, point 9: schedule_purge checks that pg_cron can run the job.
# This node's pg_cron connects with libpq, as it does unless
# cron.use_background_workers is on, to cron.host (default localhost).
my $n2 = pdp_node('cron_check', preload => 'pg_cron,pdp_ext', conf => "cron.database_name = 'postgres'\n");
my $sock = $n2->host;
$n2->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION pdp_ext;
	CREATE TABLE logins (id bigserial PRIMARY KEY, learner bigint, at timestamptz);
	INSERT INTO logins (learner, at) SELECT g, now() - interval '2 years' FROM generate_series(1, 60) g;
	INSERT INTO logins (learner, at) SELECT g, now() FROM generate_series(1, 40) g;
	SELECT pdp.register_table('logins', 'learner');
	SELECT pdp.set_retention('logins', '1 year', 'at');
});
# 1. The server listens on no TCP address: pg_cron's connection to localhost would be refused.
my ($rc, $out, $err) = $n2->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.schedule_purge('* * * * *')");
isnt($rc, 0, 'schedule_purge refuses when the server does not listen on localhost');
like($err, qr/55000: pg_cron could not run the scheduled purge/, '... with SQLSTATE 55000');
like($err, qr/does not listen there \(listen_addresses = ''\)/, '... saying why');
like($err, qr/HINT:  Set cron.host = '\Q$sock\E' in postgresql.conf, then restart the server/,
	'... and exactly what to set (the socket directory, which pg_hba.conf lets in)');
is($n2->safe_psql('postgres', 'SELECT count(*) FROM cron.job'), '0', 'nothing was scheduled');

# 2. Debian's setup, the one a real Moodle ran: TCP on localhost asks for a password.
$n2->append_conf('postgresql.conf', "listen_addresses = 'localhost'\n");
open my $hba, '>', $n2->data_dir . '/pg_hba.conf' or die $!;
print $hba "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n";
close $hba;
$n2->restart;
($rc, $out, $err) = $n2->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.schedule_purge('* * * * *')");
isnt($rc, 0, 'schedule_purge refuses when pg_hba.conf asks pg_cron for a password');
like($err, qr/DETAIL:  pg_cron connects over TCP to (::1|127\.0\.0\.1) \(cron.host = localhost\) as "[^"]+": pg_hba.conf line \d+ \("host all all (::1\/128|127\.0\.0\.1\/32) scram-sha-256"\) asks for a password/,
	'... naming the pg_hba.conf line that does') or diag $err;
like($err, qr/Set cron.host = '\Q$sock\E'/, '... and the setting that avoids it');
like($n2->safe_psql('postgres', 'SELECT problem FROM pdp._cron_check(current_user)'), qr/asks for a password/,
	'the check itself gives the same answer');

# 3. Scheduled anyway (by hand, as the hint allows): every run fails, and the
# purge log and the report say so.
$n2->safe_psql('postgres', q{SELECT cron.schedule('pdp_ext purge', '* * * * *', 'CALL pdp.purge()')});
ok($n2->poll_query_until('postgres', q{SELECT count(*) > 0 FROM pdp.purge_log WHERE status = 'scheduled run failed'}, 't'),
	'a failed scheduled run shows in pdp.purge_log');
is($n2->safe_psql('postgres', q{SELECT errors->0->>'source', cron_run IS NOT NULL, id IS NULL FROM pdp.purge_log WHERE status = 'scheduled run failed' LIMIT 1}),
	'pg_cron|t|t', '... as pg_cron\'s run, with pg_cron\'s message');
my $report = $n2->safe_psql('postgres', q{SELECT pdp.report('markdown')});
like($report, qr/\*\*Scheduled runs that failed in the last 30 days: \d+\*\*/, 'the report shows the failed runs');
like($report, qr/\*\*pg_cron cannot run it\*\*: pg\\_cron connects over TCP/, 'the report says why pg_cron cannot run the job');
is($n2->safe_psql('postgres', 'SELECT count(*) FROM logins'), '100', 'nothing was purged');
$n2->safe_psql('postgres', q{SELECT cron.unschedule('pdp_ext purge')});

# 4. Set what the hint said: the check passes, pg_cron runs the purge, and
# the safety valve (default share 0.1) holds back a run that would remove
# 60 of 100 rows, until a larger share lets it through once.
$n2->append_conf('postgresql.conf', "cron.host = '$sock'\n");
$n2->restart;
my $job2 = $n2->safe_psql('postgres', q{SELECT pdp.schedule_purge('* * * * *')});
ok($job2 > 0, 'schedule_purge schedules once pg_cron can connect');
ok($n2->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = } . $job2 . q{ AND status = 'succeeded'}, 't'),
	'pg_cron ran the scheduled purge');
like($n2->safe_psql('postgres', q{SELECT pdp.report('markdown')}), qr/pg_cron can run it/, 'the report says pg_cron can run the job');
$n2->safe_psql('postgres', 'SELECT pdp.unschedule_purge()');
is($n2->safe_psql('postgres', q{SELECT status, held_back->0->>'table', held_back->0->>'would_remove', held_back->0->>'of'
		FROM pdp.purge_log WHERE id IS NOT NULL ORDER BY id DESC LIMIT 1}), 'finished|public.logins|60|100',
	'the safety valve held the scheduled run back and recorded what it would have removed');
is($n2->safe_psql('postgres', 'SELECT count(*) FROM logins'), '100', '... and nothing was removed');
like($n2->safe_psql('postgres', q{SELECT pdp.report('markdown')}), qr/\*\*Held back by the safety valve\*\* \(pdp.purge\\_max\\_share 0.1\): table public.logins, the run would have removed 60 of 100 rows/,
	'the report shows what the valve held back');
$n2->safe_psql('postgres', q{SET pdp.purge_max_share = 0.7; CALL pdp.purge()});
is($n2->safe_psql('postgres', 'SELECT count(*) FROM logins'), '40', 'a larger share for one run let it through');
$n2->stop;
done_testing();
