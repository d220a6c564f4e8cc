/*-------------------------------------------------------------------------
 * keyfile.h
 *	  Parser for pdp_ext key files.  Plain C, no PostgreSQL headers, so it
 *	  can be unit-tested and fuzzed outside the server.
 *
 * A key file holds one key per line, "<version> <64 hex digits>", with
 * blank lines and lines starting with '#' ignored.  Versions are 1..65535
 * and unique; the highest one is the active key.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_KEYFILE_H
#define PDP_KEYFILE_H

#include <stddef.h>
#include <stdint.h>

#define PDP_KEY_BYTES		32
#define PDP_MAX_KEYS		256
#define PDP_MAX_KEYFILE_SIZE (64 * 1024)

typedef struct pdp_key
{
	uint16_t	version;
	unsigned char bytes[PDP_KEY_BYTES];
} pdp_key;

typedef enum pdp_keyfile_status
{
	PDP_KEYFILE_OK = 0,
	PDP_KEYFILE_EMPTY,			/* no key at all */
	PDP_KEYFILE_SYNTAX,			/* a line is not "<version> <64 hex>" */
	PDP_KEYFILE_BAD_VERSION,	/* version 0 or above 65535 */
	PDP_KEYFILE_DUPLICATE,		/* the same version twice */
	PDP_KEYFILE_TOO_MANY,		/* more than PDP_MAX_KEYS keys */
	PDP_KEYFILE_TOO_LARGE		/* more than PDP_MAX_KEYFILE_SIZE bytes */
} pdp_keyfile_status;

/*
 * Parse buf[0..len) into keys[0..max_keys).  On success *nkeys is the count
 * and *active the index of the highest version.  On failure *bad_line is the
 * 1-based line at fault (0 when no line is), and keys[] has been wiped.
 * The parser never copies a line anywhere but into keys[].
 */
extern pdp_keyfile_status pdp_keyfile_parse(const char *buf, size_t len,
											pdp_key *keys, int max_keys,
											int *nkeys, int *active,
											int *bad_line);

/* A sentence saying what rule a status breaks (never the file's content). */
extern const char *pdp_keyfile_status_message(pdp_keyfile_status status);

#endif							/* PDP_KEYFILE_H */
