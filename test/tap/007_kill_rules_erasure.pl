# A backend killed with SIGKILL in the middle of pdp.apply_rules, and in the
# middle of pdp.erase_subject: the server recovers, no batch is half-done,
# apply_rules resumes without pseudonymising any value twice, the killed
# erasure left every row, consent and audit entry as it was, and the audit
# chain verifies.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $node = pdp_node('kill_rules_erasure', conf => "restart_after_crash = on\n");

sub kill_backend_running
{
	my ($pattern) = @_;
	my $pid = $node->safe_psql('postgres',
		qq{SELECT pid FROM pg_stat_activity WHERE query LIKE '$pattern' AND pid <> pg_backend_pid()});
	ok($pid =~ /^\d+$/, "found the backend running $pattern");
	kill 'KILL', $pid;
	ok($node->poll_query_until('postgres', 'SELECT true', 't'), 'the server recovered from the crash');
}

# --- apply_rules --------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE people (id bigserial PRIMARY KEY, learner bigint, email text);
	INSERT INTO people (learner, email) SELECT g, 'learner' || g || '@example.kz' FROM generate_series(1, 400) g;
	SELECT pdp.register_table('people', 'learner');
	SELECT pdp.set_column_rule('people', 'email', 'pseudo_email');
	-- What each row must end as: pseudonymised exactly once.
	CREATE TABLE expected AS SELECT id, pdp.pseudo_email(email) AS email FROM people;
	CREATE FUNCTION slow() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN NEW; END $$;
	CREATE TRIGGER slow BEFORE UPDATE ON people FOR EACH ROW EXECUTE FUNCTION slow();
});
my $apply = $node->background_psql('postgres');
$apply->query_until(qr/started/, q{\echo started
CALL pdp.apply_rules('people', batch_size => 20);
});
ok($node->poll_query_until('postgres', q{SELECT rows_done >= 60 FROM pdp.apply_run WHERE tbl = 'people'::regclass}, 't'),
	'apply_rules is under way');
kill_backend_running('CALL pdp.apply_rules%');
eval { $apply->quit };
my $done = $node->safe_psql('postgres', q{SELECT count(*) FROM people WHERE email !~ '^learner[0-9]+@'});
my $recorded = $node->safe_psql('postgres', q{SELECT rows_done FROM pdp.apply_run WHERE tbl = 'people'::regclass});
is($done % 20, 0, 'only whole batches of 20 were rewritten (no half batch)');
is($recorded, $done, 'the progress record matches the rows rewritten: committed together');
ok($done > 0 && $done < 400, "the kill came midway ($done of 400 rewritten)");
$node->safe_psql('postgres', 'DROP TRIGGER slow ON people');
$node->safe_psql('postgres', q{CALL pdp.apply_rules('people', batch_size => 20)});
is($node->safe_psql('postgres', q{SELECT count(*) FROM people WHERE email ~ '^learner[0-9]+@'}), '0',
	'the resumed run rewrote the rest');
is($node->safe_psql('postgres', q{SELECT count(*) FROM people p JOIN expected x USING (id) WHERE p.email IS DISTINCT FROM x.email}),
	'0', 'every value was pseudonymised exactly once (none twice across the kill)');

# --- erase_subject ------------------------------------------------------------
$node->safe_psql('postgres', q{
	CREATE TABLE learners (id bigint PRIMARY KEY, name text);
	CREATE TABLE activity (id bigserial PRIMARY KEY, learner bigint REFERENCES learners (id), what text);
	INSERT INTO learners SELECT g, 'name ' || g FROM generate_series(1, 5) g;
	INSERT INTO activity (learner, what) SELECT 1 + g % 5, 'click ' || g FROM generate_series(1, 200) g;
	SELECT pdp.register_table('learners', 'id');
	SELECT pdp.register_table('activity', 'learner');
	SELECT pdp.define_purpose('news', 'consent');
	SELECT pdp.grant_consent(3, 'news');
	CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.02); RETURN OLD; END $$;
	CREATE TRIGGER slow_delete BEFORE DELETE ON activity FOR EACH ROW EXECUTE FUNCTION slow_delete();
});
my $audit_before = $node->safe_psql('postgres', 'SELECT count(*) FROM pdp.audit_log');
my $erase = $node->background_psql('postgres');
$erase->query_until(qr/started/, q{\echo started
SELECT pdp.erase_subject(3, 'learner asked');
});
# 40 rows at 20 ms each: wait until the erasure has deleted some of them.
ok($node->poll_query_until('postgres',
		q{SELECT count(*) > 0 FROM pg_stat_activity WHERE query LIKE 'SELECT pdp.erase_subject%' AND state = 'active'
		    AND now() - query_start > interval '300 ms'}, 't'),
	'the erasure is under way');
kill_backend_running('SELECT pdp.erase_subject%');
eval { $erase->quit };
is($node->safe_psql('postgres', q{SELECT (SELECT count(*) FROM learners WHERE id = 3) || '|' || (SELECT count(*) FROM activity WHERE learner = 3)}),
	'1|40', 'the killed erasure changed nothing: every row of the learner is there');
is($node->safe_psql('postgres', q{SELECT pdp.has_consent(3, 'news')}), 't', 'and the consent is not withdrawn');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pdp.erasure}), '0', 'and no erasure receipt was stored');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pdp.audit_log'), $audit_before, 'no audit entry was lost or half-written');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the audit chain holds after the crash');
$node->safe_psql('postgres', 'DROP TRIGGER slow_delete ON activity');
is($node->safe_psql('postgres', q{SELECT (pdp.erase_subject(3, 'learner asked') -> 'consents_withdrawn')::int}), '1',
	'erasure run again completes');
is($node->safe_psql('postgres', q{SELECT (SELECT count(*) FROM learners WHERE id = 3) + (SELECT count(*) FROM activity WHERE learner = 3)}),
	'0', 'and the learner is gone');
like(slurp_file($node->logfile), qr/terminated by signal 9/, 'the log shows the crashes');
is($node->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the audit chain holds at the end');
$node->stop;
done_testing();
