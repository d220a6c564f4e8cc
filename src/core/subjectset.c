/*-------------------------------------------------------------------------
 * subjectset.c
 *	  Compact sets of integer subject identifiers (see subjectset.h).
 *-------------------------------------------------------------------------
 */
#include "subjectset.h"

#include <stdlib.h>

bool
pdp_parse_canonical_int64(const char *s, size_t len, int64_t *out)
{
	bool		neg = false;
	uint64_t	acc = 0;
	size_t		i = 0;

	if (len == 0)
		return false;
	if (s[0] == '-')
	{
		neg = true;
		i = 1;
		if (len == 1)
			return false;
	}
	/* No leading zeros, except "0" itself; no "-0". */
	if (s[i] == '0' && (len - i > 1 || neg))
		return false;
	if (len - i > 19)
		return false;
	for (; i < len; i++)
	{
		unsigned	d = (unsigned char) s[i] - '0';

		if (d > 9)
			return false;
		acc = acc * 10 + d;
	}
	/* 19 digits fit in a uint64; now the int64 range. */
	return pdp_int64_from_magnitude(acc, neg, out);
}

bool
pdp_int64_from_magnitude(uint64_t acc, bool neg, int64_t *out)
{
	if (neg)
	{
		if (acc > (uint64_t) INT64_MAX + 1)
			return false;
		*out = acc == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) acc;
	}
	else
	{
		if (acc > (uint64_t) INT64_MAX)
			return false;
		*out = (int64_t) acc;
	}
	return true;
}

size_t
pdp_int_set_bitmap_bytes(int64_t min, int64_t max)
{
	uint64_t	span;

	if (max < min)
		return 0;
	span = (uint64_t) max - (uint64_t) min;	/* two's complement: exact */
	if (span >= (uint64_t) SIZE_MAX - 8)
		return SIZE_MAX;
	return (size_t) (span / 8 + 1);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64_t		x = *(const int64_t *) a;
	int64_t		y = *(const int64_t *) b;

	return (x > y) - (x < y);
}

void
pdp_int_set_build(pdp_int_set *set, int64_t *values, size_t n,
				  int64_t min, int64_t max, uint8_t *bitmap)
{
	set->n = n;
	set->min = min;
	set->max = max;
	set->bits = bitmap;
	set->sorted = NULL;
	if (bitmap != NULL)
	{
		for (size_t i = 0; i < n; i++)
		{
			uint64_t	off = (uint64_t) values[i] - (uint64_t) min;

			bitmap[off >> 3] |= (uint8_t) (1u << (off & 7));
		}
		return;
	}
	if (n > 1)
		qsort(values, n, sizeof(int64_t), cmp_int64);
	set->sorted = values;
}

bool
pdp_int_set_contains(const pdp_int_set *set, int64_t v)
{
	if (set->n == 0 || v < set->min || v > set->max)
		return false;
	if (set->bits != NULL)
	{
		uint64_t	off = (uint64_t) v - (uint64_t) set->min;

		return (set->bits[off >> 3] >> (off & 7)) & 1;
	}
	{
		size_t		lo = 0,
					hi = set->n;

		while (lo < hi)
		{
			size_t		mid = lo + (hi - lo) / 2;

			if (set->sorted[mid] < v)
				lo = mid + 1;
			else
				hi = mid;
		}
		return lo < set->n && set->sorted[lo] == v;
	}
}
