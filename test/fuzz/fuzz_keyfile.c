/* libFuzzer: the key-file parser must never crash, and must wipe keys on failure. */
#include "keyfile.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static pdp_key keys[PDP_MAX_KEYS];
	int			n,
				active,
				line;
	pdp_keyfile_status st = pdp_keyfile_parse((const char *) data, size, keys, PDP_MAX_KEYS, &n, &active, &line);

	if (st == PDP_KEYFILE_OK && (n < 1 || active < 0 || active >= n))
		abort();
	if (st != PDP_KEYFILE_OK)
		for (size_t i = 0; i < sizeof(keys); i++)
			if (((unsigned char *) keys)[i] != 0)
				abort();		/* a failed parse left key material behind */
	return 0;
}
