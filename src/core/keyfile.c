/*-------------------------------------------------------------------------
 * keyfile.c
 *	  Parser for pdp_ext key files (see keyfile.h for the format).
 *
 * The parser is strict on purpose: a key file that is not exactly what we
 * expect is more likely damaged than creatively formatted, and guessing
 * with key material is how data gets encrypted under the wrong key.
 *-------------------------------------------------------------------------
 */
#include "keyfile.h"
#include "pdp_crypto.h"

#include <string.h>

static int
hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
is_blank(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Parse one non-comment line [p, end) into *key. */
static pdp_keyfile_status
parse_line(const unsigned char *p, const unsigned char *end, pdp_key *key)
{
	unsigned long version = 0;
	int			ndigits = 0;

	while (p < end && is_blank(*p))
		p++;
	while (p < end && *p >= '0' && *p <= '9')
	{
		if (++ndigits > 5)
			return PDP_KEYFILE_BAD_VERSION;
		version = version * 10 + (unsigned long) (*p - '0');
		p++;
	}
	if (ndigits == 0 || p == end || !is_blank(*p))
		return PDP_KEYFILE_SYNTAX;
	if (version == 0 || version > 65535)
		return PDP_KEYFILE_BAD_VERSION;
	while (p < end && is_blank(*p))
		p++;
	for (int i = 0; i < PDP_KEY_BYTES; i++)
	{
		int			hi,
					lo;

		if (end - p < 2)
			return PDP_KEYFILE_SYNTAX;
		hi = hex_value(p[0]);
		lo = hex_value(p[1]);
		if (hi < 0 || lo < 0)
			return PDP_KEYFILE_SYNTAX;
		key->bytes[i] = (unsigned char) (hi << 4 | lo);
		p += 2;
	}
	while (p < end && is_blank(*p))
		p++;
	if (p != end)
		return PDP_KEYFILE_SYNTAX;
	key->version = (uint16_t) version;
	return PDP_KEYFILE_OK;
}

pdp_keyfile_status
pdp_keyfile_parse(const char *buf, size_t len, pdp_key *keys, int max_keys,
				  int *nkeys, int *active, int *bad_line)
{
	const unsigned char *p = (const unsigned char *) buf;
	const unsigned char *end = p + len;
	pdp_keyfile_status status = PDP_KEYFILE_OK;
	int			line = 0;
	int			n = 0;

	*nkeys = 0;
	*active = -1;
	*bad_line = 0;
	if (len > PDP_MAX_KEYFILE_SIZE)
		return PDP_KEYFILE_TOO_LARGE;

	while (p < end && status == PDP_KEYFILE_OK)
	{
		const unsigned char *eol = memchr(p, '\n', (size_t) (end - p));
		const unsigned char *q = p;

		if (eol == NULL)
			eol = end;
		line++;
		while (q < eol && is_blank(*q))
			q++;
		if (q < eol && *q != '#')
		{
			if (n >= max_keys)
				status = PDP_KEYFILE_TOO_MANY;
			else if ((status = parse_line(q, eol, &keys[n])) == PDP_KEYFILE_OK)
			{
				for (int i = 0; i < n; i++)
					if (keys[i].version == keys[n].version)
						status = PDP_KEYFILE_DUPLICATE;
				n++;
			}
			if (status != PDP_KEYFILE_OK)
				*bad_line = line;
		}
		p = eol + (eol < end ? 1 : 0);
	}
	if (status == PDP_KEYFILE_OK && n == 0)
		status = PDP_KEYFILE_EMPTY;
	if (status != PDP_KEYFILE_OK)
	{
		pdp_cleanse(keys, sizeof(pdp_key) * (size_t) max_keys);
		return status;
	}
	*nkeys = n;
	*active = 0;
	for (int i = 1; i < n; i++)
		if (keys[i].version > keys[*active].version)
			*active = i;
	return PDP_KEYFILE_OK;
}

const char *
pdp_keyfile_status_message(pdp_keyfile_status status)
{
	switch (status)
	{
		case PDP_KEYFILE_OK:
			return "The key file is valid.";
		case PDP_KEYFILE_EMPTY:
			return "The key file holds no key.";
		case PDP_KEYFILE_SYNTAX:
			return "Each key line must read \"<version> <64 hexadecimal digits>\".";
		case PDP_KEYFILE_BAD_VERSION:
			return "Key versions must be whole numbers from 1 to 65535.";
		case PDP_KEYFILE_DUPLICATE:
			return "Each key version may appear only once.";
		case PDP_KEYFILE_TOO_MANY:
			return "A key file may hold at most 256 keys.";
		case PDP_KEYFILE_TOO_LARGE:
			return "A key file may be at most 64 kB.";
	}
	return "The key file is invalid.";
}
