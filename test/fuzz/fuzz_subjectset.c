/* libFuzzer: pdp_parse_canonical_int64 accepts exactly the strings int8out writes. */
#include "subjectset.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int64_t		v;
	char		buf[32];

	if (pdp_parse_canonical_int64((const char *) data, size, &v))
	{
		int			n = snprintf(buf, sizeof(buf), "%" PRId64, v);

		if ((size_t) n != size || memcmp(buf, data, size) != 0)
			abort();			/* accepted a non-canonical spelling */
	}
	else if (size > 0 && size < 21)
	{
		/* Refused: then no int64 prints as this string. */
		char		s[32];
		char	   *end;
		long long	w;

		memcpy(s, data, size);
		s[size] = '\0';
		if (memchr(data, '\0', size) == NULL && (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
		{
			w = strtoll(s, &end, 10);
			if (*end == '\0' && snprintf(buf, sizeof(buf), "%lld", w) == (int) size &&
				memcmp(buf, s, size) == 0)
				abort();		/* refused a canonical spelling */
		}
	}
	return 0;
}
