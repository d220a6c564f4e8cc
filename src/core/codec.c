/*-------------------------------------------------------------------------
 * codec.c
 *	  base32 and base64url without padding (see codec.h).
 *-------------------------------------------------------------------------
 */
#include "codec.h"

#include <stdint.h>

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
pdp_base32_encode(const unsigned char *in, size_t len, char *out)
{
	size_t		n = 0;
	unsigned	acc = 0;
	int			bits = 0;

	for (size_t i = 0; i < len; i++)
	{
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 5)
		{
			out[n++] = b32[(acc >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0)
		out[n++] = b32[(acc << (5 - bits)) & 31];
	return n;
}

size_t
pdp_base64url_encode(const unsigned char *in, size_t len, char *out)
{
	size_t		n = 0;
	uint32_t	acc = 0;
	int			bits = 0;

	for (size_t i = 0; i < len; i++)
	{
		acc = (acc << 8) | in[i];
		bits += 8;
		while (bits >= 6)
		{
			out[n++] = b64[(acc >> (bits - 6)) & 63];
			bits -= 6;
		}
	}
	if (bits > 0)
		out[n++] = b64[(acc << (6 - bits)) & 63];
	return n;
}

static int
b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

long
pdp_base64url_decode(const char *in, size_t len, unsigned char *out)
{
	long		n = 0;
	uint32_t	acc = 0;
	int			bits = 0;

	if (len % 4 == 1)
		return -1;
	for (size_t i = 0; i < len; i++)
	{
		int			v = b64_value((unsigned char) in[i]);

		if (v < 0)
			return -1;
		acc = (acc << 6) | (uint32_t) v;
		bits += 6;
		if (bits >= 8)
		{
			out[n++] = (unsigned char) (acc >> (bits - 8));
			bits -= 8;
		}
	}
	/* Leftover bits must be zero, so every byte string has one encoding. */
	if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return n;
}
