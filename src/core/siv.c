/*-------------------------------------------------------------------------
 * siv.c
 *	  AES-256-SIV through OpenSSL's EVP interface, and token parsing
 *	  (see siv.h).
 *-------------------------------------------------------------------------
 */
#include "siv.h"
#include "codec.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/*
 * SIV allows one message per initialisation, and keying costs more than
 * the message itself; so two contexts are keyed once (for encryption and
 * decryption) and each message works on a copy of one of them.
 */
struct pdp_siv
{
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *enc_template;
	EVP_CIPHER_CTX *dec_template;
	EVP_CIPHER_CTX *ctx;
};

pdp_siv *
pdp_siv_new(const unsigned char key[PDP_SIV_KEY_BYTES])
{
	pdp_siv    *s = OPENSSL_zalloc(sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cipher = EVP_CIPHER_fetch(NULL, "AES-256-SIV", NULL);
	s->ctx = EVP_CIPHER_CTX_new();
	s->enc_template = EVP_CIPHER_CTX_new();
	s->dec_template = EVP_CIPHER_CTX_new();
	if (s->cipher == NULL || s->ctx == NULL || s->enc_template == NULL || s->dec_template == NULL ||
		EVP_EncryptInit_ex2(s->enc_template, s->cipher, key, NULL, NULL) != 1 ||
		EVP_DecryptInit_ex2(s->dec_template, s->cipher, key, NULL, NULL) != 1)
	{
		pdp_siv_free(s);
		return NULL;
	}
	return s;
}

void
pdp_siv_free(pdp_siv *s)
{
	if (s == NULL)
		return;
	/* Freeing a cipher context wipes its key schedule. */
	EVP_CIPHER_CTX_free(s->ctx);
	EVP_CIPHER_CTX_free(s->enc_template);
	EVP_CIPHER_CTX_free(s->dec_template);
	EVP_CIPHER_free(s->cipher);
	OPENSSL_free(s);
}

bool
pdp_siv_encrypt(pdp_siv *s, const unsigned char *ad, size_t ad_len,
				const unsigned char *in, size_t len, unsigned char *out)
{
	int			outl = 0;

	if (len == 0)
		return false;
	if (EVP_CIPHER_CTX_copy(s->ctx, s->enc_template) != 1)
		return false;
	if (ad_len > 0 && EVP_EncryptUpdate(s->ctx, NULL, &outl, ad, (int) ad_len) != 1)
		return false;
	if (EVP_EncryptUpdate(s->ctx, out + PDP_SIV_TAG_BYTES, &outl, in, (int) len) != 1)
		return false;
	if (EVP_EncryptFinal_ex(s->ctx, out + PDP_SIV_TAG_BYTES + outl, &outl) != 1)
		return false;
	return EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_GET_TAG, PDP_SIV_TAG_BYTES, out) == 1;
}

bool
pdp_siv_decrypt(pdp_siv *s, const unsigned char *ad, size_t ad_len,
				const unsigned char *in, size_t len, unsigned char *out)
{
	int			outl = 0;
	unsigned char tag[PDP_SIV_TAG_BYTES];

	if (len <= PDP_SIV_TAG_BYTES)
		return false;
	memcpy(tag, in, PDP_SIV_TAG_BYTES);
	if (EVP_CIPHER_CTX_copy(s->ctx, s->dec_template) != 1 ||
		EVP_CIPHER_CTX_ctrl(s->ctx, EVP_CTRL_AEAD_SET_TAG, PDP_SIV_TAG_BYTES, tag) != 1)
		return false;
	if (ad_len > 0 && EVP_DecryptUpdate(s->ctx, NULL, &outl, ad, (int) ad_len) != 1)
		return false;
	if (EVP_DecryptUpdate(s->ctx, out, &outl, in + PDP_SIV_TAG_BYTES,
						  (int) (len - PDP_SIV_TAG_BYTES)) != 1)
	{
		OPENSSL_cleanse(out, len - PDP_SIV_TAG_BYTES);
		return false;
	}
	return EVP_DecryptFinal_ex(s->ctx, out + outl, &outl) == 1;
}

size_t
pdp_token_header(unsigned char *body, uint16_t version,
				 const unsigned char *domain, size_t domain_len)
{
	body[0] = (unsigned char) (version >> 8);
	body[1] = (unsigned char) version;
	body[2] = (unsigned char) domain_len;
	memcpy(body + 3, domain, domain_len);
	return 3 + domain_len;
}

bool
pdp_token_parse(const char *text, size_t text_len, unsigned char *buf, pdp_token *tok)
{
	long		n;
	size_t		dlen;

	if (text_len < PDP_TOKEN_PREFIX_LEN ||
		memcmp(text, PDP_TOKEN_PREFIX, PDP_TOKEN_PREFIX_LEN) != 0)
		return false;
	n = pdp_base64url_decode(text + PDP_TOKEN_PREFIX_LEN, text_len - PDP_TOKEN_PREFIX_LEN, buf);
	if (n < 3 + PDP_SIV_TAG_BYTES)
		return false;
	dlen = buf[2];
	if (dlen > PDP_TOKEN_MAX_DOMAIN || (size_t) n < 3 + dlen + PDP_SIV_TAG_BYTES)
		return false;
	tok->version = (uint16_t) (buf[0] << 8 | buf[1]);
	if (tok->version == 0)
		return false;
	tok->domain = buf + 3;
	tok->domain_len = dlen;
	tok->header = buf;
	tok->header_len = 3 + dlen;
	tok->sealed = buf + 3 + dlen;
	tok->sealed_len = (size_t) n - 3 - dlen;
	return true;
}
