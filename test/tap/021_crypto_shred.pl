# Crypto-shredding reaches the copies taken before an erasure (issue 17,
# point 5; doc/keys.md).  A table's "shred" column holds each value
# encrypted under a key of its row's subject, derived from the key file and
# a salt in the subject key store next to it (outside the data directory).
# A base backup, the WAL archive, a pg_dump and a logical replica are taken
# before a learner is erased; afterwards each is restored or read with the
# key material that survives the erasure (today's key file and store): the
# erased learner's values are there but do not decrypt, everyone else's do.
# A copy of the store kept from before the erasure still decrypts them,
# which is why doc/keys.md says store backups must expire.
use strict;
use warnings;
use File::Copy;
use File::Find;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $key_file = pdp_key_file();
my $store = "$key_file.subjects";
my $primary = pdp_node('primary', key_file => $key_file,
	init => { allows_streaming => 'logical', has_archiving => 1 });

my $schema = q{
	CREATE TABLE learner (id bigint PRIMARY KEY, email text, note text);
	SELECT pdp.register_table('learner', 'id');
};
$primary->safe_psql('postgres', 'CREATE EXTENSION pdp_ext;' . $schema . q{
	SELECT pdp.set_column_rule('learner', 'note', 'shred');
	SELECT pdp.pseudonymise_on_write('learner');
	INSERT INTO learner SELECT g, 'learner' || g || '@mail.kz', 'note of learner ' || g FROM generate_series(1, 20) g;
	SELECT pdp.create_masked_view('learner');
	CREATE ROLE reader LOGIN;
	GRANT SELECT ON learner_masked TO reader;
	CREATE ROLE outsider LOGIN;
	-- The subscriber reads with the same key file, store and shredding domain (doc/keys.md).
	CREATE PUBLICATION lms FOR TABLE learner, pdp.shred_domain;
});

# What every copy is checked against: learner 3 is erased, the others not.
my $clear = q{SELECT string_agg(id || '=' || coalesce(pdp.unshred('learner', 'note', note, id::text), 'NULL'), ',' ORDER BY id)
                FROM learner WHERE id IN (2, 3, 4, 21)};
my $stored3 = q{SELECT count(*) FROM learner WHERE id = 3 AND note LIKE 'pdps1.%'};

is($primary->safe_psql('postgres', q{SELECT count(*) FROM learner WHERE note LIKE '%learner%'}), '0',
	'the table holds no value in clear');
is($primary->safe_psql('postgres', q{SET ROLE reader; SELECT note FROM learner_masked WHERE id = 3}), 'note of learner 3',
	'a reader of the masked view reads the value in clear');
my ($rc, $out, $err) = $primary->psql('postgres',
	q{SET ROLE outsider; SELECT pdp.unshred('learner', 'note', 'pdps1.AAAA', '3')});
like($err, qr/permission denied to read shredded column "note"/, 'a role that may not read the column cannot unshred');
unlike($err, qr/note of/, 'and the message holds no value');
ok(-f $store && (((stat $store)[2] & 077) == 0), 'the subject key store sits next to the key file, mode 0600');
unlike($store, qr/^\Q${\ $primary->data_dir}\E/, 'outside the data directory');

# Another database of the same cluster (same key file, same store) names a
# different person 3: its own shredding domain keeps their keys apart.
$primary->safe_psql('postgres', 'CREATE DATABASE other');
$primary->safe_psql('other', 'CREATE EXTENSION pdp_ext;' . $schema . q{
	SELECT pdp.set_column_rule('learner', 'note', 'shred');
	SELECT pdp.pseudonymise_on_write('learner');
	INSERT INTO learner VALUES (3, 'other3@mail.kz', 'another person 3');
});
isnt($primary->safe_psql('other', 'SELECT domain FROM pdp.shred_domain'),
	$primary->safe_psql('postgres', 'SELECT domain FROM pdp.shred_domain'), 'each database has its own shredding domain');

# The copies, all before the erasure: a base backup, a dump, a replica, and
# rows written after the backup that only the WAL archive holds.
$primary->backup('base');
my $dump = $primary->basedir . '/before.dump';
command_ok([ 'pg_dump', '-Fc', '-d', $primary->connstr('postgres'), '-f', $dump ], 'pg_dump before the erasure');

my $replica = pdp_node('replica', key_file => $key_file, init => { allows_streaming => 'logical' });
$replica->safe_psql('postgres', 'CREATE EXTENSION pdp_ext;' . $schema);
$replica->safe_psql('postgres',
	"CREATE SUBSCRIPTION lms CONNECTION '" . $primary->connstr . " dbname=postgres' PUBLICATION lms");
$replica->wait_for_subscription_sync($primary, 'lms');

$primary->safe_psql('postgres', q{
	INSERT INTO learner VALUES (21, 'learner21@mail.kz', 'note of learner 21');
	UPDATE learner SET email = 'new3@mail.kz' WHERE id = 3;
});
$primary->wait_for_catchup('lms');
is($replica->safe_psql('postgres', $clear), '2=note of learner 2,3=note of learner 3,4=note of learner 4,21=note of learner 21',
	'the replica reads every value with the same key material');
$replica->safe_psql('postgres', 'ALTER SUBSCRIPTION lms DISABLE');
$primary->safe_psql('postgres', q{SELECT pg_create_restore_point('before_erasure')});

# A copy of the store kept from before the erasure (what doc/keys.md says not to keep).
my $old_keys = PostgreSQL::Test::Utils::tempdir();
copy($key_file, "$old_keys/pdp.keys") or die "copy: $!";
copy($store, "$old_keys/pdp.keys.subjects") or die "copy: $!";
chmod 0600, "$old_keys/pdp.keys", "$old_keys/pdp.keys.subjects";

# The salts the store holds now: no file of the base backup holds one.
my $bytes = slurp_file($store);
my @salts = map { substr($bytes, 16 + 64 * $_ + 32, 32) }
  grep { substr($bytes, 16 + 64 * $_, 32) ne "\0" x 32 } 0 .. (length($bytes) - 16) / 64 - 1;
is(scalar(@salts), 22, 'one subject key per learner (21 here, 1 in the other database)');
my $found = 0;
find(sub { return unless -f $_; my $c = slurp_file($_); for my $s (@salts) { $found++ if index($c, $s) >= 0 } },
	$primary->backup_dir . '/base');
is($found, 0, 'the base backup holds none of the subject keys');

# The erasure.
my $receipt = $primary->safe_psql('postgres', q{SELECT pdp.erase_subject(3, 'request') -> 'subject_keys'});
is($receipt, '{"when": "at commit", "destroyed": 1}', 'the receipt records the destruction of the key');
is($primary->safe_psql('postgres', 'SELECT subject_keys FROM pdp.subject_key_store_status()'), '21',
	'the store has one entry fewer');
is($primary->safe_psql('other', q{SELECT pdp.unshred('learner', 'note', note, id::text) FROM learner WHERE id = 3}),
	'another person 3', "the other database's learner 3 keeps their key");
my $segment = $primary->safe_psql('postgres', 'SELECT pg_walfile_name(pg_switch_wal())');
$primary->poll_query_until('postgres', "SELECT last_archived_wal >= '$segment' FROM pg_stat_archiver")
  or die 'the WAL segment holding the restore point was not archived';
$primary->safe_psql('postgres', q{SELECT pdp.erase_subject(3, 'again')});    # nothing left to destroy: no error
is($primary->safe_psql('postgres', q{SELECT pdp.erase_subject(4, 'request') ? 'subject_keys'}), 't',
	"a second subject's erasure destroys its key too");
is($primary->safe_psql('postgres', 'SELECT subject_keys FROM pdp.subject_key_store_status()'), '20', 'two keys gone');

my $after = '2=note of learner 2,3=NULL,4=NULL,21=note of learner 21';

# 1. The base backup and the WAL archive up to before the erasure, restored
# into a second cluster with today's key file and store.
my $restored = PostgreSQL::Test::Cluster->new('restored');
$restored->init_from_backup($primary, 'base', has_restoring => 1);
$restored->append_conf('postgresql.conf', "recovery_target_name = 'before_erasure'\nrecovery_target_action = 'promote'\narchive_mode = off\n");
$restored->start;
$restored->poll_query_until('postgres', 'SELECT NOT pg_is_in_recovery()') or die 'the restored cluster did not promote';
is($restored->safe_psql('postgres', $stored3), '1', "the restored backup holds the erased learner's shredded row");
is($restored->safe_psql('postgres', q{SELECT email FROM learner WHERE id = 3}), 'new3@mail.kz',
	'replayed from the WAL archive up to before the erasure');
is($restored->safe_psql('postgres', $clear), $after,
	"base backup + WAL archive: the erased learners' values do not decrypt, everyone else's do");
is($restored->safe_psql('postgres', q{SET ROLE reader; SELECT count(*) FILTER (WHERE note IS NULL) || '/' || count(*) FROM learner_masked}),
	'2/21', 'its masked view shows NULL for them and never fails');

# Why store backups must expire: with the store kept from before, they decrypt.
$restored->safe_psql('postgres', "ALTER SYSTEM SET pdp.key_file = '$old_keys/pdp.keys'");
$restored->reload;
is($restored->safe_psql('postgres', $clear),
	'2=note of learner 2,3=note of learner 3,4=note of learner 4,21=note of learner 21',
	'a copy of the store from before the erasure still decrypts them (doc/keys.md: expire store backups)');
$restored->stop;

# 2. The dump from before the erasure, restored after it.
$primary->safe_psql('postgres', 'CREATE DATABASE dst');
command_ok([ 'pg_restore', '--exit-on-error', '-d', $primary->connstr('dst'), $dump ], 'pg_restore after the erasure');
is($primary->safe_psql('dst', $stored3), '1', "the dump holds the erased learner's shredded row");
is($primary->safe_psql('dst', $clear), '2=note of learner 2,3=NULL,4=NULL',
	"dump: the erased learners' values do not decrypt, everyone else's do (21 came after the dump)");

# 3. The logical replica, which still holds the rows copied before.
is($replica->safe_psql('postgres', $stored3), '1', "the replica holds the erased learner's shredded row");
is($replica->safe_psql('postgres', $clear), $after,
	"logical replica: the erased learners' values do not decrypt, everyone else's do");

# A new value for a learner after the erasure gets a new key.
$primary->safe_psql('postgres', q{INSERT INTO learner VALUES (3, 'back@mail.kz', 'a new note')});
is($primary->safe_psql('postgres', q{SELECT pdp.unshred('learner', 'note', note, id::text) FROM learner WHERE id = 3}),
	'a new note', 'a learner written again after erasure gets a new key');

$replica->stop;
$primary->stop;
done_testing();
