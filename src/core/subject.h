/*-------------------------------------------------------------------------
 * subject.h
 *	  The canonical text form of a subject identifier, for every entry
 *	  point that takes a subject as text.  Plain C, no PostgreSQL headers.
 *
 * A learner is known by one text in pdp's tables (consents, restrictions,
 * holds, erasure receipts, notices, audit pseudonyms), and the visibility
 * check compares a registered column's value by its output form (int8out,
 * uuid_out).  So "02", " 2" and "+2" are the learner 2 when an integer
 * column holds learners, and "{A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11}" the
 * lower-case hyphenated uuid.  Which forms apply depends on the types of
 * the registered subject columns (src/sql/10_registry.sql):
 *
 *	 integer text (optional spaces around an optional sign and digits,
 *	 leading zeros allowed, within int64)  -> canonical decimal, when an
 *	 integer subject column is registered or nothing is;
 *	 a uuid (any case, optional braces, hyphens or none) -> lower-case
 *	 8-4-4-4-12, when a uuid column is registered or nothing is;
 *	 anything else -> kept as given, when a text or varchar column is
 *	 registered or nothing is registered at all;
 *	 otherwise malformed for the registered types.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_SUBJECT_H
#define PDP_SUBJECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Kinds of registered subject columns, as a bit mask. */
#define PDP_SUBJECT_INT		1	/* integer or bigint */
#define PDP_SUBJECT_UUID	2
#define PDP_SUBJECT_TEXT	4	/* text or varchar */

/* The longest canonical form of an integer or uuid, with its NUL. */
#define PDP_SUBJECT_CANON_MAX 37

typedef enum pdp_subject_status
{
	PDP_SUBJECT_CANONICAL,		/* out holds the canonical form */
	PDP_SUBJECT_AS_GIVEN,		/* the text is its own canonical form */
	PDP_SUBJECT_MALFORMED		/* not a subject of the registered kinds */
} pdp_subject_status;

/* An integer, possibly with spaces around it, a '+' and leading zeros? */
extern bool pdp_subject_parse_int(const char *s, size_t len, int64_t *out);

/* A uuid in any case, with or without braces and hyphens; into out[16]? */
extern bool pdp_subject_parse_uuid(const char *s, size_t len, uint8_t out[16]);

/*
 * Canonicalise s[0..len) for the registered kinds (a PDP_SUBJECT_* mask,
 * 0 when nothing is registered).  On PDP_SUBJECT_CANONICAL, out (of
 * PDP_SUBJECT_CANON_MAX bytes) holds the NUL-terminated form.
 */
extern pdp_subject_status pdp_subject_canonical(const char *s, size_t len, int kinds,
												char out[PDP_SUBJECT_CANON_MAX]);

#endif							/* PDP_SUBJECT_H */
