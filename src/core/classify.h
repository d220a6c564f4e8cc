/*-------------------------------------------------------------------------
 * classify.h
 *	  What kind of personal data a single value is, by validators rather
 *	  than patterns: IIN and BIN check digits, Luhn for card numbers, e-mail
 *	  syntax, Kazakh phone numbers, IPv4 and IPv6.  Plain C.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_CLASSIFY_H
#define PDP_CLASSIFY_H

#include <stddef.h>

/* "iin", "bin", "card", "email", "phone", "ip", or NULL. */
extern const char *pdp_classify_value(const char *s, size_t len);

#endif							/* PDP_CLASSIFY_H */
