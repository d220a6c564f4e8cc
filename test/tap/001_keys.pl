# Key file handling in a real server: loading, rotation by reload, and every
# way a key file can be wrong.  Key bytes must never reach an error or the log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('keys');
$node->init;
my $keydir = PostgreSQL::Test::Utils::tempdir();
my $keyfile = "$keydir/pdp.keys";
my @hex;

sub new_key { my $k = `openssl rand -hex 32`; chomp $k; push @hex, $k; return $k; }
sub write_keys {
	my ($content, $mode) = @_;
	open my $fh, '>', $keyfile or die $!;
	print $fh $content;
	close $fh;
	chmod($mode // 0600, $keyfile);
}
# Run one statement in a new session; return (stdout, stderr).
sub try_sql {
	my ($sql) = @_;
	my ($out, $err) = ('', '');
	$node->psql('postgres', $sql, stdout => \$out, stderr => \$err,
		extra_params => ['-v', 'VERBOSITY=verbose']);
	return ($out, $err);
}

write_keys("# test keys\n1 " . new_key() . "\n");
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pdp_ext'\npdp.key_file = '$keyfile'\nlog_statement = none\nlog_min_messages = debug1\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pdp_ext');

is($node->safe_psql('postgres', 'SELECT version, active FROM pdp.key_status()'),
	'1|t', 'a valid key file loads with one active version');

# Rotation: a long-lived session sees a new version after a reload.
my $session = $node->background_psql('postgres');
is($session->query_safe('SELECT max(version) FROM pdp.key_status()'), '1', 'session starts on version 1');
my $fp1 = $session->query_safe('SELECT fingerprint FROM pdp.key_status() WHERE version = 1');
write_keys("1 $hex[0]\n2 " . new_key() . "\n");
$node->reload;
my $seen = '';
foreach (1 .. 100)
{
	$seen = $session->query_safe('SELECT version FROM pdp.key_status() WHERE active');
	last if $seen eq '2';
	select(undef, undef, undef, 0.1);
}
is($seen, '2', 'after a reload the same session uses the new version');
is($session->query_safe('SELECT fingerprint FROM pdp.key_status() WHERE version = 1'), $fp1,
	'the old version is still there, with the same fingerprint');
$session->quit;

# Every broken key file is refused with SQLSTATE F0000 or a file-access code.
my @cases = (
	[ 'group-readable file', "1 $hex[0]\n", 0640, qr/F0000: key file ".*" has group or world access/ ],
	[ 'world-readable file', "1 $hex[0]\n", 0604, qr/F0000: key file ".*" has group or world access/ ],
	[ 'short key', "1 abcdef\n", 0600, qr/F0000: key file ".*" is malformed at line 1/ ],
	[ 'non-hex key', "1 " . ('zz' x 32) . "\n", 0600, qr/F0000: key file ".*" is malformed at line 1/ ],
	[ 'version 0', "0 $hex[0]\n", 0600, qr/F0000: .*malformed at line 1.*\n.*from 1 to 65535/ ],
	[ 'duplicate version', "1 $hex[0]\n1 $hex[1]\n", 0600, qr/F0000: .*malformed at line 2.*\n.*only once/ ],
	[ 'no key at all', "# nothing here\n\n", 0600, qr/F0000: key file ".*" is malformed\n.*holds no key/ ],
	[ 'trailing garbage', "1 $hex[0] MARKER-SECRET-LINE\n", 0600, qr/F0000: .*malformed at line 1/ ],
);
foreach my $case (@cases)
{
	my ($name, $content, $mode, $expect) = @$case;
	write_keys($content, $mode);
	my ($out, $err) = try_sql('SELECT * FROM pdp.key_status()');
	like($err, $expect, "refused: $name");
	unlike($err, qr/MARKER-SECRET-LINE|[0-9a-f]{64}|abcdef/, "no file content in the error: $name");
}

# A missing file, an unset setting, a file inside the data directory.
unlink $keyfile;
my ($out, $err) = try_sql('SELECT * FROM pdp.key_status()');
like($err, qr/58P01: could not open key file/, 'refused: missing file');

$node->append_conf('postgresql.conf', "pdp.key_file = ''\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('pdp.key_file') = ''") or die;
($out, $err) = try_sql('SELECT * FROM pdp.key_status()');
like($err, qr/F0000: pdp_ext has no key file/, 'refused: no key file configured');

my $inside = $node->data_dir . '/pdp.keys';
open my $fh, '>', $inside or die $!; print $fh "1 $hex[0]\n"; close $fh; chmod 0600, $inside;
$node->append_conf('postgresql.conf', "pdp.key_file = '$inside'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('pdp.key_file') <> ''") or die;
($out, $err) = try_sql('SELECT * FROM pdp.key_status()');
like($err, qr/F0000: key file ".*" is inside the data directory/, 'refused: file inside the data directory');

# A relative path is refused by the setting itself; the old value stays.
my $offset = -s $node->logfile;
$node->append_conf('postgresql.conf', "pdp.key_file = 'relative.keys'\n");
$node->reload;
ok($node->wait_for_log(qr/invalid value for parameter "pdp.key_file"/, $offset), 'relative path refused at reload');

# Back to a good file: the same sessions recover without a restart.
write_keys("1 $hex[0]\n2 $hex[1]\n");
$node->append_conf('postgresql.conf', "pdp.key_file = '$keyfile'\n");
$node->reload;
$node->poll_query_until('postgres', "SELECT current_setting('pdp.key_file') = '$keyfile'") or die;
is($node->safe_psql('postgres', 'SELECT count(*) FROM pdp.key_status()'), '2', 'a fixed file is used again');

# Checks are made on the opened descriptor: an executable or setuid file, a
# FIFO (which must not block the open) and a symbolic link into the data
# directory are refused.
write_keys("1 $hex[0]\n2 $hex[1]\n", 0700);
($out, $err) = try_sql('SELECT * FROM pdp.key_status()');
like($err, qr/F0000: key file ".*" has execute or special permission bits/, 'refused: mode 0700');
write_keys("1 $hex[0]\n2 $hex[1]\n", 04600);
($out, $err) = try_sql('SELECT * FROM pdp.key_status()');
like($err, qr/F0000: key file ".*" has execute or special permission bits/, 'refused: a setuid key file');
write_keys("1 $hex[0]\n2 $hex[1]\n", 0400);
is($node->safe_psql('postgres', 'SELECT count(*) FROM pdp.key_status()'), '2', 'mode 0400 is accepted');
my $good = "$keyfile.good";
rename $keyfile, $good or die $!;
system('mkfifo', '-m', '0600', $keyfile) == 0 or die 'mkfifo failed';
($out, $err) = try_sql("SET statement_timeout = '10s'; SELECT * FROM pdp.key_status()");
like($err, qr/F0000: key file ".*" is not a regular file/, 'refused: a FIFO, without blocking');
unlink $keyfile;
symlink $inside, $keyfile or die $!;
($out, $err) = try_sql('SELECT * FROM pdp.key_status()');
like($err, qr/F0000: key file ".*" is inside the data directory/, 'refused: a symbolic link into the data directory');
unlink $keyfile;
rename $good, $keyfile or die $!;
chmod 0600, $keyfile;

# The key memory is excluded from core dumps ("dd" in the mapping's VmFlags)
# and, where RLIMIT_MEMLOCK allows, locked ("lo", or a LOG line saying why not).
my $bg = $node->background_psql('postgres');
my $pid = $bg->query_safe('SELECT pg_backend_pid()');
$bg->query_safe('SELECT count(*) FROM pdp.key_status()');
$pid =~ s/\D//g;
my $smaps = slurp_file("/proc/$pid/smaps");
my @flags = ($smaps =~ /^VmFlags:(.*)$/mg);
ok((grep { / dd/ } @flags) > 0, 'the key memory is excluded from core dumps (MADV_DONTDUMP)');
ok((grep { / dd/ && / lo/ } @flags) > 0 || slurp_file($node->logfile) =~ /could not lock pdp_ext's keys in memory/,
	'the key memory is locked, or a LOG line says it could not be');
$bg->quit;

# Nothing of any key ever reached the server log.
$node->stop;
my $log = slurp_file($node->logfile);
foreach my $k (@hex)
{
	ok(index($log, $k) < 0 && index($log, substr($k, 0, 16)) < 0, 'no key bytes in the server log');
}
unlike($log, qr/MARKER-SECRET-LINE/, 'no key-file line in the server log');

done_testing();
