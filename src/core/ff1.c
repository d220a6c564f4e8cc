/*-------------------------------------------------------------------------
 * ff1.c
 *	  FF1 (NIST SP 800-38G, section 5.1) on OpenSSL AES and BIGNUM.
 *
 * Algorithm 7 (FF1.Encrypt) and 8 (FF1.Decrypt), step numbers in comments.
 * The PRF is AES-CBC-MAC with a zero IV, built from single-block AES-ECB
 * calls on one cipher context that is keyed once per pdp_ff1.
 *-------------------------------------------------------------------------
 */
#include "ff1.h"

#include <string.h>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

struct pdp_ff1
{
	EVP_CIPHER_CTX *ecb;
	BN_CTX	   *bn;
};

pdp_ff1 *
pdp_ff1_new(const unsigned char *key, size_t key_len)
{
	const EVP_CIPHER *cipher;
	pdp_ff1    *ctx;

	switch (key_len)
	{
		case 16:
			cipher = EVP_aes_128_ecb();
			break;
		case 24:
			cipher = EVP_aes_192_ecb();
			break;
		case 32:
			cipher = EVP_aes_256_ecb();
			break;
		default:
			return NULL;
	}
	ctx = OPENSSL_zalloc(sizeof(*ctx));
	if (ctx == NULL)
		return NULL;
	ctx->ecb = EVP_CIPHER_CTX_new();
	ctx->bn = BN_CTX_new();
	if (ctx->ecb == NULL || ctx->bn == NULL ||
		EVP_EncryptInit_ex(ctx->ecb, cipher, NULL, key, NULL) != 1 ||
		EVP_CIPHER_CTX_set_padding(ctx->ecb, 0) != 1)
	{
		pdp_ff1_free(ctx);
		return NULL;
	}
	return ctx;
}

void
pdp_ff1_free(pdp_ff1 *ctx)
{
	if (ctx == NULL)
		return;
	EVP_CIPHER_CTX_free(ctx->ecb);	/* also wipes the key schedule */
	BN_CTX_free(ctx->bn);
	OPENSSL_free(ctx);
}

size_t
pdp_ff1_min_length(unsigned radix)
{
	size_t		len = 0;
	unsigned long long span = 1;

	if (radix < 2)
		return 0;
	while (span < 1000000ULL)
	{
		span *= radix;
		len++;
	}
	return len < 2 ? 2 : len;
}

/* out = AES_K(in), one block. */
static bool
aes_block(pdp_ff1 *ctx, const unsigned char in[16], unsigned char out[16])
{
	int			outl = 0;

	return EVP_EncryptUpdate(ctx->ecb, out, &outl, in, 16) == 1 && outl == 16;
}

/* NUM_radix(X): the number the numerals x[0..n) stand for, into r. */
static bool
num_radix(BIGNUM *r, const uint8_t *x, size_t n, unsigned radix)
{
	BN_zero(r);
	for (size_t i = 0; i < n; i++)
		if (!BN_mul_word(r, radix) || !BN_add_word(r, x[i]))
			return false;
	return true;
}

/* STR^m_radix(v): v as m numerals into x[0..m); v is destroyed. */
static bool
str_radix(BIGNUM *v, uint8_t *x, size_t m, unsigned radix)
{
	for (size_t i = m; i-- > 0;)
	{
		BN_ULONG	rem = BN_div_word(v, radix);

		if (rem == (BN_ULONG) -1)
			return false;
		x[i] = (uint8_t) rem;
	}
	return true;
}

/*
 * Steps 6.ii-6.iii: R = PRF(P || Q) by AES-CBC-MAC with a zero IV, then
 * S = R || CIPH(R xor [1]^16) || ... up to d bytes.
 */
static bool
ff1_prf(pdp_ff1 *ctx, const unsigned char P[16], const unsigned char *Q, size_t qlen,
		size_t d, unsigned char *S)
{
	unsigned char R[16],
				block[16];
	bool		ok = false;

	if (!aes_block(ctx, P, R))
		goto done;
	for (size_t off = 0; off < qlen; off += 16)
	{
		for (int k = 0; k < 16; k++)
			block[k] = R[k] ^ Q[off + k];
		if (!aes_block(ctx, block, R))
			goto done;
	}
	memcpy(S, R, 16);
	for (size_t j = 1; j * 16 < d; j++)
	{
		memcpy(block, R, 16);
		block[12] ^= (unsigned char) (j >> 24);
		block[13] ^= (unsigned char) (j >> 16);
		block[14] ^= (unsigned char) (j >> 8);
		block[15] ^= (unsigned char) j;
		if (!aes_block(ctx, block, S + 16 * j))
			goto done;
	}
	ok = true;
done:
	OPENSSL_cleanse(R, sizeof(R));
	OPENSSL_cleanse(block, sizeof(block));
	return ok;
}

/* Step 5: P = [1]^1 [2]^1 [1]^1 [radix]^3 [10]^1 [u mod 256]^1 [n]^4 [t]^4. */
static void
ff1_header(unsigned char P[16], unsigned radix, size_t u, size_t n, size_t t)
{
	P[0] = 1;
	P[1] = 2;
	P[2] = 1;
	P[3] = (unsigned char) (radix >> 16);
	P[4] = (unsigned char) (radix >> 8);
	P[5] = (unsigned char) radix;
	P[6] = 10;
	P[7] = (unsigned char) (u % 256);
	P[8] = (unsigned char) (n >> 24);
	P[9] = (unsigned char) (n >> 16);
	P[10] = (unsigned char) (n >> 8);
	P[11] = (unsigned char) n;
	P[12] = (unsigned char) (t >> 24);
	P[13] = (unsigned char) (t >> 16);
	P[14] = (unsigned char) (t >> 8);
	P[15] = (unsigned char) t;
}

/*
 * The same algorithm in 64-bit arithmetic, for domains below 2^62 (radix 10
 * up to 18 digits, radix 2 up to 62): no BIGNUM, no allocation.  y is at
 * most 12 bytes here (b <= 8, so d <= 12), reduced with 128-bit arithmetic.
 */
static pdp_ff1_status
ff1_crypt_u64(pdp_ff1 *ctx, unsigned radix, const unsigned char *tweak, size_t t,
			  const uint8_t *in, uint8_t *out, size_t n, bool encrypt)
{
	size_t		u = n / 2,
				v = n - u,
				b,
				d,
				pad,
				qlen;
	uint64_t	modU = 1,
				modV = 1,
				A = 0,
				B = 0;
	unsigned char P[16],
				S[32],
				Qbuf[PDP_FF1_MAX_TWEAK + 32];

	for (size_t i = 0; i < u; i++)
		modU *= radix;
	for (size_t i = 0; i < v; i++)
		modV *= radix;
	b = 0;
	for (uint64_t x = modV - 1; x > 0; x >>= 8)
		b++;
	if (b == 0)
		b = 1;
	d = 4 * ((b + 3) / 4) + 4;
	ff1_header(P, radix, u, n, t);
	pad = (16 - ((t + b + 1) % 16)) % 16;
	qlen = t + pad + 1 + b;
	if (t > 0)
		if (t > 0)
		memcpy(Qbuf, tweak, t);		/* tweak may be NULL when empty */
	memset(Qbuf + t, 0, pad);

	/* A and B hold NUM of the two halves; their lengths alternate as in ff1_crypt. */
	for (size_t i = 0; i < u; i++)
		A = A * radix + in[i];
	for (size_t i = u; i < n; i++)
		B = B * radix + in[i];

	for (int round = 0; round < 10; round++)
	{
		int			i = encrypt ? round : 9 - round;
		uint64_t	mod = (i % 2 == 0) ? modU : modV;
		uint64_t	fed = encrypt ? B : A;
		uint64_t	target = encrypt ? A : B;
		unsigned __int128 y = 0;
		uint64_t	ymod,
					c;

		Qbuf[t + pad] = (unsigned char) i;
		for (size_t k = 0; k < b; k++)
			Qbuf[t + pad + 1 + k] = (unsigned char) (fed >> (8 * (b - 1 - k)));
		if (!ff1_prf(ctx, P, Qbuf, qlen, d, S))
			return PDP_FF1_CRYPTO;
		for (size_t k = 0; k < d; k++)
			y = (y << 8) | S[k];
		ymod = (uint64_t) (y % mod);
		if (encrypt)
			c = (uint64_t) (((unsigned __int128) target + ymod) % mod);
		else
			c = (target >= ymod) ? target - ymod : target + (mod - ymod);
		if (encrypt)
		{
			A = B;
			B = c;
		}
		else
		{
			B = A;
			A = c;
		}
	}
	OPENSSL_cleanse(S, sizeof(S));

	/* STR^u(A) || STR^v(B). */
	for (size_t i = u; i-- > 0;)
	{
		out[i] = (uint8_t) (A % radix);
		A /= radix;
	}
	for (size_t i = n; i-- > u;)
	{
		out[i] = (uint8_t) (B % radix);
		B /= radix;
	}
	return PDP_FF1_OK;
}

bool		pdp_ff1_disable_fast_path = false;

/* Does radix^n stay below 2^62, so that ff1_crypt_u64 applies? */
static bool
fits_u64(unsigned radix, size_t n)
{
	uint64_t	span = 1;

	for (size_t i = 0; i < n; i++)
	{
		if (span > ((uint64_t) 1 << 62) / radix)
			return false;
		span *= radix;
	}
	return true;
}

static pdp_ff1_status
ff1_crypt(pdp_ff1 *ctx, unsigned radix, const unsigned char *tweak, size_t t,
		  const uint8_t *in, uint8_t *out, size_t n, bool encrypt)
{
	uint8_t		A[PDP_FF1_MAX_LEN],
				B[PDP_FF1_MAX_LEN];
	unsigned char P[16];
	unsigned char Qbuf[PDP_FF1_MAX_TWEAK + 16 + 1 + 256];
	unsigned char S[16 * 16 + 16];
	size_t		u,
				v,
				b,
				d,
				qlen,
				pad;
	BIGNUM	   *numA,
			   *numB,
			   *y,
			   *c,
			   *modU,
			   *modV,
			   *radixBN,
			   *tmp;
	pdp_ff1_status status = PDP_FF1_CRYPTO;

	if (radix < 2 || radix > PDP_FF1_MAX_RADIX)
		return PDP_FF1_BAD_RADIX;
	if (n < 2 || n > PDP_FF1_MAX_LEN)
		return PDP_FF1_BAD_LENGTH;
	if (n < pdp_ff1_min_length(radix))
		return PDP_FF1_DOMAIN_TOO_SMALL;
	if (t > PDP_FF1_MAX_TWEAK)
		return PDP_FF1_BAD_TWEAK;
	for (size_t i = 0; i < n; i++)
		if (in[i] >= radix)
			return PDP_FF1_BAD_DIGIT;
	if (!pdp_ff1_disable_fast_path && fits_u64(radix, n))
		return ff1_crypt_u64(ctx, radix, tweak, t, in, out, n, encrypt);

	BN_CTX_start(ctx->bn);
	numA = BN_CTX_get(ctx->bn);
	numB = BN_CTX_get(ctx->bn);
	y = BN_CTX_get(ctx->bn);
	c = BN_CTX_get(ctx->bn);
	modU = BN_CTX_get(ctx->bn);
	modV = BN_CTX_get(ctx->bn);
	radixBN = BN_CTX_get(ctx->bn);
	tmp = BN_CTX_get(ctx->bn);
	if (tmp == NULL)
		goto done;

	/* Steps 1-2: split. */
	u = n / 2;
	v = n - u;
	memcpy(A, in, u);
	memcpy(B, in + u, v);

	/* radix^u and radix^v, the moduli of step 6.vi. */
	if (!BN_set_word(radixBN, radix) ||
		!BN_set_word(tmp, (BN_ULONG) u) || !BN_exp(modU, radixBN, tmp, ctx->bn) ||
		!BN_set_word(tmp, (BN_ULONG) v) || !BN_exp(modV, radixBN, tmp, ctx->bn))
		goto done;

	/* Step 3: b = ceil(ceil(v * log2(radix)) / 8), i.e. bytes of radix^v - 1. */
	if (!BN_copy(tmp, modV) || !BN_sub_word(tmp, 1))
		goto done;
	b = ((size_t) BN_num_bits(tmp) + 7) / 8;
	if (b == 0)
		b = 1;
	/* Step 4: d = 4 * ceil(b / 4) + 4. */
	d = 4 * ((b + 3) / 4) + 4;
	if (d > sizeof(S) - 16 || b > 255)
	{
		status = PDP_FF1_BAD_LENGTH;
		goto done;
	}

	ff1_header(P, radix, u, n, t);

	/* Q = T || [0]^((-t-b-1) mod 16) || [i]^1 || [NUM(B)]^b. */
	pad = (16 - ((t + b + 1) % 16)) % 16;
	qlen = t + pad + 1 + b;
	if (t > 0)
		memcpy(Qbuf, tweak, t);		/* tweak may be NULL when empty */
	memset(Qbuf + t, 0, pad);

	for (int round = 0; round < 10; round++)
	{
		/*
		 * Encryption runs i = 0..9 and feeds B to the PRF, adding to A;
		 * decryption runs i = 9..0, feeds A and subtracts from B.  m is
		 * u for even i and v for odd i; the half that is added to (or
		 * subtracted from) always has m numerals, the other n - m.
		 */
		int			i = encrypt ? round : 9 - round;
		size_t		m = (i % 2 == 0) ? u : v;
		BIGNUM	   *mod = (i % 2 == 0) ? modU : modV;
		const uint8_t *fed = encrypt ? B : A;
		uint8_t    *target = encrypt ? A : B;
		uint8_t		C[PDP_FF1_MAX_LEN];

		/* Step 6.i: Q's round number and [NUM(fed half)]^b. */
		Qbuf[t + pad] = (unsigned char) i;
		if (!num_radix(numB, fed, n - m, radix))
			goto done;
		if (BN_bn2binpad(numB, Qbuf + t + pad + 1, (int) b) < 0)
			goto done;

		/* Steps 6.ii-iii. */
		if (!ff1_prf(ctx, P, Qbuf, qlen, d, S))
			goto done;

		/* Step 6.iv: y = NUM(S[0..d)). */
		if (BN_bin2bn(S, (int) d, y) == NULL)
			goto done;

		/* Step 6.vi: c = NUM(target) +/- y mod radix^m. */
		if (!num_radix(numA, target, m, radix))
			goto done;
		if (encrypt ? !BN_mod_add(c, numA, y, mod, ctx->bn)
			: !BN_mod_sub(c, numA, y, mod, ctx->bn))
			goto done;

		/* Step 6.vii: C = STR^m(c). */
		if (!str_radix(c, C, m, radix))
			goto done;

		/*
		 * Steps 6.viii-ix.  Encryption: A = B; B = C.  Decryption: B = A;
		 * A = C.  Either way the fed half moves over and C takes its place.
		 */
		if (encrypt)
		{
			memmove(A, B, n - m);
			memcpy(B, C, m);
		}
		else
		{
			memmove(B, A, n - m);
			memcpy(A, C, m);
		}
	}

	/* Step 7: A || B.  After ten rounds A has u numerals and B has v. */
	memcpy(out, A, u);
	memcpy(out + u, B, v);
	status = PDP_FF1_OK;

done:
	BN_CTX_end(ctx->bn);
	OPENSSL_cleanse(S, sizeof(S));
	return status;
}

pdp_ff1_status
pdp_ff1_encrypt(pdp_ff1 *ctx, unsigned radix, const unsigned char *tweak, size_t tweak_len,
				const uint8_t *in, uint8_t *out, size_t n)
{
	return ff1_crypt(ctx, radix, tweak, tweak_len, in, out, n, true);
}

pdp_ff1_status
pdp_ff1_decrypt(pdp_ff1 *ctx, unsigned radix, const unsigned char *tweak, size_t tweak_len,
				const uint8_t *in, uint8_t *out, size_t n)
{
	return ff1_crypt(ctx, radix, tweak, tweak_len, in, out, n, false);
}

const char *
pdp_ff1_status_message(pdp_ff1_status status)
{
	switch (status)
	{
		case PDP_FF1_OK:
			return "FF1 succeeded.";
		case PDP_FF1_BAD_RADIX:
			return "The radix must be between 2 and 36.";
		case PDP_FF1_BAD_LENGTH:
			return "The value must have between 2 and 256 digits.";
		case PDP_FF1_DOMAIN_TOO_SMALL:
			return "FF1 needs radix^length of at least 1,000,000 (NIST SP 800-38G); use more digits.";
		case PDP_FF1_BAD_DIGIT:
			return "Every digit must be below the radix.";
		case PDP_FF1_BAD_TWEAK:
			return "The domain is too long to serve as an FF1 tweak.";
		case PDP_FF1_CRYPTO:
			return "OpenSSL failed.";
	}
	return "FF1 failed.";
}
