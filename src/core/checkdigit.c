/*-------------------------------------------------------------------------
 * checkdigit.c
 *	  IIN, BIN and Luhn checks (see checkdigit.h).
 *-------------------------------------------------------------------------
 */
#include "checkdigit.h"

int
pdp_id_check_digit(const char *d)
{
	int			s1 = 0,
				s2 = 0;

	for (int i = 0; i < 11; i++)
	{
		int			digit = d[i] - '0';

		s1 += digit * (i + 1);
		s2 += digit * ((i + 2) % 11 + 1);	/* 3,4,...,11,1,2 */
	}
	s1 %= 11;
	if (s1 != 10)
		return s1;
	s2 %= 11;
	return s2 == 10 ? -1 : s2;
}

int
pdp_days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

	if (month < 1 || month > 12)
		return 0;
	if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
		return 29;
	return days[month - 1];
}

static pdp_id_status
check_digits_and_checksum(const char *s, size_t len)
{
	int			check;

	if (len != 12)
		return PDP_ID_LENGTH;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return PDP_ID_NOT_DIGITS;
	check = pdp_id_check_digit(s);
	if (check < 0)
		return PDP_ID_NO_CHECK_DIGIT;
	if (check != s[11] - '0')
		return PDP_ID_CHECK_DIGIT;
	return PDP_ID_OK;
}

#define D2(p) (((p)[0] - '0') * 10 + ((p)[1] - '0'))

pdp_id_status
pdp_iin_validate(const char *s, size_t len)
{
	pdp_id_status st;
	int			century,
				year,
				month,
				day;

	if (len != 12)
		return PDP_ID_LENGTH;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return PDP_ID_NOT_DIGITS;
	century = s[6] - '0';
	if (century < 1 || century > 6)
		return PDP_ID_CENTURY;
	year = 1800 + 100 * ((century - 1) / 2) + D2(s);
	month = D2(s + 2);
	day = D2(s + 4);
	if (day < 1 || day > pdp_days_in_month(year, month))
		return PDP_ID_DATE;
	st = check_digits_and_checksum(s, len);
	return st;
}

pdp_id_status
pdp_bin_validate(const char *s, size_t len)
{
	int			month;

	if (len != 12)
		return PDP_ID_LENGTH;
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return PDP_ID_NOT_DIGITS;
	month = D2(s + 2);
	if (month < 1 || month > 12)
		return PDP_ID_DATE;
	if (s[4] < '4' || s[4] > '6' || s[5] > '4')
		return PDP_ID_ENTITY_TYPE;
	return check_digits_and_checksum(s, len);
}

void
pdp_iin_fields(const char *iin, int *year, int *month, int *day, int *sex)
{
	int			century = iin[6] - '0';

	*year = 1800 + 100 * ((century - 1) / 2) + D2(iin);
	*month = D2(iin + 2);
	*day = D2(iin + 4);
	*sex = (century % 2 == 1) ? 1 : 2;
}

const char *
pdp_id_status_message(pdp_id_status status)
{
	switch (status)
	{
		case PDP_ID_OK:
			return "The number is valid.";
		case PDP_ID_LENGTH:
			return "It must have exactly 12 digits.";
		case PDP_ID_NOT_DIGITS:
			return "It must consist of digits only.";
		case PDP_ID_CENTURY:
			return "The seventh digit (century and sex) must be 1 to 6.";
		case PDP_ID_DATE:
			return "The leading digits are not a calendar date.";
		case PDP_ID_ENTITY_TYPE:
			return "The fifth digit (entity type) must be 4 to 6 and the sixth (attribute) 0 to 4.";
		case PDP_ID_NO_CHECK_DIGIT:
			return "No check digit exists for the first eleven digits.";
		case PDP_ID_CHECK_DIGIT:
			return "The check digit does not match the first eleven digits.";
	}
	return "The number is invalid.";
}

bool
pdp_luhn_valid(const char *s, size_t len)
{
	int			sum = 0;
	bool		dbl = false;

	if (len == 0)
		return false;
	for (size_t i = len; i-- > 0;)
	{
		int			d;

		if (s[i] < '0' || s[i] > '9')
			return false;
		d = s[i] - '0';
		if (dbl)
		{
			d *= 2;
			if (d > 9)
				d -= 9;
		}
		sum += d;
		dbl = !dbl;
	}
	return sum % 10 == 0;
}
