# The server every pdp_ext TAP suite starts from: a PostgreSQL::Test::Cluster
# node with pdp_ext preloaded and a key file of its own (one version, 256 bits
# from openssl rand, mode 0600, outside the data directory).
#
#   use FindBin; use lib $FindBin::RealBin; use PdpNode;
#   my $node = pdp_node('name');                       # initialised and started
#   my $node = pdp_node('name', init => { allows_streaming => 1 },
#                       preload => 'pg_cron,pdp_ext', conf => "restart_after_crash = on\n");
package PdpNode;
use strict;
use warnings;
use Exporter 'import';
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;

our @EXPORT = qw(pdp_key_file pdp_node);

# A fresh key file; returns its path.
sub pdp_key_file
{
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $key = `openssl rand -hex 32`;
	chomp $key;
	die "openssl rand gave no key" unless $key =~ /^[0-9a-f]{64}$/;
	open my $fh, '>', "$dir/pdp.keys" or die "$dir/pdp.keys: $!";
	print $fh "1 $key\n";
	close $fh;
	chmod 0600, "$dir/pdp.keys";
	return "$dir/pdp.keys";
}

# A node with pdp_ext (and the libraries in preload) loaded at start.
# Options: init (hash for init()), preload, conf (more postgresql.conf lines),
# key_file (default: a fresh one), start (default true).
sub pdp_node
{
	my ($name, %opt) = @_;
	my $node = PostgreSQL::Test::Cluster->new($name);
	$node->init(%{ $opt{init} // {} });
	my $key_file = $opt{key_file} // pdp_key_file();
	$node->append_conf('postgresql.conf',
		"shared_preload_libraries = '" . ($opt{preload} // 'pdp_ext') . "'\n"
		  . "pdp.key_file = '$key_file'\n"
		  . "max_worker_processes = 16\n"    # pdp_ext's audit workers, one per database in use
		  . ($opt{conf} // ''));
	$node->start if $opt{start} // 1;
	return $node;
}

1;
