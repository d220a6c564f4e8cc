/*-------------------------------------------------------------------------
 * classify.c
 *	  Value classification for PII discovery (see classify.h).
 *-------------------------------------------------------------------------
 */
#include "classify.h"
#include "checkdigit.h"
#include "contact.h"
#include "ipaddr.h"

#include <string.h>

static int
all_digits(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return len > 0;
}

const char *
pdp_classify_value(const char *s, size_t len)
{
	char		digits[32];
	size_t		nd = 0;
	size_t		at;
	pdp_phone	p;

	/* Trim surrounding blanks. */
	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len > 320)
		return NULL;

	if (len == 12 && all_digits(s, len))
	{
		if (pdp_iin_validate(s, len) == PDP_ID_OK)
			return "iin";
		if (pdp_bin_validate(s, len) == PDP_ID_OK)
			return "bin";
		return NULL;			/* twelve digits that check out as neither */
	}
	/* Discovery wants a dotted domain: a bare host (root@localhost) is too rare to call. */
	if (memchr(s, '@', len) != NULL)
		return pdp_email_parse(s, len, &at) == PDP_EMAIL_OK && memchr(s + at, '.', len - at) != NULL
			? "email" : NULL;

	/* Card numbers: 13 to 19 digits, spaces or dashes between, Luhn-valid. */
	for (size_t i = 0; i < len && nd < sizeof(digits); i++)
	{
		if (s[i] >= '0' && s[i] <= '9')
			digits[nd++] = s[i];
		else if (s[i] != ' ' && s[i] != '-')
		{
			nd = 0;
			break;
		}
	}
	if (nd >= 13 && nd <= 19 && pdp_luhn_valid(digits, nd) && s[0] != '+')
		return "card";

	/* Phones: a Kazakh form; bare ten-digit numbers are too ambiguous to call. */
	if (pdp_phone_parse(s, len, &p) == PDP_PHONE_OK && (s[0] == '+' || p.ndigits == 11 || nd == 0))
		return "phone";

	{
		pdp_ip		ip;

		if (pdp_ip_parse(s, len, &ip))
			return "ip";
	}
	return NULL;
}

bool
pdp_is_placeholder(const char *s, size_t len)
{
	static const char *const placeholders[] = {
		"-", "--", "---", "\xe2\x80\x94", ".", "?", "0", "x", "xx", "xxx", "n/a", "na", "none", "null", "nil",
		"unknown", "tbd", "\xd0\xbd\xd0\xb5\xd1\x82" /* нет */};
	char		lower[16];

	while (len > 0 && (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r' || s[len - 1] == '\n'))
		len--;
	if (len == 0)
		return true;
	if (len >= sizeof(lower))
		return false;
	for (size_t i = 0; i < len; i++)
		lower[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char) (s[i] + ('a' - 'A')) : s[i];
	lower[len] = '\0';
	for (size_t i = 0; i < sizeof(placeholders) / sizeof(placeholders[0]); i++)
		if (strcmp(lower, placeholders[i]) == 0)
			return true;
	return false;
}

static bool
is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static bool
is_local_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c >= 0x80 ||
		(c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-.", c) != NULL);
}

static bool
is_domain_char(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.' || c >= 0x80;
}

static bool
is_phone_char(unsigned char c)
{
	return is_digit(c) || c == ' ' || c == '-' || c == '(' || c == ')' || c == '.';
}

void
pdp_scan_text(const char *s, size_t len, pdp_text_hits *hits)
{
	hits->emails = hits->phones = hits->iins = 0;
	if (len > PDP_SCAN_MAX_BYTES)
		len = PDP_SCAN_MAX_BYTES;

	/* E-mail addresses: around each '@', the longest local part and domain. */
	for (size_t i = 0; i < len; i++)
	{
		size_t		a,
					b,
					at;

		if (s[i] != '@')
			continue;
		a = i;
		while (a > 0 && i - a < 64 && is_local_char((unsigned char) s[a - 1]))
			a--;
		while (a < i && s[a] == '.')
			a++;
		b = i + 1;
		while (b < len && b - i <= 253 && is_domain_char((unsigned char) s[b]))
			b++;
		while (b > i + 1 && (s[b - 1] == '.' || s[b - 1] == '-'))
			b--;
		if (a < i && b > i + 1 && pdp_email_parse(s + a, b - a, &at) == PDP_EMAIL_OK &&
			memchr(s + i + 1, '.', b - i - 1) != NULL)
			hits->emails++;
	}

	/*
	 * IINs: exactly twelve digits between non-digits that pass the check;
	 * phones: a run of digits and separators, after an optional '+', that
	 * parses as a phone and starts with '+' or has 11 digits (a bare
	 * ten-digit number is too ambiguous, as in pdp_classify_value).
	 */
	for (size_t i = 0; i < len;)
	{
		size_t		j,
					end,
					ndigits = 0;
		bool		plus = s[i] == '+';
		pdp_phone	p;

		if (!plus && !is_digit((unsigned char) s[i]))
		{
			i++;
			continue;
		}
		/* A digit run inside a word or a longer number is not the start of one. */
		if (i > 0 && (is_digit((unsigned char) s[i - 1]) ||
					  (!plus && ((s[i - 1] >= 'a' && s[i - 1] <= 'z') || (s[i - 1] >= 'A' && s[i - 1] <= 'Z')))))
		{
			i++;
			continue;
		}
		j = i + (plus ? 1 : 0);
		while (j < len && is_phone_char((unsigned char) s[j]))
		{
			if (is_digit((unsigned char) s[j]))
				ndigits++;
			j++;
		}
		end = j;
		while (end > i && !is_digit((unsigned char) s[end - 1]))
			end--;
		/* Twelve contiguous digits at the start of the run: an IIN candidate. */
		{
			size_t		k = i + (plus ? 1 : 0);

			while (k < len && is_digit((unsigned char) s[k]))
				k++;
			if (!plus && k - i == 12 && (k == len || !is_digit((unsigned char) s[k])) &&
				pdp_iin_validate(s + i, 12) == PDP_ID_OK)
			{
				hits->iins++;
				i = k;
				continue;
			}
		}
		if (end > i && ndigits >= 10 && ndigits <= 15 &&
			(end == len || !((s[end] >= 'a' && s[end] <= 'z') || (s[end] >= 'A' && s[end] <= 'Z'))) &&
			pdp_phone_parse(s + i, end - i, &p) == PDP_PHONE_OK && (plus || p.ndigits == 11))
			hits->phones++;
		i = j > i ? j : i + 1;
	}
}
