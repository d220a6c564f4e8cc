/*-------------------------------------------------------------------------
 * keyed.h
 *	  Per-call-site caches of keyed OpenSSL contexts for the per-row
 *	  pseudonym functions.
 *
 * A function keeps one PdpKeyed in fn_extra.  It is rebuilt only when the
 * keyring was reloaded, the key version asked for changes, or the domain
 * changes; otherwise a row costs no allocation and no key derivation.  The
 * OpenSSL objects are freed, and key material wiped, by a callback on the
 * function's memory context, so nothing outlives the query.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_KEYED_H
#define PDP_KEYED_H

#include "pdp_ext.h"

#include "fmgr.h"

#include "ff1.h"
#include "siv.h"

#define PDP_MAX_DOMAIN 64

typedef enum PdpKeyedKind
{
	PDP_KEYED_HMAC,				/* HMAC-SHA-256 under a 256-bit subkey */
	PDP_KEYED_FF1,				/* FF1 on AES-256 */
	PDP_KEYED_SIV				/* AES-256-SIV (512-bit subkey) */
} PdpKeyedKind;

typedef struct PdpKeyed PdpKeyed;

/*
 * The context for (kind, label, domain, version) at this call site;
 * version 0 means the active key.  Raises an error if the keyring cannot
 * be loaded, the version does not exist, or the domain is too long.
 */
extern PdpKeyed *pdp_keyed_get(FunctionCallInfo fcinfo, PdpKeyedKind kind,
							   const char *label, const char *domain,
							   Size domain_len, uint16 version);

/*
 * Refuses (42501) a domain reserved for pdp_ext's own keys: "audit",
 * "erasure" and any domain beginning with "pdp.".  SQL functions that take
 * a domain call it, so no SQL function computes an internal pseudonym.
 */
extern void pdp_keyed_check_domain(const char *domain, Size domain_len);

/* The key version the context was built with. */
extern uint16 pdp_keyed_version(PdpKeyed *k);

/* HMAC-SHA-256 of msg into out[32]. */
extern void pdp_keyed_hmac(PdpKeyed *k, const void *msg, Size len, unsigned char out[32]);

extern pdp_ff1 *pdp_keyed_ff1(PdpKeyed *k);
extern pdp_siv *pdp_keyed_siv(PdpKeyed *k);

/* Reports an FF1 failure as an error. */
extern void pdp_report_ff1(pdp_ff1_status status) pg_attribute_noreturn();

#endif							/* PDP_KEYED_H */
