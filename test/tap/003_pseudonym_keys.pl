# Keyed pseudonyms against an independent computation, determinism across
# sessions and reloads, and a key rotation.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(hmac_sha256 hmac_sha256_hex);

my $key1 = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
my $key2 = 'f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100';
my $keydir = PostgreSQL::Test::Utils::tempdir();
my $keyfile = "$keydir/pdp.keys";
sub write_keys { open my $fh, '>', $keyfile or die $!; print $fh @_; close $fh; chmod 0600, $keyfile; }

# HKDF-SHA-256 (RFC 5869) for one 32-byte block, as pdp_ext derives subkeys:
# salt "pdp_ext subkey v1", info = label || 0x00 || domain.
sub subkey {
	my ($key_hex, $label, $domain) = @_;
	my $prk = hmac_sha256(pack('H*', $key_hex), 'pdp_ext subkey v1');
	return hmac_sha256($label . "\0" . $domain . "\x01", $prk);
}
sub expected_pseudonym {
	my ($key_hex, $value, $domain) = @_;
	return substr(hmac_sha256_hex($value, subkey($key_hex, 'pseudonym', $domain)), 0, 32);
}

write_keys("1 $key1\n");
my $node = PostgreSQL::Test::Cluster->new('pseudonym_keys');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pdp_ext'\npdp.key_file = '$keyfile'\nlog_statement = none\nlog_min_messages = debug1\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pdp_ext');

# Known answers: the C code and an independent Perl computation agree.
is($node->safe_psql('postgres', q{SELECT pdp.pseudonym('learner@mail.kz')}),
	expected_pseudonym($key1, 'learner@mail.kz', ''), 'pseudonym = HMAC-SHA-256(HKDF(key, "pseudonym"), value), first 128 bits');
is($node->safe_psql('postgres', q{SELECT pdp.pseudonym('learner@mail.kz', 'email')}),
	expected_pseudonym($key1, 'learner@mail.kz', 'email'), 'the domain is part of the HKDF info');
is($node->safe_psql('postgres', q{SELECT pdp.pseudonym(123456789012::bigint)}),
	expected_pseudonym($key1, '123456789012', ''), 'a bigint is hashed as its text form');
is($node->safe_psql('postgres', q{SELECT pdp.pseudonym('Сәлем')}),
	expected_pseudonym($key1, "\xd0\xa1\xd3\x99\xd0\xbb\xd0\xb5\xd0\xbc", ''), 'UTF-8 bytes are hashed as stored');

# Determinism across sessions and reloads.
my $q = q{SELECT pdp.pseudonym('x'), pdp.pseudo_email('a@b.kz'), pdp.pseudo_phone('+7 701 234 56 78'),
                 pdp.pseudo_iin('900101300017'), pdp.encrypt('x'), pdp.fpe_encrypt('0123456789')};
my $first = $node->safe_psql('postgres', $q);
is($node->safe_psql('postgres', $q), $first, 'a second session gives the same pseudonyms');
my $session = $node->background_psql('postgres');
is($session->query_safe($q), $first, 'a long-lived session too');
$node->reload;
$node->poll_query_until('postgres', 'SELECT true') or die;
is($session->query_safe($q), $first, 'a reload without a new key changes nothing');

# Rotation: add version 2.
my $token1 = $node->safe_psql('postgres', q{SELECT pdp.encrypt('rotated secret')});
my $fpe1 = $node->safe_psql('postgres', q{SELECT pdp.fpe_encrypt('0123456789')});
my $iin1 = $node->safe_psql('postgres', q{SELECT pdp.fpe_iin('900101300017')});
write_keys("1 $key1\n2 $key2\n");
$node->reload;
my $active = '';
foreach (1 .. 100)
{
	$active = $session->query_safe('SELECT version FROM pdp.key_status() WHERE active');
	last if $active eq '2';
	select(undef, undef, undef, 0.1);
}
is($active, '2', 'after rotation version 2 is active');
is($session->query_safe(q{SELECT pdp.pseudonym('learner@mail.kz')}),
	expected_pseudonym($key2, 'learner@mail.kz', ''), 'new pseudonyms use the new version');
is($session->query_safe("SELECT pdp.decrypt('$token1')"), 'rotated secret', 'a version-1 token still decrypts');
like($session->query_safe(q{SELECT pdp.encrypt('rotated secret')}), qr/^pdp1\.AAI/, 'new tokens carry version 2');
isnt($session->query_safe(q{SELECT pdp.encrypt('rotated secret')}), $token1, 'and differ from the old token');
is($session->query_safe("SELECT pdp.fpe_decrypt('$fpe1', '', 10, 1)"), '0123456789',
	'an FF1 token of version 1 decrypts with key_version => 1');
isnt($session->query_safe("SELECT pdp.fpe_decrypt('$fpe1')"), '0123456789',
	'but not with the active version (FF1 output cannot carry its version)');
is($session->query_safe("SELECT pdp.fpe_iin_decrypt('$iin1', 1)"), '900101300017', 'fpe_iin of version 1 likewise');
$session->quit;

# Removing version 1 makes its tokens undecryptable, with a clear error.
write_keys("2 $key2\n");
$node->reload;
$node->poll_query_until('postgres', q{SELECT count(*) = 1 FROM pdp.key_status()}) or die;
my ($out, $err) = ('', '');
$node->psql('postgres', "SELECT pdp.decrypt('$token1')", stdout => \$out, stderr => \$err,
	extra_params => ['-v', 'VERBOSITY=verbose']);
like($err, qr/22023: key version 1 is not in the key file/, 'a token of a removed version is refused');

$node->stop;
my $log = slurp_file($node->logfile);
ok(index($log, $key1) < 0 && index($log, $key2) < 0, 'no key in the server log');
ok(index($log, 'rotated secret') < 0, 'no plaintext in the server log');
done_testing();
