/* Unit tests of the key-file parser (src/core/keyfile.c). */
#include "keyfile.h"
#include "pdp_crypto.h"
#include "tap.h"

#define K1 "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
#define K2 "FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100"

static pdp_key keys[PDP_MAX_KEYS];

static pdp_keyfile_status
parse(const char *text, int *n, int *active, int *line)
{
	return pdp_keyfile_parse(text, strlen(text), keys, PDP_MAX_KEYS, n, active, line);
}

int
main(void)
{
	int			n,
				active,
				line;
	static char big[PDP_MAX_KEYFILE_SIZE + 2];
	char		fp[17];

	is_int(parse("1 " K1 "\n", &n, &active, &line), PDP_KEYFILE_OK, "one key parses");
	is_int(n, 1, "one key counted");
	is_int(keys[0].version, 1, "version read");
	ok(keys[0].bytes[0] == 0x00 && keys[0].bytes[31] == 0x1f, "key bytes decoded");

	is_int(parse("# comment\n\n  2\t" K2 "  \r\n1 " K1, &n, &active, &line), PDP_KEYFILE_OK,
		   "comments, blank lines, tabs, CRLF and a missing final newline are accepted");
	is_int(n, 2, "two keys");
	is_int(keys[active].version, 2, "the highest version is active, wherever it stands");
	ok(keys[active].bytes[0] == 0xff && keys[active].bytes[1] == 0xee, "upper-case hex decoded");

	is_int(parse("65535 " K1 "\n", &n, &active, &line), PDP_KEYFILE_OK, "version 65535 is the last allowed");
	is_int(parse("65536 " K1 "\n", &n, &active, &line), PDP_KEYFILE_BAD_VERSION, "version 65536 refused");
	is_int(parse("0 " K1 "\n", &n, &active, &line), PDP_KEYFILE_BAD_VERSION, "version 0 refused");
	is_int(parse("123456 " K1 "\n", &n, &active, &line), PDP_KEYFILE_BAD_VERSION, "six-digit version refused");
	is_int(parse("-1 " K1 "\n", &n, &active, &line), PDP_KEYFILE_SYNTAX, "negative version refused");
	is_int(parse("1 " K1 "\n1 " K2 "\n", &n, &active, &line), PDP_KEYFILE_DUPLICATE, "duplicate version refused");
	is_int(line, 2, "the duplicate's line is reported");
	ok(keys[0].bytes[1] == 0 && keys[0].version == 0, "keys are wiped after a failure");
	is_int(parse("1 " K1 "00\n", &n, &active, &line), PDP_KEYFILE_SYNTAX, "66 hex digits refused");
	is_int(parse("1 " "0102" "\n", &n, &active, &line), PDP_KEYFILE_SYNTAX, "short key refused");
	is_int(parse("1 " "zz" K1 "\n", &n, &active, &line), PDP_KEYFILE_SYNTAX, "non-hex refused");
	ok(parse("1" K1 "\n", &n, &active, &line) != PDP_KEYFILE_OK, "missing separator refused");
	is_int(parse("1x" K1 "\n", &n, &active, &line), PDP_KEYFILE_SYNTAX, "a non-digit version refused");
	is_int(parse("1 " K1 " trailing\n", &n, &active, &line), PDP_KEYFILE_SYNTAX, "trailing words refused");
	is_int(parse("", &n, &active, &line), PDP_KEYFILE_EMPTY, "empty file refused");
	is_int(parse("# only\n\n", &n, &active, &line), PDP_KEYFILE_EMPTY, "comments only refused");
	is_int(pdp_keyfile_parse("1 " K1 "\0x", 2 + 64 + 2, keys, PDP_MAX_KEYS, &n, &active, &line),
		   PDP_KEYFILE_SYNTAX, "an embedded NUL refused");
	is_int(parse("1 " K1 "\n2 " K1 "\n", &n, &active, &line), PDP_KEYFILE_OK, "two versions may hold the same bytes");

	{
		/* 257 keys: one more than allowed. */
		static char many[300 * 72];
		char	   *p = many;

		for (int v = 1; v <= PDP_MAX_KEYS + 1; v++)
			p += sprintf(p, "%d %s\n", v, K1);
		is_int(parse(many, &n, &active, &line), PDP_KEYFILE_TOO_MANY, "257 keys refused");
		is_int(line, PDP_MAX_KEYS + 1, "the first key too many is reported");
	}
	memset(big, '#', sizeof(big) - 1);
	is_int(pdp_keyfile_parse(big, sizeof(big) - 1, keys, PDP_MAX_KEYS, &n, &active, &line),
		   PDP_KEYFILE_TOO_LARGE, "a file over 64 kB refused");

	for (int s = PDP_KEYFILE_OK; s <= PDP_KEYFILE_TOO_LARGE; s++)
		ok(strstr(pdp_keyfile_status_message((pdp_keyfile_status) s), K1) == NULL
		   && pdp_keyfile_status_message((pdp_keyfile_status) s)[0] != '\0',
		   "status %d has a message that names a rule", s);

	/* Fingerprints: stable, distinct, not the key. */
	parse("1 " K1 "\n2 " K2 "\n", &n, &active, &line);
	ok(pdp_key_fingerprint(keys[0].bytes, fp), "fingerprint computed");
	ok(strlen(fp) == 16 && strstr(K1, fp) == NULL, "fingerprint is 16 hex digits and not part of the key");
	{
		char		fp2[17];

		pdp_key_fingerprint(keys[1].bytes, fp2);
		ok(strcmp(fp, fp2) != 0, "two keys have two fingerprints");
	}
	return done_testing();
}
