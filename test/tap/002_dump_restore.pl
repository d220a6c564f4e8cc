# pg_dump / pg_restore keeps the subject registry, even where the restored
# table's attribute numbers differ from the original's (a dropped column).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
my $keydir = PostgreSQL::Test::Utils::tempdir();
my $key = `openssl rand -hex 32`; chomp $key;
open my $fh, '>', "$keydir/pdp.keys" or die $!; print $fh "1 $key\n"; close $fh;
chmod 0600, "$keydir/pdp.keys";
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'pdp_ext'\npdp.key_file = '$keydir/pdp.keys'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE src');
$node->safe_psql('src', q{
	CREATE EXTENSION pdp_ext;
	CREATE SCHEMA "LMS";
	CREATE TABLE "LMS"."Learners" (gone int, "Learner Id" bigint PRIMARY KEY, email text);
	ALTER TABLE "LMS"."Learners" DROP COLUMN gone;
	CREATE TABLE "LMS".posts (id serial, author int REFERENCES "LMS"."Learners"("Learner Id"), editor uuid);
	SELECT pdp.register_table('"LMS"."Learners"', 'Learner Id', 'anonymise');
	SELECT pdp.register_table('"LMS".posts', 'author');
	SELECT pdp.register_table('"LMS".posts', 'editor');
	ALTER TABLE "LMS".posts RENAME COLUMN editor TO "Editor UUID";
});
my $query = 'SELECT table_name, subject_column, subject_type, on_erase FROM pdp.registered_tables ORDER BY 1, 2';
my $before = $node->safe_psql('src', $query);
is($node->safe_psql('src', q{SELECT attnum FROM pdp.subject_column WHERE col = 'Learner Id'}), '2',
	'the original column has attnum 2 (after a dropped column)');

my $dump = PostgreSQL::Test::Utils::tempdir() . '/src.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $node->connstr('src'), '-f', $dump ], 'pg_dump');
$node->safe_psql('postgres', 'CREATE DATABASE dst');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('dst'), $dump ], 'pg_restore');

is($node->safe_psql('dst', $query), $before, 'the registry is restored with current names');
is($node->safe_psql('dst', q{SELECT attnum FROM pdp.subject_column WHERE col = 'Learner Id'}), '1',
	'attnum is resolved again for the restored table');
is($node->safe_psql('dst', q{SELECT pdp.unregister_table('"LMS".posts', 'Editor UUID')}), '1',
	'restored registrations work as before');

done_testing();
