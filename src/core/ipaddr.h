/*-------------------------------------------------------------------------
 * ipaddr.h
 *	  Parser for IP addresses stored as text (Moodle keeps them in
 *	  varchar(45)): IPv4 dotted quads and IPv6 in any form inet_pton(3)
 *	  accepts, each with an optional "/netmask length".  Plain C.
 *-------------------------------------------------------------------------
 */
#ifndef PDP_IPADDR_H
#define PDP_IPADDR_H

#include <stdbool.h>
#include <stddef.h>

/* Longest text pdp_ip_format writes: 39 (IPv6) + "/128", without the NUL. */
#define PDP_IP_MAX_TEXT 43

typedef struct pdp_ip
{
	int			family;			/* 4 or 6 */
	unsigned char addr[16];		/* 4 or 16 bytes used */
	int			bits;			/* netmask length; 32 or 128 when none given */
	bool		has_mask;		/* "/n" was written */
} pdp_ip;

/*
 * Parse s[0..len) (surrounding blanks allowed).  Every form accepted is
 * also accepted by PostgreSQL's inet input.  Returns false if it is not
 * an address.
 */
extern bool pdp_ip_parse(const char *s, size_t len, pdp_ip *ip);

/*
 * Write ip into out (PDP_IP_MAX_TEXT + 1 bytes) in inet_ntop(3)'s form,
 * with "/bits" when has_mask; returns the length.
 */
extern size_t pdp_ip_format(const pdp_ip *ip, char *out);

#endif							/* PDP_IPADDR_H */
