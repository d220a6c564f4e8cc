# Trimming the audit log keeps the rest verifiable from the recorded anchor.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $node = pdp_node('audit_trim');
$node->safe_psql('postgres', 'CREATE EXTENSION pdp_ext');

# Entries from long ago are written (and sealed) first, then today's.
$node->safe_psql('postgres', q{
	INSERT INTO pdp.audit_log (at, action, object) SELECT now() - interval '7 years', 'old action', 'o' || g FROM generate_series(1, 5) g;
	SELECT pdp.seal_audit_log();
	SELECT pdp.define_purpose('p1', 'contract');
	SELECT pdp.define_purpose('p2', 'consent');
});
is($node->safe_psql('postgres', 'SELECT ok, entries FROM pdp.verify_audit_log()'), 't|7', 'seven entries verify');
is($node->safe_psql('postgres', q{SELECT pdp.trim_audit_log('5 years')}), '5', 'the five old entries are trimmed');
is($node->safe_psql('postgres', 'SELECT anchor_seq FROM pdp.audit_chain'), '5', 'the anchor is the last trimmed seal');
is($node->safe_psql('postgres', 'SELECT ok, entries FROM pdp.verify_audit_log()'), 't|3',
	'the rest, and the trim entry itself, verify from the anchor');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pdp.audit_log WHERE action = 'old action'}), '0', 'old entries are gone');
is($node->safe_psql('postgres', q{SELECT pdp.trim_audit_log('5 years')}), '0', 'trimming again removes nothing');

# A crash empties the unlogged sealing queue; entries written just before it
# are sealed after the restart all the same.
# The background sealer is held off by a session holding the sealing lock,
# so that the crash surely finds entries in the queue.
my $holder = $node->background_psql('postgres');
$holder->query_safe(q{BEGIN; SELECT pg_advisory_xact_lock(pg_catalog.hashtext('pdp_ext audit seal'))});
$node->safe_psql('postgres', q{SELECT pdp.define_purpose('p' || g, 'contract') FROM generate_series(3, 12) g});
is($node->safe_psql('postgres', 'SELECT count(*) > 0 FROM pdp.audit_unsealed'), 't', 'some entries wait to be sealed');
$node->stop('immediate');
eval { $holder->quit };
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM pdp.audit_unsealed'), '0', 'the crash emptied the queue');
is($node->safe_psql('postgres', 'SELECT ok, entries FROM pdp.verify_audit_log()'), 't|13',
	'after the restart every entry is sealed and verifies');

# Outside a trim, deletion stays refused.
my ($out, $err) = ('', '');
$node->psql('postgres', 'DELETE FROM pdp.audit_log', stdout => \$out, stderr => \$err);
like($err, qr/append-only/, 'delete refused after a trim');
$node->stop;
done_testing();
