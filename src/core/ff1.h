/*-------------------------------------------------------------------------
 * ff1.h
 *	  NIST SP 800-38G FF1 format-preserving encryption over OpenSSL's AES.
 *	  Plain C, no PostgreSQL headers.
 *
 * FF1 is a keyed permutation of the numeral strings of a given radix and
 * length: distinct inputs always give distinct outputs, which is what makes
 * pdp_ext's format-preserving pseudonyms collision-free.  AES (the block
 * cipher) and big-number arithmetic come from OpenSSL; this file only does
 * the Feistel construction the standard specifies, checked in
 * test/unit/test_ff1.c against NIST's sample vectors.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_FF1_H
#define PDP_FF1_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PDP_FF1_MAX_LEN		256		/* longest numeral string accepted */
#define PDP_FF1_MAX_TWEAK	256		/* longest tweak accepted, bytes */
#define PDP_FF1_MAX_RADIX	256

typedef struct pdp_ff1 pdp_ff1;

typedef enum pdp_ff1_status
{
	PDP_FF1_OK = 0,
	PDP_FF1_BAD_RADIX,			/* radix outside 2..256 */
	PDP_FF1_BAD_LENGTH,			/* length below 2 or above the maximum */
	PDP_FF1_DOMAIN_TOO_SMALL,	/* radix^length below 1,000,000 */
	PDP_FF1_BAD_DIGIT,			/* a numeral not below the radix */
	PDP_FF1_BAD_TWEAK,			/* tweak too long */
	PDP_FF1_CRYPTO				/* OpenSSL failed */
} pdp_ff1_status;

/* A context for one AES key (16, 24 or 32 bytes); NULL on failure. */
extern pdp_ff1 *pdp_ff1_new(const unsigned char *key, size_t key_len);
extern void pdp_ff1_free(pdp_ff1 *ctx);

/*
 * Encrypt or decrypt n numerals in[0..n) (each < radix) into out[0..n);
 * in and out may be the same array.
 */
extern pdp_ff1_status pdp_ff1_encrypt(pdp_ff1 *ctx, unsigned radix,
									  const unsigned char *tweak, size_t tweak_len,
									  const uint8_t *in, uint8_t *out, size_t n);
extern pdp_ff1_status pdp_ff1_decrypt(pdp_ff1 *ctx, unsigned radix,
									  const unsigned char *tweak, size_t tweak_len,
									  const uint8_t *in, uint8_t *out, size_t n);

/* Smallest length FF1 accepts for this radix (radix^len >= 1,000,000). */
extern size_t pdp_ff1_min_length(unsigned radix);

extern const char *pdp_ff1_status_message(pdp_ff1_status status);

/*
 * Domains below 2^62 take a 64-bit path; tests set this to run the
 * general BIGNUM path on the same inputs and compare.
 */
extern bool pdp_ff1_disable_fast_path;

#endif							/* PDP_FF1_H */
