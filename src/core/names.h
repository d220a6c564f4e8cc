/*-------------------------------------------------------------------------
 * names.h
 *	  Realistic replacement names from shipped lists of Kazakh and Russian
 *	  given names and surnames, in Cyrillic and in Latin transliteration.
 *	  Plain C, no PostgreSQL headers.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_NAMES_H
#define PDP_NAMES_H

#include <stddef.h>

typedef enum pdp_name_status
{
	PDP_NAME_OK = 0,
	PDP_NAME_NO_LETTERS,		/* no letter at all (blank, or only - ' .) */
	PDP_NAME_TOO_MANY_WORDS,	/* more than 4 words */
	PDP_NAME_BAD_CHAR			/* digits, punctuation other than - ' . */
} pdp_name_status;

#define PDP_NAME_MAX_OUT 256

/*
 * Build a replacement for the name s[0..len) into out (NUL-terminated,
 * PDP_NAME_MAX_OUT bytes), choosing each word with 16 bits of seed[].
 * The output keeps the input's script (Cyrillic for a Cyrillic-only name,
 * Latin for Latin, other scripts such as Chinese or Arabic, and mixed
 * names), its number of words (1: given
 * name; 2: given name and surname; 3 or 4: surname, given name,
 * patronymic) and, by a suffix heuristic, its gender.
 */
extern pdp_name_status pdp_name_replace(const char *s, size_t len,
										const unsigned char seed[8], char *out);
extern const char *pdp_name_status_message(pdp_name_status status);

#endif							/* PDP_NAMES_H */
