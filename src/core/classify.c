/*-------------------------------------------------------------------------
 * classify.c
 *	  Value classification for PII discovery (see classify.h).
 *-------------------------------------------------------------------------
 */
#include "classify.h"
#include "checkdigit.h"
#include "contact.h"

#include <arpa/inet.h>
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
	char		buf[64];
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
	if (memchr(s, '@', len) != NULL)
		return pdp_email_parse(s, len, &at) == PDP_EMAIL_OK ? "email" : NULL;

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

	if (len < sizeof(buf))
	{
		unsigned char addr[16];
		char	   *slash;

		memcpy(buf, s, len);
		buf[len] = '\0';
		/* inet's text form carries a netmask length: 10.1.2.3/32. */
		slash = strchr(buf, '/');
		if (slash != NULL)
		{
			if (slash[1] == '\0' || !all_digits(slash + 1, strlen(slash + 1)) || strlen(slash + 1) > 3)
				return NULL;
			*slash = '\0';
		}
		if (inet_pton(AF_INET, buf, addr) == 1 || inet_pton(AF_INET6, buf, addr) == 1)
			return "ip";
	}
	return NULL;
}
