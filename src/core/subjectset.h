/*-------------------------------------------------------------------------
 * subjectset.h
 *	  Compact sets of integer subject identifiers, for the per-statement
 *	  visibility sets (src/visibility.c).  Plain C, no PostgreSQL headers.
 *
 * Most LMS subjects are integer ids, and pdp's tables key them by their
 * canonical decimal text.  A set of n such ids is kept as a bitmap over
 * [min, max] when that is small enough (one bit per possible id: 10 million
 * ids in 1.25 MB), and as a sorted array otherwise (8 bytes per id).  The
 * caller owns all memory; nothing here allocates.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_SUBJECTSET_H
#define PDP_SUBJECTSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Is s[0..len) the canonical decimal form of an int64 (what int8out
 * writes: an optional '-', no leading zeros, no '+', no spaces, not "-0")?
 * If so, store it in *out.
 */
extern bool pdp_parse_canonical_int64(const char *s, size_t len, int64_t *out);

/*
 * The int64 whose magnitude is acc and sign neg, into *out; false when it is
 * out of range.  (The last step of both integer parsers.)
 */
extern bool pdp_int64_from_magnitude(uint64_t acc, bool neg, int64_t *out);

typedef struct pdp_int_set
{
	size_t		n;				/* number of ids */
	int64_t		min;
	int64_t		max;
	uint8_t    *bits;			/* bitmap over [min, max], or NULL */
	const int64_t *sorted;		/* sorted ids when bits is NULL */
} pdp_int_set;

/*
 * Bytes a bitmap over [min, max] needs, or SIZE_MAX when that does not fit
 * in a size_t.
 */
extern size_t pdp_int_set_bitmap_bytes(int64_t min, int64_t max);

/*
 * Make *set from values[0..n).  With bitmap (zeroed by the caller, of
 * pdp_int_set_bitmap_bytes(min, max) bytes) the set is the bitmap and
 * values may be freed afterwards; without, values is sorted in place and
 * must live as long as the set.  min and max must bound the values.
 */
extern void pdp_int_set_build(pdp_int_set *set, int64_t *values, size_t n,
							  int64_t min, int64_t max, uint8_t *bitmap);

extern bool pdp_int_set_contains(const pdp_int_set *set, int64_t v);

#endif							/* PDP_SUBJECTSET_H */
