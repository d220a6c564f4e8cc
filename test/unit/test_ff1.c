/*
 * FF1 against the NIST SP 800-38G sample vectors (FF1 samples 1-9, from
 * NIST's "Examples with Intermediate Values" for FF1), round trips, and
 * the permutation property on a small domain.
 */
#include "ff1.h"
#include "tap.h"

#include <stdlib.h>

static const char *alphabet = "0123456789abcdefghijklmnopqrstuvwxyz";

static size_t
unhex(const char *h, unsigned char *out)
{
	size_t		n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
	return n;
}

static void
to_numerals(const char *s, uint8_t *x)
{
	for (size_t i = 0; s[i]; i++)
		x[i] = (uint8_t) (strchr(alphabet, s[i]) - alphabet);
}

static void
to_string(const uint8_t *x, size_t n, char *s)
{
	for (size_t i = 0; i < n; i++)
		s[i] = alphabet[x[i]];
	s[n] = '\0';
}

struct vector
{
	const char *key;
	const char *tweak;
	unsigned	radix;
	const char *pt;
	const char *ct;
};

#define K128 "2b7e151628aed2a6abf7158809cf4f3c"
#define K192 K128 "ef4359d8d580aa4f"
#define K256 K192 "7f036d6f04fc6a94"

static const struct vector vectors[] = {
	{K128, "", 10, "0123456789", "2433477484"},
	{K128, "39383736353433323130", 10, "0123456789", "6124200773"},
	{K128, "3737373770717273373737", 36, "0123456789abcdefghi", "a9tv40mll9kdu509eum"},
	{K192, "", 10, "0123456789", "2830668132"},
	{K192, "39383736353433323130", 10, "0123456789", "2496655549"},
	{K192, "3737373770717273373737", 36, "0123456789abcdefghi", "xbj3kv35jrawxv32ysr"},
	{K256, "", 10, "0123456789", "6657667009"},
	{K256, "39383736353433323130", 10, "0123456789", "1001623463"},
	{K256, "3737373770717273373737", 36, "0123456789abcdefghi", "xs8a0azh2avyalyzuwd"},
};

int
main(void)
{
	for (int pass = 0; pass < 2; pass++)
	{
	pdp_ff1_disable_fast_path = (pass == 1);
	printf("# %s path\n", pass == 0 ? "default" : "BIGNUM-only");
	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++)
	{
		unsigned char key[32],
					tweak[32];
		size_t		klen = unhex(vectors[v].key, key);
		size_t		tlen = unhex(vectors[v].tweak, tweak);
		size_t		n = strlen(vectors[v].pt);
		uint8_t		x[64],
					y[64];
		char		out[65];
		pdp_ff1    *ctx = pdp_ff1_new(key, klen);

		ok(ctx != NULL, "sample %zu: context for a %zu-bit key", v + 1, klen * 8);
		to_numerals(vectors[v].pt, x);
		is_int(pdp_ff1_encrypt(ctx, vectors[v].radix, tweak, tlen, x, y, n), PDP_FF1_OK,
			   "sample %zu: encrypts", v + 1);
		to_string(y, n, out);
		is_str(out, vectors[v].ct, "sample %zu: ciphertext matches NIST", v + 1);
		is_int(pdp_ff1_decrypt(ctx, vectors[v].radix, tweak, tlen, y, y, n), PDP_FF1_OK,
			   "sample %zu: decrypts in place", v + 1);
		to_string(y, n, out);
		is_str(out, vectors[v].pt, "sample %zu: decryption gives the plaintext back", v + 1);
		pdp_ff1_free(ctx);
	}
	}
	pdp_ff1_disable_fast_path = false;

	{
		unsigned char key[16] = {1, 2, 3};
		pdp_ff1    *ctx = pdp_ff1_new(key, 16);
		uint8_t		x[256],
					y[256];
		static unsigned char seen[1000000 / 8];
		int			collisions = 0,
					roundtrip_fail = 0;

		/* Radix 10, 6 digits is the smallest domain: check it is a permutation. */
		for (unsigned i = 0; i < 1000000; i++)
		{
			unsigned	w = i,
						r = 0;

			for (int k = 5; k >= 0; k--)
			{
				x[k] = (uint8_t) (w % 10);
				w /= 10;
			}
			pdp_ff1_encrypt(ctx, 10, NULL, 0, x, y, 6);
			for (int k = 0; k < 6; k++)
				r = r * 10 + y[k];
			if (seen[r / 8] & (1 << (r % 8)))
				collisions++;
			seen[r / 8] |= (unsigned char) (1 << (r % 8));
			if (i % 997 == 0)
			{
				pdp_ff1_decrypt(ctx, 10, NULL, 0, y, y, 6);
				if (memcmp(x, y, 6) != 0)
					roundtrip_fail++;
			}
		}
		is_int(collisions, 0, "FF1 permutes all 1,000,000 six-digit strings: no collision");
		is_int(roundtrip_fail, 0, "sampled six-digit strings decrypt back");

		/* Odd lengths, radix 2 and 16, a long string. */
		for (size_t n = 20; n <= 256; n += 59)
		{
			for (size_t k = 0; k < n; k++)
				x[k] = (uint8_t) (k * 7 % 2);
			pdp_ff1_encrypt(ctx, 2, (const unsigned char *) "t", 1, x, y, n);
			pdp_ff1_decrypt(ctx, 2, (const unsigned char *) "t", 1, y, y, n);
			ok(memcmp(x, y, n) == 0, "radix 2, %zu digits: round trip", n);
		}
		for (size_t k = 0; k < 32; k++)
			x[k] = (uint8_t) (k % 16);
		pdp_ff1_encrypt(ctx, 16, NULL, 0, x, y, 32);
		ok(memcmp(x, y, 32) != 0, "radix 16, 32 digits: ciphertext differs");
		pdp_ff1_decrypt(ctx, 16, NULL, 0, y, y, 32);
		ok(memcmp(x, y, 32) == 0, "radix 16, 32 digits: round trip");

		/* Refusals. */
		is_int(pdp_ff1_encrypt(ctx, 10, NULL, 0, x, y, 5), PDP_FF1_DOMAIN_TOO_SMALL, "10^5 is too small a domain");
		is_int(pdp_ff1_encrypt(ctx, 2, NULL, 0, x, y, 19), PDP_FF1_DOMAIN_TOO_SMALL, "2^19 is too small a domain");
		is_int(pdp_ff1_encrypt(ctx, 1, NULL, 0, x, y, 30), PDP_FF1_BAD_RADIX, "radix 1 refused");
		is_int(pdp_ff1_encrypt(ctx, 10, NULL, 0, x, y, 257), PDP_FF1_BAD_LENGTH, "257 digits refused");
		x[0] = 10;
		is_int(pdp_ff1_encrypt(ctx, 10, NULL, 0, x, y, 10), PDP_FF1_BAD_DIGIT, "a digit equal to the radix refused");
		is_int(pdp_ff1_min_length(10), 6, "minimum length for radix 10 is 6");
		is_int(pdp_ff1_min_length(2), 20, "minimum length for radix 2 is 20");
		is_int(pdp_ff1_min_length(36), 4, "minimum length for radix 36 is 4");
		ok(pdp_ff1_new(key, 15) == NULL, "a 15-byte key is refused");
		pdp_ff1_free(ctx);
	}
	return done_testing();
}
