/*-------------------------------------------------------------------------
 * siv.h
 *	  Deterministic authenticated encryption (AES-SIV, RFC 5297, from
 *	  OpenSSL 3) and the pdp_ext token format built on it.  Plain C.
 *
 * A token is "pdp1." followed by base64url (no padding) of
 *
 *	  version (2 bytes, big-endian) || domain length (1 byte) || domain ||
 *	  SIV tag (16 bytes) || ciphertext
 *
 * and the plaintext is a type byte followed by the value's bytes.
 *
 * The key is derived per (key version, domain), so tokens of two domains
 * never match, and the header is authenticated as associated data, so a
 * token cannot be moved to another version or domain undetected.  Equal
 * plaintexts under the same version and domain give equal tokens: unique
 * indexes and joins on token columns keep working.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_SIV_H
#define PDP_SIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PDP_SIV_KEY_BYTES	64		/* AES-256-SIV: two 256-bit keys */
#define PDP_SIV_TAG_BYTES	16
#define PDP_TOKEN_PREFIX	"pdp1."
#define PDP_TOKEN_PREFIX_LEN 5
#define PDP_TOKEN_MAX_DOMAIN 64
#define PDP_TOKEN_TYPE_TEXT	0x01	/* first plaintext byte: a text value follows */

typedef struct pdp_siv pdp_siv;

extern pdp_siv *pdp_siv_new(const unsigned char key[PDP_SIV_KEY_BYTES]);
extern void pdp_siv_free(pdp_siv *ctx);

/*
 * out receives tag || ciphertext (len + 16 bytes).  false on failure.
 * len must be at least 1: OpenSSL's SIV cannot seal an empty message, so
 * token plaintexts always begin with a type byte (see PDP_TOKEN_TYPE_TEXT).
 */
extern bool pdp_siv_encrypt(pdp_siv *ctx, const unsigned char *ad, size_t ad_len,
							const unsigned char *in, size_t len, unsigned char *out);

/* in is tag || ciphertext; out receives len - 16 bytes.  false if forged. */
extern bool pdp_siv_decrypt(pdp_siv *ctx, const unsigned char *ad, size_t ad_len,
							const unsigned char *in, size_t len, unsigned char *out);

/* Token layout helpers. */
typedef struct pdp_token
{
	uint16_t	version;
	const unsigned char *domain;	/* points into the decoded buffer */
	size_t		domain_len;
	const unsigned char *header;	/* version || dlen || domain: the AD */
	size_t		header_len;
	const unsigned char *sealed;	/* tag || ciphertext */
	size_t		sealed_len;
} pdp_token;

/* Bytes of the decoded token body for a domain and plaintext length. */
#define PDP_TOKEN_BODY_LEN(dlen, len) (3 + (dlen) + PDP_SIV_TAG_BYTES + (len))

/* Write version || dlen || domain into body; returns header length. */
extern size_t pdp_token_header(unsigned char *body, uint16_t version,
							   const unsigned char *domain, size_t domain_len);

/*
 * Parse a token's text into buf (which must hold text_len bytes) and *tok.
 * Returns false if the prefix, encoding or layout is wrong; says nothing of
 * authenticity, which pdp_siv_decrypt decides.
 */
extern bool pdp_token_parse(const char *text, size_t text_len,
							unsigned char *buf, pdp_token *tok);

#endif							/* PDP_SIV_H */
