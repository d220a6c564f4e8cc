/* AES-SIV against RFC 5297 appendix A.1, tokens, and base32/base64url. */
#include "codec.h"
#include "siv.h"
#include "tap.h"

#include <openssl/evp.h>

static size_t
unhex(const char *h, unsigned char *out)
{
	size_t		n = strlen(h) / 2;

	for (size_t i = 0; i < n; i++)
		sscanf(h + 2 * i, "%2hhx", &out[i]);
	return n;
}

int
main(void)
{
	unsigned char key[64],
				ad[64],
				pt[64],
				want[64],
				out[128],
				back[128];
	size_t		adl,
				ptl,
				wl;
	char		enc[64];

	/*
	 * RFC 5297 A.1 uses AES-SIV with a 256-bit key (AES-128-SIV).  Our
	 * context is AES-256-SIV, so check the construction through OpenSSL with
	 * the RFC's own parameters first, then our wrapper's round trip.
	 */
	{
		EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, "AES-128-SIV", NULL);
		EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
		int			outl;

		unhex("fffefdfcfbfaf9f8f7f6f5f4f3f2f1f0f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", key);
		adl = unhex("101112131415161718191a1b1c1d1e1f2021222324252627", ad);
		ptl = unhex("112233445566778899aabbccddee", pt);
		wl = unhex("85632d07c6e8f37f950acd320a2ecc9340c02b9690c4dc04daef7f6afe5c", want);
		EVP_EncryptInit_ex2(x, c, key, NULL, NULL);
		EVP_EncryptUpdate(x, NULL, &outl, ad, (int) adl);
		EVP_EncryptUpdate(x, out + 16, &outl, pt, (int) ptl);
		EVP_EncryptFinal_ex(x, out + 16 + outl, &outl);
		EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, 16, out);
		ok(wl == ptl + 16 && memcmp(out, want, wl) == 0, "OpenSSL AES-SIV matches RFC 5297 A.1");
		EVP_CIPHER_CTX_free(x);
		EVP_CIPHER_free(c);
	}

	for (int i = 0; i < 64; i++)
		key[i] = (unsigned char) i;
	{
		pdp_siv    *s = pdp_siv_new(key);
		unsigned char out2[128];

		ok(s != NULL, "AES-256-SIV context");
		ok(pdp_siv_encrypt(s, ad, adl, pt, ptl, out), "encrypts");
		ok(pdp_siv_encrypt(s, ad, adl, pt, ptl, out2) && memcmp(out, out2, ptl + 16) == 0,
		   "deterministic: the same input gives the same output");
		ok(pdp_siv_decrypt(s, ad, adl, out, ptl + 16, back) && memcmp(back, pt, ptl) == 0, "decrypts");
		out[20] ^= 1;
		ok(!pdp_siv_decrypt(s, ad, adl, out, ptl + 16, back), "a flipped ciphertext bit is detected");
		out[20] ^= 1;
		ad[0] ^= 1;
		ok(!pdp_siv_decrypt(s, ad, adl, out, ptl + 16, back), "changed associated data is detected");
		ad[0] ^= 1;
		ok(!pdp_siv_encrypt(s, NULL, 0, pt, 0, out), "an empty message is refused (tokens carry a type byte)");
		ok(pdp_siv_encrypt(s, NULL, 0, pt, 1, out) && pdp_siv_decrypt(s, NULL, 0, out, 17, back)
		   && back[0] == pt[0], "a one-byte message round-trips without associated data");
		ok(!pdp_siv_decrypt(s, NULL, 0, out, 16, back), "a sealed value no longer than the tag is refused");
		pdp_siv_free(s);
	}

	/* Tokens. */
	{
		unsigned char body[128],
					buf[256];
		char		text[256];
		size_t		h = pdp_token_header(body, 258, (const unsigned char *) "email", 5);
		pdp_token	tok;
		size_t		tl;

		memset(body + h, 0xab, 16 + 3);
		memcpy(text, PDP_TOKEN_PREFIX, PDP_TOKEN_PREFIX_LEN);
		tl = PDP_TOKEN_PREFIX_LEN + pdp_base64url_encode(body, h + 19, text + PDP_TOKEN_PREFIX_LEN);
		ok(pdp_token_parse(text, tl, buf, &tok), "a token parses");
		ok(tok.version == 258 && tok.domain_len == 5 && memcmp(tok.domain, "email", 5) == 0
		   && tok.sealed_len == 19 && tok.header_len == 8, "its fields are read back");
		ok(!pdp_token_parse("pdp2.AAAA", 9, buf, &tok), "a wrong prefix is refused");
		ok(!pdp_token_parse("pdp1.!!!!", 9, buf, &tok), "bad base64url is refused");
		ok(!pdp_token_parse("pdp1.AAAA", 9, buf, &tok), "a too-short body is refused");
		ok(!pdp_token_parse("", 0, buf, &tok), "empty is refused");
		text[PDP_TOKEN_PREFIX_LEN + 2] = '_';	/* claims a 63+ byte domain */
		ok(!pdp_token_parse(text, tl, buf, &tok), "a domain length beyond the body is refused");
	}

	/* Codecs: RFC 4648 section 10 vectors (lower case, no padding). */
	enc[pdp_base32_encode((const unsigned char *) "foobar", 6, enc)] = '\0';
	is_str(enc, "mzxw6ytboi", "base32(\"foobar\")");
	enc[pdp_base32_encode((const unsigned char *) "f", 1, enc)] = '\0';
	is_str(enc, "my", "base32(\"f\")");
	enc[pdp_base64url_encode((const unsigned char *) "foob", 4, enc)] = '\0';
	is_str(enc, "Zm9vYg", "base64url(\"foob\")");
	{
		unsigned char d[16];

		is_int(pdp_base64url_decode("Zm9vYg", 6, d), 4, "base64url decodes 4 bytes");
		ok(memcmp(d, "foob", 4) == 0, "to foob");
		is_int(pdp_base64url_decode("Zm9vYh", 6, d), -1, "non-zero trailing bits refused");
		is_int(pdp_base64url_decode("Zm9vY", 5, d), -1, "impossible length refused");
		is_int(pdp_base64url_decode("Zm+v", 4, d), -1, "'+' is not base64url");
	}
	return done_testing();
}
