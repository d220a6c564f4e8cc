/*-------------------------------------------------------------------------
 * pdp_crypto.c
 *	  OpenSSL 3 wrappers used by pdp_ext (see pdp_crypto.h).
 *-------------------------------------------------------------------------
 */
#include "pdp_crypto.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

void
pdp_cleanse(void *p, size_t len)
{
	OPENSSL_cleanse(p, len);
}

bool
pdp_hkdf_sha256(const unsigned char *ikm, size_t ikm_len,
				const unsigned char *salt, size_t salt_len,
				const unsigned char *info, size_t info_len,
				unsigned char *out, size_t out_len)
{
	EVP_KDF    *kdf;
	EVP_KDF_CTX *ctx;
	OSSL_PARAM	params[5];
	OSSL_PARAM *p = params;
	bool		ok;

	kdf = EVP_KDF_fetch(NULL, OSSL_KDF_NAME_HKDF, NULL);
	if (kdf == NULL)
		return false;
	ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (ctx == NULL)
		return false;

	*p++ = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *) "SHA256", 0);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *) ikm, ikm_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *) salt, salt_len);
	*p++ = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, (void *) info, info_len);
	*p = OSSL_PARAM_construct_end();

	ok = EVP_KDF_derive(ctx, out, out_len, params) == 1;
	EVP_KDF_CTX_free(ctx);
	return ok;
}

bool
pdp_hmac_sha256(const unsigned char *key, size_t key_len,
				const unsigned char *msg, size_t msg_len,
				unsigned char out[32])
{
	unsigned int out_len = 32;

	return HMAC(EVP_sha256(), key, (int) key_len, msg, msg_len, out, &out_len) != NULL
		&& out_len == 32;
}

bool
pdp_sha256(const unsigned char *msg, size_t msg_len, unsigned char out[32])
{
	unsigned int out_len = 32;

	return EVP_Digest(msg, msg_len, out, &out_len, EVP_sha256(), NULL) == 1
		&& out_len == 32;
}

bool
pdp_random_bytes(unsigned char *buf, size_t len)
{
	return RAND_bytes(buf, (int) len) == 1;
}

void
pdp_hex_encode(const unsigned char *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

bool
pdp_key_fingerprint(const unsigned char key[32], char out[17])
{
	static const char label[] = "pdp_ext key fingerprint";
	unsigned char mac[32];

	if (!pdp_hmac_sha256(key, 32, (const unsigned char *) label, sizeof(label) - 1, mac))
		return false;
	pdp_hex_encode(mac, 8, out);
	pdp_cleanse(mac, sizeof(mac));
	return true;
}

/*
 * One cipher context per process, re-initialised for every value: fetching
 * the cipher and allocating a context cost more than the encryption of a
 * short value.  Single-threaded callers only (a PostgreSQL backend).
 */
static EVP_CIPHER_CTX *
gcm_ctx(void)
{
	static EVP_CIPHER *cipher = NULL;
	static EVP_CIPHER_CTX *ctx = NULL;

	if (cipher == NULL)
		cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	if (cipher == NULL)
		return NULL;
	if (ctx == NULL)
		ctx = EVP_CIPHER_CTX_new();
	if (ctx == NULL)
		return NULL;
	EVP_CIPHER_CTX_reset(ctx);
	if (EVP_CipherInit_ex2(ctx, cipher, NULL, NULL, -1, NULL) != 1)
		return NULL;
	return ctx;
}

bool
pdp_gcm_seal(const unsigned char key[32], const unsigned char iv[PDP_GCM_IV_BYTES],
			 const unsigned char *aad, size_t aad_len,
			 const unsigned char *pt, size_t pt_len,
			 unsigned char *ct, unsigned char tag[PDP_GCM_TAG_BYTES])
{
	EVP_CIPHER_CTX *ctx = gcm_ctx();
	int			n;
	bool		ok;

	if (ctx == NULL || pt_len > INT32_MAX || aad_len > INT32_MAX)
		return false;
	ok = EVP_EncryptInit_ex2(ctx, NULL, key, iv, NULL) == 1 &&
		EVP_EncryptUpdate(ctx, NULL, &n, aad, (int) aad_len) == 1 &&
		(pt_len == 0 || EVP_EncryptUpdate(ctx, ct, &n, pt, (int) pt_len) == 1) &&
		EVP_EncryptFinal_ex(ctx, ct + pt_len, &n) == 1 &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, PDP_GCM_TAG_BYTES, tag) == 1;
	EVP_CIPHER_CTX_reset(ctx);
	return ok;
}

bool
pdp_gcm_open(const unsigned char key[32], const unsigned char iv[PDP_GCM_IV_BYTES],
			 const unsigned char *aad, size_t aad_len,
			 const unsigned char *ct, size_t ct_len,
			 const unsigned char tag[PDP_GCM_TAG_BYTES], unsigned char *pt)
{
	EVP_CIPHER_CTX *ctx = gcm_ctx();
	int			n;
	bool		ok;

	if (ctx == NULL || ct_len > INT32_MAX || aad_len > INT32_MAX)
		return false;
	ok = EVP_DecryptInit_ex2(ctx, NULL, key, iv, NULL) == 1 &&
		EVP_DecryptUpdate(ctx, NULL, &n, aad, (int) aad_len) == 1 &&
		(ct_len == 0 || EVP_DecryptUpdate(ctx, pt, &n, ct, (int) ct_len) == 1) &&
		EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, PDP_GCM_TAG_BYTES, (void *) tag) == 1 &&
		EVP_DecryptFinal_ex(ctx, pt + ct_len, &n) == 1;
	EVP_CIPHER_CTX_reset(ctx);
	return ok;
}
