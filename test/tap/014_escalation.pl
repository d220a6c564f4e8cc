# Escalation end to end (issue 14, class 1): a pdp_admin member who owns
# tables attaches code to them (a row trigger, a DEFAULT, an index
# expression, a generated column, an RLS policy function, a cast to json, and a "_RETURN"
# rule turning a registered table into a view) that tries to become
# superuser, to read the key file and to unregister a superuser's table.
# Erasure, export, purges (purge_expired, CALL pdp.purge), CALL
# pdp.apply_rules, masked views and the report run over those tables, called
# by that member, by a DPO (a pdp_admin member who owns none of them), by a
# superuser, and by a superuser's pg_cron job.  Afterwards no role gained a
# privilege, the code ran only as the table's owner, and no byte of the key
# file reached the trap.  Class 2: pdp's tables cannot be written directly.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $key_file = pdp_key_file();
my $node = pdp_node('escalation', preload => 'pg_cron,pdp_ext', key_file => $key_file,
	conf => "cron.database_name = 'postgres'\ncron.use_background_workers = on\nmax_worker_processes = 20\n"
	  . "pdp.purge_max_share = 1\n");    # the purges must reach the trap tables' rows: no safety valve
my $supers_sql = q{SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolsuper};
my $privs_sql = q{SELECT string_agg(rolname || ':' || rolsuper || rolcreaterole || rolcreatedb || rolbypassrls || rolreplication, ',' ORDER BY rolname)
                    FROM pg_roles WHERE rolname LIKE 'esc\_%'};

$node->safe_psql('postgres', qq{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION pdp_ext;
	CREATE ROLE esc_owner LOGIN IN ROLE pdp_admin, pdp_auditor;
	CREATE ROLE esc_dpo LOGIN IN ROLE pdp_admin, pdp_auditor;
	CREATE SCHEMA esc AUTHORIZATION esc_owner;
	GRANT USAGE ON SCHEMA esc TO PUBLIC;
	CREATE TABLE public.esc_victim (id bigint PRIMARY KEY);
	SELECT pdp.register_table('public.esc_victim', 'id');
});
my $supers_before = $node->safe_psql('postgres', $supers_sql);
my $privs_before = $node->safe_psql('postgres', $privs_sql);

# The trap, made by its owner.
$node->safe_psql('postgres', qq{
SET ROLE esc_owner;
CREATE TABLE esc.marker (id serial, who name, kind text, what text);
GRANT ALL ON esc.marker TO PUBLIC;
GRANT ALL ON SEQUENCE esc.marker_id_seq TO PUBLIC;
CREATE FUNCTION esc.trap(kind text) RETURNS boolean LANGUAGE plpgsql AS \$\$
BEGIN
    INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'ran');
    BEGIN
        EXECUTE 'ALTER ROLE esc_owner SUPERUSER';
        INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'became superuser');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        EXECUTE 'GRANT pg_read_server_files TO esc_owner';
        INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'granted itself pg_read_server_files');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'key ' || pg_read_file('$key_file'));
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    BEGIN
        PERFORM pdp.unregister_table('public.esc_victim');
        INSERT INTO esc.marker (who, kind, what) VALUES (current_user, kind, 'unregistered the victim');
    EXCEPTION WHEN OTHERS THEN NULL;
    END;
    RETURN true;
END
\$\$;
CREATE FUNCTION esc.trap_imm(kind text, v text) RETURNS text LANGUAGE sql IMMUTABLE AS \$\$ SELECT CASE WHEN esc.trap(kind) THEN v END \$\$;
CREATE FUNCTION esc.trap_trigger() RETURNS trigger LANGUAGE plpgsql AS \$\$
BEGIN
    PERFORM esc.trap('trigger');
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
END
\$\$;
-- A type of its own with a cast to json, which to_jsonb (export) calls.
CREATE TYPE esc.mood AS ENUM ('calm');
CREATE FUNCTION esc.mood_json(esc.mood) RETURNS json LANGUAGE plpgsql AS \$\$ BEGIN PERFORM esc.trap('cast'); RETURN '"calm"'; END \$\$;
CREATE CAST (esc.mood AS json) WITH FUNCTION esc.mood_json(esc.mood);
CREATE TABLE esc.t_trigger (id serial PRIMARY KEY, learner bigint, at timestamptz DEFAULT '2000-01-01', mood esc.mood DEFAULT 'calm');
CREATE TRIGGER esc_trap BEFORE UPDATE OR DELETE ON esc.t_trigger FOR EACH ROW EXECUTE FUNCTION esc.trap_trigger();
CREATE TABLE esc.t_default (id serial PRIMARY KEY, learner bigint, at timestamptz DEFAULT '2000-01-01',
                            note text DEFAULT esc.trap_imm('default', 'x'));
CREATE TABLE esc.t_index (id serial PRIMARY KEY, learner bigint, email text, at timestamptz DEFAULT '2000-01-01');
CREATE INDEX ON esc.t_index (esc.trap_imm('index', email));
CREATE TABLE esc.t_generated (id serial PRIMARY KEY, learner bigint, email text, at timestamptz DEFAULT '2000-01-01',
                              g text GENERATED ALWAYS AS (esc.trap_imm('generated', email)) STORED);
CREATE TABLE esc.t_policy (id serial PRIMARY KEY, learner bigint, at timestamptz DEFAULT '2000-01-01');
ALTER TABLE esc.t_policy ENABLE ROW LEVEL SECURITY;
ALTER TABLE esc.t_policy FORCE ROW LEVEL SECURITY;
CREATE POLICY esc_trap ON esc.t_policy USING (esc.trap('policy'));
SELECT pdp.register_table('esc.t_trigger', 'learner');
SELECT pdp.register_table('esc.t_default', 'learner');
SELECT pdp.register_table('esc.t_index', 'learner', on_erase => 'anonymise');
SELECT pdp.register_table('esc.t_generated', 'learner', on_erase => 'anonymise');
SELECT pdp.register_table('esc.t_policy', 'learner');
SELECT pdp.set_column_rule('esc.t_index', 'email', 'mask', 'email');
SELECT pdp.set_column_rule('esc.t_generated', 'email', 'mask', 'email');
SELECT pdp.set_retention(t, '1 year', 'at') FROM unnest(ARRAY['esc.t_trigger', 'esc.t_default', 'esc.t_policy']::regclass[]) t;
SELECT pdp.set_retention(t, '1 year', 'at', 'anonymise') FROM unnest(ARRAY['esc.t_index', 'esc.t_generated']::regclass[]) t;
CREATE FUNCTION esc.fill(first integer, last integer) RETURNS void LANGUAGE sql AS \$\$
    INSERT INTO esc.t_trigger (learner) SELECT g FROM generate_series(first, last) g;
    INSERT INTO esc.t_default (learner) SELECT g FROM generate_series(first, last) g;
    INSERT INTO esc.t_index (learner, email) SELECT g, 'l' || g || '\@mail.kz' FROM generate_series(first, last) g;
    INSERT INTO esc.t_generated (learner, email) SELECT g, 'l' || g || '\@mail.kz' FROM generate_series(first, last) g;
    INSERT INTO esc.t_policy (learner) SELECT g FROM generate_series(first, last) g;
\$\$;
SELECT esc.fill(1, 10);
GRANT SELECT ON ALL TABLES IN SCHEMA esc TO esc_dpo;
});
$node->safe_psql('postgres', 'TRUNCATE esc.marker');

# As the owner, the DPO and a superuser: each sees its call succeed (or be refused).
my %as = (owner => 'SET ROLE esc_owner;', dpo => 'SET ROLE esc_dpo;', superuser => '');
sub run_as
{
	my ($who, $sql) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $as{$who} . "\n" . $sql);
	return ($ret, $err);
}

my ($ret, $err);
# apply_rules: the owner, then a superuser (restart), commit per batch; the DPO is refused.
($ret, $err) = run_as('owner', q{CALL pdp.apply_rules('esc.t_index', batch_size => 3)});
is($ret, 0, 'the owner applies rules to its trap table with CALL pdp.apply_rules') or diag $err;
($ret, $err) = run_as('superuser', q{CALL pdp.apply_rules('esc.t_generated', batch_size => 3)});
is($ret, 0, 'a superuser applies rules to a trap table with CALL pdp.apply_rules') or diag $err;
($ret, $err) = run_as('dpo', q{CALL pdp.apply_rules('esc.t_index', batch_size => 3, restart => true)});
like($err, qr/must be owner of table "t_index"/, 'a DPO cannot apply rules to a table it does not own');

my $learner = 1;
foreach my $who (qw(owner dpo superuser))
{
	($ret, $err) = run_as($who, "SELECT pdp.export_subject($learner)");
	is($ret, 0, "export_subject by the $who over the trap tables") or diag $err;
	($ret, $err) = run_as($who, "SELECT pdp.erase_subject($learner, 'request')");
	is($ret, 0, "erase_subject by the $who over the trap tables") or diag $err;
	$learner++;
	($ret, $err) = run_as($who, "SELECT pdp.report() IS NOT NULL");
	is($ret, 0, "report() by the $who over the trap tables") or diag $err;
	($ret, $err) = run_as($who, "SELECT count(*) FROM pdp.purge_expired(batch_size => 2)");
	is($ret, 0, "purge_expired by the $who over the trap tables") or diag $err;
	$node->safe_psql('postgres', 'SET ROLE esc_owner; SELECT esc.fill(11, 20)');
	($ret, $err) = run_as($who, "CALL pdp.purge(batch_size => 2)");
	is($ret, 0, "CALL pdp.purge by the $who over the trap tables") or diag $err;
	$node->safe_psql('postgres', 'SET ROLE esc_owner; SELECT esc.fill(21, 30)');
}
($ret, $err) = run_as('superuser', q{SELECT pdp.create_masked_view('esc.t_index', 'esc_masked')});
is($ret, 0, 'a superuser makes a masked view of a trap table') or diag $err;
is($node->safe_psql('postgres', q{SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'esc.esc_masked'::regclass}),
	'esc_owner', "the masked view belongs to the table's owner");

# A superuser's pg_cron job purges the rows just written.
my $cron_marks = $node->safe_psql('postgres', q{SELECT count(*) FROM esc.marker});
my $job = $node->safe_psql('postgres', q{SELECT pdp.schedule_purge('* * * * *')});
ok($node->poll_query_until('postgres',
		qq{SELECT count(*) > 0 FROM cron.job_run_details WHERE jobid = $job AND status = 'succeeded'}, 't'),
	"a superuser's pg_cron job ran the purge");
is($node->safe_psql('postgres', qq{SELECT r.rolsuper FROM cron.job j JOIN pg_roles r ON r.rolname = j.username WHERE j.jobid = $job}),
	't', "the job is a superuser's");
$node->safe_psql('postgres', 'SELECT pdp.unschedule_purge()');
is($node->safe_psql('postgres', q{SELECT count(*) FROM esc.t_trigger}), '0', 'the cron job purged the trap table');
ok($node->safe_psql('postgres', qq{SELECT count(*) FROM esc.marker WHERE id > 0}) > $cron_marks,
	'the cron job ran the trap (as the owner, below)');

# A registered table turned into a view.
$node->safe_psql('postgres', q{
SET ROLE esc_owner;
CREATE TABLE esc.t_view (learner bigint);
SELECT pdp.register_table('esc.t_view', 'learner');
CREATE RULE "_RETURN" AS ON SELECT TO esc.t_view DO INSTEAD SELECT 99::bigint AS learner WHERE esc.trap('return rule');
});
foreach my $who (qw(owner dpo superuser))
{
	($ret, $err) = run_as($who, q{SELECT pdp.erase_subject(99, 'request')});
	like($err, qr/"t_view" is not a table/, "erase_subject by the $who refuses a registered table that became a view");
	($ret, $err) = run_as($who, q{SELECT pdp.export_subject(99)});
	like($err, qr/"t_view" is not a table/, "export_subject by the $who refuses a registered table that became a view");
}
$node->safe_psql('postgres', q{SET ROLE esc_owner; SELECT pdp.unregister_table('esc.t_view')});

# Class 2: the registry and retention written directly.
($ret, $err) = run_as('dpo', q{UPDATE pdp.retention_policy SET period = '1 day'});
like($err, qr/permission denied for table retention_policy/, 'a DPO cannot shorten retention with a plain UPDATE');
($ret, $err) = run_as('dpo', q{DELETE FROM pdp.subject_column});
like($err, qr/permission denied for table subject_column/, 'a DPO cannot unregister tables with a plain DELETE');
($ret, $err) = run_as('owner', q{DELETE FROM pdp.subject_column WHERE tbl = 'esc.t_trigger'::regclass});
like($err, qr/permission denied for table subject_column/, 'not even the owner writes the registry directly');

# Afterwards.
is($node->safe_psql('postgres', $supers_sql), $supers_before, 'no role became superuser');
is($node->safe_psql('postgres', $privs_sql), $privs_before, 'no esc_ role gained an attribute');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_auth_members m WHERE m.member = 'esc_owner'::regrole
                                   AND m.roleid = 'pg_read_server_files'::regrole}), '0',
	'the owner was not granted pg_read_server_files');
is($node->safe_psql('postgres', q{SELECT coalesce(string_agg(DISTINCT who::text, ','), '') FROM esc.marker}), 'esc_owner',
	"the trap ran, and only as the tables' owner");
is($node->safe_psql('postgres', q{SELECT string_agg(DISTINCT kind, ',' ORDER BY kind) FROM esc.marker}),
	'cast,default,generated,index,policy,trigger', "the trigger, cast, default (the owner's inserts), index, generated-column and policy traps all ran (as the owner)");
is($node->safe_psql('postgres', q{SELECT count(*) FROM esc.marker WHERE what <> 'ran'}), '0',
	'no trap became superuser, gained a role, read the key file or unregistered the victim');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pdp.subject_column WHERE tbl = 'public.esc_victim'::regclass}), '1',
	"the superuser's table is still registered");
my $key_text = slurp_file($key_file);
my @secrets = ($key_text =~ /([0-9A-Fa-f]{32,})/g);
ok(@secrets > 0, "the key file's secrets are known to the test");
my $marks = $node->safe_psql('postgres', q{SELECT coalesce(string_agg(what, ' '), '') FROM esc.marker});
is(scalar(grep { index(lc $marks, lc $_) >= 0 } @secrets), 0, 'no key byte reached the trap');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the audit chain holds');
$node->stop;
done_testing();
