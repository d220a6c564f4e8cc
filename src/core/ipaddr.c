/*-------------------------------------------------------------------------
 * ipaddr.c
 *	  IP addresses as text (see ipaddr.h).
 *-------------------------------------------------------------------------
 */
#include "ipaddr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

bool
pdp_ip_parse(const char *s, size_t len, pdp_ip *ip)
{
	char		buf[64];
	char	   *slash;

	while (len > 0 && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len == 0 || len >= sizeof(buf) || memchr(s, '\0', len) != NULL)
		return false;
	memcpy(buf, s, len);
	buf[len] = '\0';
	ip->has_mask = false;
	slash = strchr(buf, '/');
	if (slash != NULL)
	{
		size_t		n = strlen(slash + 1);
		int			bits = 0;

		if (n == 0 || n > 3)
			return false;
		for (size_t i = 1; i <= n; i++)
		{
			if (slash[i] < '0' || slash[i] > '9')
				return false;
			bits = bits * 10 + (slash[i] - '0');
		}
		*slash = '\0';
		ip->has_mask = true;
		ip->bits = bits;
	}
	memset(ip->addr, 0, sizeof(ip->addr));
	if (inet_pton(AF_INET, buf, ip->addr) == 1)
		ip->family = 4;
	else if (inet_pton(AF_INET6, buf, ip->addr) == 1)
		ip->family = 6;
	else
		return false;
	if (!ip->has_mask)
		ip->bits = ip->family == 4 ? 32 : 128;
	else if (ip->bits > (ip->family == 4 ? 32 : 128))
		return false;
	return true;
}

size_t
pdp_ip_format(const pdp_ip *ip, char *out)
{
	size_t		n;

	if (inet_ntop(ip->family == 4 ? AF_INET : AF_INET6, ip->addr, out, PDP_IP_MAX_TEXT + 1) == NULL)
	{
		out[0] = '\0';
		return 0;
	}
	n = strlen(out);
	if (ip->has_mask)
		n += (size_t) snprintf(out + n, PDP_IP_MAX_TEXT + 1 - n, "/%d", ip->bits);
	return n;
}
