/* libFuzzer: phone, e-mail and name parsers. */
#include "contact.h"
#include "names.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *s = (const char *) data;
	pdp_phone	p;
	size_t		at;
	char		out[PDP_NAME_MAX_OUT];
	unsigned char seed[8] = {1, 2, 3, 4, 5, 6, 7, 8};

	if (pdp_phone_parse(s, size, &p) == PDP_PHONE_OK)
	{
		if (p.ndigits < 10 || p.ndigits > PDP_PHONE_MAX_DIGITS || p.keep > 3)
			abort();
		for (size_t i = 0; i < p.ndigits; i++)
			if (p.pos[i] >= size || s[p.pos[i]] != p.digits[i])
				abort();
	}
	if (pdp_email_parse(s, size, &at) == PDP_EMAIL_OK && (at == 0 || at >= size || s[at] != '@'))
		abort();
	if (pdp_name_replace(s, size, seed, out) == PDP_NAME_OK && memchr(out, '\0', sizeof(out)) == NULL)
		abort();
	return 0;
}
