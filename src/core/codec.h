/*-------------------------------------------------------------------------
 * codec.h
 *	  Text encodings used by pdp_ext's outputs: lower-case base32 (RFC 4648
 *	  alphabet, no padding) and base64url (RFC 4648 section 5, no padding).
 *	  Plain C, no PostgreSQL headers.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_CODEC_H
#define PDP_CODEC_H

#include <stdbool.h>
#include <stddef.h>

/* Characters base32 needs for len bytes (no padding). */
#define PDP_BASE32_LEN(len)		(((len) * 8 + 4) / 5)
#define PDP_BASE64URL_LEN(len)	(((len) * 4 + 2) / 3)

/* Encode in[0..len) into out; out gets no terminator.  Returns chars written. */
extern size_t pdp_base32_encode(const unsigned char *in, size_t len, char *out);
extern size_t pdp_base64url_encode(const unsigned char *in, size_t len, char *out);

/*
 * Decode base64url text (no padding) into out, which must hold
 * (len * 3) / 4 bytes.  Returns the byte count, or -1 on a character outside
 * the alphabet, an impossible length, or non-zero trailing bits.
 */
extern long pdp_base64url_decode(const char *in, size_t len, unsigned char *out);

#endif							/* PDP_CODEC_H */
