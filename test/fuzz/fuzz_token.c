/* libFuzzer: token decoding and authentication never crash or accept forgeries. */
#include "codec.h"
#include "siv.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static pdp_siv *siv = NULL;
	unsigned char *buf = malloc(size + 16);
	unsigned char *plain = malloc(size + 16);
	pdp_token	tok;

	if (siv == NULL)
	{
		unsigned char key[PDP_SIV_KEY_BYTES] = {1};

		siv = pdp_siv_new(key);
	}
	if (pdp_token_parse((const char *) data, size, buf, &tok))
	{
		if (tok.header_len + tok.sealed_len > size || tok.domain_len > PDP_TOKEN_MAX_DOMAIN)
			abort();
		/* A random token authenticating would be a forgery. */
		if (tok.sealed_len > PDP_SIV_TAG_BYTES &&
			pdp_siv_decrypt(siv, tok.header, tok.header_len, tok.sealed, tok.sealed_len, plain))
			abort();
	}
	(void) pdp_base64url_decode((const char *) data, size, buf);
	free(buf);
	free(plain);
	return 0;
}
