/* Integer subject sets: canonical decimal parsing, bitmap and sorted forms agree with a brute-force set. */
#include "subjectset.h"
#include "tap.h"

#include <stdlib.h>

static int
parses(const char *s, long long want)
{
	int64_t		v;

	return pdp_parse_canonical_int64(s, strlen(s), &v) && v == want;
}

static int
refused(const char *s)
{
	int64_t		v;

	return !pdp_parse_canonical_int64(s, strlen(s), &v);
}

int
main(void)
{
	int64_t		vals[2000],
				copy[2000];
	uint8_t    *bits;
	pdp_int_set a,
				b;
	int			agree = 1;
	unsigned	seed = 12345;

	ok(parses("0", 0), "0 is canonical");
	ok(parses("42", 42), "42");
	ok(parses("-7", -7), "-7");
	ok(parses("9223372036854775807", INT64_MAX), "INT64_MAX");
	ok(parses("-9223372036854775808", INT64_MIN), "INT64_MIN");
	ok(refused("9223372036854775808"), "past INT64_MAX refused");
	ok(refused("-9223372036854775809"), "past INT64_MIN refused");
	ok(refused("042"), "leading zero refused (another spelling of 42)");
	ok(refused("-0"), "-0 refused");
	ok(refused("+5"), "+5 refused");
	ok(refused(" 5"), "space refused");
	ok(refused("5a"), "letter refused");
	ok(refused(""), "empty refused");
	ok(refused("-"), "lone minus refused");
	ok(refused("12345678901234567890"), "20 digits refused");

	ok(pdp_int_set_bitmap_bytes(0, 7) == 1, "8 ids fit in one byte");
	ok(pdp_int_set_bitmap_bytes(1, 10000000) == 1250000, "10 million ids in 1.25 MB");
	ok(pdp_int_set_bitmap_bytes(INT64_MIN, INT64_MAX) == SIZE_MAX, "the whole range does not fit");

	for (int i = 0; i < 2000; i++)
	{
		seed = seed * 1103515245 + 12345;
		vals[i] = (int64_t) (seed % 100000) - 50000;
		copy[i] = vals[i];
	}
	bits = calloc(pdp_int_set_bitmap_bytes(-50000, 49999), 1);
	pdp_int_set_build(&a, vals, 2000, -50000, 49999, bits);
	pdp_int_set_build(&b, copy, 2000, -50000, 49999, NULL);
	for (int64_t v = -50010; v < 50010; v++)
	{
		int			brute = 0;

		for (int i = 0; i < 2000 && !brute; i++)
			brute = vals[i] == v;
		if (pdp_int_set_contains(&a, v) != brute || pdp_int_set_contains(&b, v) != brute)
			agree = 0;
	}
	ok(agree, "bitmap and sorted sets agree with brute force over 100,020 probes");
	pdp_int_set_build(&b, copy, 0, 0, 0, NULL);
	ok(!pdp_int_set_contains(&b, 0), "an empty set holds nothing");
	{
		int64_t		extremes[2] = {INT64_MAX, INT64_MIN};

		pdp_int_set_build(&b, extremes, 2, INT64_MIN, INT64_MAX, NULL);
		ok(pdp_int_set_contains(&b, INT64_MIN) && pdp_int_set_contains(&b, INT64_MAX) &&
		   !pdp_int_set_contains(&b, 0), "extremes in a sorted set");
	}
	free(bits);
	return done_testing();
}
