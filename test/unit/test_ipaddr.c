/* IP addresses stored as text: parsed and written back for pdp.pseudo_ip_text. */
#include "ipaddr.h"
#include "tap.h"

static int
parses(const char *s, pdp_ip *ip)
{
	return pdp_ip_parse(s, strlen(s), ip);
}

int
main(void)
{
	pdp_ip		ip;
	char		out[PDP_IP_MAX_TEXT + 1];

	ok(parses("10.1.2.3", &ip) && ip.family == 4 && ip.bits == 32 && !ip.has_mask, "IPv4");
	is_int((int) pdp_ip_format(&ip, out), 8, "IPv4 written back");
	is_str(out, "10.1.2.3", "IPv4 text");
	ok(parses(" 10.1.2.0/24 ", &ip) && ip.bits == 24 && ip.has_mask, "IPv4 with mask, blanks around");
	pdp_ip_format(&ip, out);
	is_str(out, "10.1.2.0/24", "mask written back");
	ok(parses("2001:db8::1", &ip) && ip.family == 6 && ip.bits == 128, "IPv6");
	ok(parses("::ffff:10.0.0.1", &ip) && ip.family == 6, "IPv4-mapped IPv6");
	ok(parses("0:0:0:0:0:0:0:1", &ip) && ip.family == 6, "uncompressed IPv6");
	ok(!parses("", &ip), "empty refused");
	ok(!parses("10.1.2", &ip), "three octets refused");
	ok(!parses("10.1.2.3/33", &ip), "IPv4 mask over 32 refused");
	ok(!parses("::1/129", &ip), "IPv6 mask over 128 refused");
	ok(!parses("10.1.2.3/", &ip), "empty mask refused");
	ok(!parses("10.1.2.3/2a", &ip), "mask with a letter refused");
	ok(!parses("localhost", &ip), "a host name is not an address");
	ok(!pdp_ip_parse("10.0.0.1\0x", 10, &ip), "NUL inside refused");
	{
		/* The longest text: eight full IPv6 groups and a mask. */
		memset(&ip, 0xAB, sizeof(ip));
		ip.family = 6;
		ip.has_mask = true;
		ip.bits = 128;
		ok(pdp_ip_format(&ip, out) <= PDP_IP_MAX_TEXT, "longest output fits PDP_IP_MAX_TEXT (%s)", out);
	}
	return done_testing();
}
