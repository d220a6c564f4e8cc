/* Value classification for discovery: validators, not patterns. */
#include "classify.h"
#include "tap.h"

static const char *
c(const char *s)
{
	return pdp_classify_value(s, strlen(s));
}

int
main(void)
{
	is_str(c("900101300017"), "iin", "a valid IIN");
	ok(c("900101300018") == NULL, "twelve digits failing the IIN check are nothing");
	ok(c("123456789012") == NULL, "random twelve digits are nothing");
	is_str(c("171240017760"), "bin", "a valid BIN");
	is_str(c("4111 1111 1111 1111"), "card", "a Luhn-valid card number");
	ok(c("4111 1111 1111 1112") == NULL, "a Luhn-invalid one is nothing");
	is_str(c("aigerim@mail.kz"), "email", "an e-mail address");
	ok(c("not@valid") == NULL, "an address without a dotted domain is nothing");
	is_str(c("+7 701 234 56 78"), "phone", "a Kazakh mobile number");
	is_str(c("8 (701) 234-56-78"), "phone", "another form");
	is_str(c("10.1.2.3"), "ip", "an IPv4 address");
	is_str(c("2001:db8::1"), "ip", "an IPv6 address");
	is_str(c("10.1.2.3/32"), "ip", "inet's text form, with a netmask length");
	ok(c("10.1.2.3/x") == NULL, "a bad netmask is nothing");
	ok(c("hello world") == NULL, "words are nothing");
	ok(c("") == NULL, "empty is nothing");
	ok(c("42") == NULL, "a small number is nothing");
	return done_testing();
}
