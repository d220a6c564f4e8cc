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

#endif							/* PDP_CRYPTO_H */
