/* libFuzzer: FF1 and the IIN permutation decrypt what they encrypt. */
#include "ff1.h"
#include "iin_fpe.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	static pdp_ff1 *ctx = NULL;
	uint8_t		x[PDP_FF1_MAX_LEN],
				y[PDP_FF1_MAX_LEN];
	unsigned	radix;
	size_t		tlen,
				n;

	if (ctx == NULL)
	{
		unsigned char key[32] = {9, 8, 7};

		ctx = pdp_ff1_new(key, 32);
	}
	if (size < 2)
		return 0;
	radix = 2 + data[0] % 35;
	tlen = data[1] % 8;
	if (size < 2 + tlen)
		return 0;
	n = size - 2 - tlen;
	if (n > PDP_FF1_MAX_LEN)
		n = PDP_FF1_MAX_LEN;
	for (size_t i = 0; i < n; i++)
		x[i] = data[2 + tlen + i] % radix;
	if (pdp_ff1_encrypt(ctx, radix, data + 2, tlen, x, y, n) == PDP_FF1_OK)
	{
		if (pdp_ff1_decrypt(ctx, radix, data + 2, tlen, y, y, n) != PDP_FF1_OK || memcmp(x, y, n) != 0)
			abort();
	}
	if (size >= 12)
	{
		char		out[12],
					back[12];

		if (pdp_iin_fpe_encrypt(ctx, data[0] & 1, (const char *) data, out) == PDP_IIN_FPE_OK &&
			(pdp_iin_fpe_decrypt(ctx, data[0] & 1, out, back) != PDP_IIN_FPE_OK || memcmp(back, data, 12) != 0))
			abort();
	}
	return 0;
}
