# The keyed audit chain (issue 15, points 2 and 6): every seal carries a MAC
# under the key file's audit subkey, anchors are published to the server
# log, pdp.audit_anchor and a file outside the data directory, and
# verify_audit_log checks the chain against them.
#  - a superuser's rewrite, with triggers disabled and the chain recomputed
#    with pdp's own functions (valid MACs: sealing holds the key), is found
#    against the published anchors, and the next anchor reports it in the log;
#  - the same with the anchor table rewritten too is found from the file;
#  - a rewrite recomputed without the key (hashes only) is found by the MACs;
#  - without the key file, verification says it could not check the MACs;
#  - with another key file, the MACs do not match;
#  - with pdp.audit_log_json on, each entry is one JSON line in the log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $key_file = pdp_key_file();
my $node = pdp_node('keyed', key_file => $key_file, preload => 'pg_cron,pdp_ext',
	conf => "cron.database_name = 'postgres'\n");
my $anchor_dir = PostgreSQL::Test::Utils::tempdir();
my $anchor_file = "$anchor_dir/anchors.txt";

$node->safe_psql('postgres', q{
	CREATE EXTENSION pg_cron;
	CREATE EXTENSION pdp_ext;
	CREATE TABLE learners (id bigint PRIMARY KEY, email text);
	INSERT INTO learners SELECT g, 'learner' || g || '@mail.kz' FROM generate_series(1, 20) g;
	SELECT pdp.register_table('learners', 'id');
	SELECT pdp.define_purpose('news', 'consent');
	SELECT pdp.grant_consent(g, 'news') FROM generate_series(1, 8) g;
});
my $v = $node->safe_psql('postgres', 'SELECT ok, keyed, legacy_entries FROM pdp.verify_audit_log()');
is($v, 't|t|0', 'the chain verifies with its MACs, no legacy segment on a fresh install');
is($node->safe_psql('postgres', 'SELECT count(*) FROM pdp.audit_seal WHERE mac IS NULL OR key_version IS NULL'), '0',
	'every seal carries a MAC and its key version');
like($node->safe_psql('postgres', 'SELECT entry_id, seq, length(hash), length(mac), key_version FROM pdp.audit_head()'),
	qr/^\d+\|\d+\|32\|32\|1$/, 'audit_head gives the head entry, position, hash, MAC and key version');

# Anchors: one call schedules the job; refused file locations.
my $job = $node->safe_psql('postgres', "SELECT pdp.schedule_audit_anchor('*/5 * * * *', '$anchor_file')");
like($node->safe_psql('postgres', "SELECT command FROM cron.job WHERE jobid = $job"),
	qr/^SELECT pdp\.publish_audit_anchor\('\Q$anchor_file\E'\)$/, 'schedule_audit_anchor sets up the pg_cron job');
my $data = $node->data_dir;
my ($rc, $out, $err) = $node->psql('postgres', "SELECT pdp.schedule_audit_anchor('* * * * *', '$data/anchors.txt')");
like($err, qr/outside the data directory/, 'an anchor file inside the data directory is refused');
($rc, $out, $err) = $node->psql('postgres', "SELECT pdp.publish_audit_anchor('$key_file')");
like($err, qr/must not be the key file|not a pdp_ext anchor file/, 'the key file is refused as an anchor file');
($rc, $out, $err) = $node->psql('postgres', "SELECT pdp.publish_audit_anchor('$data/postgresql.conf')");
like($err, qr/outside the data directory/, 'a file of the data directory is refused');
($rc, $out, $err) = $node->psql('postgres', "SELECT pdp.publish_audit_anchor('relative.txt')");
like($err, qr/absolute path/, 'a relative path is refused');

# Publish (what the job runs), write more, publish again.
$node->safe_psql('postgres', "SELECT pdp.publish_audit_anchor('$anchor_file')");
my $first_anchor = $node->safe_psql('postgres', 'SELECT max(seq) FROM pdp.audit_anchor');
$node->safe_psql('postgres', q{SELECT pdp.grant_consent(g, 'news') FROM generate_series(9, 12) g});
$node->safe_psql('postgres', "SELECT pdp.publish_audit_anchor('$anchor_file')");
$node->safe_psql('postgres', q{SELECT pdp.grant_consent(g, 'news') FROM generate_series(13, 14) g});
my $lines = slurp_file($anchor_file);
like($lines, qr/\A# pdp_ext audit anchors[^\n]*\n(\d+ \d+ \S+ [0-9a-f]{64} [0-9a-f]{64} 1\n){2}\z/,
	'the anchor file holds a header and one line per anchor');
like(slurp_file($node->logfile), qr/LOG:  pdp_audit_anchor \d+ \d+ \S+ [0-9a-f]{64} [0-9a-f]{64} 1\n/,
	'each anchor is in the server log');
is($node->safe_psql('postgres', 'SELECT ok, keyed, anchors FROM pdp.verify_audit_log()'), 't|t|2',
	'the chain verifies against both anchors');
my $unanchored = $node->safe_psql('postgres', q{
	SELECT v.first_unanchored_id = (SELECT a.entry_id FROM pdp.audit_seal a
	                                  WHERE a.seq = (SELECT max(seq) FROM pdp.audit_anchor) + 1)
	  FROM pdp.verify_audit_log() v});
is($unanchored, 't', 'verification names the first entry after the last good anchor');

# A superuser's rewrite, recomputed with pdp's own functions: an entry
# before the first anchor is edited, every later seal deleted, the head
# reset and the queue rebuilt, then pdp.seal_audit_log reseals it all with
# valid MACs.
my $victim = $node->safe_psql('postgres', q{SELECT min(id) FROM pdp.audit_log WHERE action = 'grant_consent'});
my $victim_seq = $node->safe_psql('postgres', "SELECT seq FROM pdp.audit_seal WHERE entry_id = $victim");
ok($victim_seq < $first_anchor, 'the edited entry lies before the first anchor');
my $rewrite = qq{
	SET session_replication_role = replica;
	UPDATE pdp.audit_log SET details = '{"forged": true}' WHERE id = $victim;
	DELETE FROM pdp.audit_seal WHERE seq >= $victim_seq;
	UPDATE pdp.audit_chain SET head_seq = s.seq, head_hash = s.hash, head_mac = s.mac
	  FROM pdp.audit_seal s WHERE s.seq = $victim_seq - 1;
	DELETE FROM pdp.audit_queue_marker;
	RESET session_replication_role;
	SELECT pdp.seal_audit_log() > 0;
};
$node->safe_psql('postgres', $rewrite);
is($node->safe_psql('postgres', 'SELECT count(*) FROM pdp.audit_seal WHERE seq >= ' . $victim_seq . ' AND mac IS NOT NULL') > 0,
	1, 'the rewritten chain has fresh MACs (made with the key, through pdp.seal_audit_log)');
my $bad = $node->safe_psql('postgres', q{SELECT ok, first_bad_id IS NOT NULL, message LIKE '%anchor%' FROM pdp.verify_audit_log()});
is($bad, 'f|t|t', 'the rewrite is found against the published anchors');
my $offset = -s $node->logfile;
$node->safe_psql('postgres', "SELECT pdp.publish_audit_anchor('$anchor_file')");
like(substr(slurp_file($node->logfile), $offset), qr/WARNING:  pdp_ext audit chain failed verification before publishing an anchor/,
	'the next anchor reports the rewrite in the server log');
is($node->safe_psql('postgres', 'SELECT chain_ok FROM pdp.audit_anchor ORDER BY id DESC LIMIT 1'), 'f',
	'and records it with the anchor');

# The same rewrite with the anchor table wiped too: the anchor file still tells.
$node->safe_psql('postgres', q{
	SET session_replication_role = replica;
	DELETE FROM pdp.audit_anchor WHERE chain_ok;
	RESET session_replication_role;
});
is($node->safe_psql('postgres', 'SELECT ok, anchors > 0 FROM pdp.verify_audit_log()'), 'f|t',
	'with the anchor rows deleted, the anchor file still exposes the rewrite');

# A fresh cluster state for the next attacks: a new node (the chain above is
# broken on purpose).
$node->stop;

my $node2 = pdp_node('keyed2', key_file => $key_file);
$node2->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	SELECT pdp.define_purpose('news', 'consent');
	SELECT pdp.grant_consent(g, 'news') FROM generate_series(1, 6) g;
});
is($node2->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'a second chain verifies');

# Recomputed without the key: the superuser edits an entry and recomputes
# every hash with pdp._audit_hash, but cannot make MACs.
($rc, $out, $err) = $node2->psql('postgres', q{SELECT pdp._audit_mac(NULL, 1, sha256(''), 1)});
like($err, qr/permission denied for function pdp\._audit_mac/, 'the MAC function cannot be called from SQL, by a superuser either');
$node2->safe_psql('postgres', q{
	SET session_replication_role = replica;
	UPDATE pdp.audit_log SET details = '{"forged": true}' WHERE id = (SELECT entry_id FROM pdp.audit_seal WHERE seq = 2);
	DO $$
	DECLARE s record; prev bytea;
	BEGIN
	    SELECT anchor_hash INTO prev FROM pdp.audit_chain;
	    FOR s IN SELECT a.seq, l FROM pdp.audit_seal a JOIN pdp.audit_log l ON l.id = a.entry_id ORDER BY a.seq LOOP
	        prev := pdp._audit_hash(prev, s.seq, (s.l).id, (s.l).at, pdp._audit_fields(s.l));
	        UPDATE pdp.audit_seal SET hash = prev WHERE seq = s.seq;
	    END LOOP;
	    UPDATE pdp.audit_chain SET head_hash = prev;
	END $$;
	RESET session_replication_role;
});
is($node2->safe_psql('postgres', q{SELECT ok, first_bad_id = (SELECT entry_id FROM pdp.audit_seal WHERE seq = 2), message LIKE '%MAC%' FROM pdp.verify_audit_log()}),
	'f|t|t', 'a chain recomputed without the key is found by its MACs');
# A downgrade: the forger strips the MACs so the seals look legacy.
$node2->safe_psql('postgres', q{
	SET session_replication_role = replica;
	UPDATE pdp.audit_seal SET mac = NULL, key_version = NULL;
	UPDATE pdp.audit_chain SET head_mac = NULL;
	RESET session_replication_role;
});
is($node2->safe_psql('postgres', q{SELECT ok, message LIKE '%no MAC%' FROM pdp.verify_audit_log()}), 'f|t',
	'seals stripped of their MACs after the legacy segment are found');
$node2->stop;

# Verification without the key file, and with another one.
my $node3 = pdp_node('keyed3', key_file => $key_file, conf => "pdp.audit_log_json = on\n");
$node3->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE learners (id bigint PRIMARY KEY, email text);
	INSERT INTO learners VALUES (7, 'aigerim' || chr(64) || 'mail.kz');
	SELECT pdp.register_table('learners', 'id');
	SELECT pdp.define_purpose('news', 'consent');
	SELECT pdp.grant_consent(7, 'news');
});
is($node3->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'the third chain verifies');
my $log = slurp_file($node3->logfile);
my @json = $log =~ /LOG:  pdp_audit (\{[^\n]*\})\n/g;
ok(scalar(@json) >= 3, 'with pdp.audit_log_json on, the entries are JSON lines in the server log');
like($json[-1], qr/^\{"id" : \d+, "seq" : \d+, "at" : "[^"]+", "role" : "[^"]+", "session_role" : "[^"]+", "action" : "grant_consent", "object" : "news", "subject" : "[0-9a-f]{32}", "details" : \{[^\n]*\}, "hash" : "[0-9a-f]{64}", "mac" : "[0-9a-f]{64}"\}$/,
	'a JSON line has the documented fields, the subject as its pseudonym');
unlike($log, qr/aigerim\@mail\.kz/, 'no personal value in the log');

$node3->append_conf('postgresql.conf', "pdp.key_file = ''\n");
$node3->reload;
my ($r3, $o3, $e3) = $node3->psql('postgres', 'SELECT ok IS NULL, keyed, message FROM pdp.verify_audit_log()');
like($o3, qr/^t\|f\|keyed verification was not possible/, 'without the key file, verification says it could not check the MACs (ok is not true)');
like($e3, qr/WARNING:  keyed verification was not possible/, 'and warns');

my $other_key = pdp_key_file();
$node3->append_conf('postgresql.conf', "pdp.key_file = '$other_key'\n");
$node3->reload;
is($node3->safe_psql('postgres', q{SELECT ok, message LIKE '%another one%' FROM pdp.verify_audit_log()}), 'f|t',
	'with another key file (a restore on another server), the MACs do not match');
$node3->append_conf('postgresql.conf', "pdp.key_file = '$key_file'\n");
$node3->reload;
is($node3->safe_psql('postgres', 'SELECT ok FROM pdp.verify_audit_log()'), 't', 'with the right key file back, it verifies again');

# A key rotation: new seals are made with the new version, old ones keep
# verifying with theirs; a key file without the old version cannot check them.
my $rotated = PostgreSQL::Test::Utils::tempdir() . '/rotated.keys';
my $new_key = `openssl rand -hex 32`;
chomp $new_key;
open my $fh, '>', $rotated or die $!;
print $fh slurp_file($key_file), "2 $new_key\n";
close $fh;
chmod 0600, $rotated;
$node3->append_conf('postgresql.conf', "pdp.key_file = '$rotated'\n");
$node3->reload;
$node3->safe_psql('postgres', q{SELECT pdp.grant_consent(8, 'news')});
is($node3->safe_psql('postgres', q{SELECT ok FROM pdp.verify_audit_log()}), 't', 'after a key rotation the chain verifies');
is($node3->safe_psql('postgres', q{SELECT string_agg(DISTINCT key_version::text, ',') FROM pdp.audit_seal}), '1,2',
	'with seals under both versions (the audit worker follows the reload)');
my $only_new = PostgreSQL::Test::Utils::tempdir() . '/only-new.keys';
open $fh, '>', $only_new or die $!;
print $fh "2 $new_key\n";
close $fh;
chmod 0600, $only_new;
$node3->append_conf('postgresql.conf', "pdp.key_file = '$only_new'\n");
$node3->reload;
($r3, $o3, $e3) = $node3->psql('postgres', 'SELECT ok IS NULL, keyed, message FROM pdp.verify_audit_log()');
like($o3, qr/^t\|f\|keyed verification was not possible: key version\(s\) 1 are not in the key file/,
	'with the old version gone from the key file, verification says which seals it could not check');

done_testing();
