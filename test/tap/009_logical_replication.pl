# Logical replication of the consent and registry tables between two
# clusters on loopback, as doc/replication.md describes: the subscriber's
# protected tables show the rows the publisher's consents allow, a
# withdrawal or restriction on the publisher reaches the subscriber's
# sessions from their next statement (row triggers enabled for replica mode
# drop their caches), and a replicated registration is checked and resolved
# against the subscriber's own table.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my %node = map { $_ => pdp_node($_, init => { allows_streaming => 'logical' }) } ('publisher', 'subscriber');
my ($pub, $sub) = @node{'publisher', 'subscriber'};

# The application's schema exists on both sides (logical replication copies
# rows, not DDL); the subscriber's learner table has a dropped column, so its
# attribute numbers differ from the publisher's.
my $schema = q{
	CREATE TABLE activity (id bigserial PRIMARY KEY, learner bigint NOT NULL, what text);
	CREATE ROLE analyst;
	GRANT SELECT ON activity TO analyst;
};
$pub->safe_psql('postgres', 'CREATE EXTENSION pdp_ext;' . $schema .
	'CREATE TABLE learner (id bigint PRIMARY KEY, email text);');
$sub->safe_psql('postgres', 'CREATE EXTENSION pdp_ext;' . $schema .
	'CREATE TABLE learner (gone int, id bigint PRIMARY KEY, email text); ALTER TABLE learner DROP COLUMN gone;');

$pub->safe_psql('postgres', q{
	INSERT INTO activity (learner, what) SELECT g % 100 + 1, 'login' FROM generate_series(1, 1000) g;
	SELECT pdp.register_table('activity', 'learner');
	SELECT pdp.define_purpose('analytics', 'consent', 'course analytics');
	SELECT pdp.allow_purpose('analyst', 'analytics');
	SELECT pdp.publish_policy('v1', now() + interval '11 days', repeat('ab', 32));
	SELECT pdp.grant_consent(g, 'analytics', 'v1') FROM generate_series(1, 100, 2) g;
	SELECT pdp.restrict_subject(1, 'objection');
	-- What doc/replication.md publishes: the consent and registry tables.
	CREATE PUBLICATION pdp_consent FOR TABLE
	    pdp.purpose, pdp.purpose_grant, pdp.policy_version, pdp.consent_event, pdp.consent_state,
	    pdp.restriction, pdp.restriction_event, pdp.subject_column;
	CREATE PUBLICATION lms FOR TABLE activity, learner;
});
my $conn = $pub->connstr . ' dbname=postgres';
$sub->safe_psql('postgres', "CREATE SUBSCRIPTION pdp_consent CONNECTION '$conn' PUBLICATION pdp_consent, lms");
$sub->wait_for_subscription_sync($pub, 'pdp_consent');

my $facts = q{SELECT concat_ws('/', (SELECT count(*) FROM pdp.purpose), (SELECT count(*) FROM pdp.purpose_grant),
	(SELECT count(*) FROM pdp.policy_version), (SELECT count(*) FROM pdp.consent_event),
	(SELECT count(*) FROM pdp.consent_state), (SELECT count(*) FROM pdp.restriction),
	(SELECT count(*) FROM pdp.restriction_event), (SELECT count(*) FROM pdp.subject_column))};
is($sub->safe_psql('postgres', $facts), $pub->safe_psql('postgres', $facts),
	'the initial copy brings purposes, grants, policy versions, consents, restrictions and the registry');
is($sub->safe_psql('postgres', 'SELECT table_name, subject_column FROM pdp.registered_tables'), 'activity|learner',
	'the subscriber sees the publisher\'s registration');

# Protection is the subscriber's own (policies are not replicated).
$sub->safe_psql('postgres', q{SELECT pdp.protect_table('activity')});
my $read = q{SET ROLE analyst; SET pdp.purpose = 'analytics'; SELECT count(*) FROM activity};
is($sub->safe_psql('postgres', $read), '490', 'the subscriber shows consenting, unrestricted learners only');

# A session that has cached consents sees changes made on the publisher.
my $session = $sub->background_psql('postgres');
$session->query_safe(q{SET ROLE analyst; SET pdp.purpose = 'analytics'});
is($session->query_safe('SELECT count(*) FROM activity'), '490', 'a subscriber session caches the consents');
$pub->safe_psql('postgres', q{SELECT pdp.withdraw_consent(3, 'analytics')});
$pub->wait_for_catchup('pdp_consent');
is($session->query_safe('SELECT count(*) FROM activity'), '480',
	'a withdrawal on the publisher hides the learner in that session\'s next statement');
$pub->safe_psql('postgres', q{SELECT pdp.restrict_subject(5, 'dispute')});
$pub->wait_for_catchup('pdp_consent');
is($session->query_safe('SELECT count(*) FROM activity'), '470', 'so does a restriction');
$pub->safe_psql('postgres', q{SELECT pdp.grant_consent(2, 'analytics'); SELECT pdp.lift_restriction(1)});
$pub->wait_for_catchup('pdp_consent');
is($session->query_safe('SELECT count(*) FROM activity'), '490', 'and a new consent and a lifted restriction show again');
$pub->safe_psql('postgres', q{SELECT pdp.disallow_purpose('analyst', 'analytics')});
$pub->wait_for_catchup('pdp_consent');
my ($rc, $out, $err) = $sub->psql('postgres', $read);
like($err, qr/not allowed|purpose/, 'a purpose disallowed on the publisher is refused on the subscriber');
$session->quit;
$pub->safe_psql('postgres', q{SELECT pdp.allow_purpose('analyst', 'analytics')});

# A registration made on the publisher is resolved against the subscriber's
# table (attnum 2 there, 1 on the publisher).
$pub->safe_psql('postgres', q{SELECT pdp.register_table('learner', 'id')});
$pub->wait_for_catchup('pdp_consent');
is($pub->safe_psql('postgres', q{SELECT attnum FROM pdp.subject_column WHERE tbl = 'learner'::regclass}), '1',
	'the publisher registers learner.id as attribute 1');
is($sub->safe_psql('postgres', q{SELECT attnum FROM pdp.subject_column WHERE tbl = 'learner'::regclass}), '2',
	'the subscriber resolves it to its own attribute 2');
is($sub->safe_psql('postgres', $facts), $pub->safe_psql('postgres', $facts), 'both sides hold the same facts');

# Each side keeps its own audit trail, and both verify.
is($sub->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the subscriber\'s audit chain verifies');
is($pub->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the publisher\'s audit chain verifies');

done_testing();
