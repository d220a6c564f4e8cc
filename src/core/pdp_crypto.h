/*-------------------------------------------------------------------------
 * pdp_crypto.h
 *	  Thin wrappers over OpenSSL 3 for the primitives pdp_ext uses: HKDF,
 *	  HMAC-SHA-256, SHA-256, the random generator and memory wiping.
 *	  Plain C, no PostgreSQL headers.  No primitive is implemented here.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_CRYPTO_H
#define PDP_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Wipe memory that held key material; never optimised away. */
extern void pdp_cleanse(void *p, size_t len);

/* HKDF-SHA-256 (RFC 5869).  Returns false on an OpenSSL failure. */
extern bool pdp_hkdf_sha256(const unsigned char *ikm, size_t ikm_len,
							const unsigned char *salt, size_t salt_len,
							const unsigned char *info, size_t info_len,
							unsigned char *out, size_t out_len);

/* One-shot HMAC-SHA-256; out receives 32 bytes.  Returns false on failure. */
extern bool pdp_hmac_sha256(const unsigned char *key, size_t key_len,
							const unsigned char *msg, size_t msg_len,
							unsigned char out[32]);

/* SHA-256 of msg into out (32 bytes).  Returns false on failure. */
extern bool pdp_sha256(const unsigned char *msg, size_t msg_len,
					   unsigned char out[32]);

/* Fill buf with len bytes from OpenSSL's CSPRNG.  Returns false on failure. */
extern bool pdp_random_bytes(unsigned char *buf, size_t len);

/* Lower-case hex of in[0..len) into out, which must hold 2*len+1 bytes. */
extern void pdp_hex_encode(const unsigned char *in, size_t len, char *out);

/*
 * A public fingerprint of a 32-byte key: the first 8 bytes of
 * HMAC-SHA-256(key, "pdp_ext key fingerprint"), as 16 hex digits.  It names
 * a key without revealing anything usable about it.
 */
extern bool pdp_key_fingerprint(const unsigned char key[32], char out[17]);

/*
 * AES-256-GCM with a 12-byte IV and a 16-byte tag (crypto-shredding).
 * seal: ct receives pt_len bytes, tag 16.  open: returns false when the tag
 * does not authenticate ct and aad under key (pt then holds nothing usable).
 */
#define PDP_GCM_IV_BYTES	12
#define PDP_GCM_TAG_BYTES	16
extern bool pdp_gcm_seal(const unsigned char key[32], const unsigned char iv[PDP_GCM_IV_BYTES],
						 const unsigned char *aad, size_t aad_len,
						 const unsigned char *pt, size_t pt_len,
						 unsigned char *ct, unsigned char tag[PDP_GCM_TAG_BYTES]);
extern bool pdp_gcm_open(const unsigned char key[32], const unsigned char iv[PDP_GCM_IV_BYTES],
						 const unsigned char *aad, size_t aad_len,
						 const unsigned char *ct, size_t ct_len,
						 const unsigned char tag[PDP_GCM_TAG_BYTES], unsigned char *pt);

#endif							/* PDP_CRYPTO_H */
