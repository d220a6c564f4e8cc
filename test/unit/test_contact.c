/* Phone and e-mail parsers, and the IIN permutation. */
#include "checkdigit.h"
#include "contact.h"
#include "iin_fpe.h"
#include "tap.h"

#include <stdlib.h>

static pdp_phone_status
phone(const char *s, pdp_phone *p)
{
	return pdp_phone_parse(s, strlen(s), p);
}

static pdp_email_status
email(const char *s)
{
	size_t		at;

	return pdp_email_parse(s, strlen(s), &at);
}

int
main(void)
{
	pdp_phone	p;

	/* Kazakh forms. */
	is_int(phone("+7 701 234 56 78", &p), PDP_PHONE_OK, "+7 7xx xxx xx xx");
	ok(p.ndigits == 11 && p.keep == 2 && p.pos[0] == 1 && p.pos[2] == 4, "digits, kept prefix and positions");
	is_int(phone("8 (701) 234-56-78", &p), PDP_PHONE_OK, "8 (7xx) xxx-xx-xx");
	is_int(p.keep, 2, "trunk 8 and the first national digit are kept");
	is_int(phone("87012345678", &p), PDP_PHONE_OK, "87xxxxxxxxx");
	is_int(phone("77012345678", &p), PDP_PHONE_OK, "77xxxxxxxxx");
	is_int(phone("701.234.56.78", &p), PDP_PHONE_OK, "7xx.xxx.xx.xx (10 digits)");
	is_int(p.keep, 1, "a 10-digit national number keeps its first digit");
	is_int(phone("+44 20 7946 0958", &p), PDP_PHONE_OK, "another country after +");
	is_int(p.keep, 3, "three leading digits kept for other countries");
	/* Bad ones. */
	is_int(phone("call me", &p), PDP_PHONE_BAD_CHAR, "letters refused");
	is_int(phone("+7 701 234 56 7x", &p), PDP_PHONE_BAD_CHAR, "a trailing letter refused");
	is_int(phone("7+7012345678", &p), PDP_PHONE_BAD_CHAR, "a + after digits refused");
	is_int(phone("+7 701 234 56", &p), PDP_PHONE_LENGTH, "+7 with 9 digits refused");
	is_int(phone("+7 701 234 56 789", &p), PDP_PHONE_LENGTH, "+7 with 12 digits refused");
	is_int(phone("12345", &p), PDP_PHONE_LENGTH, "5 digits refused");
	is_int(phone("1234567890123456", &p), PDP_PHONE_LENGTH, "16 digits refused");
	is_int(phone("", &p), PDP_PHONE_LENGTH, "empty refused");
	is_int(phone("5012345678", &p), PDP_PHONE_NOT_KAZAKH, "10 digits not starting with 7 need a +");
	is_int(phone("+", &p), PDP_PHONE_LENGTH, "a lone + refused");

	/* E-mail. */
	is_int(email("aigerim.s@mail.kz"), PDP_EMAIL_OK, "plain address");
	is_int(email("first+tag@sub.example.com"), PDP_EMAIL_OK, "plus and subdomain");
	is_int(email("айгерім@пример.қаз"), PDP_EMAIL_OK, "UTF-8 local part and domain");
	is_int(email("no-at.example.com"), PDP_EMAIL_NO_AT, "no @");
	is_int(email("a@b@example.com"), PDP_EMAIL_NO_AT, "two @");
	is_int(email("@example.com"), PDP_EMAIL_LOCAL, "empty local part");
	is_int(email(".a@example.com"), PDP_EMAIL_LOCAL, "leading dot");
	is_int(email("a..b@example.com"), PDP_EMAIL_LOCAL, "double dot");
	is_int(email("a b@example.com"), PDP_EMAIL_LOCAL, "space");
	is_int(email("a@localhost"), PDP_EMAIL_OK, "host name without a dot (root@localhost)");
	is_int(email("root@localhost"), PDP_EMAIL_OK, "root@localhost");
	is_int(email("a@-localhost"), PDP_EMAIL_DOMAIN, "single label starting with -");
	is_int(email("a@-x.kz"), PDP_EMAIL_DOMAIN, "label starting with -");
	is_int(email("a@x-.kz"), PDP_EMAIL_DOMAIN, "label ending with -");
	is_int(email("a@x..kz"), PDP_EMAIL_DOMAIN, "empty label");
	is_int(email("a@"), PDP_EMAIL_DOMAIN, "empty domain");
	is_int(email("a@x.kz."), PDP_EMAIL_DOMAIN, "trailing dot");
	{
		char		big[80];

		memset(big, 'a', 65);
		strcpy(big + 65, "@x.kz");
		is_int(email(big), PDP_EMAIL_LOCAL, "65-byte local part");
	}
	for (int s = PDP_PHONE_OK; s <= PDP_PHONE_NOT_KAZAKH; s++)
		ok(pdp_phone_status_message((pdp_phone_status) s)[0] != '\0', "phone status %d has a message", s);
	for (int s = PDP_EMAIL_OK; s <= PDP_EMAIL_DOMAIN; s++)
		ok(pdp_email_status_message((pdp_email_status) s)[0] != '\0', "e-mail status %d has a message", s);

	/* IIN permutation: valid outputs, year kept, round trips, distinct. */
	{
		unsigned char key[32] = {7};
		pdp_ff1    *ff1 = pdp_ff1_new(key, 32);
		char		out[13] = {0},
					back[13] = {0};
		int			invalid = 0,
					wrong_year = 0,
					roundtrip = 0,
					same = 0,
					tried = 0;
		static char seen[20000][13];

		for (int i = 0; i < 20000; i++)
		{
			char		in[13];
			int			y1, m1, d1, s1, y2, m2, d2, s2;

			/* Walk through many valid IINs of 1990-2009. */
			snprintf(in, sizeof(in), "%02d%02d%02d%d%04d",
					 (90 + i % 20) % 100, 1 + i % 12, 1 + i % 28, (i % 20) < 10 ? 3 + i % 2 : 5 + i % 2, i % 10000);
			if (pdp_id_check_digit(in) < 0)
				continue;
			in[11] = (char) ('0' + pdp_id_check_digit(in));
			in[12] = '\0';
			tried++;
			if (pdp_iin_fpe_encrypt(ff1, true, in, out) != PDP_IIN_FPE_OK ||
				pdp_iin_validate(out, 12) != PDP_ID_OK)
				invalid++;
			pdp_iin_fields(in, &y1, &m1, &d1, &s1);
			pdp_iin_fields(out, &y2, &m2, &d2, &s2);
			if (y1 != y2)
				wrong_year++;
			if (pdp_iin_fpe_decrypt(ff1, true, out, back) != PDP_IIN_FPE_OK || memcmp(back, in, 12) != 0)
				roundtrip++;
			if (memcmp(in, out, 12) == 0)
				same++;
			memcpy(seen[tried - 1], out, 13);
		}
		is_int(invalid, 0, "every pseudonymised IIN is valid (%d tried)", tried);
		is_int(wrong_year, 0, "keep_year keeps the birth year");
		is_int(roundtrip, 0, "every one decrypts back");
		ok(same < 5, "almost none maps to itself (%d)", same);
		qsort(seen, (size_t) tried, 13, (int (*)(const void *, const void *)) strcmp);
		{
			int			dup = 0;

			for (int i = 1; i < tried; i++)
				if (strcmp(seen[i - 1], seen[i]) == 0)
					dup++;
			is_int(dup, 0, "distinct IINs give distinct pseudonyms");
		}
		invalid = roundtrip = 0;
		for (int i = 0; i < 2000; i++)
		{
			char		in[13];

			snprintf(in, sizeof(in), "%02d%02d%02d%d%04d", (i * 7) % 100, 1 + i % 12, 1 + i % 28, 1 + i % 6, i);
			if (pdp_id_check_digit(in) < 0)
				continue;
			in[11] = (char) ('0' + pdp_id_check_digit(in));
			if (pdp_iin_fpe_encrypt(ff1, false, in, out) != PDP_IIN_FPE_OK || pdp_iin_validate(out, 12) != PDP_ID_OK)
				invalid++;
			if (pdp_iin_fpe_decrypt(ff1, false, out, back) != PDP_IIN_FPE_OK || memcmp(back, in, 12) != 0)
				roundtrip++;
		}
		is_int(invalid, 0, "without keep_year too, outputs are valid IINs (1800-2099)");
		is_int(roundtrip, 0, "and decrypt back");
		is_int(pdp_iin_fpe_encrypt(ff1, true, "900101300018", out), PDP_IIN_FPE_INVALID, "an invalid IIN is refused");
		pdp_ff1_free(ff1);
	}
	/* Blanks: what the value rules pass through unchanged. */
	ok(pdp_is_blank("", 0), "'' is blank");
	ok(pdp_is_blank(" \t\r\n", 4), "whitespace is blank");
	ok(!pdp_is_blank(" a ", 3), "a letter is not blank");
	ok(!pdp_is_blank("\0", 1), "a NUL byte is not blank");
	return done_testing();
}
