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
	ok(c("not@valid") == NULL, "an address without a dotted domain is nothing (for discovery)");
	is_str(c("+7 701 234 56 78"), "phone", "a Kazakh mobile number");
	is_str(c("8 (701) 234-56-78"), "phone", "another form");
	is_str(c("10.1.2.3"), "ip", "an IPv4 address");
	is_str(c("2001:db8::1"), "ip", "an IPv6 address");
	is_str(c("10.1.2.3/32"), "ip", "inet's text form, with a netmask length");
	ok(c("10.1.2.3/x") == NULL, "a bad netmask is nothing");
	ok(c("hello world") == NULL, "words are nothing");
	ok(c("") == NULL, "empty is nothing");
	ok(c("42") == NULL, "a small number is nothing");

	/* Placeholders do not count against a validator. */
	ok(pdp_is_placeholder("", 0), "'' is a placeholder");
	ok(pdp_is_placeholder("  ", 2), "blanks are a placeholder");
	ok(pdp_is_placeholder(" N/A ", 5), "N/A is a placeholder");
	ok(pdp_is_placeholder("-", 1), "a dash is a placeholder");
	ok(pdp_is_placeholder("0", 1), "0 is a placeholder");
	ok(pdp_is_placeholder("\xd0\xbd\xd0\xb5\xd1\x82", 6), "нет is a placeholder");
	ok(!pdp_is_placeholder("+7 701 234 56 78", 16), "a phone is not a placeholder");
	ok(!pdp_is_placeholder("nonexistent", 11), "a word is not a placeholder");

	/* Inside free text and JSON. */
	{
		pdp_text_hits h;
		const char *t1 = "Write to aigerim.s@mail.kz or call +7 701 234 56 78; IIN 900101300017.";
		const char *t2 = "{\"relateduserid\":5,\"email\":\"dana@example.com\",\"phone\":\"87012345678\",\"time\":1700000000}";
		const char *t3 = "order 1234567890123 on 2024-01-01 12:00, ref 900101300018, id x87012345678";
		const char *t4 = "root@localhost and a@b and @ and .@. and trailing dot user@mail.kz.";

		pdp_scan_text(t1, strlen(t1), &h);
		ok(h.emails == 1 && h.phones == 1 && h.iins == 1, "text: one e-mail, one phone, one IIN (%d/%d/%d)",
		   h.emails, h.phones, h.iins);
		pdp_scan_text(t2, strlen(t2), &h);
		ok(h.emails == 1 && h.phones == 1 && h.iins == 0, "JSON: one e-mail, one phone (%d/%d/%d)",
		   h.emails, h.phones, h.iins);
		pdp_scan_text(t3, strlen(t3), &h);
		ok(h.emails == 0 && h.phones == 0 && h.iins == 0, "numbers, dates, a bad IIN, a code: nothing (%d/%d/%d)",
		   h.emails, h.phones, h.iins);
		pdp_scan_text(t4, strlen(t4), &h);
		is_int(h.emails, 1, "only the dotted address counts, its trailing dot dropped");
		pdp_scan_text("", 0, &h);
		ok(h.emails == 0 && h.phones == 0 && h.iins == 0, "empty text: nothing");
		pdp_scan_text("@@@@+++", 7, &h);
		ok(h.emails == 0 && h.phones == 0, "punctuation only: nothing");
	}
	return done_testing();
}
