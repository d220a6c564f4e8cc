/* Canonical subject forms: integers, uuids and text, per registered kinds. */
#include "subject.h"
#include "tap.h"

static const char *
canon(const char *s, int kinds)
{
	static char out[PDP_SUBJECT_CANON_MAX];

	switch (pdp_subject_canonical(s, strlen(s), kinds, out))
	{
		case PDP_SUBJECT_CANONICAL:
			return out;
		case PDP_SUBJECT_AS_GIVEN:
			return s;
		default:
			return "MALFORMED";
	}
}

#define is_canon(s, kinds, want) \
	do { \
		const char *got_ = canon((s), (kinds)); \
		ok(strcmp(got_, (want)) == 0, "%s (kinds %d) -> %s", (s), (kinds), (want)); \
		if (strcmp(got_, (want)) != 0) printf("#   got %s\n", got_); \
	} while (0)

int
main(void)
{
	const int	I = PDP_SUBJECT_INT,
				U = PDP_SUBJECT_UUID,
				T = PDP_SUBJECT_TEXT;
	int64_t		v;
	uint8_t		u[16];

	/* Integers: sign, leading zeros, spaces, range. */
	is_canon("2", I, "2");
	is_canon("02", I, "2");
	is_canon("0002", I, "2");
	is_canon(" 2 ", I, "2");
	is_canon("+2", I, "2");
	is_canon("-02", I, "-2");
	is_canon("-0", I, "0");
	is_canon("000", I, "0");
	is_canon("9223372036854775807", I, "9223372036854775807");
	is_canon("-9223372036854775808", I, "-9223372036854775808");
	is_canon("0009223372036854775807", I, "9223372036854775807");
	is_canon("9223372036854775808", I, "MALFORMED");
	is_canon("-9223372036854775809", I, "MALFORMED");
	is_canon("99999999999999999999", I, "MALFORMED");
	is_canon("", I, "MALFORMED");
	is_canon("   ", I, "MALFORMED");
	is_canon("-", I, "MALFORMED");
	is_canon("+-2", I, "MALFORMED");
	is_canon("2 2", I, "MALFORMED");
	is_canon("2a", I, "MALFORMED");
	is_canon("0x10", I, "MALFORMED");
	is_canon("1e3", I, "MALFORMED");
	is_canon("- 2", I, "MALFORMED");
	ok(!pdp_subject_parse_int("2\0", 2, &v), "an embedded NUL is not an integer");

	/* Uuids: case, braces, hyphens. */
	is_canon("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", U, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", U, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}", U, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("a0eebc999c0b4ef8bb6d6bb9bd380a11", U, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", U, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("{A0EEBC999C0B4EF8BB6D6BB9BD380A11}", U, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1", U, "MALFORMED");
	is_canon("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111", U, "MALFORMED");
	is_canon("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-", U, "MALFORMED");
	is_canon("a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11", U, "MALFORMED");
	is_canon("a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11", U, "MALFORMED");
	is_canon("{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", U, "MALFORMED");
	is_canon("g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", U, "MALFORMED");
	is_canon("{}", U, "MALFORMED");
	is_canon("42", U, "MALFORMED");
	ok(!pdp_subject_parse_uuid("", 0, u), "an empty text is not a uuid");

	/* Kinds decide what applies. */
	is_canon("abc", I | U, "MALFORMED");
	is_canon("abc", T, "abc");
	is_canon("02", T, "02");
	is_canon("02", I | T, "2");
	is_canon("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", T, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
	is_canon("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", U | T, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("02", U | T, "02");
	is_canon("42", I | U, "42");
	is_canon("02", 0, "2");
	is_canon("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", 0, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
	is_canon("someone@mail.kz", 0, "someone@mail.kz");

	printf("1..%d\n", tap_count);
	return tap_failed != 0;
}
