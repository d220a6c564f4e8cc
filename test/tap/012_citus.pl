# pdp_ext on a Citus cluster (issue 18, step 1: refuse what is unsafe): a
# coordinator and two workers on loopback, Citus and pdp_ext preloaded on
# each, one key file for all three.  On a hash-distributed table and a
# reference table with registered subject columns, retention and a hold on
# one learner:
#
# - every call that is not correct on Citus tables fails with SQLSTATE 0A000
#   and leaves the row counts (per learner and in all) exactly as they were;
# - the purges (CALL pdp.purge, pdp.purge_expired) skip the Citus tables with
#   a warning naming them, record the refusal in pdp.purge_log, and still
#   purge an ordinary local table exactly (held learner kept);
# - a table distributed after it was registered is refused too (the check is
#   made at use time);
# - export and delete-erasure on the distributed and the reference table
#   return and remove exactly the subject's rows.
#
# Citus is built from ../shared/fixtures/citus/ by tools/build-citus.sh
# (run by make test); without it the suite is skipped.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $pkglibdir = `pg_config --pkglibdir`;
chomp $pkglibdir;
plan skip_all => "Citus is not installed in $pkglibdir (tools/build-citus.sh builds it from ../shared/fixtures/citus/)"
  unless -f "$pkglibdir/citus.so";

# One key file for every node: pseudonyms pushed down to workers must agree.
my $key = pdp_key_file();
my %node;
for my $name (qw(coordinator worker1 worker2))
{
	$node{$name} = pdp_node($name,
		preload  => 'citus,pdp_ext',
		key_file => $key,
		conf     => "listen_addresses = '127.0.0.1'\n"
		  . "citus.node_conninfo = 'sslmode=disable'\n"
		  . "citus.shard_count = 8\n"
		  . "max_prepared_transactions = 20\n"
		  . "pdp.purge_max_share = 1\n");    # its purges remove most of small tables: no safety valve
	$node{$name}->safe_psql('postgres', 'CREATE EXTENSION citus; CREATE EXTENSION pdp_ext;');
}
my $c = $node{coordinator};
$c->safe_psql('postgres',
	"SELECT citus_set_coordinator_host('127.0.0.1', " . $c->port . ");"
	  . join('', map { "SELECT citus_add_node('127.0.0.1', " . $node{$_}->port . ");" } qw(worker1 worker2)));
is($c->safe_psql('postgres', 'SELECT count(*) FROM citus_get_active_worker_nodes()'), '2', 'two active workers');

# The application's tables: activity is hash-distributed (by its key), ref a
# reference table, grades a distributed table erasure anonymises, local_log
# an ordinary table; later is registered and given retention first and
# distributed afterwards.  1200 rows each, learners 0..39, a row every 13
# hours back, so that about half are older than a year.
my $rows = q{SELECT g, g % 40, now() - g * interval '13 hours', 'note ' || g FROM generate_series(1, 1200) g};
$c->safe_psql('postgres', qq{
	CREATE TABLE activity (id bigint PRIMARY KEY, learner bigint NOT NULL, at timestamptz NOT NULL, note text);
	CREATE TABLE ref (id bigint PRIMARY KEY, learner bigint, at timestamptz NOT NULL, note text);
	CREATE TABLE grades (id bigint PRIMARY KEY, learner bigint, at timestamptz NOT NULL, note text);
	CREATE TABLE local_log (id bigint PRIMARY KEY, learner bigint, at timestamptz NOT NULL, note text);
	CREATE TABLE later (id bigint PRIMARY KEY, learner bigint, at timestamptz NOT NULL, note text);
	SELECT create_distributed_table('activity', 'id');
	SELECT create_reference_table('ref');
	SELECT create_distributed_table('grades', 'id');
	INSERT INTO activity $rows;
	INSERT INTO ref $rows;
	INSERT INTO grades $rows;
	INSERT INTO local_log $rows;
	INSERT INTO later $rows;
	SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['activity', 'ref', 'local_log', 'later']::regclass[]) t;
	SELECT pdp.register_table('grades', 'learner', on_erase => 'anonymise');
	SELECT pdp.set_retention(t, '1 year', 'at') FROM unnest(ARRAY['activity', 'ref', 'local_log', 'later']::regclass[]) t;
	SELECT create_distributed_table('later', 'id');
	SELECT pdp.place_hold(7, 'dispute');
});

is( $c->safe_psql('postgres', q{
		SELECT string_agg(t || '=' || coalesce(pdp._citus_table_kind(t), 'none'), ' ' ORDER BY t::text)
		  FROM unnest(ARRAY['activity', 'grades', 'later', 'local_log', 'ref']::regclass[]) t}),
	'activity=distributed grades=distributed later=distributed local_log=none ref=reference',
	'_citus_table_kind reads Citus\'s metadata');

# Rows per learner in every table, and in all: what no refused call may change.
my $tables = [qw(activity ref grades local_log later)];
sub counts
{
	my ($t) = @_;
	return $c->safe_psql('postgres', qq{
		SELECT sum(n) || ' rows; ' || string_agg(learner || ':' || n || '/' || linked || '/' || notes, ' ' ORDER BY learner)
		  FROM (SELECT coalesce(learner, -1) AS learner, count(*) AS n, count(learner) AS linked,
		               md5(string_agg(note, ',' ORDER BY id)) AS notes
		          FROM $t GROUP BY 1) x});
}
sub all_counts { return join("\n", map { "$_: " . counts($_) } @$tables); }
my $before = all_counts();
like($before, qr/^activity: 1200 rows; /, 'the distributed table has its rows');

# A refused call: SQLSTATE 0A000, the message naming the table, the hint,
# and not a row changed anywhere.
sub refused
{
	my ($sql, $msg, $name) = @_;
	my ($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	isnt($ret, 0, "$name: fails");
	like($err, qr/ERROR:  0A000: \Q$msg\E/, "$name: SQLSTATE 0A000, \"$msg\"");
	like($err, qr/HINT:  See "What is refused on Citus tables" in doc\/scaling\.md/, "$name: with the hint");
	is(all_counts(), $before, "$name: no row changed");
}

refused(q{SELECT pdp.protect_table('activity')}, 'cannot protect distributed table "activity"', 'protect_table on a distributed table');
refused(q{SELECT pdp.protect_table('ref')}, 'cannot protect reference table "ref"', 'protect_table on a reference table');
refused(q{SELECT pdp.set_column_rule('activity', 'note', 'mask')},
	'cannot set column rules on distributed table "activity"', 'set_column_rule');
refused(q{CALL pdp.apply_rules('grades')}, 'cannot apply column rules to distributed table "grades"', 'apply_rules');
refused(q{SELECT pdp.pseudonymise_on_write('ref')},
	'cannot install the on-write trigger on reference table "ref"', 'pseudonymise_on_write');
refused(q{SELECT pdp.set_retention('activity', '2 years')},
	'cannot set retention without an anchor column on distributed table "activity"', 'set_retention without an anchor');
refused(q{SELECT pdp._purge_rows('activity', 'delete', ARRAY(SELECT ctid FROM activity WHERE at < now() - interval '1 year' LIMIT 50))},
	'cannot purge distributed table "activity"', 'deleting by ctid');
refused(q{SELECT pdp.erase_subject(12, 'asked')},
	'cannot anonymise rows of distributed table "grades"', 'anonymising erasure (the whole erasure)');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.erasure}), '0', 'no erasure receipt was stored');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('activity'::regclass, 'ref'::regclass) AND NOT tgisinternal}),
	'0', 'no trigger was installed on the Citus tables');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pg_policy WHERE polrelid IN ('activity'::regclass, 'ref'::regclass)}),
	'0', 'no policy was installed on the Citus tables');

# The purges: Citus tables skipped with a warning, the local table purged exactly.
my $due = $c->safe_psql('postgres', q{SELECT count(*) FROM local_log WHERE at + interval '1 year' < now() AND learner <> 7});
my $held = $c->safe_psql('postgres', q{SELECT count(*) FROM local_log WHERE learner = 7});
cmp_ok($due, '>', 400, "$due local rows are due");
my $local_before = $c->safe_psql('postgres', 'SELECT count(*) FROM local_log');
my %other_before = map { $_ => counts($_) } qw(activity ref grades later);

my ($ret, $out, $err) = $c->psql('postgres', 'SELECT table_name, rows FROM pdp.purge_expired(dry_run => true) ORDER BY 1::text');
is($ret, 0, 'dry run succeeds');
is($out, "local_log|$due", 'dry run counts only the local table, exactly');
like($err, qr/WARNING:  purge: skipped distributed table "activity"/, 'dry run warns about the distributed table');

($ret, $out, $err) = $c->psql('postgres', 'CALL pdp.purge(batch_size => 100)');
is($ret, 0, 'CALL pdp.purge succeeds');
for my $t (qw(activity later))
{
	like($err, qr/WARNING:  purge: skipped distributed table "$t"/, "purge warns it skipped $t");
}
like($err, qr/WARNING:  purge: skipped reference table "ref"/, 'purge warns it skipped the reference table');
unlike($err, qr/"grades"/, 'a Citus table without retention is skipped quietly');
is($c->safe_psql('postgres', 'SELECT count(*) FROM local_log'), $local_before - $due, 'the local table lost exactly its due rows');
is($c->safe_psql('postgres', q{SELECT count(*) FROM local_log WHERE at + interval '1 year' < now() AND learner <> 7}), '0',
	'no due local row is left');
is($c->safe_psql('postgres', 'SELECT count(*) FROM local_log WHERE learner = 7'), $held, "the held learner's local rows are kept");
is(counts($_), $other_before{$_}, "purge changed no row of $_") for qw(activity ref grades later);
is( $c->safe_psql('postgres', q{
		SELECT l.status || ' ' || l.total_rows || ' ' ||
		       (SELECT string_agg(e->>'table' || ' ' || (e->>'sqlstate') || ' ' || (e->>'message'), '; ' ORDER BY e->>'table')
		          FROM jsonb_array_elements(l.errors) e)
		  FROM pdp.purge_log l ORDER BY l.id DESC LIMIT 1}),
	qq{finished $due public.activity 0A000 cannot purge distributed table "activity"; }
	  . qq{public.later 0A000 cannot purge distributed table "later"; public.ref 0A000 cannot purge reference table "ref"},
	'the run is recorded: the local rows counted, the refusals among its errors');

($ret, $out, $err) = $c->psql('postgres', 'SELECT table_name, rows FROM pdp.purge_expired() ORDER BY 1::text');
is($ret, 0, 'purge_expired succeeds');
is($out, '', 'purge_expired finds nothing more to purge');
like($err, qr/WARNING:  purge: skipped distributed table "activity"/, 'purge_expired warns about the distributed table');
is(counts($_), $other_before{$_}, "purge_expired changed no row of $_") for qw(activity ref grades later);

# Export and delete-erasure work on Citus tables: exactly the subject's rows.
my $ids = sub {
	my ($t, $s) = @_;
	return $c->safe_psql('postgres', "SELECT string_agg(id::text, ',' ORDER BY id) FROM $t WHERE learner = $s");
};
for my $t (qw(activity ref))
{
	is( $c->safe_psql('postgres', qq{
			SELECT string_agg(r->>'id', ',' ORDER BY (r->>'id')::bigint)
			  FROM jsonb_array_elements(pdp.export_subject(12) -> 'data' -> 'public.$t') r}),
		$ids->($t, 12), "export returns exactly learner 12's rows of $t");
}
$c->safe_psql('postgres', q{SELECT pdp.unregister_table('grades')});
my %n12 = map { $_ => $c->safe_psql('postgres', "SELECT count(*) FROM $_ WHERE learner = 12") } qw(activity ref);
my %total = map { $_ => $c->safe_psql('postgres', "SELECT count(*) FROM $_") } qw(activity ref);
my %others = map { $_ => $c->safe_psql('postgres',
	"SELECT string_agg(learner || ':' || n, ' ' ORDER BY learner) FROM (SELECT learner, count(*) n FROM $_ WHERE learner <> 12 GROUP BY 1) x") }
  qw(activity ref);
cmp_ok($n12{activity}, '>', 0, "learner 12 has $n12{activity} rows in activity");
is( $c->safe_psql('postgres', q{
		SELECT string_agg((t->>'table') || '=' || (t->>'action') || ':' || (t->>'rows'), ' ' ORDER BY t->>'table')
		  FROM jsonb_array_elements(pdp.erase_subject(12, 'asked') -> 'tables') t
		 WHERE t->>'table' IN ('public.activity', 'public.ref')}),
	"public.activity=delete:$n12{activity} public.ref=delete:$n12{ref}", 'the receipt counts exactly the subject\'s rows');
for my $t (qw(activity ref))
{
	is($c->safe_psql('postgres', "SELECT count(*) FROM $t WHERE learner = 12"), '0', "no row of learner 12 is left in $t");
	is($c->safe_psql('postgres', "SELECT count(*) FROM $t"), $total{$t} - $n12{$t}, "$t lost exactly those rows");
	is( $c->safe_psql('postgres',
			"SELECT string_agg(learner || ':' || n, ' ' ORDER BY learner) FROM (SELECT learner, count(*) n FROM $t GROUP BY 1) x"),
		$others{$t}, "every other learner's rows of $t are untouched");
}
# The reference table's copies on the workers agree with the coordinator's.
for my $w (qw(worker1 worker2))
{
	is($node{$w}->safe_psql('postgres', 'SELECT count(*) FROM ref'), $total{ref} - $n12{ref}, "${w}'s copy of ref agrees");
}

done_testing();
