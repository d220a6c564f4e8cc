/*-------------------------------------------------------------------------
 * subject.c
 *	  Canonical text forms of subject identifiers (see subject.h).
 *-------------------------------------------------------------------------
 */
#include "subject.h"
#include "subjectset.h"

#include <stdio.h>
#include <string.h>

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool
pdp_subject_parse_int(const char *s, size_t len, int64_t *out)
{
	size_t		i = 0,
				end = len;
	bool		neg = false;
	uint64_t	acc = 0;
	size_t		digits = 0;

	while (i < end && is_space(s[i]))
		i++;
	while (end > i && is_space(s[end - 1]))
		end--;
	if (i < end && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == end)
		return false;
	for (; i < end; i++)
	{
		unsigned	d = (unsigned char) s[i] - '0';

		if (d > 9)
			return false;
		if (acc == 0 && d == 0)
			continue;			/* leading zeros */
		if (++digits > 19)
			return false;
		acc = acc * 10 + d;
	}
	/* 19 digits fit in a uint64; now the int64 range. */
	return pdp_int64_from_magnitude(acc, neg, out);
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * What uuid_in accepts: 32 hex digits, optionally in braces, with a hyphen
 * allowed after any group of four digits (but not at the end).
 */
bool
pdp_subject_parse_uuid(const char *s, size_t len, uint8_t out[16])
{
	size_t		i = 0,
				end = len;
	int			n = 0;

	if (len >= 2 && s[0] == '{' && s[len - 1] == '}')
	{
		i = 1;
		end = len - 1;
	}
	while (i < end)
	{
		int			hi,
					lo;

		if (n == 32)
			return false;
		if (i + 1 >= end || (hi = hex_value(s[i])) < 0 || (lo = hex_value(s[i + 1])) < 0)
			return false;
		out[n / 2] = (uint8_t) (hi << 4 | lo);
		n += 2;
		i += 2;
		if (i < end && s[i] == '-' && n % 4 == 0 && n < 32)
			i++;
	}
	return n == 32 && (end == 0 || s[end - 1] != '-');
}

pdp_subject_status
pdp_subject_canonical(const char *s, size_t len, int kinds, char out[PDP_SUBJECT_CANON_MAX])
{
	bool		untyped = kinds == 0;	/* nothing registered: every form applies */
	int64_t		v;
	uint8_t		u[16];

	if ((kinds & PDP_SUBJECT_INT || untyped) && pdp_subject_parse_int(s, len, &v))
	{
		snprintf(out, PDP_SUBJECT_CANON_MAX, "%lld", (long long) v);
		return PDP_SUBJECT_CANONICAL;
	}
	if ((kinds & PDP_SUBJECT_UUID || untyped) && pdp_subject_parse_uuid(s, len, u))
	{
		static const char hexdigits[] = "0123456789abcdef";
		int			p = 0;

		for (int i = 0; i < 16; i++)
		{
			if (i == 4 || i == 6 || i == 8 || i == 10)
				out[p++] = '-';
			out[p++] = hexdigits[u[i] >> 4];
			out[p++] = hexdigits[u[i] & 0x0F];
		}
		out[p] = '\0';
		return PDP_SUBJECT_CANONICAL;
	}
	if (kinds == 0 || (kinds & PDP_SUBJECT_TEXT))
		return PDP_SUBJECT_AS_GIVEN;
	return PDP_SUBJECT_MALFORMED;
}
