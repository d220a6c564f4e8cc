/*-------------------------------------------------------------------------
 * iin_fpe.h
 *	  Format-preserving pseudonyms and tokens for IINs: a keyed permutation
 *	  of the valid IINs (optionally of one birth year), built from FF1 by
 *	  cycle-walking.  Plain C, no PostgreSQL headers.
 *
 * A valid IIN is numbered by (birth date, sex, serial): with keep_year the
 * date is the day of the birth year, otherwise the day since 1800-01-01 up
 * to 2099-12-31 (the centuries the seventh digit can express).  FF1 permutes
 * the numbers of as many decimal digits as the largest needs; results that
 * are out of range, or whose first eleven digits admit no check digit, are
 * encrypted again until one lands among the valid IINs (cycle-walking keeps
 * the map a permutation of that set).  So distinct IINs always give
 * distinct IINs, each with a real date, a valid seventh digit and a correct
 * check digit, and decryption walks back.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_IIN_FPE_H
#define PDP_IIN_FPE_H

#include <stdbool.h>

#include "ff1.h"

typedef enum pdp_iin_fpe_status
{
	PDP_IIN_FPE_OK = 0,
	PDP_IIN_FPE_INVALID,		/* the input is not a valid IIN */
	PDP_IIN_FPE_CRYPTO			/* FF1 failed, or the walk did not end */
} pdp_iin_fpe_status;

/* in and out are 12 ASCII digits (no terminator); they may be the same. */
extern pdp_iin_fpe_status pdp_iin_fpe_encrypt(pdp_ff1 *ff1, bool keep_year,
											  const char *in, char *out);
extern pdp_iin_fpe_status pdp_iin_fpe_decrypt(pdp_ff1 *ff1, bool keep_year,
											  const char *in, char *out);

#endif							/* PDP_IIN_FPE_H */
