/*-------------------------------------------------------------------------
 * iin_fpe.c
 *	  Keyed permutation of valid IINs (see iin_fpe.h).
 *-------------------------------------------------------------------------
 */
#include "iin_fpe.h"
#include "checkdigit.h"

#include <stdint.h>
#include <string.h>

#define FIRST_YEAR	1800
#define LAST_YEAR	2099
#define MAX_WALK	100000		/* expected walks are 1-5 steps */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian). */
static long
days_from_civil(int y, int m, int d)
{
	long		era;
	unsigned	yoe,
				doy,
				doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = (unsigned) (y - era * 400);
	doy = (unsigned) ((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1);
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (long) doe - 719468;
}

static void
civil_from_days(long z, int *y, int *m, int *d)
{
	long		era;
	unsigned	doe,
				yoe,
				doy,
				mp;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = (unsigned) (z - era * 146097);
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*d = (int) (doy - (153 * mp + 2) / 5 + 1);
	*m = (int) (mp < 10 ? mp + 3 : mp - 9);
	*y = (int) (yoe + era * 400 + (*m <= 2));
}

/* The numbering's range: first day number and count of days. */
static void
day_range(bool keep_year, int year, long *first, long *ndays)
{
	if (keep_year)
	{
		*first = days_from_civil(year, 1, 1);
		*ndays = days_from_civil(year + 1, 1, 1) - *first;
	}
	else
	{
		*first = days_from_civil(FIRST_YEAR, 1, 1);
		*ndays = days_from_civil(LAST_YEAR + 1, 1, 1) - *first;
	}
}

/* Number a valid IIN. */
static uint64_t
iin_index(const char *iin, long first)
{
	int			y,
				m,
				d,
				sex;
	uint64_t	serial = 0;

	pdp_iin_fields(iin, &y, &m, &d, &sex);
	for (int i = 7; i < 11; i++)
		serial = serial * 10 + (uint64_t) (iin[i] - '0');
	return ((uint64_t) (days_from_civil(y, m, d) - first) * 2 + (uint64_t) (sex - 1)) * 10000 + serial;
}

/* The IIN numbered idx, or false when its prefix admits no check digit. */
static bool
iin_from_index(uint64_t idx, long first, char *out)
{
	uint64_t	serial = idx % 10000;
	int			sex = (int) ((idx / 10000) % 2) + 1;
	long		day = (long) (idx / 20000) + first;
	int			y,
				m,
				d,
				check;

	civil_from_days(day, &y, &m, &d);
	out[0] = (char) ('0' + (y % 100) / 10);
	out[1] = (char) ('0' + y % 10);
	out[2] = (char) ('0' + m / 10);
	out[3] = (char) ('0' + m % 10);
	out[4] = (char) ('0' + d / 10);
	out[5] = (char) ('0' + d % 10);
	out[6] = (char) ('0' + 2 * ((y - FIRST_YEAR) / 100) + sex);
	for (int i = 10; i >= 7; i--)
	{
		out[i] = (char) ('0' + serial % 10);
		serial /= 10;
	}
	check = pdp_id_check_digit(out);
	if (check < 0)
		return false;
	out[11] = (char) ('0' + check);
	return true;
}

static pdp_iin_fpe_status
iin_fpe(pdp_ff1 *ff1, bool keep_year, const char *in, char *out, bool encrypt)
{
	int			y,
				m,
				d,
				sex;
	long		first,
				ndays;
	uint64_t	n,
				x;
	size_t		width = 0;
	uint8_t		digits[20];
	char		candidate[12];

	if (pdp_iin_validate(in, 12) != PDP_ID_OK)
		return PDP_IIN_FPE_INVALID;
	pdp_iin_fields(in, &y, &m, &d, &sex);
	day_range(keep_year, y, &first, &ndays);
	n = (uint64_t) ndays * 20000;
	for (uint64_t span = 1; span < n; span *= 10)
		width++;
	x = iin_index(in, first);

	for (int step = 0; step < MAX_WALK; step++)
	{
		uint64_t	w = x;

		for (size_t i = width; i-- > 0;)
		{
			digits[i] = (uint8_t) (w % 10);
			w /= 10;
		}
		if ((encrypt ? pdp_ff1_encrypt(ff1, 10, NULL, 0, digits, digits, width)
			 : pdp_ff1_decrypt(ff1, 10, NULL, 0, digits, digits, width)) != PDP_FF1_OK)
			return PDP_IIN_FPE_CRYPTO;
		x = 0;
		for (size_t i = 0; i < width; i++)
			x = x * 10 + digits[i];
		if (x < n && iin_from_index(x, first, candidate))
		{
			memcpy(out, candidate, 12);
			return PDP_IIN_FPE_OK;
		}
	}
	return PDP_IIN_FPE_CRYPTO;
}

pdp_iin_fpe_status
pdp_iin_fpe_encrypt(pdp_ff1 *ff1, bool keep_year, const char *in, char *out)
{
	return iin_fpe(ff1, keep_year, in, out, true);
}

pdp_iin_fpe_status
pdp_iin_fpe_decrypt(pdp_ff1 *ff1, bool keep_year, const char *in, char *out)
{
	return iin_fpe(ff1, keep_year, in, out, false);
}
