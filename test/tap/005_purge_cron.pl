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

my $node = pdp_node('purge_cron', preload => 'pg_cron,pdp_ext',
	conf => "cron.database_name = 'postgres'\ncron.use_background_workers = on\nmax_worker_processes = 20\nrestart_after_crash = on\n");
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
done_testing();
