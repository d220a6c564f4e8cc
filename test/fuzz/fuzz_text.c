/* libFuzzer: the discovery scanners (free text, placeholders) and IP addresses as text. */
#include "classify.h"
#include "ipaddr.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
	const char *s = (const char *) data;
	pdp_text_hits h;
	pdp_ip		ip;
	char		out[PDP_IP_MAX_TEXT + 1];

	pdp_scan_text(s, size, &h);
	if (h.emails < 0 || h.phones < 0 || h.iins < 0 ||
		(size_t) (h.emails + h.phones + h.iins) > size)
		abort();
	(void) pdp_is_placeholder(s, size);
	(void) pdp_classify_value(s, size);
	if (pdp_ip_parse(s, size, &ip))
	{
		pdp_ip		again;
		size_t		n = pdp_ip_format(&ip, out);

		/* What is written parses back to the same address. */
		if (n == 0 || n > PDP_IP_MAX_TEXT || strlen(out) != n || !pdp_ip_parse(out, n, &again) ||
			again.family != ip.family || again.bits != ip.bits || memcmp(again.addr, ip.addr, 16) != 0)
			abort();
	}
	return 0;
}
