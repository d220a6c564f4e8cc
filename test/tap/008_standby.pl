# A hot-standby replica, built with pg_basebackup and streaming on loopback:
# the consent-aware visibility check and the pseudonymisation functions work
# there, because the read path writes nothing; a consent withdrawn on the
# primary is applied on the standby from its next statement on; and what must
# be recorded (re-identification, consents, erasure, purges) refuses cleanly
# with SQLSTATE 25006 instead of happening unaudited.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

# The standby is restored from the primary's backup, settings included: it
# reads the same key file (on another machine, a copy of it).
my $primary = pdp_node('primary', init => { allows_streaming => 1 });

$primary->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE learner (id bigint PRIMARY KEY, email text NOT NULL, phone text, iin text);
	CREATE TABLE activity (id bigserial PRIMARY KEY, learner bigint NOT NULL REFERENCES learner, what text);
	INSERT INTO learner SELECT g, 'learner' || g || '@mail.kz', '+7701' || lpad(g::text, 7, '0'), NULL
	  FROM generate_series(1, 100) g;
	INSERT INTO activity (learner, what) SELECT g % 100 + 1, 'login' FROM generate_series(1, 1000) g;
	SELECT pdp.register_table('learner', 'id');
	SELECT pdp.register_table('activity', 'learner');
	SELECT pdp.define_purpose('analytics', 'consent', 'course analytics');
	SELECT pdp.grant_consent(g, 'analytics') FROM generate_series(1, 100, 2) g;
	SELECT pdp.restrict_subject(1, 'objection');
	CREATE ROLE analyst LOGIN;
	GRANT SELECT ON learner, activity TO analyst;
	SELECT pdp.allow_purpose('analyst', 'analytics');
	SELECT pdp.protect_table('learner');
	SELECT pdp.protect_table('activity');
	SELECT pdp.set_column_rule('learner', 'email', 'mask_email');
	SELECT pdp.set_column_rule('learner', 'phone', 'pseudo_phone', 'phone');
	SELECT pdp.create_masked_view('learner');
	GRANT SELECT ON learner_masked TO analyst;
	CREATE TABLE tokens AS SELECT id, pdp.encrypt(email) AS token FROM learner;
	GRANT pdp_reidentifier TO analyst;
	GRANT SELECT ON tokens TO analyst;
});

# The replica: pg_basebackup of the primary, then streaming replication.
$primary->backup('base');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'base', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby, 'replay');
is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'), 't', 'the replica is a hot standby');

my $read = q{SET ROLE analyst; SET pdp.purpose = 'analytics'; };
my $visible = $read . 'SELECT count(*) FROM activity';
is($standby->safe_psql('postgres', $visible), $primary->safe_psql('postgres', $visible),
	'a protected table shows the same rows on the standby as on the primary');
is($standby->safe_psql('postgres', $visible), '490',
	'consenting, unrestricted learners only (49 of 100, 10 rows each)');
is($standby->safe_psql('postgres', 'SET ROLE analyst; SELECT count(*) FROM activity'), '0',
	'without a declared purpose the standby shows nothing (fail closed)');
my ($rc, $out, $err) = $standby->psql('postgres', q{SET ROLE analyst; SET pdp.purpose = 'marketing'});
like($err, qr/purpose/, 'an undeclared purpose is refused on the standby too');
is($standby->safe_psql('postgres', q{SELECT pdp.has_consent(3, 'analytics'), pdp.has_consent(2, 'analytics')}),
	't|f', 'has_consent answers on the standby');

# Pseudonymisation on the standby equals the primary's: same key, no writes.
my $pseudo = q{SELECT md5(string_agg(pdp.pseudonym(email) || pdp.pseudo_email(email) || pdp.pseudo_phone(phone)
                                      || pdp.encrypt(email) || pdp.fpe_iin('900101300017') || pdp.mask_email(email),
                                      ',' ORDER BY id)) FROM learner};
is($standby->safe_psql('postgres', $pseudo), $primary->safe_psql('postgres', $pseudo),
	'pseudonym, pseudo_email, pseudo_phone, encrypt, fpe_iin and masks give the primary\'s values on the standby');
is($standby->safe_psql('postgres', $read . 'SELECT count(*) FROM learner_masked'), '49',
	'the masked view reads through the protection on the standby');

# A withdrawal on the primary reaches the standby's sessions (the cache
# invalidation travels in the WAL with the commit).
$primary->safe_psql('postgres', q{SELECT pdp.withdraw_consent(3, 'analytics')});
$primary->wait_for_catchup($standby, 'replay');
is($standby->safe_psql('postgres', $visible), '480', 'a withdrawal on the primary hides the learner on the standby');
# ... also in a session that had already cached the consents.
my $session = $standby->background_psql('postgres');
$session->query_safe($read);
is($session->query_safe('SELECT count(*) FROM activity'), '480', 'a long-lived standby session reads 480 rows');
$primary->safe_psql('postgres', q{SELECT pdp.withdraw_consent(5, 'analytics')});
$primary->wait_for_catchup($standby, 'replay');
is($session->query_safe('SELECT count(*) FROM activity'), '470',
	'its next statement no longer shows the learner withdrawn on the primary');
$session->quit;

# What must leave a record refuses on the standby, with SQLSTATE 25006.
foreach my $call (
	[ 'decrypt (re-identification must be audited)', $read . 'SELECT pdp.decrypt(token) FROM tokens LIMIT 1' ],
	[ 'grant_consent', q{SELECT pdp.grant_consent(2, 'analytics')} ],
	[ 'withdraw_consent', q{SELECT pdp.withdraw_consent(7, 'analytics')} ],
	[ 'erase_subject', q{SELECT pdp.erase_subject(9, 'request')} ],
	[ 'export_subject (the access is audited)', q{SELECT pdp.export_subject(9)} ],
	[ 'purge', q{CALL pdp.purge()} ])
{
	my ($name, $sql) = @$call;
	my ($rc, $out, $err) = $standby->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	like($err, qr/ERROR:\s+25006/, "$name refuses on the standby with 25006");
}
is($standby->safe_psql('postgres', q{SELECT count(*) FROM pdp.consent_event}),
	$primary->safe_psql('postgres', q{SELECT count(*) FROM pdp.consent_event}), 'and changed nothing');
like($standby->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), qr/^t$/,
	'the audit chain verifies on the standby');

my $log = slurp_file($standby->logfile);
unlike($log, qr/learner\d+\@mail\.kz/, 'no e-mail address in the standby\'s log');
unlike($log, qr/terminated by signal/, 'no backend crashed on the standby');

done_testing();
