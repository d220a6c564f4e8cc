# pdp_ext on a Citus cluster (issue 18, step 1: refuse what is unsafe): a
# coordinator and two workers on loopback, Citus and pdp_ext preloaded on
# each, one key file for all three.  On a hash-distributed table and a
# reference table with registered subject columns, retention and a hold on
# one learner:
#
# - every call that is not correct on Citus tables fails with SQLSTATE 0A000
#   and leaves the row counts (per learner and in all) exactly as they were;
# - the purges (CALL pdp.purge, pdp.purge_expired) purge an ordinary local
#   table exactly (held learner kept), and the Citus tables as step 4 says;
# - a table distributed after it was registered is refused too (the check is
#   made at use time);
# - export and delete-erasure on the distributed and the reference table
#   return and remove exactly the subject's rows.
#
# Step 2 (state where it is read): pdp.citus_sync_state on the coordinator
# mirrors purposes, grants (by role name), consents and restrictions into
# reference tables; defined on the coordinator only, they are read on the
# workers: a consent purpose shows exactly the consenting learners' rows, a
# contract purpose every row; withdrawal, restriction, lifting, a renewed
# consent, a purpose redefined and a revoked grant are in force on every
# worker at the next statement (also over reused worker connections, and
# within one transaction); a bulk import and an erasure reach the
# placements; no role writes the mirror; a worker added later refuses until
# the reference tables are replicated to it.
#
# Step 3 (purposes that reach the shards): a query over the distributed
# table whose shards call pdp._visible fails with 55000 when no purpose
# reaches the workers (session-level SET, or none), and sees every row with
# SET LOCAL citus.propagate_set_commands = 'local' + SET LOCAL pdp.purpose.
#
# Step 4 (per-shard batches by key): distributed tables (one with a
# composite key), a reference table and a table distributed after its
# retention was set, with anchored retention and action delete, are purged by
# CALL pdp.purge and pdp.purge_expired of exactly the rows a plain SELECT of
# the condition counts beforehand (a held and a restricted learner's rows
# kept, every other row unchanged, the reference table's copies on the
# workers alike, the counts recorded equal); with inactivity retention, the
# inactive learners' rows likewise (held and restricted ones kept), and the
# links to them cut in a distributed table (exactly those); anonymising
# retention on distributed tables (one with a composite key) and a
# reference table anonymises, by the same per-shard bound, exactly the rows
# it anonymises in an ordinary copy (identical digests, the placements
# alike, the run's counts and audit equal), for retention and inactivity,
# and never again; a table without a primary key, an anonymising UPDATE
# that would change the distribution column, and a cut Citus cannot run (a
# randomised column) are still skipped with a warning saying why; no role
# calls the per-shard delete.  apply_rules on a
# distributed table (also with a composite key distributed by a text
# column, owned by a role without superuser) and a reference table gives
# exactly the rows it gives an ordinary table (keyed and keyless rules), the
# reference placements alike; a rule on the distribution column is refused;
# with a worker given another key file it fails (55000), no row changed.
# Anonymising erasure (set_null and set_value subject columns, set_value and
# generalise anonymisers) leaves distributed and reference tables exactly as
# an ordinary table, the rows not naming the learner unchanged; changing a
# distribution column, or randomising, refuses the whole erasure.
#
# Step 5 (pdp's triggers on shards): protect_table on a distributed and a
# reference table: Citus copies the policies (permissive: Citus drops AS
# RESTRICTIVE, so pdp's are permissive and alone on Citus tables) and, with
# citus.enable_unsafe_triggers set inside pdp's function only, the trigger
# (with the subject columns as arguments) to every shard; visibility per
# purpose kind, no purpose (55000), withdrawal and restriction at the next
# statement, restricted learners' writes refused on the shards, other
# policies refused, a renamed column failing closed, distributing a
# protected table refused by the guard on the workers, unprotect_table.
# Its second half: a table with column rules distributed anyway carries the
# rectification trigger to the shards, where an update of a classified
# column is refused (0A000, forwarded to the coordinator's client), no row
# changed and no notice lost silently; other columns are still written.
#
# Step 6 (one key, one audit trail, collected on read): key_status on the
# coordinator shows every node's fingerprints and flags a worker restarted
# with another key file; decrypts pushed down to the shards are audited on
# the workers and counted and verified by the coordinator's
# verify_audit_log and report; an edited worker chain and an unreachable
# worker are reported.
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
my ($ret, $out, $err);
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

# (Step 5 protects distributed and reference tables; a Citus local table is still refused.)
$c->safe_psql('postgres', q{
	CREATE TABLE citus_loc (id bigint PRIMARY KEY, learner bigint);
	SELECT citus_add_local_table_to_metadata('citus_loc');
});
refused(q{SELECT pdp.protect_table('citus_loc')}, 'cannot protect citus local table "citus_loc"', 'protect_table on a Citus local table');
# (Column rules on distributed and reference tables are applied by key range,
# step 4 below; a registered table's rules need the rectification trigger.)
# Before pdp.citus_sync_state() has made the disclosure mirror, column rules
# on a registered distributed table (their rectification trigger) wait for it.
{
	my ($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.set_column_rule('activity', 'note', 'mask')");
	isnt($ret, 0, 'set_column_rule on a registered distributed table before the sync: fails');
	like($err, qr/ERROR:  55000: cannot install a rectification trigger on distributed table "activity"/, 'set_column_rule before the sync: 55000');
	like($err, qr/HINT:  Run SELECT pdp.citus_sync_state\(\); on the coordinator first/, 'set_column_rule before the sync: the hint says to sync');
	is(all_counts(), $before, 'set_column_rule before the sync: no row changed');
}
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.column_rule}), '0', 'no rule was recorded');
refused(q{SELECT pdp.set_column_rule('citus_loc', 'id', 'mask')}, 'cannot set column rules on citus local table "citus_loc"', 'set_column_rule on a Citus local table');
refused(q{CALL pdp.apply_rules('citus_loc')}, 'cannot apply column rules to citus local table "citus_loc"', 'apply_rules on a Citus local table');
refused(q{SELECT pdp.pseudonymise_on_write('ref')},
	'cannot install the on-write trigger on reference table "ref"', 'pseudonymise_on_write');
refused(q{SELECT pdp.set_retention('activity', '2 years')},
	'cannot set retention without an anchor column on distributed table "activity"', 'set_retention without an anchor');
refused(q{SELECT pdp._purge_rows('activity', 'delete', ARRAY(SELECT ctid FROM activity WHERE at < now() - interval '1 year' LIMIT 50))},
	'cannot purge distributed table "activity"', 'deleting by ctid');
# (Anonymising erasure works on Citus tables, step 4 below, except what Citus
# cannot run in an UPDATE: here a randomised column of grades.)
$c->safe_psql('postgres', q{SELECT pdp.set_anonymisation('grades', 'note', 'randomise')});
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.erase_subject(12, 'asked')");
like($err, qr/ERROR:  0A000: cannot randomise column "note" of Citus table "grades"/, 'anonymising erasure randomising a column of a Citus table: refused');
like($err, qr/HINT:  Declare another anonymisation for it: pdp.set_anonymisation\('public.grades', 'note', 'set_null'\) or 'set_value'\./, 'with a hint');
is(all_counts(), $before, 'the whole erasure: no row changed');
$c->safe_psql('postgres', q{SELECT pdp.drop_anonymisation('grades', 'note')});
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.erasure}), '0', 'no erasure receipt was stored');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgrelid IN ('activity'::regclass, 'ref'::regclass, 'citus_loc'::regclass) AND NOT tgisinternal}),
	'0', 'no trigger was installed on the Citus tables');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pg_policy WHERE polrelid IN ('activity'::regclass, 'ref'::regclass, 'citus_loc'::regclass)}),
	'0', 'no policy was installed on the Citus tables');

# --- Step 4: purges by primary key, shard by shard ----------------------
# Retained Citus tables with an anchor column and action delete are purged
# by primary key: activity and later (distributed by id), ref (a reference
# table), enrol (a composite key (learner, id), distributed by learner).
# Learner 7 is held, learner 11 restricted: their rows stay.  What cannot be
# purged correctly is skipped with a warning saying why: nokey (no primary
# key), anon_bad (its anonymising UPDATE would change the distribution column).
# Anonymising retention: anon (distributed, its learner set_null), anon_c
# (distributed, a composite key (code, id)) and anon_ref (a reference table
# with that key; learner a delete column) are anonymised by the same bound,
# one UPDATE on every shard, exactly as anon_copy, an ordinary table with the
# same rows, registered as anon_c.
# enrol belongs to a role without superuser: its batches run as that owner.
$c->safe_psql('postgres', qq{
	CREATE TABLE enrol (learner bigint NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL, note text, PRIMARY KEY (learner, id));
	CREATE TABLE nokey (id bigint NOT NULL, learner bigint, at timestamptz NOT NULL, note text);
	CREATE TABLE anon (id bigint PRIMARY KEY, learner bigint, at timestamptz NOT NULL, note text);
	CREATE TABLE anon_c (id bigint NOT NULL, code text NOT NULL, learner bigint, at timestamptz NOT NULL, note text, PRIMARY KEY (code, id));
	CREATE TABLE anon_ref (id bigint NOT NULL, code text NOT NULL, learner bigint, at timestamptz NOT NULL, note text, PRIMARY KEY (code, id));
	CREATE TABLE anon_copy (id bigint NOT NULL, code text NOT NULL, learner bigint, at timestamptz NOT NULL, note text, PRIMARY KEY (code, id));
	CREATE TABLE anon_bad (learner bigint NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL, note text, PRIMARY KEY (learner, id));
	SELECT create_distributed_table('anon_c', 'id');
	SELECT create_reference_table('anon_ref');
	SELECT create_distributed_table('anon_bad', 'learner');
	INSERT INTO anon_bad SELECT g % 40, g, now() - g * interval '13 hours', 'note ' || g FROM generate_series(1, 1200) g;
	SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['anon_c', 'anon_ref', 'anon_copy']::regclass[]) t;
	SELECT pdp.register_table('anon_bad', 'learner', on_erase => 'set_value', erase_value => '0');
	SELECT pdp.set_anonymisation(t, 'note', 'set_value', erase_value => '(gone)') FROM unnest(ARRAY['anon_c', 'anon_ref', 'anon_copy', 'anon_bad']::regclass[]) t;
	SELECT pdp.set_retention(t, '1 year', 'at', action => 'anonymise') FROM unnest(ARRAY['anon_c', 'anon_ref', 'anon_copy', 'anon_bad']::regclass[]) t;
	SELECT create_distributed_table('enrol', 'learner');
	CREATE ROLE tap_owner LOGIN;   -- (Citus connects to the workers as the statement's user: the owner must log in there)
	ALTER TABLE enrol OWNER TO tap_owner;   -- its purge runs as this owner, not as a superuser
	SELECT create_distributed_table('nokey', 'id');
	SELECT create_distributed_table('anon', 'id');
	INSERT INTO enrol SELECT g % 40, g, now() - g * interval '13 hours', 'note ' || g FROM generate_series(1, 1200) g;
	INSERT INTO nokey $rows;
	INSERT INTO anon $rows;
	INSERT INTO anon_c SELECT id, (ARRAY['a-', 'A', '_b', 'B.', 'z'])[id % 5 + 1] || id, learner, at, note FROM anon;
	INSERT INTO anon_ref SELECT * FROM anon_c;
	INSERT INTO anon_copy SELECT * FROM anon_c;
	SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['enrol', 'nokey']::regclass[]) t;
	SELECT pdp.register_table('anon', 'learner', on_erase => 'set_null');
	SELECT pdp.set_anonymisation('anon', 'note', 'set_value', erase_value => '(gone)');
	SELECT pdp.set_retention(t, '1 year', 'at') FROM unnest(ARRAY['enrol', 'nokey']::regclass[]) t;
	SELECT pdp.set_retention('anon', '1 year', 'at', action => 'anonymise');
	SELECT pdp.restrict_subject(11::bigint, 'asked');
});
my @purged = qw(activity ref enrol later local_log);
my $due_sql = q{at + interval '1 year' < now() AND learner NOT IN (7, 11)};
my @kept = qw(nokey anon_bad grades);
my @anon = qw(anon anon_c anon_ref anon_copy);
# The anonymised tables' rows (their common columns), and what they are to
# become: the due rows with learner NULL and note '(gone)', the others as they were.
my $anon_rows = sub {
	my ($t, $n) = @_;
	$n //= $c;
	return $n->safe_psql('postgres', qq{SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, learner, at, note), ',' ORDER BY id)) FROM $t});
};
my $anon_want = $c->safe_psql('postgres', qq{SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, CASE WHEN $due_sql THEN NULL ELSE learner END, at,
                                                                                CASE WHEN $due_sql THEN '(gone)' ELSE note END), ',' ORDER BY id)) FROM anon_copy});
my %anon_due = map { $_ => $c->safe_psql('postgres', "SELECT count(*) FROM $_ WHERE $due_sql") } @anon;
is($anon_rows->($_), $anon_rows->('anon_copy'), "$_ has anon_copy's rows") for qw(anon anon_c anon_ref);
isnt($anon_rows->('anon_copy'), $anon_want, 'which are not yet anonymised');
# Per table: how many rows are due (a plain SELECT of the condition), and a
# digest of the rows that are not (which the purge must leave exactly).
my $state = sub {
	my ($t, $n) = @_;
	$n //= $c;
	return $n->safe_psql('postgres', qq{SELECT count(*) FILTER (WHERE $due_sql) || ' due; kept ' || count(*) FILTER (WHERE NOT ($due_sql))
	                                         || ' ' || md5(string_agg(id || ':' || learner || ':' || note, ',' ORDER BY id) FILTER (WHERE NOT ($due_sql)))
	                                    FROM $t});
};
my %due = map { $_ => $c->safe_psql('postgres', "SELECT count(*) FROM $_ WHERE $due_sql") } @purged, @kept;
my %left = map { my $x = $state->($_); $x =~ s/^\d+ due/0 due/; $_ => $x } @purged;
my %kept_before = map { $_ => counts($_) } @kept;
my %held = map { $_ => $c->safe_psql('postgres', "SELECT count(*) || '/' || count(*) FILTER (WHERE learner = 7) FROM $_ WHERE learner IN (7, 11)") } @purged;
cmp_ok($due{$_}, '>', 400, "$due{$_} rows of $_ are due") for @purged;

($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT table_name, rows FROM pdp.purge_expired(dry_run => true) ORDER BY table_name::text");
is($ret, 0, 'dry run succeeds');
is($out, join("\n", map { "$_|" . ($due{$_} // $anon_due{$_}) } sort(@purged, @anon)),
	'the dry run counts exactly the due rows of every purgeable table, Citus ones and anonymised ones included');
like($err, qr/WARNING:  01000: purge: skipped distributed table "nokey"\nDETAIL:  The table has no primary key: on Citus, a purge finds and deletes expired rows by primary key/,
	'the table without a primary key is skipped, saying why');
like($err, qr/WARNING:  01000: purge: skipped distributed table "anon_bad"\nDETAIL:  An anonymising purge of a Citus table is one UPDATE that Citus runs on every shard; on this table it cannot run: cannot anonymise rows of distributed table "anon_bad": it would change the distribution column "learner"\./,
	'the table whose anonymising UPDATE would change its distribution column is skipped, saying why');
unlike($err, qr/skipped \w+ table "anon(_c|_ref)?"/, 'no anonymised Citus table is skipped');
like($err, qr/HINT:  See "What is refused on Citus tables" in doc\/scaling\.md/, 'with the hint');
unlike($err, qr/skipped \w+ table "(activity|ref|enrol|later)"/, 'no purgeable Citus table is skipped');

($ret, $out, $err) = $c->psql('postgres', 'CALL pdp.purge(batch_size => 100)');
is($ret, 0, 'CALL pdp.purge succeeds') or diag($err);
for my $t (@purged)
{
	is($state->($t), $left{$t}, "purge: $t lost exactly its due rows, every other row is as it was");
	is($c->safe_psql('postgres', "SELECT count(*) || '/' || count(*) FILTER (WHERE learner = 7) FROM $t WHERE learner IN (7, 11)"),
		$held{$t}, "purge: the held and the restricted learner's rows of $t are kept");
}
like($err, qr/NOTICE:  purge: 100 rows of table "activity" \(delete\)/, 'the distributed table went in batches of 100');
like($err, qr/NOTICE:  purge: 100 rows of table "anon_c" \(anonymise\)/, 'the anonymised distributed table too');
is($anon_rows->($_), $anon_want, "purge: $_ has exactly its due rows anonymised (held and restricted learners' kept), every other row as it was") for @anon;
is($anon_rows->('anon_ref', $node{$_}), $anon_want, "purge: ${_}'s copy of anon_ref agrees") for qw(worker1 worker2);
is($c->safe_psql('postgres', q{SELECT string_agg(object || ' ' || s, ' ' ORDER BY object) FROM (SELECT object, sum((details->>'rows')::bigint) AS s FROM pdp.audit_log
                                WHERE action = 'purge_batch' AND details->>'action' = 'anonymise'
                                  AND (details->>'run')::bigint = (SELECT max(id) FROM pdp.purge_run) GROUP BY object) x}),
	join(' ', map { "public.$_ $anon_due{$_}" } sort @anon), 'the audit trail records the anonymised batches, as many rows as anon_copy\'s');
# The form of a batch: Citus finds the batch's bound (its last row in the
# order (expiry, key)) on every shard, the LIMIT pushed down, and keeps it on
# the coordinator; then every shard deletes its own expired rows up to the
# bound (through its expiry index, on shards large enough for the planner
# to prefer it): one row goes to the shards, not the keys.  (The statement
# is pdp._purge_citus_batch's for activity, with the held and restricted
# guards left out.)
my $form = $c->safe_psql('postgres', q{EXPLAIN (COSTS OFF) WITH b AS (SELECT s.pdp_o, s.id FROM (SELECT pdp._expiry(t.at, '1 year') AS pdp_o, t.id FROM activity t
	WHERE pdp._expiry(t.at, '1 year') < now() ORDER BY 1, t.id LIMIT 100) s ORDER BY s.pdp_o DESC, s.id DESC LIMIT 1),
	x AS (DELETE FROM activity t WHERE pdp._expiry(t.at, '1 year') < now() AND pdp._expiry(t.at, '1 year') <= (SELECT b.pdp_o FROM b)
	      AND (pdp._expiry(t.at, '1 year'), t.id) <= (SELECT b.* FROM b) RETURNING t.at) SELECT count(*) FROM x});
like($form, qr/Distributed Subplan.*Task Count: 8.*Limit.*Sort Key: \(pdp\._expiry\(at, '1 year'::interval\)\), id.*Task Count: 1.*Limit.*Task Count: 8.*Delete on activity_\d+ t\n.*InitPlan.*ROW\(pdp\._expiry\(at, '1 year'::interval\), id\) <= ROW\(\$1, \$2\)/s,
	'a batch\'s form: its bound found on all 8 shards (LIMIT pushed down) and kept on the coordinator, then all 8 delete up to it');
my ($del) = $form =~ /(Delete on activity_\d+ t\n.*?)Task Count: 1/s;
$del //= 'Join: no Delete task found';
unlike($del, qr/Join|Nested Loop|Hash|IN \(|= ANY/, 'no shard joins or probes the batch\'s keys: it compares each row with the bound');
is(counts($_), $kept_before{$_}, "purge changed no row of $_") for @kept;
is($c->safe_psql('postgres', q{SELECT rolsuper FROM pg_roles r JOIN pg_class c ON c.relowner = r.oid WHERE c.oid = 'enrol'::regclass}),
	'f', 'enrol, purged above, is owned by a role without superuser');
for my $w (qw(worker1 worker2))
{
	is($state->('ref', $node{$w}), $left{ref}, "${w}'s copy of ref lost the same rows");
}
is( $c->safe_psql('postgres', q{
		SELECT l.status || ' ' || l.total_rows || ' ' ||
		       (SELECT string_agg(k || '=' || v, ' ' ORDER BY k) FROM jsonb_each_text(l.rows) x(k, v) WHERE v <> '0') || ' ' ||
		       (SELECT string_agg(e->>'table' || ' ' || (e->>'sqlstate') || ' ' || (e->>'message'), '; ' ORDER BY e->>'table')
		          FROM jsonb_array_elements(l.errors) e)
		  FROM pdp.purge_log l ORDER BY l.id DESC LIMIT 1}),
	'finished ' . (eval { my $n = 0; $n += $due{$_} for @purged; $n += $anon_due{$_} for @anon; $n }) . ' '
	  . join(' ', sort(map({ "public.$_ delete=$due{$_}" } @purged), map({ "public.$_ anonymise=$anon_due{$_}" } @anon))) . ' '
	  . qq{public.anon_bad 0A000 cannot purge distributed table "anon_bad"; public.nokey 0A000 cannot purge distributed table "nokey"},
	'the run is recorded: each table\'s count equals the plain SELECT\'s, the refusals among its errors');

# purge_expired: new expired rows, removed exactly, the count returned equal
# to a plain SELECT's beforehand.
$c->safe_psql('postgres', q{
	INSERT INTO activity SELECT g, g % 40, now() - interval '400 days' - g * interval '1 minute', 'late ' || g FROM generate_series(2001, 2300) g;
	INSERT INTO ref SELECT g, g % 40, now() - interval '400 days' - g * interval '1 minute', 'late ' || g FROM generate_series(2001, 2300) g;
	INSERT INTO enrol SELECT g % 40, g, now() - interval '400 days' - g * interval '1 minute', 'late ' || g FROM generate_series(2001, 2300) g;
});
%due = map { $_ => $c->safe_psql('postgres', "SELECT count(*) FROM $_ WHERE $due_sql") } qw(activity ref enrol);
%left = map { my $x = $state->($_); $x =~ s/^\d+ due/0 due/; $_ => $x } qw(activity ref enrol);
# In one transaction, Citus refuses to touch placements co-located with
# ones another user modified (activity's, as its owner, then enrol's as
# tap_owner): purge_expired, one transaction, fails whole and removes nothing.
my %unpurged = map { $_ => $state->($_) } qw(activity ref enrol);
($ret, $out, $err) = $c->psql('postgres', 'SELECT table_name, rows FROM pdp.purge_expired(batch_size => 50)');
like($err, qr/ERROR:  cannot perform query on placements that were modified in this transaction by a different user/,
	'purge_expired over co-located tables of different owners fails (Citus)');
is($state->($_), $unpurged{$_}, "and changes no row of $_") for qw(activity ref enrol);
$c->safe_psql('postgres', 'ALTER TABLE enrol OWNER TO postgres');
($ret, $out, $err) = $c->psql('postgres', 'SELECT table_name, rows FROM pdp.purge_expired(batch_size => 50) ORDER BY table_name::text');
is($ret, 0, 'purge_expired succeeds') or diag($err);
is($out, join("\n", map { "$_|$due{$_}" } qw(activity enrol ref)), 'purge_expired reports exactly the due rows of each table');
is($state->($_), $left{$_}, "purge_expired: $_ lost exactly its due rows") for qw(activity ref enrol);
is($state->('ref', $node{$_}), $left{ref}, "purge_expired: ${_}'s copy of ref agrees") for qw(worker1 worker2);
is(counts($_), $kept_before{$_}, "purge_expired changed no row of $_") for @kept;
($ret, $out, $err) = $c->psql('postgres', 'SELECT table_name, rows FROM pdp.purge_expired() ORDER BY 1::text');
is($out, '', 'a second purge_expired finds nothing more to purge (nor to anonymise: the rows anonymised are known by their values)');
is($anon_rows->($_), $anon_want, "purge_expired: $_ as it was") for @anon;

# Still refused: a batch of a table that cannot be purged correctly; a
# role calling the per-shard delete; inactivity retention (every Citus table skipped).
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT * FROM pdp._purge_batch('nokey', 'retention', 100, NULL, false)");
like($err, qr/ERROR:  0A000: cannot purge distributed table "nokey"/, 'a batch of the table without a key is refused');
$c->safe_psql('postgres', q{CREATE ROLE tap_purger LOGIN; GRANT pdp_admin TO tap_purger});
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_purger; SELECT * FROM pdp._purge_citus_batch('activity', 'retention', 100, NULL)");
like($err, qr/ERROR:  42501: permission denied for function _purge_citus_batch/, 'attack: no role calls the per-shard delete');
# Inactivity retention: learners 7 (held), 11 (restricted) and 30..33 were
# last seen four years ago.  The inactive unheld learners' rows go from every
# purgeable table, by key on the Citus tables; in grades (distributed, its
# learner column set_null) the links to them are cut, by one UPDATE on the
# shards; a Citus table whose cut Citus cannot run (a randomised column) is
# skipped, saying why.
$c->safe_psql('postgres', q{
	CREATE TABLE seen (learner bigint PRIMARY KEY, at timestamptz NOT NULL);
	INSERT INTO seen SELECT g, CASE WHEN g IN (7, 11, 30, 31, 32, 33) THEN now() - interval '4 years' ELSE now() END FROM generate_series(0, 39) g;
	SELECT pdp.register_table('seen', 'learner');
	SELECT pdp.set_subject_retention('3 years', 'seen', 'at');
});
my @inact = qw(activity ref enrol later local_log seen);
my $gone_sql = 'learner IN (30, 31, 32, 33)';
my $rest = sub {
	my ($t, $n) = @_;
	$n //= $c;
	return $n->safe_psql('postgres', qq{SELECT count(*) FILTER (WHERE $gone_sql) || ' inactive; ' || count(*) FILTER (WHERE NOT ($gone_sql)) || ' '
	                                         || md5(string_agg(learner || ':' || at, ',' ORDER BY learner, at) FILTER (WHERE NOT ($gone_sql))) FROM $t});
};
my %gone = map { $_ => $c->safe_psql('postgres', "SELECT count(*) FROM $_ WHERE $gone_sql") } @inact;
my %rest = map { my $x = $rest->($_); $x =~ s/^\d+ inactive/0 inactive/; $_ => $x } @inact;
my @kept_i = grep { $_ ne 'grades' } @kept;
# The anonymised tables: the inactive unheld learners' rows anonymised, in
# anon by cutting its set_null learner column, in the others (learner a
# delete column, retention action anonymise) by the per-shard batches for
# inactivity; all as anon_copy.
my $anon_want_i = $c->safe_psql('postgres', qq{SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', id, CASE WHEN $gone_sql THEN NULL ELSE learner END, at,
                                                                                CASE WHEN $gone_sql THEN '(gone)' ELSE note END), ',' ORDER BY id)) FROM anon_copy});
%kept_before = map { $_ => counts($_) } @kept_i;
my $cut = $c->safe_psql('postgres', "SELECT count(*) FROM grades WHERE $gone_sql");
my $grades_others = sub { $c->safe_psql('postgres', qq{SELECT count(*) FILTER (WHERE learner IS NULL) || ' ' || md5(string_agg(concat_ws('|', id, learner, at, note), ',' ORDER BY id)
                                                        FILTER (WHERE learner IS NOT NULL)) FROM grades}) };
my $grades_others_before = $c->safe_psql('postgres', qq{SELECT '$cut ' || md5(string_agg(concat_ws('|', id, learner, at, note), ',' ORDER BY id)
                                                        FILTER (WHERE NOT ($gone_sql))) FROM grades});
cmp_ok($gone{$_}, '>', 0, "$gone{$_} rows of $_ belong to inactive learners") for qw(activity ref enrol later);
cmp_ok($cut, '>', 0, "$cut rows of grades name inactive learners");
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT table_name, rows FROM pdp.purge_expired(dry_run => true) ORDER BY table_name::text, rows");
my %anon_dry = map { my $t = $_; $t => join(',', map { (split /\|/)[1] } grep { /^\Q$t\E\|/ } split /\n/, $out) } @anon;
is($anon_dry{$_}, $anon_dry{anon_copy}, "the dry run counts in $_ what it counts in anon_copy ($anon_dry{anon_copy})") for qw(anon_c anon_ref);
$out = join("\n", grep { !/^anon/ } split /\n/, $out);
is($out, join("\n", sort(map({ "$_|$gone{$_}" } @inact), 'grades|0', "grades|$cut")),   # (no row of its own to remove, then the links)
	'the dry run counts exactly the inactive unheld learners\' rows, and the links to cut in grades, Citus tables included');
unlike($err, qr/skipped distributed table "grades"/, 'grades (links to cut) is not skipped');
unlike($err, qr/skipped \w+ table "(activity|ref|enrol|later)"/, 'no purgeable Citus table is skipped');
($ret, $out, $err) = $c->psql('postgres', 'CALL pdp.purge(batch_size => 7)');
is($ret, 0, 'CALL pdp.purge for inactivity succeeds') or diag($err);
is($rest->($_), $rest{$_}, "inactivity: $_ lost exactly the inactive unheld learners' rows, every other row as it was") for @inact;
is($rest->('ref', $node{$_}), $rest{ref}, "inactivity: ${_}'s copy of ref agrees") for qw(worker1 worker2);
is(counts($_), $kept_before{$_}, "inactivity: no row of $_ changed") for @kept_i;
is($grades_others->(), $grades_others_before, 'inactivity: grades\' links to the inactive unheld learners cut, every other row as it was');
is($anon_rows->($_), $anon_want_i, "inactivity: $_ has exactly the inactive unheld learners' rows anonymised, every other row as it was") for @anon;
is($anon_rows->('anon_ref', $node{$_}), $anon_want_i, "inactivity: ${_}'s copy of anon_ref agrees") for qw(worker1 worker2);
is($c->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE learner = 7) || ' ' || count(*) FILTER (WHERE learner = 11) FROM grades}),
	$c->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE learner = 7) || ' ' || count(*) FILTER (WHERE learner = 11) FROM local_log}),
	'grades still names the held and the restricted learner');
# A Citus table whose cut Citus cannot run (a randomised column) is skipped, saying why.
$c->safe_psql('postgres', q{SELECT pdp.set_anonymisation('grades', 'note', 'randomise')});
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT table_name, rows FROM pdp.purge_expired(dry_run => true)");
like($err, qr/WARNING:  01000: purge: skipped distributed table "grades"\nDETAIL:  Inactivity retention \(pdp.set_subject_retention\) cuts the links.*cannot randomise column "note"/,
	'with inactivity retention, a Citus table whose cut cannot run on the shards is skipped, saying why');
$c->safe_psql('postgres', q{SELECT pdp.drop_anonymisation('grades', 'note'); SELECT pdp.unregister_table('seen'); DROP TABLE seen});
$c->safe_psql('postgres', q{SELECT pdp.drop_subject_retention(); SELECT pdp.lift_restriction(11::bigint); SELECT pdp.unregister_table(t) FROM unnest(ARRAY['nokey', 'anon', 'anon_c', 'anon_ref', 'anon_copy', 'anon_bad']::regclass[]) t});

# Batches by a bound in (expiry, key): rows with one expiry (a bulk load)
# and a text key in the database's collation (case and punctuation ordered
# by it, not by bytes).  Each batch removes exactly batch_size rows, ties at
# the bound cut by key; the held learner's rows stay; the reference table's
# placements remove the same rows; the total is the plain SELECT's.
$c->safe_psql('postgres', q{
	CREATE TABLE ties (learner bigint NOT NULL, code text NOT NULL, at timestamptz NOT NULL, note text, PRIMARY KEY (learner, code));
	CREATE TABLE ties_ref (learner bigint NOT NULL, code text NOT NULL, at timestamptz NOT NULL, note text, PRIMARY KEY (learner, code));
	SELECT create_distributed_table('ties', 'learner');
	SELECT create_reference_table('ties_ref');
	INSERT INTO ties SELECT g % 10, (ARRAY['a-', 'A', '_b', 'B.', 'z'])[g % 5 + 1] || g, date '2020-01-01', 'n ' || g FROM generate_series(1, 400) g;
	INSERT INTO ties SELECT g % 10, 'new' || g, now(), 'n ' || g FROM generate_series(1, 40) g;
	INSERT INTO ties_ref SELECT * FROM ties;
	SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['ties', 'ties_ref']::regclass[]) t;
	SELECT pdp.set_retention(t, '1 year', 'at') FROM unnest(ARRAY['ties', 'ties_ref']::regclass[]) t;
});
my $ties_sql = q{at + interval '1 year' < now() AND learner <> 7};
my $ties = sub {
	my ($t, $n) = @_;
	$n //= $c;
	return $n->safe_psql('postgres', qq{SELECT count(*) FILTER (WHERE $ties_sql) || ' due; kept ' || count(*) FILTER (WHERE NOT ($ties_sql))
	                                         || ' ' || md5(string_agg(learner || ':' || code || ':' || note, ',' ORDER BY learner, code) FILTER (WHERE NOT ($ties_sql)))
	                                    FROM $t});
};
my %tdue = map { $_ => $c->safe_psql('postgres', "SELECT count(*) FROM $_ WHERE $ties_sql") } qw(ties ties_ref);
my %tleft = map { my $x = $ties->($_); $x =~ s/^\d+ due/0 due/; $_ => $x } qw(ties ties_ref);
is($tdue{ties}, 360, '360 rows of ties are due, all with one expiry');
($ret, $out, $err) = $c->psql('postgres', 'CALL pdp.purge(batch_size => 50)');
is($ret, 0, 'CALL pdp.purge of the ties succeeds') or diag($err);
for my $t (qw(ties ties_ref))
{
	is($ties->($t), $tleft{$t}, "ties: $t lost exactly its due rows, the held learner's and the unexpired kept");
	my @b = ($err =~ /NOTICE:  purge: (\d+) rows of table "$t" \(delete\)/g);
	is(join(',', @b), '50,50,50,50,50,50,50,10', "ties: $t went in batches of exactly 50 rows, the last of 10, one expiry cut by key");
}
is($ties->('ties_ref', $node{$_}), $tleft{ties_ref}, "ties: ${_}'s copy of ties_ref lost the same rows") for qw(worker1 worker2);
is($c->safe_psql('postgres', q{SELECT (l.rows->>'public.ties delete') || ' ' || (l.rows->>'public.ties_ref delete') FROM pdp.purge_log l ORDER BY l.id DESC LIMIT 1}),
	"$tdue{ties} $tdue{ties_ref}", 'ties: the run records the plain SELECT\'s counts');
$c->safe_psql('postgres', q{SELECT pdp.unregister_table(t) FROM unnest(ARRAY['ties', 'ties_ref']::regclass[]) t; DROP TABLE ties, ties_ref});

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

# --- Step 2: state where it is read ---------------------------------------
# pdp.citus_sync_state mirrors pdp's state into reference tables, on the
# coordinator only; what is defined afterwards reaches the workers through
# the mirror's triggers, in the same transaction.
($ret, $out, $err) = $node{worker1}->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.citus_sync_state()");
like($err, qr/ERROR:  55000: pdp.citus_sync_state runs on the Citus coordinator/, 'citus_sync_state is refused on a worker');
$c->safe_psql('postgres', q{SELECT pdp.define_purpose('early', 'contract'); SELECT pdp.restrict_subject(39::bigint, 'asked')});
($ret, $out, $err) = $c->psql('postgres', q{SELECT pdp.citus_sync_state()});
is($out, '{"purpose": 1, "disclosure": 0, "restriction": 1, "consent_state": 0, "purpose_grant": 0}', 'the first sync copies the state there is')
  or diag($err);
is($c->safe_psql('postgres', q{SELECT pdp.citus_sync_state()}),
	'{"purpose": 1, "disclosure": 0, "restriction": 1, "consent_state": 0, "purpose_grant": 0}', 'a second sync copies it again, once');
is( $c->safe_psql('postgres', q{
		SELECT string_agg(t || '=' || coalesce(pdp._citus_table_kind(('pdp.' || t)::regclass), 'none'), ' ' ORDER BY t)
		  FROM unnest(ARRAY['citus_purpose', 'citus_purpose_grant', 'citus_consent_state', 'citus_restriction']) t}),
	'citus_consent_state=reference citus_purpose=reference citus_purpose_grant=reference citus_restriction=reference',
	'the mirror is four reference tables');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'citus_mirror%' AND tgrelid::regclass::text LIKE 'pdp.%'}),
	'20', 'each of pdp\'s four state tables and pdp.disclosure has its four mirror triggers, once');
$c->safe_psql('postgres', q{SELECT pdp.lift_restriction(39::bigint)});
for my $w (qw(worker1 worker2))
{
	is($node{$w}->safe_psql('postgres', q{SELECT count(*) FROM pdp.purpose}), '0', "${w}'s own pdp.purpose is empty");
}

# --- Step 3: purposes that reach the shards -------------------------------
# The purpose's definition is on the coordinator only (step 2).  pdp._visible is what
# a protected table's policy asks for each row; called in a distributed
# query, it runs in the shards, on the workers.
($ret, $out, $err) = $c->psql('postgres', q{SELECT pdp.define_purpose('courses', 'contract', 'providing courses'); SELECT pdp.allow_purpose('postgres', 'courses')});
is($ret, 0, 'courses defined and allowed on the coordinator') or diag($err);
my $all_activity = $c->safe_psql('postgres', 'SELECT count(*) FROM activity');
my $visible_count = q{SELECT count(*) FROM activity WHERE pdp._visible(learner)};
for my $case (["SET pdp.purpose = 'courses';", 'a session-level purpose (it stays on the coordinator)'],
	['', 'no purpose at all'])
{
	($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\n$case->[0] $visible_count");
	isnt($ret, 0, "$case->[1]: the distributed query fails rather than count nothing");
	like($err, qr/ERROR:  55000: no purpose reached this Citus worker/, "$case->[1]: SQLSTATE 55000, the reason");
	like($err, qr/HINT:  On the coordinator, declare the purpose in the transaction with SET LOCAL citus\.propagate_set_commands = 'local'/,
		"$case->[1]: the hint says how to declare it");
}
is( $c->safe_psql('postgres', qq{
		BEGIN;
		SET LOCAL citus.propagate_set_commands = 'local';
		SET LOCAL pdp.purpose = 'courses';
		SELECT string_agg(DISTINCT current_setting('pdp.purpose'), ',') FROM activity;
		$visible_count;
		COMMIT;}),
	"courses\n$all_activity", 'with SET LOCAL and citus.propagate_set_commands = local the purpose reaches every shard, which sees the rows');
like($c->safe_psql('postgres', q{SELECT string_agg(DISTINCT current_setting('application_name'), ',') FROM activity}),
	qr/^citus_internal gpid=\d+$/, 'the shards run in connections named as the check expects');
# Outside a shard query, a worker behaves as any server: no purpose, no row, a notice.
($ret, $out, $err) = $node{worker1}->psql('postgres', q{SELECT pdp._visible(1::bigint)});
is($ret . ' ' . $out, '0 f', 'a worker\'s own session without a purpose sees nothing, without an error');
like($err, qr/NOTICE:  no purpose declared: rows of tables protected by pdp_ext are hidden/, 'with the usual notice');
# A client naming itself as Citus does only gets the stricter behaviour.
($ret, $out, $err) = $node{worker1}->psql('postgres', q{SET application_name = 'citus_internal gpid=1'; SELECT pdp._visible(1::bigint)});
like($err, qr/ERROR:  no purpose reached this Citus worker/, 'attack: posing as a Citus connection gives an error, never rows');

# --- Step 2: visibility on the workers from the coordinator's state -------
# An application role, a consent purpose and a contract purpose, all
# defined on the coordinator only; roles are propagated by Citus, grants
# reach the workers by role name.
$c->safe_psql('postgres', q{
	CREATE ROLE tap_group;
	CREATE ROLE tap_app LOGIN IN ROLE tap_group;
	CREATE ROLE tap_other LOGIN;
	GRANT SELECT ON activity TO tap_app, tap_other;
	SELECT pdp.define_purpose('mail', 'consent', 'newsletters');
	SELECT pdp.allow_purpose('tap_app', 'mail');
	SELECT pdp.allow_purpose('tap_group', 'courses');
	SELECT pdp.grant_consent(s, 'mail') FROM unnest(ARRAY[3, 5, 8]::bigint[]) s;
});
is($node{worker1}->safe_psql('postgres', q{SELECT count(*) FROM pg_roles WHERE rolname IN ('tap_app', 'tap_group', 'tap_other')}),
	'3', 'Citus propagated the roles to the workers');
my $n_of = sub {
	my ($learners) = @_;
	return $c->safe_psql('postgres', "SELECT count(*) FROM activity WHERE learner IN ($learners)");
};
my $all = $c->safe_psql('postgres', 'SELECT count(*) FROM activity');
# A distributed count under a purpose, as one transaction; $as is a role the
# session switches to for it (SET LOCAL ROLE: Citus connects to the workers
# as that role).
my $visible_as = sub {
	my ($purpose, $as) = @_;
	return qq{BEGIN; SET LOCAL ROLE $as; SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL pdp.purpose = '$purpose';
		SELECT count(*) FROM activity WHERE pdp._visible(learner); COMMIT;};
};
is($c->safe_psql('postgres', $visible_as->('mail', 'tap_app')), $n_of->('3, 5, 8'),
	'a consent purpose defined on the coordinator: the workers show exactly the consenting learners\' rows');
is($c->safe_psql('postgres', $visible_as->('courses', 'tap_app')), $all,
	'a contract purpose granted to the role\'s group on the coordinator: every row on the workers');
my $on_worker = sub {
	my ($w, $role, $sql) = @_;
	my ($r, $o, $e) = $node{$w}->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE $role; $sql");
	return $o . $e;
};
for my $w (qw(worker1 worker2))
{
	is($on_worker->($w, 'tap_app', q{SET pdp.purpose = 'mail'; SELECT string_agg(pdp._visible(s)::text, ',' ORDER BY s) FROM unnest(ARRAY[3, 4, 5]::bigint[]) s}),
		'true,false,true', "$w reads the consents from the mirror");
	like($on_worker->($w, 'tap_other', q{SET pdp.purpose = 'courses'}),
		qr/ERROR:  42501: role "tap_other" may not declare purpose "courses"/, "$w refuses a role the coordinator did not grant the purpose");
	like($on_worker->($w, 'tap_app', q{SET pdp.purpose = 'nothing_here'}),
		qr/ERROR:  42704: unknown purpose/, "$w does not know a purpose the coordinator does not");
}

# One coordinator session, its worker connections kept from one statement
# to the next: a withdrawal, a restriction, its lifting and a revoked grant
# committed on the coordinator are in force on every worker at the next
# statement.
my $seq = $c->safe_psql('postgres', join("\n",
	$visible_as->('mail', 'postgres'),
	q{SELECT pdp.withdraw_consent(5::bigint, 'mail');},
	$visible_as->('mail', 'postgres'),
	q{SELECT pdp.restrict_subject(8::bigint, 'asked');},
	$visible_as->('mail', 'postgres'),
	$visible_as->('courses', 'postgres'),
	q{SELECT pdp.lift_restriction(8::bigint);},
	$visible_as->('courses', 'postgres'),
	q{SELECT pdp.grant_consent(5::bigint, 'mail') > 0;},
	$visible_as->('mail', 'postgres')));
is($seq, join("\n", $n_of->('3, 5, 8'), 't', $n_of->('3, 8'), '', $n_of->('3'), $all - $n_of->('8'), 't', $all, 't', $n_of->('3, 5, 8')),
	'withdrawal, restriction, lifting and a new consent on the coordinator: each seen by the next distributed statement');
for my $w (qw(worker1 worker2))
{
	is($on_worker->($w, 'tap_app', q{SET pdp.purpose = 'mail'; SELECT string_agg(pdp._visible(s)::text, ',' ORDER BY s) FROM unnest(ARRAY[3, 5]::bigint[]) s}),
		'true,true', "$w sees the renewed consent");
}
# A purpose redefined on the coordinator (contract, then consent, then
# contract again), in one session whose worker connections are reused: the
# workers' purpose state follows at the next statement (nobody consents to
# courses).
is( $c->safe_psql('postgres', join("\n",
		$visible_as->('courses', 'postgres'),
		q{SELECT pdp.define_purpose('courses', 'consent');},
		$visible_as->('courses', 'postgres'),
		q{SELECT pdp.define_purpose('courses', 'contract', 'providing courses');},
		$visible_as->('courses', 'postgres'))),
	join("\n", $all, '', '0', '', $all), 'a purpose redefined on the coordinator is in force on the workers at the next statement');
# Inside one transaction: the withdrawal is seen by its next statement.
is( $c->safe_psql('postgres', q{
		BEGIN; SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL pdp.purpose = 'mail';
		SELECT pdp.withdraw_consent(3::bigint, 'mail');
		SELECT count(*) FROM activity WHERE pdp._visible(learner);
		ROLLBACK;}),
	"t\n" . $n_of->('5, 8'), 'a withdrawal is seen by the next statement of its own transaction');
is($c->safe_psql('postgres', $visible_as->('mail', 'tap_app')), $n_of->('3, 5, 8'), 'rolled back, the withdrawal is undone on the workers too');
# A grant revoked on the coordinator: refused on the workers.
($ret, $out, $err) = $c->psql('postgres', q{SELECT pdp.disallow_purpose('tap_group', 'courses')});
is($ret . $out, '0t', 'disallow_purpose on the coordinator') or diag($err);
for my $w (qw(worker1 worker2))
{
	like($on_worker->($w, 'tap_app', q{SET pdp.purpose = 'courses'}),
		qr/ERROR:  42501: role "tap_app" may not declare purpose "courses"/, "$w refuses the purpose once the coordinator revoked the grant");
}
# Attacks: no role writes the mirror, on the coordinator or in a worker's placement.
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_app; INSERT INTO pdp.citus_consent_state VALUES ('4', 'mail', NULL)");
like($err, qr/ERROR:  42501: permission denied/, 'attack: an application role cannot write the mirror');
my $placement = $node{worker1}->safe_psql('postgres', q{SELECT 'pdp.citus_consent_state_' || shardid FROM pg_dist_shard WHERE logicalrelid = 'pdp.citus_consent_state'::regclass});
like($on_worker->('worker1', 'tap_app', "INSERT INTO $placement VALUES ('4', 'mail', NULL)"), qr/ERROR:  42501: permission denied/,
	'attack: nor the placement on a worker');
is($c->safe_psql('postgres', $visible_as->('mail', 'tap_app')), $n_of->('3, 5, 8'), 'the consenting learners are still exactly those');
# A bulk import of consents, and an erasure (which deletes the learner's
# rows of the distributed table and the learner's consents in one
# transaction), both reach the workers.
is($c->safe_psql('postgres', q{SELECT pdp.import_consents(ARRAY(SELECT ROW(s::text, 'mail', now() - interval '1 day', NULL, '{}', NULL)::pdp.consent_import
                                                               FROM generate_series(20, 29) s))}),
	'10', 'ten consents imported on the coordinator');
is($c->safe_psql('postgres', $visible_as->('mail', 'tap_app')), $n_of->('3, 5, 8, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29'),
	'the imported consents are seen on the workers');
($ret, $out, $err) = $c->psql('postgres', q{SELECT (pdp.erase_subject(8::bigint, 'asked') -> 'tables') IS NOT NULL});
is($ret . $out, '0t', 'erasure of a consenting learner succeeds on the coordinator') or diag($err);
is($c->safe_psql('postgres', 'SELECT count(*) FROM activity WHERE learner = 8'), '0', 'the learner\'s distributed rows are gone');
is($c->safe_psql('postgres', $visible_as->('mail', 'tap_app')), $n_of->('3, 5, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29'),
	'the other consenting learners\' rows are still exactly those');
for my $w (qw(worker1 worker2))
{
	my $placement_w = $node{$w}->safe_psql('postgres', q{SELECT 'pdp.citus_consent_state_' || shardid FROM pg_dist_shard WHERE logicalrelid = 'pdp.citus_consent_state'::regclass});
	is($node{$w}->safe_psql('postgres', "SELECT count(*) FROM $placement_w WHERE subject = '8'"), '0', "the erased learner's consent is gone from ${w}'s placement");
}

# A worker added after the sync: the check refuses there until Citus has
# copied the reference tables to it, then reads them.
my $w3 = pdp_node('worker3',
	preload  => 'citus,pdp_ext',
	key_file => $key,
	conf     => "listen_addresses = '127.0.0.1'\ncitus.node_conninfo = 'sslmode=disable'\nmax_prepared_transactions = 20\n");
$w3->safe_psql('postgres', 'CREATE EXTENSION citus; CREATE EXTENSION pdp_ext;');
$c->safe_psql('postgres', "SELECT citus_add_node('127.0.0.1', " . $w3->port . ")");
# (Citus hides shards from pg_class on workers; to_regclass finds them by name.)
my $placements_w3 = q{SELECT to_regclass('pdp.citus_consent_state_' || shardid) IS NOT NULL FROM pg_dist_shard WHERE logicalrelid = 'pdp.citus_consent_state'::regclass};
is($w3->safe_psql('postgres', $placements_w3), 'f', 'Citus does not copy the reference tables to a worker it adds');
($ret, $out, $err) = $w3->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_app; SET pdp.purpose = 'mail'; SELECT pdp._visible(3::bigint)");
like($err, qr/ERROR:  55000: pdp's consent state has no placement on this Citus worker/, 'worker3 refuses rather than read its own empty tables');
like($err, qr/HINT:  On the coordinator, run SELECT replicate_reference_tables\(\)/, 'with the hint');
($ret, $out, $err) = $c->psql('postgres', q{SELECT replicate_reference_tables('block_writes')});
is($ret, 0, 'replicate_reference_tables on the coordinator') or diag($err);
is($w3->safe_psql('postgres', $placements_w3), 't', 'replicate_reference_tables gives worker3 the placement');
is($w3->safe_psql('postgres', q{SET ROLE tap_app; SET pdp.purpose = 'mail'; SELECT string_agg(pdp._visible(s)::text, ',' ORDER BY s) FROM unnest(ARRAY[3, 4]::bigint[]) s}),
	'true,false', 'then worker3 reads the coordinator\'s consents');
$c->safe_psql('postgres', "SELECT citus_remove_node('127.0.0.1', " . $w3->port . ")");
$w3->stop;

# --- Step 5: protect_table on distributed and reference tables ----------
# prot is hash-distributed, prot_ref a reference table, both protected on
# the coordinator; Citus carries the policies and row-level security to the
# shards, and pdp's restricted-row trigger (created with
# citus.enable_unsafe_triggers for that statement only) to every shard.
# Learners 0..39; mail consents at this point: 3, 5, 20..29; 39 is restricted here.
$c->safe_psql('postgres', q{
	CREATE TABLE prot (id bigint PRIMARY KEY, learner bigint NOT NULL, note text);
	CREATE TABLE prot_ref (id bigint PRIMARY KEY, learner bigint NOT NULL, note text);
	SELECT create_distributed_table('prot', 'id');
	SELECT create_reference_table('prot_ref');
	INSERT INTO prot SELECT g, g % 40, 'p ' || g FROM generate_series(1, 400) g;
	INSERT INTO prot_ref SELECT g, g % 40, 'p ' || g FROM generate_series(1, 400) g;
	SELECT pdp.register_table(t, 'learner') FROM unnest(ARRAY['prot', 'prot_ref']::regclass[]) t;
	GRANT SELECT, UPDATE, DELETE ON prot, prot_ref TO tap_app;
	SELECT pdp.define_purpose('teaching', 'contract', 'teaching');
	SELECT pdp.allow_purpose('tap_app', 'teaching');
	SELECT pdp.restrict_subject(39::bigint, 'asked');
});
# Citus 12.1 re-creates policies on the shards without AS RESTRICTIVE, so
# pdp's are permissive there and must be the table's only ones.
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nCREATE POLICY own ON prot USING (true); SELECT pdp.protect_table('prot')");
like($err, qr/ERROR:  0A000: cannot protect Citus table "prot" with row-level security policies of its own/,
	'a distributed table with a policy of its own is refused (its shard copies would be permissive)');
$c->safe_psql('postgres', 'DROP POLICY own ON prot');
is( $c->safe_psql('postgres', q{
		SELECT pdp.protect_table('prot'); SELECT pdp.protect_table('prot_ref');
		SELECT current_setting('citus.enable_unsafe_triggers')}),
	"\n\noff", 'protect_table on a distributed and a reference table; citus.enable_unsafe_triggers stays off for the session');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.protection WHERE tbl IN ('prot'::regclass, 'prot_ref'::regclass)}),
	'2', 'both recorded as protected');
# What each worker's shards of prot carry (Citus hides shards from pg_class
# listings on workers; to_regclass finds the local ones by name).
my $shard_facts = q{
	SET citus.override_table_visibility = off;
	SELECT count(*) || ' shards; rls ' || bool_and(c.relrowsecurity) || ', forced ' || bool_and(c.relforcerowsecurity)
	       || '; policies ' || min((SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid AND p.polname LIKE 'pdp%'))
	       || '; trigger ' || min((SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = c.oid AND t.tgname LIKE 'pdp\\_refuse\\_restricted%'
	                                 AND t.tgenabled = 'O' AND t.tgnargs = 2))
	  FROM pg_dist_shard s JOIN pg_class c ON c.oid = to_regclass(s.logicalrelid::regclass::text || '_' || s.shardid)
	 WHERE s.logicalrelid = 'prot'::regclass};
for my $w (qw(worker1 worker2))
{
	like($node{$w}->safe_psql('postgres', $shard_facts), qr/^[1-8] shards; rls true, forced true; policies 4; trigger 1$/,
		"${w}'s shards of prot have row-level security (forced), pdp's 4 policies and its trigger");
}
my $prot_as = sub {
	my ($purpose, $tbl) = @_;
	$tbl //= 'prot';
	return qq{BEGIN; SET LOCAL ROLE tap_app; SET LOCAL citus.propagate_set_commands = 'local'; SET LOCAL pdp.purpose = '$purpose';
		SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT learner::text, ',' ORDER BY learner::text), '') FROM $tbl; COMMIT;};
};
my $prot_of = sub {
	my ($where, $tbl) = @_;
	$tbl //= 'prot';
	return $c->safe_psql('postgres', "SELECT count(*) || ' ' || coalesce(string_agg(DISTINCT learner::text, ',' ORDER BY learner::text), '') FROM $tbl WHERE $where");
};
is($c->safe_psql('postgres', $prot_as->('mail')), $prot_of->('learner IN (3, 5, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29)'),
	'distributed, consent purpose: exactly the consenting learners\' rows, through the policies on the shards');
is($c->safe_psql('postgres', $prot_as->('teaching')), $prot_of->('learner <> 39'),
	'distributed, contract purpose: every unrestricted learner\'s rows');
is($c->safe_psql('postgres', $prot_as->('mail', 'prot_ref')), $prot_of->('learner IN (3, 5, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29)', 'prot_ref'),
	'reference table, consent purpose: exactly the consenting learners\' rows');
is($c->safe_psql('postgres', $prot_as->('teaching', 'prot_ref')), $prot_of->('learner <> 39', 'prot_ref'),
	'reference table, contract purpose: every unrestricted learner\'s rows');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_app; SELECT count(*) FROM prot");
isnt($ret, 0, 'distributed, no purpose: the query fails rather than show nothing');
like($err, qr/ERROR:  55000: no purpose reached this Citus worker/, 'distributed, no purpose: SQLSTATE 55000');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_app; SET pdp.purpose = 'mail'; SELECT count(*) FROM prot");
like($err, qr/ERROR:  55000: no purpose reached this Citus worker/, 'distributed, a session-level purpose only: SQLSTATE 55000');
# A withdrawal and a restriction on the coordinator, in one session whose
# worker connections are reused: in force on the shards at the next statement.
is( $c->safe_psql('postgres', join("\n",
		$prot_as->('mail'),
		q{SELECT pdp.withdraw_consent(5::bigint, 'mail');},
		$prot_as->('mail'),
		q{SELECT pdp.restrict_subject(3::bigint, 'asked');},
		$prot_as->('mail'),
		$prot_as->('teaching'))),
	join("\n", $prot_of->('learner IN (3, 5, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29)'), 't',
		$prot_of->('learner IN (3, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29)'), '',
		$prot_of->('learner IN (20, 21, 22, 23, 24, 25, 26, 27, 28, 29)'), $prot_of->('learner NOT IN (3, 39)')),
	'a withdrawal and a restriction on the coordinator hide the rows on the shards at the next statement');
# Writes to a restricted learner's rows: refused on the shards, whoever
# writes (here the owner, a superuser, whom row-level security does not
# stop), and nothing changes; an unrestricted learner's row is written.
my $prot_rows = sub { return $c->safe_psql('postgres', q{SELECT count(*) || ' ' || md5(string_agg(id || note, ',' ORDER BY id)) FROM prot}) . ' / '
	  . $c->safe_psql('postgres', q{SELECT count(*) || ' ' || md5(string_agg(id || note, ',' ORDER BY id)) FROM prot_ref}); };
my $prot_before = $prot_rows->();
for my $case ([q{UPDATE prot SET note = 'changed' WHERE learner = 3}, 'update', 'prot'],
	[q{DELETE FROM prot WHERE learner = 39}, 'delete', 'prot'],
	[q{DELETE FROM prot WHERE learner IN (2, 3)}, 'delete', 'prot'],
	[q{UPDATE prot_ref SET note = 'changed' WHERE learner = 39}, 'update', 'prot_ref'],
	[q{DELETE FROM prot_ref WHERE learner = 3}, 'delete', 'prot_ref'])
{
	($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\n$case->[0]");
	isnt($ret, 0, "$case->[0]: refused");
	like($err, qr/ERROR:  42501: cannot $case->[1] a row of a restricted subject in table "$case->[2]"/,
		"$case->[0]: SQLSTATE 42501, naming the table, not the shard");
	unlike($err, qr/\b(3|39)\b.*restricted|learner = /, "$case->[0]: no subject in the error");
}
is($prot_rows->(), $prot_before, 'the refused writes changed no row');
is($c->safe_psql('postgres', q{UPDATE prot SET note = 'changed' WHERE id = 2 RETURNING learner}), '2',
	'an unrestricted learner\'s row is updated');
is($c->safe_psql('postgres', q{SELECT pdp.lift_restriction(3::bigint); UPDATE prot SET note = 'p 3' WHERE id = 3 RETURNING learner}), "t\n3",
	'once the restriction is lifted on the coordinator, the shards let the row be written');
is( $c->safe_psql('postgres', q{SET citus.override_table_visibility = off;
		SELECT string_agg(DISTINCT polname || ':' || polpermissive, ',') FROM pg_policy WHERE polrelid::regclass::text LIKE 'prot\_1%'}),
	'', 'no shards on the coordinator (the policies checked are the workers\')');
is( $node{worker1}->safe_psql('postgres', q{SET citus.override_table_visibility = off;
		SELECT string_agg(DISTINCT polname || ':' || polpermissive, ',' ORDER BY polname || ':' || polpermissive) FROM pg_policy WHERE polrelid::regclass::text LIKE 'prot\_1%'}),
	'pdp_delete:true,pdp_insert:true,pdp_select:true,pdp_update:true', 'the shards carry pdp\'s four policies, permissive, and no other');
# Attack: a permissive policy added later would widen what pdp's show: refused.
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nCREATE POLICY everything ON prot FOR SELECT USING (true)");
like($err, qr/ERROR:  0A000: cannot add a row-level security policy to protected Citus table "prot"/,
	'attack: adding a policy to a protected distributed table is refused');
is($c->safe_psql('postgres', $prot_as->('teaching')), $prot_of->('learner NOT IN (39)'), 'and the rows shown are still only the unrestricted learners\'');
# Attack: the DBA drops pdp's trigger with the Citus setting on: refused.
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET citus.enable_unsafe_triggers = on; DROP TRIGGER pdp_refuse_restricted ON prot");
like($err, qr/ERROR:  42501: cannot drop or disable pdp_ext's trigger on protected table "prot"/, 'attack: dropping pdp\'s trigger on a protected distributed table is refused');
like($node{worker1}->safe_psql('postgres', $shard_facts), qr/trigger 1$/, 'the trigger is still on the shards');
# Erasure of a restricted learner's rows: the erasure flag is the
# coordinator backend's, so the trigger on the shards refuses; the erasure
# fails whole and deletes nothing.
my $n39 = $c->safe_psql('postgres', q{SELECT (SELECT count(*) FROM prot WHERE learner = 39) || '/' || (SELECT count(*) FROM activity WHERE learner = 39)});
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.erase_subject(39::bigint, 'asked')");
isnt($ret, 0, 'erasure of a restricted learner with rows in a protected distributed table fails');
like($err, qr/ERROR:  42501: cannot delete a row of a restricted subject in table "prot(_ref)?"/,
	'refused by pdp\'s trigger on the shards (the erasure flag does not reach the workers)') or diag($err);
is($c->safe_psql('postgres', q{SELECT (SELECT count(*) FROM prot WHERE learner = 39) || '/' || (SELECT count(*) FROM activity WHERE learner = 39)}),
	$n39, 'and nothing was deleted, in the protected table or elsewhere');
# A subject column renamed (Citus renames it on the shards): the trigger's
# argument names the old column, and it fails closed until protect_table
# runs again.
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nALTER TABLE prot RENAME COLUMN learner TO learner_id; UPDATE prot SET note = 'x' WHERE id = 4");
like($err, qr/ERROR:  55000: cannot check the subjects of a row of protected table "prot"/, 'after a rename of the subject column, writes fail closed on the shards');
is($c->safe_psql('postgres', q{SELECT pdp.protect_table('prot'); UPDATE prot SET note = 'p 4' WHERE id = 4 RETURNING learner_id}), "\n4",
	'protect_table again: the trigger names the renamed column, and an unrestricted row is written');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nDELETE FROM prot WHERE learner_id = 39");
like($err, qr/ERROR:  42501: cannot delete a row of a restricted subject in table "prot"/, 'and a restricted one refused');
$c->safe_psql('postgres', 'ALTER TABLE prot RENAME COLUMN learner_id TO learner');
# A table protected before it was distributed (the DBA needs
# citus.enable_unsafe_triggers for create_distributed_table): Citus would
# give its shards pdp's restrictive policies as permissive ones, next to
# pdp_base_* (true); pdp's guard on the workers refuses that.
$c->safe_psql('postgres', q{
	CREATE TABLE prot_late (id bigint PRIMARY KEY, learner bigint NOT NULL, note text);
	INSERT INTO prot_late SELECT g, g % 40, 'p ' || g FROM generate_series(1, 400) g;
	SELECT pdp.register_table('prot_late', 'learner');
	SELECT pdp.protect_table('prot_late');
	GRANT SELECT ON prot_late TO tap_app;
});
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET citus.enable_unsafe_triggers = on; SELECT create_distributed_table('prot_late', 'id')");
like($err, qr/ERROR:  0A000: cannot make pdp_ext's restrictive policies permissive on "prot_late_\d+"/,
	'distributing a protected table is refused by pdp\'s guard on the workers');
is($c->safe_psql('postgres', q{SELECT coalesce(pdp._citus_table_kind('prot_late'), 'local')}), 'local', 'the table stays local');
is( $c->safe_psql('postgres', q{
		SELECT pdp.unprotect_table('prot_late'); SELECT 1 FROM create_distributed_table('prot_late', 'id'); SELECT pdp.protect_table('prot_late')}),
	"\n1\n", 'unprotect, distribute, protect');
is($c->safe_psql('postgres', $prot_as->('mail', 'prot_late')), $prot_of->('learner IN (3, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29)', 'prot_late'),
	'then the shards show exactly the consenting learners\' rows');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nDELETE FROM prot_late WHERE learner = 39");
like($err, qr/ERROR:  42501: cannot delete a row of a restricted subject in table "prot_late"/, 'and refuse a restricted learner\'s rows');
# pdp's trigger without arguments on a shard (as Citus would copy it from a
# table protected before it was distributed) fails closed on the worker.
my $w1_shard = $node{worker1}->safe_psql('postgres', q{SELECT 'prot_late_' || min(shardid) FROM pg_dist_shard s
	WHERE logicalrelid = 'prot_late'::regclass AND to_regclass('prot_late_' || shardid) IS NOT NULL});
$node{worker1}->safe_psql('postgres', "CREATE TRIGGER pdp_noargs BEFORE DELETE ON $w1_shard FOR EACH ROW EXECUTE FUNCTION pdp._refuse_restricted()");
my $late_rows = $c->safe_psql('postgres', 'SELECT count(*) FROM prot_late');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nDELETE FROM prot_late WHERE learner = 2");
like($err, qr/ERROR:  55000: cannot check the subjects of a row of shard "prot_late_\d+"/,
	'a shard\'s trigger without arguments fails closed on the worker rather than let a restricted row go');
is($c->safe_psql('postgres', 'SELECT count(*) FROM prot_late'), $late_rows, 'no row deleted');
$node{worker1}->safe_psql('postgres', "DROP TRIGGER pdp_noargs ON $w1_shard");
# unprotect_table removes the policies and the trigger from the shards.
is($c->safe_psql('postgres', q{SELECT pdp.unprotect_table('prot'); SELECT current_setting('citus.enable_unsafe_triggers')}), "\noff",
	'unprotect_table on a distributed table; the setting stays off');
for my $w (qw(worker1 worker2))
{
	like($node{$w}->safe_psql('postgres', $shard_facts), qr/rls false, forced false; policies 0; trigger 0$/,
		"unprotected: ${w}'s shards have neither policies nor trigger");
}

# --- Step 4: apply_rules on distributed and reference tables -------------
# The same 900 rows in an ordinary table (people_l), a distributed table
# (people_d, by id), a distributed table with a composite key distributed by
# its text column org (people_c, owned by tap_owner, no superuser) and a
# reference table (people_r), with the same rules (keyed: pseudo_email,
# pseudo_phone, pseudo_ip on inet, encrypt; keyless: generalize_year, mask):
# apply_rules in batches of 77 gives every Citus table exactly the rows it
# gives the ordinary one (digest over every column), the reference table's
# placements on every node are alike, the run is recorded and audited as on
# one node.  A rule on the distribution column is refused (0A000), at
# set_column_rule and, declared before the table was distributed, at
# apply_rules, with no row changed.
my $people_cols = q{id, org, email, phone, ip, born, note};
$c->safe_psql('postgres', qq{
	CREATE TABLE people_l (id bigint PRIMARY KEY, org text NOT NULL, email text, phone varchar(40), ip inet, born date, note text);
	INSERT INTO people_l SELECT g, 'org' || g % 5, CASE WHEN g % 17 = 0 THEN NULL ELSE 'user' || g || '\@example.kz' END,
	       '+7 7' || lpad(g::text, 9, '0'), ('10.0.' || g / 256 || '.' || g % 256)::inet, date '1990-01-01' + g, 'note ' || g
	  FROM generate_series(1, 900) g;
	CREATE TABLE people_d (LIKE people_l INCLUDING ALL);
	CREATE TABLE people_r (LIKE people_l INCLUDING ALL);
	CREATE TABLE people_c (id bigint NOT NULL, org text NOT NULL, email text, phone varchar(40), ip inet, born date, note text,
	                       PRIMARY KEY (org, id));
	INSERT INTO people_d SELECT * FROM people_l;
	INSERT INTO people_r SELECT * FROM people_l;
	INSERT INTO people_c SELECT * FROM people_l;
	SELECT create_distributed_table('people_d', 'id');
	SELECT create_reference_table('people_r');
	SELECT create_distributed_table('people_c', 'org');
	ALTER TABLE people_c OWNER TO tap_owner;
	GRANT pdp_admin, pdp_pseudonymiser TO tap_owner;   -- (a table owner declaring keyed rules)
	CREATE TABLE people_x (email text NOT NULL, id bigint NOT NULL, PRIMARY KEY (email, id));
	INSERT INTO people_x SELECT 'user' || g || '\@example.kz', g FROM generate_series(1, 50) g;
	SELECT pdp.set_column_rule('people_x', 'email', 'pseudo_email');
	SELECT create_distributed_table('people_x', 'email');
});
sub people_digest
{
	my ($t) = @_;
	return $c->safe_psql('postgres', "SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', $people_cols), ',' ORDER BY id)) FROM $t");
}
my $people_before = people_digest('people_l');
is(people_digest($_), $people_before, "$_ holds the same rows as the ordinary table") for qw(people_d people_r people_c);
my $people_x_before = $c->safe_psql('postgres', q{SELECT md5(string_agg(email, ',' ORDER BY id)) FROM people_x});

# Rules: the ordinary and the reference table as the superuser, people_c as its owner.
my $set_rules = join('', map { "SELECT pdp.set_column_rule('%s', '$_->[0]', '$_->[1]');" }
	(['email', 'pseudo_email'], ['phone', 'pseudo_phone'], ['ip', 'pseudo_ip'], ['born', 'generalize_year'], ['note', 'encrypt']));
$c->safe_psql('postgres', sprintf($set_rules, ('people_l') x 5) . sprintf($set_rules, ('people_d') x 5) . sprintf($set_rules, ('people_r') x 5));
$c->safe_psql('postgres', "SET ROLE tap_owner;\n" . sprintf($set_rules, ('people_c') x 5));
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_owner;\nSELECT pdp.set_column_rule('people_c', 'org', 'pseudonym')");
like($err, qr/ERROR:  0A000: cannot apply a column rule to the distribution column "org" of distributed table "people_c"/,
	'set_column_rule refuses a rule on the distribution column');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.column_rule WHERE tbl = 'people_c'::regclass AND col = 'org'}), '0', 'and records none');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nCALL pdp.apply_rules('people_x')");
like($err, qr/ERROR:  0A000: cannot apply a column rule to the distribution column "email" of distributed table "people_x"/,
	'apply_rules refuses a rule on the distribution column declared before the table was distributed');
like($err, qr/HINT:  Drop the rule \(pdp.drop_column_rule\) and pseudonymise the column while the table is local/, 'with a hint');
is($c->safe_psql('postgres', q{SELECT md5(string_agg(email, ',' ORDER BY id)) FROM people_x}), $people_x_before, 'and no row of it changed');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.apply_run WHERE tbl = 'people_x'::regclass}), '0', 'nor a run started');

$c->safe_psql('postgres', q{CALL pdp.apply_rules('people_l', batch_size => 77)});
my $people_after = people_digest('people_l');
isnt($people_after, $people_before, 'apply_rules rewrote the ordinary table');
for my $t (qw(people_d people_r people_c))
{
	my $as = $t eq 'people_c' ? "SET ROLE tap_owner;\n" : '';
	($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\n${as}CALL pdp.apply_rules('$t', batch_size => 77)");
	is($ret, 0, "apply_rules on $t succeeds") or diag($err);
	is(people_digest($t), $people_after, "$t now holds exactly the rows apply_rules gives on one node");
	is($c->safe_psql('postgres', qq{SELECT rows_done || ' ' || (finished_at IS NOT NULL) FROM pdp.apply_run WHERE tbl = '$t'::regclass}),
		'900 true', "$t: the run recorded 900 rows, finished");
	like($err, qr/apply_rules on table "$t": 900 rows rewritten so far/, "$t: in batches, the last notice at 900 rows");
	unlike($err, qr/user\d+\@example/, "$t: no value in the notices");
}
is($c->safe_psql('postgres', q{SELECT string_agg(action || ' ' || coalesce(details->>'citus', '-') || ' ' || coalesce(details->>'rows', '-'), '; ' ORDER BY id)
                                FROM pdp.audit_log WHERE action LIKE 'apply_rules%' AND object IN ('people_d', 'people_r', 'people_c')}),
	'apply_rules_start distributed -; apply_rules_finish - 900; apply_rules_start reference -; apply_rules_finish - 900; apply_rules_start distributed -; apply_rules_finish - 900',
	'the audit trail records each run, the Citus table kind and the rows');
is($c->safe_psql('postgres', q{SELECT count(DISTINCT result) || ' ' || count(*) FROM run_command_on_placements('people_r',
                                  $$SELECT md5(string_agg(concat_ws('|', id, org, email, phone, ip, born, note), ',' ORDER BY id)) FROM %s$$)}),
	'1 3', 'the reference table\'s placements (coordinator and both workers) are alike');
is($c->safe_psql('postgres', q{SELECT count(*) FROM people_d WHERE email LIKE 'user%' OR note LIKE 'note%'}), '0', 'no raw value left in people_d');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nCALL pdp.apply_rules('people_d')");
like($err, qr/ERROR:  55000: rules were already applied to table "people_d"/, 'a second run is refused as on one node');

# --- Step 4: anonymising erasure on distributed and reference tables -----
# The same 800 marks in an ordinary table (marks_l), a distributed table
# (marks_d) and a reference table (marks_r), learners 100..139 in two
# subject columns (learner: set_null; grader: set_value 0), a comment set to
# a constant and a date generalised to its year in the rows kept: erasing
# learner 121 leaves every Citus table exactly as it leaves the ordinary one
# (digest over every column), changes exactly the rows that named 121 (the
# others' digest unchanged), and the reference table's placements alike.
# A table distributed by its subject column (set_null would move its rows)
# (set_value) makes the whole erasure fail with 0A000, nothing erased.
my $marks_cols = q{id, learner, grader, score, day, comment};
$c->safe_psql('postgres', q{
	CREATE TABLE marks_l (id bigint PRIMARY KEY, learner bigint, grader bigint, score int, day date, comment text);
	INSERT INTO marks_l SELECT g, 100 + g % 40, CASE WHEN g % 3 > 0 THEN 100 + (g * 7) % 40 END, g % 100, date '2020-01-01' + g, 'comment ' || g
	  FROM generate_series(1, 800) g;
	CREATE TABLE marks_d (LIKE marks_l INCLUDING ALL);
	CREATE TABLE marks_r (LIKE marks_l INCLUDING ALL);
	INSERT INTO marks_d SELECT * FROM marks_l;
	INSERT INTO marks_r SELECT * FROM marks_l;
	SELECT create_distributed_table('marks_d', 'id');
	SELECT create_reference_table('marks_r');
	SELECT pdp.register_table(t, 'learner', on_erase => 'set_null'), pdp.register_table(t, 'grader', on_erase => 'set_value', erase_value => '0'),
	       pdp.set_anonymisation(t, 'comment', 'set_value', erase_value => 'removed'),
	       pdp.set_anonymisation(t, 'day', 'generalise', granularity => 'year')
	  FROM unnest(ARRAY['marks_l', 'marks_d', 'marks_r']::regclass[]) t;
	CREATE TABLE marks_x (learner bigint NOT NULL, id bigint NOT NULL, note text, PRIMARY KEY (learner, id));
	INSERT INTO marks_x SELECT 100 + g % 40, g, 'x' FROM generate_series(1, 200) g;
	SELECT create_distributed_table('marks_x', 'learner');
});
sub marks_digest
{
	my ($t, $where) = @_;
	$where //= 'true';
	return $c->safe_psql('postgres', "SELECT count(*) || ' ' || md5(string_agg(concat_ws('|', $marks_cols), ',' ORDER BY id)) FROM $t WHERE $where");
}
my $marks_before = marks_digest('marks_l');
is(marks_digest($_), $marks_before, "$_ holds the same marks as the ordinary table") for qw(marks_d marks_r);
my $named_ids = $c->safe_psql('postgres', q{SELECT string_agg(id::text, ',') FROM marks_l WHERE learner = 121 OR grader = 121});
my $others_where = "id NOT IN ($named_ids)";
my $others_before = marks_digest('marks_l', $others_where);
my $named = $c->safe_psql('postgres', q{SELECT count(*) FROM marks_l WHERE learner = 121 OR grader = 121});
# (A row is anonymised once it names nobody: every subject column cut or empty.)
my $nobody = $c->safe_psql('postgres', q{SELECT count(*) FROM marks_l WHERE (learner = 121 OR grader = 121)
                                           AND (learner = 121 OR learner IS NULL) AND (grader = 121 OR grader IS NULL)});
cmp_ok($named, '>', 20, 'learner 121 is named in some marks');
cmp_ok($nobody, '>', 5, 'some of which name nobody else');
my $receipts = $c->safe_psql('postgres', q{SELECT count(*) FROM pdp.erasure});

# Refused: marks_x is distributed by its subject column.
$c->safe_psql('postgres', q{SELECT pdp.register_table('marks_x', 'learner', on_erase => 'set_value', erase_value => '0')});
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.erase_subject(121::bigint, 'asked')");
like($err, qr/ERROR:  0A000: cannot anonymise rows of distributed table "marks_x": it would change the distribution column "learner"/,
	'erasure that would change a distribution column is refused');
like($err, qr/HINT:  Register the distribution column with on_erase => 'delete'/, 'with a hint saying what works');
is(marks_digest($_), $marks_before, "$_: nothing erased") for qw(marks_d marks_r marks_l);
is($c->safe_psql('postgres', q{SELECT count(*) FROM marks_x WHERE learner = 121}), '5', 'marks_x: nothing erased');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.erasure}), $receipts, 'no receipt stored');
$c->safe_psql('postgres', q{SELECT pdp.unregister_table('marks_x')});

($ret, $out, $err) = $c->psql('postgres', q{SELECT string_agg((t->>'table') || ' ' || (t->>'action') || ' ' || (t->>'rows') || ' ' || (t->>'anonymised'), '; ' ORDER BY t->>'table')
                                             FROM jsonb_array_elements(pdp.erase_subject(121::bigint, 'asked') -> 'tables') t});
is($ret, 0, 'erase_subject anonymises on distributed and reference tables') or diag($err);
is($out, "public.marks_d set_null+set_value $named $nobody; public.marks_l set_null+set_value $named $nobody; public.marks_r set_null+set_value $named $nobody",
	'the receipt counts the rows that named learner 121, and those anonymised, in every table');
my $marks_after = marks_digest('marks_l');
isnt($marks_after, $marks_before, 'the ordinary table changed');
is(marks_digest($_), $marks_after, "$_ holds exactly the rows erasure leaves on one node") for qw(marks_d marks_r);
is(marks_digest($_, $others_where), $others_before, "$_: every row that did not name learner 121 unchanged") for qw(marks_d marks_r);
is($c->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE learner = 121 OR grader = 121) || ' '
                                      || count(*) FILTER (WHERE comment = 'removed' AND extract(doy FROM day) = 1 AND learner IS NULL AND (grader IS NULL OR grader = 0))
                                 FROM marks_d}),
	"0 $nobody", 'marks_d: no row names learner 121; each that names nobody now has its comment removed and its date generalised');
is($c->safe_psql('postgres', q{SELECT count(DISTINCT result) || ' ' || count(*) FROM run_command_on_placements('marks_r',
                                  $$SELECT md5(string_agg(concat_ws('|', id, learner, grader, score, day, comment), ',' ORDER BY id)) FROM %s$$)}),
	'1 3', 'the reference table\'s placements are alike after the erasure');
$c->safe_psql('postgres', q{SELECT pdp.unregister_table(t) FROM unnest(ARRAY['marks_l', 'marks_d', 'marks_r']::regclass[]) t});

# --- Step 6: one audit trail and one key, collected on read --------------
my %addr = map { $_ => '127.0.0.1:' . $node{$_}->port } qw(worker1 worker2);
my $nodes_in_order = join(' ', 'coordinator', sort { $a cmp $b } values %addr);
sub local_keys
{
	my ($n) = @_;
	return $node{$n}->safe_psql('postgres', q{SELECT string_agg(version || '=' || fingerprint || '/' || active, ' ' ORDER BY version) FROM pdp._key_status_local()});
}
# Each worker answers for itself (no node column filled, nothing compared).
for my $w (qw(worker1 worker2))
{
	is($node{$w}->safe_psql('postgres', q{SELECT count(*) FILTER (WHERE node IS NULL AND mismatch IS NULL) || '/' || count(*) FROM pdp.key_status()}),
		'1/1', "${w}'s key_status answers for itself only");
	is($node{$w}->safe_psql('postgres', q{SELECT nodes IS NULL FROM pdp.verify_audit_log()}), 't', "${w}'s verification is its own");
}
($ret, $out, $err) = $c->psql('postgres',
	q{SELECT node || ' ' || version || '=' || fingerprint || '/' || active || ' ' || mismatch FROM pdp.key_status()});
is($ret, 0, 'key_status on the coordinator succeeds');
my $fp = local_keys('coordinator');
is($out, join("\n", map { "$_ $fp false" } split / /, $nodes_in_order),
	'key_status shows every node\'s fingerprints, the same as each node\'s own, none flagged');
is(local_keys($_), $fp, "$_ has the coordinator's key") for qw(worker1 worker2);
unlike($err, qr/WARNING/, 'no warning while the keys agree');

# A reversal pushed down to the workers' shards is audited there, counted
# and verified from the coordinator.
$c->safe_psql('postgres', q{
	CREATE TABLE tokens (id bigint PRIMARY KEY, learner bigint NOT NULL, tok text NOT NULL);
	SELECT create_distributed_table('tokens', 'id');
	INSERT INTO tokens SELECT g, g % 40, pdp.encrypt('value ' || g, 'tap') FROM generate_series(1, 200) g;
});
my $reversals = sub {
	my ($n) = @_;
	return $node{$n}->safe_psql('postgres', q{SELECT count(*) FROM pdp.audit_log WHERE action = 'reverse'});
};
my %rev_before = map { $_ => $reversals->($_) } qw(coordinator worker1 worker2);
is($c->safe_psql('postgres', q{SELECT count(*) FROM tokens WHERE pdp.decrypt(tok) = 'value ' || id}), '200',
	'a decrypt over the distributed table returns every value');
like($c->safe_psql('postgres', q{EXPLAIN (VERBOSE, COSTS OFF) SELECT count(*) FROM tokens WHERE pdp.decrypt(tok) = 'value ' || id}),
	qr/Task Count: 8.*decrypt/s, 'the decrypt runs in the shards\' tasks, on the workers');
is($reversals->('coordinator'), $rev_before{coordinator}, 'the coordinator recorded no reversal of its own');
my %rev_after = map { $_ => $reversals->($_) } qw(coordinator worker1 worker2);
cmp_ok($rev_after{$_}, '>', $rev_before{$_}, "$_ recorded the reversals its shards ran") for qw(worker1 worker2);
my $verify_nodes = q{
	SELECT v.ok || ' ' || string_agg((x->>'node') || ':' || coalesce(x->>'ok', 'null') || ':' || (x->>'reversals'), ' ' ORDER BY i)
	  FROM pdp.verify_audit_log() v, jsonb_array_elements(v.nodes) WITH ORDINALITY AS e(x, i) GROUP BY v.ok};
is($c->safe_psql('postgres', $verify_nodes),
	"true coordinator:true:$rev_after{coordinator} $addr{worker1}:true:$rev_after{worker1} $addr{worker2}:true:$rev_after{worker2}",
	'verify_audit_log on the coordinator verifies every worker\'s chain and counts its reversals');
like($c->safe_psql('postgres', q{SELECT message FROM pdp.verify_audit_log()}), qr/^ok: \d+ entries on the coordinator, \d+ on 2 worker\(s\)$/,
	'the message speaks for the cluster');
my $on_workers = $rev_after{worker1} + $rev_after{worker2};
is($c->safe_psql('postgres', q{SELECT (r->'reversals'->>'total') || ' ' || (r->'reversals'->>'on_workers') || ' ' || (r->>'key_mismatch')
                                 FROM (SELECT pdp.report('json')::jsonb r) x}),
	($on_workers + $rev_after{coordinator}) . " $on_workers false", 'the report counts the workers\' reversals');
$c->safe_psql('postgres', q{CREATE ROLE tap_dpo LOGIN; GRANT pdp_auditor TO tap_dpo});
is($c->safe_psql('postgres', q{SET ROLE tap_dpo; SELECT (pdp.report('json')::jsonb -> 'reversals' ->> 'on_workers') || ' '
                                 || (SELECT count(*) FILTER (WHERE NOT mismatch) FROM pdp.key_status())}),
	"$on_workers 3", 'the DPO (pdp_auditor, no superuser) reads the workers\' facts in the report and key_status');
for my $f (q{pdp._citus_on_workers('SELECT 1')}, q{pdp._key_status_local()}, q{pdp._verify_audit_log_local()})
{
	($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_dpo; SELECT * FROM $f");
	like($err, qr/ERROR:  42501: permission denied for function/, "attack: the DPO cannot call $f (internal to pdp's SECURITY DEFINER collectors)");
}
my $md = $c->safe_psql('postgres', q{SELECT pdp.report('markdown')});
like($md, qr/Reversals recorded: \d+, \Q$on_workers\E of them on workers\./, 'the markdown report says so');
like($md, qr/\| \Q$addr{worker1}\E \| verifies \| \d+ \| \Q$rev_after{worker1}\E \| same \|/, 'the markdown report has a row per worker');
like($c->safe_psql('postgres', q{SELECT pdp.report('html')}), qr/<td>\Q$addr{worker2}\E<\/td><td class="ok">verifies<\/td>/,
	'the html report too');

# An entry edited on worker1 is caught by the coordinator's verification.
my $w1 = $node{worker1};
$w1->safe_psql('postgres', q{SELECT pdp.seal_audit_log(wait => true, max_entries => 100000)});
my $edited = $w1->safe_psql('postgres', q{SELECT max(entry_id) FROM pdp.audit_seal});
$w1->safe_psql('postgres', qq{CREATE TABLE saved_entry AS SELECT * FROM pdp.audit_log WHERE id = $edited;
	SET session_replication_role = replica; UPDATE pdp.audit_log SET details = '{"edited": true}' WHERE id = $edited});
is($c->safe_psql('postgres', q{SELECT ok || ' ' || (first_bad_id IS NULL) || ' ' || (message LIKE '%worker(s) } . $addr{worker1} . q{ failed verification%')
                                 FROM pdp.verify_audit_log()}),
	'false true true', 'an edit on worker1 fails the coordinator\'s verification, naming worker1');
is($c->safe_psql('postgres', qq{SELECT (x->>'ok') || ' ' || (x->>'first_bad_id') FROM pdp.verify_audit_log() v, jsonb_array_elements(v.nodes) x
                                 WHERE x->>'node' = '$addr{worker1}'}),
	"false $edited", 'worker1\'s entry in nodes gives the edited entry');
like($c->safe_psql('postgres', q{SELECT pdp.report('markdown')}), qr/\*\*The audit trail does not verify on every node\*\*.*\| \Q$addr{worker1}\E \| \*\*broken\*\*: /s,
	'the report shows the broken worker chain');
$w1->safe_psql('postgres', qq{SET session_replication_role = replica;
	UPDATE pdp.audit_log l SET details = s.details FROM saved_entry s WHERE l.id = s.id; DROP TABLE saved_entry});
is($c->safe_psql('postgres', q{SELECT ok FROM pdp.verify_audit_log()}), 't', 'restored, the cluster\'s trail verifies again');

# worker2 given another key file: the mismatch is flagged, never a key shown.
my $other_key = pdp_key_file();
my $w2 = $node{worker2};
$w2->append_conf('postgresql.conf', "pdp.key_file = '$other_key'\n");
$w2->restart;
isnt(local_keys('worker2'), $fp, 'worker2 now has another key');
($ret, $out, $err) = $c->psql('postgres',
	q{SELECT node || ' ' || mismatch FROM pdp.key_status()});
is($ret, 0, 'key_status succeeds with the mismatch');
is($out, "coordinator true\n$addr{worker1} false\n$addr{worker2} true", 'the mismatch is flagged on worker2 (and the coordinator), not on worker1');
like($err, qr/WARNING:  the key file differs between the nodes of the Citus cluster/, 'with a warning');
like($err, qr/DETAIL:  Workers whose key fingerprints differ from the coordinator's: \Q$addr{worker2}\E\./, 'naming worker2 only');
my $json = $c->safe_psql('postgres', q{SELECT pdp.report('json')});
like($json, qr/"key_mismatch": true/, 'the report flags the mismatch');
like($c->safe_psql('postgres', q{SELECT pdp.report('markdown')}),
	qr/\*\*The key file differs between nodes\*\*.*\| \Q$addr{worker2}\E \|[^\n]*\| \*\*differs\*\* \|/s, 'the markdown report names the worker');
# apply_rules computes no pseudonym on worker2 now: it fails with 55000 there, and no row changes on any node.
$c->safe_psql('postgres', q{
	CREATE TABLE people_k (id bigint PRIMARY KEY, email text);
	INSERT INTO people_k SELECT g, 'user' || g || '@example.kz' FROM generate_series(1, 100) g;
	SELECT create_distributed_table('people_k', 'id');
	SELECT pdp.set_column_rule('people_k', 'email', 'pseudo_email');
});
my $k_before = $c->safe_psql('postgres', q{SELECT md5(string_agg(email, ',' ORDER BY id)) FROM people_k});
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nCALL pdp.apply_rules('people_k', batch_size => 1000)");
like($err, qr/ERROR:  55000: the key file of this Citus node differs from the coordinator's/, 'apply_rules refuses on the worker with another key file');
like($err, qr/HINT:  Give every node the same pdp.key_file/, 'with the hint');
is($c->safe_psql('postgres', q{SELECT md5(string_agg(email, ',' ORDER BY id)) FROM people_k}), $k_before, 'and no row changed, on either worker');
for my $k ($key, $other_key)
{
	my ($hex) = slurp_file($k) =~ /^1 ([0-9a-f]{64})$/m;
	unlike($out . $err . $json, qr/\Q$hex\E/i, 'no key bytes in key_status or the report');
}
# worker2's own chain was sealed under the old key: its verification fails there, and so here.
is($c->safe_psql('postgres', qq{SELECT (v.ok IS NOT TRUE) || ' ' || (v.message LIKE '%$addr{worker2}%') || ' ' || (x->>'ok' IS DISTINCT FROM 'true')
                                 FROM pdp.verify_audit_log() v, jsonb_array_elements(v.nodes) x WHERE x->>'node' = '$addr{worker2}'}),
	'true true true', 'worker2\'s chain no longer verifies under its new key, and the coordinator says so');

# A worker that cannot be reached is reported, not skipped.
$w2->stop;
($ret, $out, $err) = $c->psql('postgres', q{SELECT node || ' ' || coalesce(version::text, 'none') || ' ' || coalesce(mismatch::text, 'unknown') FROM pdp.key_status()});
is($out, "coordinator 1 false\n$addr{worker1} 1 false\n$addr{worker2} none unknown", 'key_status shows the unreachable worker unread');
like($err, qr/WARNING:  could not read the key fingerprints of every Citus worker/, 'with a warning');
is($c->safe_psql('postgres', qq{SELECT coalesce(v.ok::text, 'null') || ' ' || (x->>'message' LIKE 'could not verify: %')
                                 FROM pdp.verify_audit_log() v, jsonb_array_elements(v.nodes) x WHERE x->>'node' = '$addr{worker2}'}),
	'null true', 'verify_audit_log cannot vouch for the cluster while a worker is unreachable');
$w2->start;


# --- Step 5, second half: rectification notices on the shards ------------
# On one node, an update of a classified column of a registered table
# records a notice for every recipient of the row's learner (pdp's
# rectification trigger, reading pdp.disclosure).  Column rules are refused
# on Citus tables; a DBA who distributes a table that has them anyway (with
# citus.enable_unsafe_triggers) gets the trigger on every shard, where the
# registry and pdp.disclosure are not kept: there an update of a classified
# column is refused whole, rather than record no notice; other columns are
# still written.
$c->safe_psql('postgres', q{
	CREATE TABLE rect (id bigint PRIMARY KEY, learner bigint NOT NULL, email text, note text);
	INSERT INTO rect SELECT g, g % 40, 'l' || g || '@example.kz', 'n ' || g FROM generate_series(1, 80) g;
	SELECT pdp.register_table('rect', 'learner');
	SELECT pdp.set_column_rule('rect', 'email', 'mask');
	SELECT pdp.define_recipient('tap ministry', 'KZ');
	SELECT pdp.record_disclosure(7::bigint, 'tap ministry', 'teaching', ARRAY['email']);
});
my $rect_notices = q{SELECT count(*) FROM pdp.rectification_notice WHERE tbl = 'rect'::regclass AND recipient = 'tap ministry'};
is($c->safe_psql('postgres', q{UPDATE rect SET email = 'new7@example.kz' WHERE id = 7} . ";\n" . $rect_notices), '1',
	'on one node, a rectification of a classified column records the recipient\'s notice');
($ret, $out, $err) = $c->psql('postgres', q{SET citus.enable_unsafe_triggers = on; SELECT create_distributed_table('rect', 'id')});
is($ret, 0, 'a DBA distributes the table with its rectification trigger (citus.enable_unsafe_triggers on)') or diag($err);
like($node{worker1}->safe_psql('postgres', q{SET citus.override_table_visibility = off;
		SELECT count(*) FROM pg_trigger t WHERE t.tgname LIKE 'pdp\\_rectification%' AND t.tgrelid::regclass::text LIKE 'rect\\_%'}),
	qr/^[1-8]$/, 'the trigger is on worker1\'s shards');
my $rect_rows = q{SELECT count(*) || ' ' || md5(string_agg(id || email || note, ',' ORDER BY id)) FROM rect};
my $rect_before = $c->safe_psql('postgres', $rect_rows);
my $all_notices = q{SELECT (SELECT count(*) FROM pdp.rectification_notice) || '/'
	|| (SELECT count(*) FROM pdp.pending_notices)};

# --- Step 5, second half: the notices reach the coordinator --------------
# pdp.citus_sync_state mirrors pdp.disclosure's (subject, recipient) pairs
# into the reference table pdp.citus_disclosure.  Where a worker has no
# placement of it the shard's trigger refuses (55000, fail closed); with it,
# the trigger records the notices in the worker's own
# pdp.rectification_notice, naming the distributed table, and the
# coordinator's pdp.pending_notices lists them and acknowledge_notice
# closes them.
$node{worker1}->safe_psql('postgres', q{SET citus.enable_manual_changes_to_shards = on;
	DO $$ BEGIN EXECUTE (SELECT format('ALTER TABLE pdp.%I RENAME TO hidden_placement', 'citus_disclosure_' || shardid)
	                       FROM pg_dist_shard WHERE logicalrelid = 'pdp.citus_disclosure'::regclass); END $$});
my $notice_before = $c->safe_psql('postgres', $all_notices);
for my $sql (q{UPDATE rect SET email = 'changed@example.kz' WHERE learner = 7}, q{UPDATE rect SET email = 'x', note = 'y'})
{
	($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	isnt($ret, 0, "$sql on a worker without the mirror's placement: refused");
	like($err, qr/ERROR:  55000: cannot record the rectification notices of a change to table "rect"/,
		"$sql: SQLSTATE 55000, the distributed table named, reaching the coordinator's client");
	like($err, qr/HINT:  On the coordinator, run SELECT replicate_reference_tables\(\)/, "$sql: with the hint");
	unlike($err, qr/example\.kz|learner = /, "$sql: no value in the error");
}
is($c->safe_psql('postgres', $rect_rows), $rect_before, 'the refused rectifications changed no row');
is($c->safe_psql('postgres', $all_notices), $notice_before, 'and recorded no notice');
$node{worker1}->safe_psql('postgres', q{SET citus.enable_manual_changes_to_shards = on;
	DO $$ BEGIN EXECUTE (SELECT format('ALTER TABLE pdp.hidden_placement RENAME TO %I', 'citus_disclosure_' || shardid)
	                       FROM pg_dist_shard WHERE logicalrelid = 'pdp.citus_disclosure'::regclass); END $$});

# The one-node notice above is sent and closed first.
$c->safe_psql('postgres', q{SELECT pdp.acknowledge_notice(id) FROM pdp.rectification_notice WHERE tbl = 'rect'::regclass});

# With the mirror in place: learner 7 has one recipient (and a second now),
# learner 8 none; learner 7's rows are on both workers' shards.
$c->safe_psql('postgres', q{SELECT pdp.define_recipient('tap registry', 'KZ');
	SELECT pdp.record_disclosure(7::bigint, 'tap registry', 'teaching', ARRAY['email']);
	SELECT pdp.record_disclosure(7::bigint, 'tap registry', 'teaching', ARRAY['email'])});
is($c->safe_psql('postgres', q{SELECT string_agg(subject || ':' || recipient, ',' ORDER BY recipient) FROM pdp.citus_disclosure WHERE subject = '7'}),
	'7:tap ministry,7:tap registry', 'the sync and the triggers mirror learner 7\'s two recipients, once each');
my $pending_rect = q{SELECT coalesce(string_agg(subject || ' ' || recipient || ' ' || table_name::text || ' ' || array_to_string(columns, ','), E'\n'
	ORDER BY recipient, id), '') FROM pdp.pending_notices WHERE table_name = 'rect'::regclass};
my $pending_before = $c->safe_psql('postgres', $pending_rect);
is($pending_before, '', 'no pending notice of rect yet');

# A rolled-back rectification leaves no notice anywhere.
$c->safe_psql('postgres', q{BEGIN; UPDATE rect SET email = 'rolled@example.kz' WHERE id = 47; ROLLBACK});
is($c->safe_psql('postgres', $pending_rect), '', 'a rolled-back rectification leaves no notice');
is($node{worker1}->safe_psql('postgres', q{SELECT count(*) FROM pdp.rectification_notice}) . '/'
	  . $node{worker2}->safe_psql('postgres', q{SELECT count(*) FROM pdp.rectification_notice}),
	'0/0', 'on no worker');

# A subject without disclosures: its rows change, no notice.
$c->safe_psql('postgres', q{UPDATE rect SET email = 'eight@example.kz' WHERE learner = 8});
is($c->safe_psql('postgres', q{SELECT count(*) FROM rect WHERE email = 'eight@example.kz'}), '2', 'learner 8\'s two rows are rectified');
is($c->safe_psql('postgres', $pending_rect), '', 'with no notice: learner 8 has no recipient');

# Learner 7: rows 7 and 47, and one more on a shard of the other worker.
my $node_of = q{SELECT s.nodeport FROM citus_shards s WHERE s.shardid = get_shard_id_for_distribution_column('rect', %d)};
$c->safe_psql('postgres', sprintf(q{INSERT INTO rect SELECT min(g), 7, 'l7b@example.kz', 'n' FROM generate_series(100, 200) g
	WHERE (SELECT s.nodeport FROM citus_shards s WHERE s.shardid = get_shard_id_for_distribution_column('rect', g)) <> (%s)}, sprintf($node_of, 7)));
is($c->safe_psql('postgres', q{SELECT count(DISTINCT s.nodeport) FROM rect r JOIN citus_shards s ON s.shardid = get_shard_id_for_distribution_column('rect', r.id) WHERE r.learner = 7}),
	'2', 'learner 7\'s rows are on both workers');
($ret, $out, $err) = $c->psql('postgres', q{UPDATE rect SET email = 'changed@example.kz' WHERE learner = 7});
is($ret, 0, 'a rectification of learner 7 through the coordinator is written') or diag($err);
unlike($err, qr/example\.kz|\b7\b/, 'and says nothing of the values');
is($c->safe_psql('postgres', $pending_rect),
	join("\n", ("7 tap ministry rect email") x 3, ("7 tap registry rect email") x 3),
	'one notice per recipient and changed row, listed on the coordinator with the distributed table named');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.rectification_notice WHERE tbl = 'rect'::regclass}), '1',
	'(the coordinator itself holds only its one-node notice: the others are the workers\')');
is(join('/', sort map { $node{$_}->safe_psql('postgres', q{SELECT count(*) || ' ' || string_agg(DISTINCT tbl::text, ',') FROM pdp.rectification_notice}) } qw(worker1 worker2)),
	'2 rect/4 rect', 'each worker recorded its rows\' notices, naming the distributed table, not the shard');
is($c->safe_psql('postgres', q{SELECT count(DISTINCT id) FROM pdp.pending_notices}), $c->safe_psql('postgres', q{SELECT count(*) FROM pdp.pending_notices}),
	'notice numbers are unique across the nodes');
is($c->safe_psql('postgres', q{SET ROLE pdp_auditor; SELECT count(*) FROM pdp.pending_notices WHERE table_name = 'rect'::regclass}), '6',
	'pdp_auditor reads the workers\' notices too');

# Acknowledging a worker's notice on the coordinator closes it there.
my $wid = $c->safe_psql('postgres', q{SELECT min(id) FROM pdp.pending_notices WHERE table_name = 'rect'::regclass AND recipient = 'tap registry'});
cmp_ok($wid, '>=', 1000000000000000, 'a worker\'s notice is numbered in its group\'s range');
$c->safe_psql('postgres', qq{BEGIN; SELECT pdp.acknowledge_notice($wid); ROLLBACK});
is($c->safe_psql('postgres', qq{SELECT count(*) FROM pdp.pending_notices WHERE id = $wid}), '1', 'an acknowledgement rolled back leaves it pending');
$c->safe_psql('postgres', qq{SELECT pdp.acknowledge_notice($wid)});
is($c->safe_psql('postgres', qq{SELECT count(*) FROM pdp.pending_notices WHERE id = $wid}), '0', 'acknowledge_notice on the coordinator closes a worker\'s notice');
is($c->safe_psql('postgres', qq{SELECT tbl::text || ' ' || (acknowledged_at IS NOT NULL) FROM pdp.rectification_notice WHERE id = $wid}), 'rect true',
	'the coordinator keeps it, acknowledged');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.pending_notices WHERE table_name = 'rect'::regclass}), '5', 'the others stay pending');
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT pdp.acknowledge_notice($wid)");
like($err, qr/ERROR:  42704: notice \d+ does not exist or is acknowledged already/, 'a second acknowledgement is refused');

# A worker that cannot be asked: the listing refuses rather than leave its notices out.
$node{worker2}->stop;
($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSELECT count(*) FROM pdp.pending_notices");
like($err, qr/ERROR:  55000: cannot read the rectification notices recorded on worker 127\.0\.0\.1:\d+/, 'pending_notices refuses while a worker is unreachable');
$node{worker2}->start;
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.pending_notices WHERE table_name = 'rect'::regclass}), '5', 'and lists its notices again once it is back');

# A reference table with a classified column: one notice per recipient, not one per placement.
$c->safe_psql('postgres', q{
	CREATE TABLE rect_ref (id bigint PRIMARY KEY, learner bigint NOT NULL, email text);
	INSERT INTO rect_ref VALUES (1, 7, 'a@example.kz'), (2, 8, 'b@example.kz');
	SELECT pdp.register_table('rect_ref', 'learner');
	SELECT pdp.set_column_rule('rect_ref', 'email', 'mask');
	SET citus.enable_unsafe_triggers = on;
	SELECT create_reference_table('rect_ref');
});
($ret, $out, $err) = $c->psql('postgres', q{UPDATE rect_ref SET email = 'new@example.kz'});
is($ret, 0, 'a rectification of a reference table is written') or diag($err);
is($c->safe_psql('postgres', q{SELECT string_agg(subject || ' ' || recipient, ',' ORDER BY recipient) FROM pdp.pending_notices WHERE table_name = 'rect_ref'::regclass}),
	'7 tap ministry,7 tap registry', 'one notice per recipient of learner 7 from the reference table\'s placements, none for learner 8');

# Registering a distributed table that has column rules installs the
# rectification trigger on every shard (pdp turns citus.enable_unsafe_triggers
# on for that statement only); unregistering drops it from every shard.
my $shard_triggers = sub {
	my ($t) = @_;
	return join('/', map { $node{$_}->safe_psql('postgres', qq{SET citus.override_table_visibility = off;
		SELECT count(*) FROM pg_trigger t WHERE t.tgname ~ '^pdp_rectification' AND t.tgrelid::regclass::text ~ '^${t}_[0-9]+\$'}) } qw(worker1 worker2));
};
$c->safe_psql('postgres', q{
	CREATE TABLE rect_later (id bigint PRIMARY KEY, learner bigint NOT NULL, email text);
	INSERT INTO rect_later SELECT g, g % 40, 'r' || g || '@example.kz' FROM generate_series(1, 80) g;
	SELECT pdp.set_column_rule('rect_later', 'email', 'mask');
	SELECT create_distributed_table('rect_later', 'id');
});
is($shard_triggers->('rect_later'), '0/0', 'a distributed table with rules but unregistered has no rectification trigger');
is($c->safe_psql('postgres', q{SELECT pdp.register_table('rect_later', 'learner'); SHOW citus.enable_unsafe_triggers}), "\noff",
	'register_table of a distributed table with column rules succeeds, and leaves citus.enable_unsafe_triggers off');
like($shard_triggers->('rect_later'), qr/^[1-8]\/[1-8]$/, 'the trigger is on every worker\'s shards');
$c->safe_psql('postgres', q{UPDATE rect_later SET email = 'later@example.kz' WHERE learner = 7});
is($c->safe_psql('postgres', q{SELECT string_agg(subject || ' ' || recipient, ',' ORDER BY recipient, id) FROM pdp.pending_notices WHERE table_name = 'rect_later'::regclass}),
	'7 tap ministry,7 tap ministry,7 tap registry,7 tap registry', 'its rectifications raise one notice per recipient and row, on the coordinator');
$c->safe_psql('postgres', q{SELECT pdp.unregister_table('rect_later')});
is($shard_triggers->('rect_later'), '0/0', 'unregister_table drops the trigger from every shard');
$c->safe_psql('postgres', q{SELECT pdp.acknowledge_notice(id) FROM pdp.pending_notices WHERE table_name = 'rect_later'::regclass});
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.pending_notices WHERE table_name = 'rect_later'::regclass}), '0', 'acknowledged, they are listed no more');

# An erasure on the coordinator closes the workers' pending notices of the
# erased learner there (under its erased name): none is listed with its
# identifier afterwards; the erasure notice to its recipient is raised.
$c->safe_psql('postgres', q{SELECT pdp.record_disclosure(9::bigint, 'tap registry', 'teaching', ARRAY['email']);
	UPDATE rect SET email = 'nine@example.kz' WHERE learner = 9});
my $notices9 = q{SELECT coalesce(string_agg(kind || ' ' || recipient, ',' ORDER BY kind, id), '') FROM pdp.pending_notices WHERE subject = '9'};
is($c->safe_psql('postgres', $notices9), 'rectification tap registry,rectification tap registry', 'learner 9\'s two rows\' notices are pending on the workers');
($ret, $out, $err) = $c->psql('postgres', q{SELECT pdp.erase_subject(9::bigint, 'asked') -> 'pdp_tables' ->> 'notice'});
is($ret . ' ' . $out, '0 2', 'learner 9 is erased on the coordinator, its two workers\' notices counted among the notices it closed') or diag($err);
is($c->safe_psql('postgres', $notices9), 'erasure tap registry', 'then only the erasure notice names learner 9: the workers\' rectification notices are closed');
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.rectification_notice WHERE subject LIKE '~erased:%' AND acknowledged_by = 'pdp: superseded by erasure' AND tbl = 'rect'::regclass}),
	'2', 'kept on the coordinator under the erased name, superseded by the erasure');

# Attacks: no role of the application reads or writes the mirror of who was
# told what (on the coordinator or a worker's placement), or forges notices.
my $disc_placement = $node{worker1}->safe_psql('postgres', q{SELECT 'pdp.citus_disclosure_' || shardid FROM pg_dist_shard WHERE logicalrelid = 'pdp.citus_disclosure'::regclass});
for my $sql (q{SELECT count(*) FROM pdp.citus_disclosure}, q{INSERT INTO pdp.citus_disclosure VALUES ('1', 'x')},
	q{SELECT pdp._citus_shard_notices('rect'::regclass, '7', ARRAY['email'])}, q{SELECT pdp._citus_collect_notice(1000000000000001)},
	q{SELECT * FROM pdp._citus_worker_notices()})
{
	($ret, $out, $err) = $c->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_app; $sql");
	like($err, qr/ERROR:  42501: permission denied/, "attack as the application on the coordinator: $sql: refused");
}
for my $sql ("SELECT count(*) FROM $disc_placement", "DELETE FROM $disc_placement", q{UPDATE pdp.rectification_notice SET acknowledged_at = now()})
{
	($ret, $out, $err) = $node{worker1}->psql('postgres', "\\set VERBOSITY verbose\nSET ROLE tap_app; $sql");
	like($err, qr/ERROR:  42501: permission denied/, "attack as the application on worker1: $sql: refused");
}
is($c->safe_psql('postgres', q{SELECT count(*) FROM pdp.citus_disclosure}), $c->safe_psql('postgres', q{SELECT count(DISTINCT (subject, recipient)) FROM pdp.disclosure}),
	'the mirror still holds exactly the disclosures\' pairs');

done_testing();
