# The server log never quotes a statement or context that carries a value
# passed to pdp_ext, whatever the spelling of the call: upper case, through
# search_path, a value of an application's UPDATE refused by pdp's
# restricted-row trigger (directly and from inside a PL/pgSQL function, whose
# CONTEXT line quotes the statement), a notice raised by pdp's row
# visibility, and an error raised after a pdp function ran in the same
# statement.  log_min_error_statement = debug5 asks for the statement of
# every message.  Controls show that statements not involving pdp are still
# logged, so the defence is not "log nothing".
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use FindBin;
use lib $FindBin::RealBin;
use PdpNode;

my $node = pdp_node('log_leaks',
	conf => "log_min_messages = debug1\nlog_statement = none\nlog_min_error_statement = debug5\n"
	  . "log_error_verbosity = verbose\nclient_min_messages = notice\n");
$node->safe_psql('postgres', q{
	CREATE EXTENSION pdp_ext;
	CREATE TABLE learners (id bigint PRIMARY KEY, email text);
	INSERT INTO learners VALUES (1, 'one@example.kz'), (2, 'two@example.kz');
	SELECT pdp.register_table('learners', 'id');
	SELECT pdp.define_purpose('teaching', 'contract');
	SELECT pdp.protect_table('learners');
	SELECT pdp.restrict_subject(2, 'contested');
	CREATE FUNCTION app_set_email(e text) RETURNS void LANGUAGE plpgsql AS $$
	BEGIN EXECUTE format('UPDATE learners SET email = %L WHERE id = 2', e); END $$;
	CREATE ROLE app LOGIN;
	GRANT SELECT, UPDATE ON learners TO app;
});

# [name, SQL (psql script), marker it plants]
my @cases = (
	['an upper-case call of a C function that refuses its argument',
		q{SELECT PDP.FPE_IIN('LEAK01-9001013000');}, 'LEAK01'],
	['an upper-case call whose other argument fails to parse (before any pdp function runs)',
		q!SELECT PDP.grant_consent('LEAK09-someone@mail.kz', 'teaching', evidence => '{not json');!, 'LEAK09'],
	['an upper-case call of a PL/pgSQL function that refuses',
		q{SELECT PDP.grant_consent('LEAK02-someone@mail.kz', 'no such purpose');}, 'LEAK02'],
	['a call through search_path (the context names the function unqualified)',
		qq{SET search_path = pdp, public;\nSELECT grant_consent('LEAK03-someone\@mail.kz', 'no such purpose');}, 'LEAK03'],
	['a C function reached through search_path',
		qq{SET search_path = pdp, public;\nSELECT fpe_iin('LEAK04-9001013000');}, 'LEAK04'],
	['an application UPDATE of a restricted learner refused by pdp\'s trigger',
		q{UPDATE learners SET email = 'LEAK05-new@mail.kz' WHERE id = 2;}, 'LEAK05'],
	['the same UPDATE from inside an application function (CONTEXT quotes it)',
		q{SELECT app_set_email('LEAK06-new@mail.kz');}, 'LEAK06'],
	['a notice raised by pdp\'s row visibility (no purpose declared)',
		qq{SET ROLE app;\nSELECT count(*) FROM learners WHERE email <> 'LEAK07-notice\@mail.kz';}, 'LEAK07'],
	['an error raised after a pdp function ran in the same statement (through search_path)',
		qq{SET search_path = pdp, public;\nSELECT CASE WHEN NOT iin_is_valid('LEAK08-x') THEN 1/0 END;}, 'LEAK08'],
);
my $offset = -s $node->logfile;
foreach my $c (@cases)
{
	my ($out, $err) = ('', '');
	$node->psql('postgres', "\\set VERBOSITY verbose\n$c->[1]\n", stdout => \$out, stderr => \$err);
	like($out . $err, qr/ERROR|NOTICE|WARNING/, "case runs and is refused or noticed: $c->[0]");
}
# Controls: statements that do not involve pdp keep their STATEMENT line,
# also the one right after a statement in which pdp ran.
$node->psql('postgres', qq{SELECT 1/0 AS "CONTROL01";});
$node->psql('postgres', qq{SET search_path = pdp, public;\nSELECT iin_is_valid('x');\nSELECT 1/0 AS "CONTROL02";});
my $log = slurp_file($node->logfile, $offset);
foreach my $c (@cases)
{
	my @leaks = grep { /\Q$c->[2]\E/ } split /\n/, $log;
	is(scalar(@leaks), 0, "attack: $c->[0] puts the value in the server log")
		or diag(join("\n", @leaks));
}
like($log, qr/STATEMENT:\s+SELECT 1\/0 AS "CONTROL01"/, 'control: a statement not involving pdp is still logged');
like($log, qr/STATEMENT:\s+SELECT 1\/0 AS "CONTROL02"/, 'control: the next statement after pdp ran is logged again');
like($log, qr/cannot update a row of a restricted subject/, 'control: the trigger\'s refusal itself is logged');
$node->stop;
done_testing();
