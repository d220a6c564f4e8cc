/*-------------------------------------------------------------------------
 * contact.c
 *	  Phone number and e-mail address parsers (see contact.h).
 *-------------------------------------------------------------------------
 */
#include "contact.h"

#include <string.h>

static bool
is_separator(unsigned char c)
{
	return c == ' ' || c == '-' || c == '.' || c == '(' || c == ')' || c == '\t';
}

pdp_phone_status
pdp_phone_parse(const char *s, size_t len, pdp_phone *p)
{
	bool		plus = false;
	bool		seen_digit = false;

	p->ndigits = 0;
	p->keep = 0;
	for (size_t i = 0; i < len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c >= '0' && c <= '9')
		{
			if (p->ndigits == PDP_PHONE_MAX_DIGITS)
				return PDP_PHONE_LENGTH;
			p->digits[p->ndigits] = (char) c;
			p->pos[p->ndigits] = i;
			p->ndigits++;
			seen_digit = true;
		}
		else if (c == '+' && !seen_digit && !plus)
			plus = true;
		else if (!is_separator(c))
			return PDP_PHONE_BAD_CHAR;
	}

	if (plus)
	{
		if (p->ndigits < 10 || p->ndigits > 15)
			return PDP_PHONE_LENGTH;
		/* +7 is Kazakhstan's (and Russia's) code: keep it and the next digit. */
		if (p->digits[0] == '7')
		{
			if (p->ndigits != 11)
				return PDP_PHONE_LENGTH;
			p->keep = 2;
		}
		else
			p->keep = 3;		/* country codes have up to three digits */
		return PDP_PHONE_OK;
	}
	if (p->ndigits == 11 && (p->digits[0] == '8' || p->digits[0] == '7'))
	{
		p->keep = 2;			/* trunk 8 or country 7, then the first national digit */
		return PDP_PHONE_OK;
	}
	if (p->ndigits == 10 && p->digits[0] == '7')
	{
		p->keep = 1;
		return PDP_PHONE_OK;
	}
	if (p->ndigits < 10 || p->ndigits > 11)
		return PDP_PHONE_LENGTH;
	return PDP_PHONE_NOT_KAZAKH;
}

const char *
pdp_phone_status_message(pdp_phone_status status)
{
	switch (status)
	{
		case PDP_PHONE_OK:
			return "The phone number is well formed.";
		case PDP_PHONE_BAD_CHAR:
			return "A phone number may hold only digits, spaces, dashes, dots, brackets and a leading \"+\".";
		case PDP_PHONE_LENGTH:
			return "A phone number needs 10 or 11 digits in Kazakh forms, 11 after \"+7\", and 10 to 15 after another \"+\".";
		case PDP_PHONE_NOT_KAZAKH:
			return "Without a leading \"+\" a phone number must be in a Kazakh form (8 7xx …, 7 7xx …, 7xx …).";
	}
	return "The phone number is malformed.";
}

static bool
is_atext(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c >= 0x80 || strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL;
}

static bool
is_label_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		c == '-' || c >= 0x80;
}

pdp_email_status
pdp_email_parse(const char *s, size_t len, size_t *at)
{
	const char *a = memchr(s, '@', len);
	size_t		local_len,
				labels = 0,
				label_len = 0;

	if (a == NULL || memchr(a + 1, '@', len - (size_t) (a - s) - 1) != NULL)
		return PDP_EMAIL_NO_AT;
	*at = (size_t) (a - s);
	local_len = *at;

	/* Local part: dot-atom, 1..64 bytes. */
	if (local_len == 0 || local_len > 64 || s[0] == '.' || s[local_len - 1] == '.')
		return PDP_EMAIL_LOCAL;
	for (size_t i = 0; i < local_len; i++)
	{
		unsigned char c = (unsigned char) s[i];

		if (c == '.')
		{
			if (s[i + 1] == '.')
				return PDP_EMAIL_LOCAL;
		}
		else if (!is_atext(c))
			return PDP_EMAIL_LOCAL;
	}

	/*
	 * Domain: one or more labels of 1..63 bytes, 253 bytes in all.  A host
	 * name without a dot (root@localhost, user@intranet) is an address
	 * that mail systems deliver, and LMSs store it.
	 */
	if (len - *at - 1 == 0 || len - *at - 1 > 253)
		return PDP_EMAIL_DOMAIN;
	for (size_t i = *at + 1; i <= len; i++)
	{
		unsigned char c = i < len ? (unsigned char) s[i] : '.';

		if (c == '.')
		{
			if (label_len == 0 || label_len > 63 || s[i - 1] == '-')
				return PDP_EMAIL_DOMAIN;
			labels++;
			label_len = 0;
		}
		else
		{
			if (!is_label_char(c) || (label_len == 0 && c == '-'))
				return PDP_EMAIL_DOMAIN;
			label_len++;
		}
	}
	return labels >= 1 ? PDP_EMAIL_OK : PDP_EMAIL_DOMAIN;
}

const char *
pdp_email_status_message(pdp_email_status status)
{
	switch (status)
	{
		case PDP_EMAIL_OK:
			return "The address is well formed.";
		case PDP_EMAIL_NO_AT:
			return "An e-mail address needs exactly one \"@\".";
		case PDP_EMAIL_LOCAL:
			return "The part before \"@\" must be 1 to 64 characters without spaces, brackets or doubled, leading or trailing dots.";
		case PDP_EMAIL_DOMAIN:
			return "The part after \"@\" must be a host or domain name.";
	}
	return "The e-mail address is malformed.";
}

bool
pdp_is_blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' && s[i] != '\v' && s[i] != '\f')
			return false;
	return true;
}
