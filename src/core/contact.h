/*-------------------------------------------------------------------------
 * contact.h
 *	  Parsers for phone numbers and e-mail addresses, as LMS users type
 *	  them.  Plain C, no PostgreSQL headers.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_CONTACT_H
#define PDP_CONTACT_H

#include <stdbool.h>
#include <stddef.h>

#define PDP_PHONE_MAX_DIGITS 15

typedef enum pdp_phone_status
{
	PDP_PHONE_OK = 0,
	PDP_PHONE_BAD_CHAR,			/* not a digit, space, dash, dot, bracket or leading + */
	PDP_PHONE_LENGTH,			/* digit count outside what the form allows */
	PDP_PHONE_NOT_KAZAKH		/* no + and not a Kazakh national form */
} pdp_phone_status;

/*
 * A parsed phone number.  digits[] are the number's digits in order and
 * pos[] their byte offsets in the input, so a result can be written back
 * in the input's own layout.  The first "keep" digits are the country code
 * (or trunk prefix 8) and, for +7 numbers, the first national digit; they
 * are kept by pseudonymisation and masking.
 */
typedef struct pdp_phone
{
	size_t		ndigits;
	size_t		keep;
	char		digits[PDP_PHONE_MAX_DIGITS];
	size_t		pos[PDP_PHONE_MAX_DIGITS];
} pdp_phone;

/*
 * Accepted: "+7 7xx xxx xx xx", "8 7xx xxx-xx-xx", "8 (7xx) xxx xx xx",
 * "87xxxxxxxxx", "77xxxxxxxxx", "7xx xxx xx xx" (10 digits), and any
 * "+<10 to 15 digits>".  Spaces, dashes, dots and brackets may separate
 * digits anywhere.
 */
extern pdp_phone_status pdp_phone_parse(const char *s, size_t len, pdp_phone *p);
extern const char *pdp_phone_status_message(pdp_phone_status status);

typedef enum pdp_email_status
{
	PDP_EMAIL_OK = 0,
	PDP_EMAIL_NO_AT,			/* no '@', or more than one */
	PDP_EMAIL_LOCAL,			/* empty, too long, bad character or dots */
	PDP_EMAIL_DOMAIN			/* empty, too long, bad label, no dot */
} pdp_email_status;

/*
 * Check an address (local@domain, without quoting or comments; UTF-8 bytes
 * are allowed in both parts).  On success *at is the offset of the '@'.
 */
extern pdp_email_status pdp_email_parse(const char *s, size_t len, size_t *at);
extern const char *pdp_email_status_message(pdp_email_status status);

/*
 * Is s[0..len) empty or only ASCII whitespace?  Such values hold no
 * personal data: the value rules return them unchanged (LMSs store ''
 * for "not given"), and discovery does not count them against a validator.
 */
extern bool pdp_is_blank(const char *s, size_t len);

#endif							/* PDP_CONTACT_H */
