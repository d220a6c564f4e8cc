/*-------------------------------------------------------------------------
 * classify.h
 *	  What kind of personal data a single value is, by validators rather
 *	  than patterns: IIN and BIN check digits, Luhn for card numbers, e-mail
 *	  syntax, Kazakh phone numbers, IPv4 and IPv6.  Plain C.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_CLASSIFY_H
#define PDP_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

/* "iin", "bin", "card", "email", "phone", "ip", or NULL. */
extern const char *pdp_classify_value(const char *s, size_t len);

/*
 * Is the value empty, blank or a placeholder a form leaves ("-", "n/a",
 * "none", "null", "0", ...)?  Discovery does not count such values
 * against a validator.
 */
extern bool pdp_is_placeholder(const char *s, size_t len);

/* Personal data found inside free text or JSON: counts, never values. */
typedef struct pdp_text_hits
{
	int			emails;
	int			phones;
	int			iins;
} pdp_text_hits;

/* At most this many bytes of one value are scanned. */
#define PDP_SCAN_MAX_BYTES 65536

/*
 * Count the e-mail addresses (dotted domain), phone numbers (as
 * pdp_classify_value accepts them) and valid IINs (twelve digits between
 * non-digits) inside s[0..len).
 */
extern void pdp_scan_text(const char *s, size_t len, pdp_text_hits *hits);

#endif							/* PDP_CLASSIFY_H */
