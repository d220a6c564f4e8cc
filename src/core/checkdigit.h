/*-------------------------------------------------------------------------
 * checkdigit.h
 *	  Kazakhstan's IIN and BIN, and the Luhn check of payment card numbers.
 *	  Plain C, no PostgreSQL headers.
 *
 * An IIN (individual identification number) is YYMMDD C SSSS K: birth date,
 * a digit for century and sex (1/2: 1800s, 3/4: 1900s, 5/6: 2000s; odd is
 * male), a serial and a check digit.  A BIN (business identification number)
 * is YYMM T A SSSSS K: registration year and month, entity type (4 resident,
 * 5 non-resident legal entity, 6 individual entrepreneur in a joint
 * venture), an attribute digit (0-4), a serial and the same check digit.
 *
 * The check digit: weights 1..11 over the first eleven digits, mod 11; if
 * that gives 10, weights 3..11,1,2, mod 11; if that too gives 10, no check
 * digit exists and the prefix cannot start a valid number.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_CHECKDIGIT_H
#define PDP_CHECKDIGIT_H

#include <stdbool.h>
#include <stddef.h>

typedef enum pdp_id_status
{
	PDP_ID_OK = 0,
	PDP_ID_LENGTH,				/* not exactly 12 characters */
	PDP_ID_NOT_DIGITS,			/* a character other than 0-9 */
	PDP_ID_CENTURY,				/* IIN digit 7 not 1-6 */
	PDP_ID_DATE,				/* no such calendar date / month */
	PDP_ID_ENTITY_TYPE,			/* BIN digit 5 not 4-6, or digit 6 not 0-4 */
	PDP_ID_NO_CHECK_DIGIT,		/* the first eleven digits admit none */
	PDP_ID_CHECK_DIGIT			/* the check digit does not match */
} pdp_id_status;

/* Check digit for d[0..10] (ASCII digits), or -1 when none exists. */
extern int	pdp_id_check_digit(const char *d);

extern pdp_id_status pdp_iin_validate(const char *s, size_t len);
extern pdp_id_status pdp_bin_validate(const char *s, size_t len);

/* A sentence naming the broken rule; kind is "IIN" or "BIN". */
extern const char *pdp_id_status_message(pdp_id_status status);

/*
 * Fields of a valid IIN: full birth year, month, day, and sex (1 male,
 * 2 female).  The caller must have validated it.
 */
extern void pdp_iin_fields(const char *iin, int *year, int *month, int *day, int *sex);

/* Days in a month of the proleptic Gregorian calendar. */
extern int	pdp_days_in_month(int year, int month);

/* Luhn check of the digits in s[0..len); non-digits are an error (false). */
extern bool pdp_luhn_valid(const char *s, size_t len);

#endif							/* PDP_CHECKDIGIT_H */
